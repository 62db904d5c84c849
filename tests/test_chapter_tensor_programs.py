"""The chapter "Tensor programs": its helpers (mlc_lab.codegen.tvm.handwritten, the derived compute roof,
the roofline plot) and its official checks, which must refuse wrong answers with a message saying what
to change. (Solution passes / untouched exercise fails: tests/test_course_grading.py, for every chapter.)"""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import s_tir, te

from mlc_lab.codegen.tvm.handwritten import KernelMismatch, refusal, replay, run_kernel, script_diff, trace_json
from mlc_lab.grading import run_check
from mlc_lab.grading.checks.ch04_tensor_programs import (
    FAST_SIZE,
    TARGET_SIZE,
    exercise_kernel,
    legality_kernels,
    legality_verdicts,
    target_schedule,
)
from mlc_lab.tuning.compute_roof import ComputeRoof, cpu_clock_ghz, derived_compute_roof

CHAPTER = "04_tensor_programs"


def _matmul(n: int = 16):
    a = te.placeholder((n, n), "float32", name="A")
    b = te.placeholder((n, n), "float32", name="B")
    k = te.reduce_axis((0, n), "k")
    return te.create_prim_func([a, b, te.compute((n, n), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")])


# -- helpers ------------------------------------------------------------------------------------------------
def test_refusal_is_tvms_reason_in_one_line():
    sch = s_tir.Schedule(_matmul())
    with pytest.raises(s_tir.ScheduleError) as info:
        sch.parallel(sch.get_loops(sch.get_sblock("C"))[2])
    reason = refusal(info.value)
    assert "\n" not in reason and "not a data parallel block iter" in reason


def test_script_diff_shows_only_the_changed_lines():
    sch = s_tir.Schedule(_matmul())
    before = sch.mod["main"].script()
    i, _, _ = sch.get_loops(sch.get_sblock("C"))
    sch.split(i, factors=[None, 4])
    diff = script_diff(before, sch.mod["main"].script())
    added = [line for line in diff.splitlines() if line.startswith("+")]
    removed = [line for line in diff.splitlines() if line.startswith("-")]
    assert any("T.grid(4, 4, 16, 16)" in line for line in added)
    assert any("T.grid(16, 16, 16)" in line for line in removed)
    assert not any("T.reads" in line for line in added + removed)  # unchanged lines are context only
    assert not any(line.startswith(("---", "+++")) for line in diff.splitlines())


def test_replay_reproduces_the_schedule_and_leaves_the_original_alone():
    original = exercise_kernel(32)
    before = original.script()
    sch = s_tir.Schedule(exercise_kernel(32))
    block = sch.get_sblock("matmul")
    i, j, _ = sch.get_loops(block)
    sch.split(j, factors=[None, 8])
    packed = sch.cache_read(block, "B", "global")
    sch.transform_layout(packed, ("write", 0), lambda kk, jj: (jj // 8, kk, jj % 8))
    sch.parallel(i)
    again = replay(original, trace_json(sch))
    tvm.ir.assert_structural_equal(again.mod, sch.mod)
    assert original.script() == before


def test_run_kernel_checks_the_output_before_timing():
    rng = np.random.default_rng(0)
    a, b = rng.random((16, 16), np.float32), rng.random((16, 16), np.float32)
    assert run_kernel(_matmul(), [a, b], (16, 16), expected=a @ b, number=1, repeat=1) > 0
    with pytest.raises(KernelMismatch, match="differs from the reference"):
        run_kernel(_matmul(), [a, b], (16, 16), expected=a @ b.T, number=1, repeat=1)


def test_derived_compute_roof_multiplies_its_figures():
    assert cpu_clock_ghz("cpu MHz\t\t: 2596.126\ncpu MHz\t\t: 3000.0\n") == (3.0, "/proc/cpuinfo")
    assert cpu_clock_ghz("nothing here") == (0.0, "unknown")
    roof = ComputeRoof(cores=2, ghz=2.5, fma_units=2, lanes=16, clock_source="test")
    assert roof.gflops == 2 * 2.5 * 2 * 16 * 2
    assert "assumed" in str(roof) and "320 GFLOP/s" in str(roof)
    assert derived_compute_roof(1, lanes=8).lanes == 8
    with pytest.raises(ValueError, match="threads must be >= 1"):
        derived_compute_roof(0)


def test_roofline_names_points_in_a_legend_and_draws_both_roofs():
    import matplotlib

    matplotlib.use("Agg")
    from mlc_lab.tuning import MachineModel
    from mlc_lab.viz.roofline import draw_roofline

    machine = MachineModel(peak_gflops=100.0, bandwidth_gbs=10.0, threads=2)
    points = [("step a", 85.0, 20.0), ("step b", 85.0, 40.0), ("fused", 0.33, 3.0)]
    fig = draw_roofline(machine, points, derived_peak_gflops=300.0)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[-3:] == ["1. step a", "2. step b", "3. fused"]
    assert "memory roof 10.0 GB/s, compute roof 100 GFLOP/s (measured)" in labels
    assert "compute roof 300 GFLOP/s (derived)" in labels
    assert not any(t.get_text() == "step a" for t in ax.texts)  # no long labels printed over each other


# -- the official checks refuse wrong answers with a useful message ------------------------------------------
def _fails(check: str, namespace: dict, message: str) -> None:
    with pytest.raises(AssertionError) as info:
        run_check(CHAPTER, check, namespace)
    assert message in str(info.value), str(info.value)


def _script_of(compute):
    def batch_matmul_script(batch, m, n, k):
        a = te.placeholder((batch, m, k), "float32", name="A")
        b = te.placeholder((batch, k, n), "float32", name="B")
        return te.create_prim_func([a, b, compute(a, b)]).script()

    return batch_matmul_script


def test_batch_matmul_check_refuses_a_transposed_product():
    def batch_matmul(a, b):  # sums over the wrong axis of B: A @ B.T, shapes right only when square
        r = te.reduce_axis((0, int(a.shape[2])), "r")
        shape = (a.shape[0], a.shape[1], b.shape[2])
        return te.compute(shape, lambda z, i, j: te.sum(a[z, i, r] * b[z, j % b.shape[1], r], axis=r), name="C")

    _fails("check_batch_matmul", {"batch_matmul": batch_matmul, "batch_matmul_script": _script_of(batch_matmul)},
           "C is not A @ B per batch")


def test_to_target_check_names_the_difference():
    def to_target(sch):  # everything but decompose_reduction
        block = sch.get_sblock("matmul")
        i, j, k = sch.get_loops(block)
        i0, i1 = sch.split(i, factors=[None, 4])
        j0, j1 = sch.split(j, factors=[None, 32])
        sch.reorder(i0, j0, k, i1, j1)
        sch.parallel(sch.fuse(i0, j0))
        sch.vectorize(j1)

    def to_target_script():
        sch = s_tir.Schedule(exercise_kernel(TARGET_SIZE))
        to_target(sch)
        return sch.mod.script()

    _fails("check_to_target", {"to_target": to_target, "to_target_script": to_target_script},
           "your module differs from the target")

    def exact_script():
        sch = s_tir.Schedule(exercise_kernel(TARGET_SIZE))
        target_schedule(sch)
        return sch.mod.script()

    def own_copy(sch):  # the package's own function would be refused as "not your own"
        target_schedule(sch)

    run_check(CHAPTER, "check_to_target", {"to_target": own_copy, "to_target_script": exact_script})


def test_fast_schedule_check_refuses_a_slow_schedule_and_says_why():
    def schedule_fast(sch):  # parallel rows only: scalar code, far below the register-tiled reference
        sch.parallel(sch.get_loops(sch.get_sblock("matmul"))[0])

    def fast_trace():
        sch = s_tir.Schedule(exercise_kernel(FAST_SIZE))
        schedule_fast(sch)
        return trace_json(sch)

    _fails("check_fast_schedule", {"schedule_fast": schedule_fast, "fast_trace": fast_trace}, "need >= 0.6x")


def test_fast_schedule_check_refuses_a_trace_of_another_kernel():
    def fast_trace():
        sch = s_tir.Schedule(exercise_kernel(64))
        i, _, _ = sch.get_loops(sch.get_sblock("matmul"))
        sch.split(i, factors=[2, 32])  # fits 64 rows, not 256
        return trace_json(sch)

    _fails("check_fast_schedule", {"schedule_fast": lambda sch: None, "fast_trace": fast_trace},
           "TVM refused a primitive of your trace")


def test_legality_check_refuses_wrong_verdicts():
    def everything_legal(script, block, primitive):
        base = s_tir.Schedule(tvm.script.from_source(script))
        loops = base.get_loops(base.get_sblock(block))
        names = [str(base.get(loop).loop_var.name) for loop in loops]
        return dict.fromkeys(names[1:] if primitive == "reorder" else names)

    _fails("check_legality", {"legality": everything_legal}, "TVM refuses parallel on k")


def test_legality_truth_matches_the_chapter():
    kernels = legality_kernels()
    script, block = kernels["matmul"]
    verdicts = legality_verdicts(script, block, "parallel")
    assert verdicts["i"] is None and verdicts["j"] is None and "data parallel" in verdicts["k"]
    script, block = kernels["matmul_with_write_back"]
    reorder = legality_verdicts(script, block, "reorder")
    assert reorder["j"] is None and reorder["k"] is not None
