"""`mlc-lab grade PATH`: grade a notebook or a class's submissions; exit 0 only when every check passes."""

from __future__ import annotations

import argparse
import json
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "grade",
        help="grade an exercise notebook, or a folder of submissions",
        description="Run each notebook in an isolated process and judge it with its official checks "
        "(mlc_lab/grading/checks) plus any instructor checks (--checks DIR). "
        "Exit status: 0 all checks pass, 1 some check fails, 2 nothing could be graded.",
    )
    p.add_argument(
        "path", help="an exercise notebook (.md or .ipynb) or a folder of submissions (one folder per student)"
    )
    p.add_argument(
        "--checks",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of instructor check modules (DIR/ch01_ir.py...) run besides the shipped ones; repeatable",
    )
    p.add_argument("--jobs", "-j", type=int, default=1, help="grade N submissions in parallel (default 1)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--json-dir", metavar="DIR", help="also write one JSON report per submission into DIR")
    p.add_argument("--csv", metavar="FILE", help="also write one row per notebook (student = its folder) to FILE")
    p.add_argument(
        "--gradebook", metavar="FILE", help="also write a Canvas/Gradescope-style gradebook CSV (one row per student)"
    )
    p.add_argument(
        "--hide-hidden", action="store_true", help="keep hidden cases' inputs and answers out of the feedback"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds for all of a notebook's cells (default 600); the checks get as long again",
    )
    p.add_argument(
        "--memory-mb", type=int, default=8192, help="address-space limit of a notebook's process (default 8192)"
    )
    p.add_argument(
        "--output-kb",
        type=int,
        default=1024,
        help="notebook output kept per submission (default 1024 KiB; the rest is dropped)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="the seed inputs are drawn from (default: a fresh one per notebook)"
    )
    p.add_argument(
        "--no-package-check",
        action="store_true",
        help="do not verify the installed package after each submission (a development checkout being edited)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlc_lab.grading.grader import Options, grade
    from mlc_lab.grading.sandbox import Limits

    limits = Limits(
        timeout=args.timeout, check_timeout=args.timeout, memory_mb=args.memory_mb, output_kb=args.output_kb
    )
    options = Options(
        limits=limits,
        checks=tuple(os.path.abspath(c) for c in args.checks),
        seed=args.seed,
        guard=() if args.no_package_check else None,
    )
    try:
        report = grade(args.path, options=options, jobs=args.jobs, hide_hidden=args.hide_hidden)
    except FileNotFoundError as exc:
        print(f"mlc-lab grade: no such file or folder: {exc}")
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    root = args.path if os.path.isdir(args.path) else None
    if args.csv:
        report.write_csv(args.csv, root)
    if args.gradebook:
        report.write_gradebook(args.gradebook, root)
    if args.json_dir:
        report.write_json_reports(args.json_dir)
    if report.ok:
        return 0
    graded = [nb for nb in report.notebooks if nb.error is None and nb.total]
    return 1 if graded else 2
