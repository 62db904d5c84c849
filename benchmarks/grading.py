"""Grading a class: serial vs `--jobs N`, same scores, and the time ratio against the ideal.

    .venv/bin/python benchmarks/grading.py                      # 100 notebooks of chapter 08, jobs 2
    .venv/bin/python benchmarks/grading.py --chapter 05_accelerators --count 40 --jobs 2 --json

Builds `class/<student>/<chapter>.md` in a temporary folder: `--count` submissions alternating the
chapter's solution and its untouched exercise. Grades the folder once one notebook at a time and
once with `--jobs N` processes, with the same seed, and reports both wall times, the ratio of the
parallel time to the ideal `serial / N` (issue 14 asks for <= 1.2 with N = 2), and whether every
student's score is the same in both runs. Each notebook runs in its own isolated process, so a
class costs roughly one process start plus the notebook's own work per submission.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_class(folder: Path, chapter: str, count: int) -> None:
    for i in range(count):
        source = ROOT / ("solutions" if i % 2 == 0 else "exercises") / f"{chapter}.md"
        student = folder / f"student{i:03d}"
        student.mkdir(parents=True)
        shutil.copy(source, student / source.name)


def timed_grade(folder: Path, jobs: int, seed: int) -> tuple[float, dict[str, float]]:
    from mlc_lab.grading.grader import Options, grade

    start = time.perf_counter()
    report = grade(folder, options=Options(seed=seed, guard=()), jobs=jobs)
    elapsed = time.perf_counter() - start
    return elapsed, {n.student: n.earned for n in report.notebooks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", default="08_performance", help="exercise stem (default 08_performance)")
    parser.add_argument("--count", type=int, default=100, help="submissions (default 100)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="the inputs' seed, shared by both runs")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    for var in ("TVM_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one core per notebook: parallel grading must not oversubscribe

    with tempfile.TemporaryDirectory(prefix="mlc-lab-class-") as tmp:
        folder = Path(tmp) / "class"
        build_class(folder, args.chapter, args.count)
        serial_s, serial = timed_grade(folder, 1, args.seed)
        parallel_s, parallel = timed_grade(folder, args.jobs, args.seed)
    ideal = serial_s / args.jobs
    result = {
        "chapter": args.chapter,
        "notebooks": args.count,
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "serial_s": round(serial_s, 1),
        "parallel_s": round(parallel_s, 1),
        "per_notebook_serial_s": round(serial_s / args.count, 2),
        "ratio_to_ideal": round(parallel_s / ideal, 3),
        "speedup": round(serial_s / parallel_s, 2),
        "same_scores": serial == parallel,
        "mean_score": round(sum(serial.values()) / max(len(serial), 1), 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.count} notebooks of {args.chapter} (solutions and untouched exercises, alternating)")
    print(f"  serial      {serial_s:8.1f} s   ({serial_s / args.count:.2f} s per notebook)")
    print(f"  --jobs {args.jobs:<3}  {parallel_s:8.1f} s   speed-up {serial_s / parallel_s:.2f}x")
    ratio = parallel_s / ideal
    print(f"  parallel / (serial / {args.jobs}) = {ratio:.3f}   (target <= 1.2; {os.cpu_count()} CPUs here)")
    print(f"  same scores serial and parallel: {serial == parallel}")


if __name__ == "__main__":
    main()
