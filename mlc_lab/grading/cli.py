"""`mlc-lab grade PATH [--json]`: exit 0 only when every official check passes."""

from __future__ import annotations

import argparse
import json
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "grade",
        help="grade an exercise notebook, or a folder of them",
        description="Run a notebook with its official checks (mlc_lab/grading/checks) and print PASS/FAIL per check. "
        "Exit status: 0 all checks pass, 1 some check fails, 2 nothing could be graded.",
    )
    p.add_argument("path", help="an exercise notebook (.md or .ipynb) or a folder of them")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--csv", metavar="FILE", help="also write one row per notebook (student = its folder) to FILE")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    p.add_argument("--checks", default=None, help=argparse.SUPPRESS)  # authors/tests: another checks folder
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlc_lab.grading.grader import grade

    try:
        report = grade(args.path, checks=args.checks, timeout=args.timeout)
    except FileNotFoundError as exc:
        print(f"mlc-lab grade: no such file or folder: {exc}")
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    if args.csv:
        report.write_csv(args.csv, args.path if os.path.isdir(args.path) else os.path.dirname(args.path) or ".")
    if report.ok:
        return 0
    graded = [nb for nb in report.notebooks if nb.error is None and nb.total]
    return 1 if graded else 2
