"""Official checks for exercises/04_tensor_programs.md (tensor expressions and hand-written schedules).

The student's code runs in its own process and hands back text: TVMScript, or a schedule's trace as
JSON. Everything is judged here: the script is parsed, built and run against NumPy; the trace is
replayed on this process's own copy of the kernel (so TVM re-checks every primitive: what replays is a
legal transformation of the original), then run and timed next to a reference schedule in the same run,
so the speed bar holds on any CPU.
"""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.session import Grading, check

#: The kernels of exercises 2 and 3: fp32 matmuls as mlc_lab lowers them.
TARGET_SIZE = 128
FAST_SIZE = 256
#: Exercise 3 passes at this share of the reference schedule's GFLOP/s, measured in the same run.
FAST_SHARE = 0.6


# -- the kernels the exercise notebook works on (it imports these) ----------------------------------------------
def exercise_kernel(size: int):
    """The PrimFunc mlc_lab's code generator lowers a size^3 fp32 matmul to (block "matmul", loops i0, i1, k)."""
    from mlc_lab.codegen.tvm import lower_node
    from mlc_lab.tuning import matmul_task

    return lower_node(matmul_task(size, size, size).node).func.with_attr("global_symbol", "main")


def target_schedule(sch) -> None:
    """The transformation whose result exercise 2 shows as its target module."""
    block = sch.get_sblock("matmul")
    i, j, k = sch.get_loops(block)
    i0, i1 = sch.split(i, factors=[None, 4])
    j0, j1 = sch.split(j, factors=[None, 32])
    sch.reorder(i0, j0, k, i1, j1)
    sch.parallel(sch.fuse(i0, j0))
    sch.vectorize(j1)
    sch.decompose_reduction(block, k)


def target_module():
    """Exercise 2's target: the kernel after `target_schedule`."""
    from tvm import s_tir

    sch = s_tir.Schedule(exercise_kernel(TARGET_SIZE))
    target_schedule(sch)
    return sch.mod


def reference_schedule(sch) -> None:
    """Exercise 3's bar: the compiler's default register-tiled schedule for this CPU (the tuner's start point)."""
    from mlc_lab.codegen.tiling import analyze, apply_config, default_config, target_isa

    info = analyze(sch)
    apply_config(sch, default_config(info, target_isa()), info)


def legality_verdicts(script: str, block: str, primitive: str) -> dict[str, str | None]:
    """For each loop above `block`: None if TVM accepts `primitive` on it, else TVM's reason (exercise 4)."""
    import tvm
    from tvm import s_tir

    from mlc_lab.codegen.tvm.handwritten import refusal

    func = tvm.script.from_source(script)
    base = s_tir.Schedule(func)
    verdicts: dict[str, str | None] = {}
    for index, loop in enumerate(base.get_loops(base.get_sblock(block))):
        name = str(base.get(loop).loop_var.name)
        if primitive == "reorder" and index == 0:
            continue
        trial = base.copy()
        loops = trial.get_loops(trial.get_sblock(block))
        try:
            if primitive == "reorder":
                trial.reorder(loops[index], loops[0])
            else:
                getattr(trial, primitive)(loops[index])
            verdicts[name] = None
        except s_tir.ScheduleError as error:
            verdicts[name] = refusal(error)
    return verdicts


