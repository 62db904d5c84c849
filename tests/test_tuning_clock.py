"""How trials are timed: the thread's CPU clock when TVM runs on the calling thread alone, else the wall clock.

What is checked: the choice follows TVM_NUM_THREADS; the CPU clock leaves out time the thread does not run
(what other processes on a shared core cost the wall clock) yet counts a real kernel's work; a clock name
that does not exist is a clear error.
"""

from __future__ import annotations

import time

import pytest

from mlc_lab.tuning.measure import MeasuredCost, default_clock, kernel_seconds


@pytest.mark.parametrize(("threads", "clock"), [("1", "cpu"), ("2", "wall"), (None, "wall")])
def test_the_cpu_clock_is_used_only_when_tvm_runs_on_one_thread(monkeypatch, threads, clock) -> None:
    if threads is None:
        monkeypatch.delenv("TVM_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("TVM_NUM_THREADS", threads)
    assert default_clock() == clock


def test_the_cpu_clock_leaves_out_time_the_thread_does_not_run() -> None:
    """A 'kernel' that sleeps 5 ms (as if another process held the core) and then computes briefly."""

    def kernel() -> None:
        time.sleep(0.005)
        sum(range(20_000))

    start = time.perf_counter()
    seconds = kernel_seconds({"main": kernel}, [], repeat=3, min_repeat_ms=1, clock="cpu")
    wall_per_call = (time.perf_counter() - start) / 4  # 3 repeats + the warm-up call, at least
    assert len(seconds) == 3 and wall_per_call >= 0.005
    assert 0 < min(seconds) < 0.5 * wall_per_call, (seconds, wall_per_call)


def test_the_cpu_clock_counts_a_real_kernels_work() -> None:
    """A 256^3 matmul timed on the CPU clock takes at least its FLOPs at 400 GFLOP/s (no one core of this
    kind does more), so its work was counted; and never much more than the wall clock says."""
    from mlc_lab.codegen.tiling import default_config, target_isa
    from mlc_lab.tuning.task import matmul_task

    task = matmul_task(256, 256, 256)
    cpu, wall = (MeasuredCost(task, repeat=3, min_repeat_ms=10, clock=c) for c in ("cpu", "wall"))
    config = default_config(cpu.info, target_isa())
    on_cpu, on_wall = cpu(config), wall(config)
    assert on_cpu.ok and on_wall.ok, (on_cpu.error, on_wall.error)
    assert on_cpu.cost >= task.flops / 400e9
    assert on_cpu.cost <= 1.5 * on_wall.cost, (on_cpu.cost, on_wall.cost)


def test_an_unknown_clock_is_a_clear_error() -> None:
    from mlc_lab.tuning.task import matmul_task

    with pytest.raises(ValueError, match="clock 'tsc': expected one of wall, cpu"):
        MeasuredCost(matmul_task(8, 8, 8), clock="tsc")
    with pytest.raises(ValueError, match="clock 'tsc'"):
        kernel_seconds({"main": lambda: None}, [], 1, 0, clock="tsc")
