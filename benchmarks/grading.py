"""Grading a class: `mlc-lab grade class/` serial vs `--jobs N`, same scores, and the time ratio to the ideal.

    .venv/bin/python benchmarks/grading.py                      # 100 notebooks of chapter 01, jobs 2, 3 repeats
    .venv/bin/python benchmarks/grading.py --chapter 06_accelerators --count 40 --repeats 5 --json

Builds `class/<student>/<chapter>.md` in a temporary folder: `--count` submissions alternating the
chapter's solution and its untouched exercise. Then runs the real command, `mlc-lab grade class/
--seed S --csv ...` (a fresh process each time, so both sides pay the grader's own start), once
with `--jobs 1` and once with `--jobs N`, `--repeats` times interleaved (serial first, then parallel
first, ...) so that a change in the machine's load hits both alike. It reports the median wall
times, the ratio of the parallel time to the ideal `serial / N` (issue 14 asks for <= 1.2 with
N = 2), the CPU seconds each run used (the load-independent cost; a parallel run's count misses
its grading processes' zygotes, which end after them and are reaped by init), the load average
around each run (other work on the machine inflates both times and the ratio), and whether every
run gave every student the same scores as the first serial run. `--no-package-check` keeps the package unguarded:
in a development checkout other people's edits would otherwise flag submissions.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = ("TVM_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def build_class(folder: Path, chapter: str, count: int) -> None:
    for i in range(count):
        source = ROOT / ("solutions" if i % 2 == 0 else "exercises") / f"{chapter}.md"
        student = folder / f"student{i:03d}"
        student.mkdir(parents=True)
        shutil.copy(source, student / source.name)


def timed_grade(folder: Path, jobs: int, seed: int, scratch: Path) -> dict:
    """One `mlc-lab grade` run: wall and CPU seconds, load average before it, and the scores it wrote."""
    table = scratch / f"scores-{jobs}-{time.monotonic_ns()}.csv"
    env = {**os.environ, **{var: "1" for var in THREADS}}  # one core per notebook: no oversubscription
    command = [sys.executable, "-m", "mlc_lab.cli", "grade", str(folder), "--jobs", str(jobs), "--seed", str(seed)]
    command += ["--no-package-check", "--csv", str(table)]
    load = os.getloadavg()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()[0]
    if done.returncode not in (0, 1):  # 1: some checks fail (the untouched exercises), as expected
        raise SystemExit(f"mlc-lab grade --jobs {jobs} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    with open(table, newline="", encoding="utf-8") as f:
        scores = {
            row["student"]: (row["earned"], row["points"], row["passed"], row["error"]) for row in csv.DictReader(f)
        }
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return {
        "jobs": jobs,
        "wall_s": wall,
        "cpu_s": used,
        "load_before": load[0],
        "load_after": load_after,
        "uptime_before": " ".join(f"{v:.2f}" for v in load),  # 1, 5 and 15 minutes, as `uptime` prints them
        "scores": scores,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chapter", default="01_ir", help="exercise stem (default 01_ir: its exercises are the quickest to grade)"
    )
    parser.add_argument("--count", type=int, default=100, help="submissions (default 100)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="serial/parallel pairs, interleaved (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="the inputs' seed, shared by every run")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory(prefix="mlc-lab-class-") as tmp:
        folder = Path(tmp) / "class"
        build_class(folder, args.chapter, args.count)
        for r in range(args.repeats):
            for jobs in (1, args.jobs) if r % 2 == 0 else (args.jobs, 1):
                runs.append(timed_grade(folder, jobs, args.seed, Path(tmp)))
                run = runs[-1]
                print(  # progress on stderr: a loaded machine makes a run take minutes
                    f"  run {len(runs)}/{2 * args.repeats}: --jobs {jobs} {run['wall_s']:.2f} s "
                    f"(load average before: {run['uptime_before']}; after: {run['load_after']:.2f})",
                    file=sys.stderr,
                    flush=True,
                )
    serial = [run for run in runs if run["jobs"] == 1]
    parallel = [run for run in runs if run["jobs"] == args.jobs]
    reference = serial[0]["scores"]
    same = all(run["scores"] == reference for run in runs)
    differing = sorted({s for run in runs for s in reference if run["scores"].get(s) != reference[s]})
    broken = sorted(s for s, (*_, error) in reference.items() if error)
    serial_s = statistics.median(run["wall_s"] for run in serial)
    parallel_s = statistics.median(run["wall_s"] for run in parallel)
    ratio = parallel_s / (serial_s / args.jobs)
    result = {
        "chapter": args.chapter,
        "notebooks": args.count,
        "graded": len(reference),
        "jobs": args.jobs,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "serial_s": round(serial_s, 2),
        "parallel_s": round(parallel_s, 2),
        "per_notebook_serial_s": round(serial_s / args.count, 3),
        "ratio_to_ideal": round(ratio, 3),
        "speedup": round(serial_s / parallel_s, 2),
        "serial_cpu_s": round(statistics.median(run["cpu_s"] for run in serial), 2),
        "parallel_cpu_s": round(statistics.median(run["cpu_s"] for run in parallel), 2),
        "runs": [
            {
                "jobs": run["jobs"],
                "wall_s": round(run["wall_s"], 2),
                "cpu_s": round(run["cpu_s"], 2),
                "load_before": round(run["load_before"], 2),
                "load_after": round(run["load_after"], 2),
            }
            for run in runs
        ],
        "load_after": round(os.getloadavg()[0], 2),
        "same_scores": same,
        "students_with_other_scores": differing,
        "notebooks_with_errors": broken,
        "points": max((float(p) for _, p, *_ in reference.values()), default=0.0),
        "mean_score": round(sum(float(e) for e, *_ in reference.values()) / max(len(reference), 1), 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{args.count} notebooks of {args.chapter} (solutions and untouched exercises, alternating), "
            f"`mlc-lab grade`, {args.repeats} interleaved repeats, medians"
        )
        for run in runs:
            print(
                f"  --jobs {run['jobs']:<3} {run['wall_s']:7.2f} s wall  {run['cpu_s']:7.2f} s CPU   "
                f"(load average before: {run['uptime_before']}; after: {run['load_after']:.2f})"
            )
        print(f"  serial      {serial_s:7.2f} s   ({serial_s / args.count:.3f} s per notebook)")
        print(f"  --jobs {args.jobs:<3}  {parallel_s:7.2f} s   speed-up {serial_s / parallel_s:.2f}x")
        print(
            f"  parallel / (serial / {args.jobs}) = {ratio:.3f}   (target <= 1.2; {os.cpu_count()} CPUs here; "
            f"load average now {os.getloadavg()[0]:.2f})"
        )
        print(f"  same scores in every run: {same}; notebooks graded: {len(reference)}; with errors: {len(broken)}")
    if not same:
        sys.exit(f"--jobs {args.jobs} and serial grading gave different scores: {', '.join(differing[:10])}")
    if broken or len(reference) != args.count:
        sys.exit(f"{len(reference)} of {args.count} notebooks graded; with errors: {', '.join(broken[:10])}")


if __name__ == "__main__":
    main()