def legality_kernels() -> dict[str, tuple[str, str]]:
    """Name -> (TVMScript, block): a matmul, a row sum, and a matmul whose write-back sits under its j loop."""
    from tvm import s_tir, te

    n = 64
    a = te.placeholder((n, n), "float32", name="A")
    b = te.placeholder((n, n), "float32", name="B")
    k = te.reduce_axis((0, n), "k")
    c = te.compute((n, n), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    r = te.reduce_axis((0, n), "r")
    s = te.compute((n,), lambda i: te.sum(a[i, r], axis=r), name="S")
    matmul = te.create_prim_func([a, b, c])
    two = s_tir.Schedule(matmul)
    block = two.get_sblock("C")
    _, j, _ = two.get_loops(block)
    two.reverse_compute_at(two.cache_write(block, 0, "global"), j)
    return {
        "matmul": (matmul.script(), "C"),
        "row_sum": (te.create_prim_func([a, s]).script(), "S"),
        "matmul_with_write_back": (two.mod["main"].script(), "C"),
    }


# -- helpers ------------------------------------------------------------------------------------------------
def _parse(text, what: str):
    import tvm

    assert isinstance(text, str), f"{what} must return TVMScript text (a str), not {type(text).__name__}"
    try:
        parsed = tvm.script.from_source(text)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the student's script
        first = str(exc).strip().splitlines()
        reason = first[-1] if first else type(exc).__name__
        raise AssertionError(f"{what} returned text TVM cannot parse: {reason}") from None
    if isinstance(parsed, tvm.IRModule):
        functions = list(parsed.functions.values())
        assert len(functions) == 1, f"{what}: expected one PrimFunc, the module has {len(functions)}"
        parsed = functions[0]
    assert isinstance(parsed, tvm.tirx.PrimFunc), f"{what}: expected a PrimFunc, got {type(parsed).__name__}"
    return parsed


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


# -- the checks -------------------------------------------------------------------------------------------------
@check(points=2)
def check_batch_matmul(g: Grading) -> None:
    """batch_matmul(A, B) in TE: C[b, i, j] = sum_k A[b, i, k] * B[b, k, j]; built and run here against NumPy."""
    from mlc_lab.codegen.tvm.handwritten import run_kernel

    g.need("batch_matmul")
    script_of = g.need("batch_matmul_script")
    drawn = (int(g.rng.integers(2, 5)), *(int(d) for d in g.rng.integers(3, 17, size=3)))
    for batch, m, n, k in [(2, 8, 8, 8), (3, 5, 7, 11), drawn]:
        with g.case(f"batch_matmul_script({batch}, {m}, {n}, {k})") as case:
            func = _parse(script_of(batch, m, n, k), "batch_matmul_script")
            shapes = [tuple(int(d) for d in p.shape) for p in func.params]
            case.got = f"parameters of shapes {shapes}"
            want = [(batch, m, k), (batch, k, n), (batch, m, n)]
            assert shapes == want, f"the PrimFunc's parameters have shapes {shapes}, expected {want} (A, B, C)"
            a = g.rng.standard_normal((batch, m, k)).astype(np.float32)
            b = g.rng.standard_normal((batch, k, n)).astype(np.float32)
            try:
                run_kernel(func, [a, b], (batch, m, n), expected=np.matmul(a, b), rtol=1e-4, number=1, repeat=1)
            except AssertionError as exc:
                raise AssertionError(f"C is not A @ B per batch: {exc}") from None


@check(points=2)
def check_to_target(g: Grading) -> None:
    """to_target(sch) turns the 128^3 matmul into exercise 2's target module, structurally equal."""
    import tvm

    g.need("to_target")
    script_of = g.need("to_target_script")
    with g.case("to_target_script() against the target module (tvm.ir.assert_structural_equal)") as case:
        func = _parse(script_of(), "to_target_script")
        target = target_module()["main"]
        try:
            tvm.ir.assert_structural_equal(func.with_attr("global_symbol", "main"), target)
        except ValueError as exc:
            case.got = _first_line(exc)
            raise AssertionError(
                f"your module differs from the target: {_first_line(exc)} (print both and compare the loop nests)"
            ) from None


@check(
    points=3,
    forbids=(
        "mlc_lab.codegen.tiling.apply_config",
        "mlc_lab.codegen.tiling.default_config",
        "mlc_lab.codegen.tvm.schedule.default_schedule",
        "mlc_lab.codegen.tvm.schedule.schedule_register_tiled",
        "mlc_lab.tuning.space.apply_config",
        "mlc_lab.grading.checks.ch04_tensor_programs.reference_schedule",
    ),
)
def check_fast_schedule(g: Grading) -> None:
    """schedule_fast(sch): its trace replays on the 256^3 matmul here, computes A @ B, and reaches
    >= 60% of the reference schedule's GFLOP/s (the compiler's default for this CPU), timed side by side."""
    from tvm import s_tir

    from mlc_lab.bench import interleaved_medians
    from mlc_lab.codegen.tvm.handwritten import compile_kernel, refusal, replay, run_kernel

    g.need("schedule_fast")
    trace_of = g.need("fast_trace")
    size = FAST_SIZE
    with g.case(f"fast_trace() replayed on the {size}^3 matmul, timed against the reference schedule") as case:
        trace = trace_of()
        assert isinstance(trace, str), f"fast_trace must return the trace as JSON text, not {type(trace).__name__}"
        try:
            ours = replay(exercise_kernel(size), trace)
        except s_tir.ScheduleError as exc:
            raise AssertionError(f"TVM refused a primitive of your trace: {refusal(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - a trace that is not a trace of this kernel
            raise AssertionError(f"your trace does not replay on the {size}^3 matmul: {_first_line(exc)}") from None
        a = g.rng.standard_normal((size, size)).astype(np.float32)
        b = g.rng.standard_normal((size, size)).astype(np.float32)
        try:
            run_kernel(ours, [a, b], (size, size), expected=a @ b, rtol=1e-3, number=1, repeat=1)
        except AssertionError as exc:
            raise AssertionError(f"your scheduled kernel computes something else than A @ B: {exc}") from None
        reference = s_tir.Schedule(exercise_kernel(size))
        reference_schedule(reference)
        import tvm

        dev = tvm.cpu()
        args = [tvm.runtime.tensor(x, dev) for x in (a, b, np.zeros((size, size), np.float32))]
        kernels = {"yours": compile_kernel(ours)["main"], "reference": compile_kernel(reference)["main"]}
        share = 0.0
        for _ in range(2):  # a burst of load can hit one round: the better of two interleaved measurements
            medians = interleaved_medians({k: (lambda f=f: f(*args)) for k, f in kernels.items()}, rounds=7, calls=5)
            share = max(share, medians["reference"] / medians["yours"])
            if share >= FAST_SHARE:
                break
        flop = 2 * size**3
        yours, ref = flop / medians["yours"] / 1e9, flop / medians["reference"] / 1e9
        case.got = f"{share:.2f}x the reference ({yours:.1f} vs {ref:.1f} GFLOP/s)"
        case.expected = f">= {FAST_SHARE}x the reference"
        assert share >= FAST_SHARE, (
            f"your schedule reaches {share:.2f}x the reference schedule's speed ({yours:.1f} vs {ref:.1f} GFLOP/s, "
            f"same run); need >= {FAST_SHARE}x: tile for registers (split + reorder so a small output tile "
            "accumulates over k), cache_write it locally, vectorize the innermost spatial loop, parallelize the outer"
        )


@check(points=2, forbids=("mlc_lab.grading.checks.ch04_tensor_programs.legality_verdicts",))
def check_legality(g: Grading) -> None:
    """legality(script, block, primitive): per loop, None where TVM accepts the primitive, else TVM's reason."""
    fn = g.need("legality")
    kernels = legality_kernels()
    cases = [("matmul", "parallel"), ("matmul", "vectorize"), ("row_sum", "parallel"),
             ("matmul", "reorder"), ("matmul_with_write_back", "reorder")]
    for kernel, primitive in cases:
        script, block = kernels[kernel]
        want = legality_verdicts(script, block, primitive)
        with g.case(f"legality(<{kernel}>, {block!r}, {primitive!r})", expected=want) as case:
            got = fn(script, block, primitive)
            case.got = repr(got)
            assert isinstance(got, dict), (
                f"legality must return a dict loop name -> None or reason, not {type(got).__name__}"
            )
            assert set(got) == set(want), f"loops {sorted(got)}, expected the loops {sorted(want)}"
            wrong = [name for name in want if (got[name] is None) != (want[name] is None)]
            assert not wrong, (
                f"wrong verdict for loop(s) {wrong}: TVM "
                + ", ".join(f"{'accepts' if want[n] is None else 'refuses'} {primitive} on {n}" for n in wrong)
            )
            for name, reason in want.items():
                if reason is not None:
                    assert isinstance(got[name], str) and reason in got[name], (
                        f"loop {name}: give TVM's reason (the 'Error message:' line of its ScheduleError), "
                        f"got {got[name]!r}"
                    )
