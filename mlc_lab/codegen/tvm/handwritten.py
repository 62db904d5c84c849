"""Tools for writing and judging a TensorIR schedule by hand (the chapter "Tensor programs" and its checks).

A hand-written schedule is judged the way the compiler judges its own: build it for this CPU, check
its output against a reference, time it. What a schedule did is shown as a diff of TVMScript, and
what TVM refused as the one line of its `ScheduleError` that says why (the rest is the IR it printed).
A schedule's trace (`sch.trace`, as JSON) replays on the original PrimFunc, so a grader can redo a
student's primitives in its own process: the result is then a legal transformation by construction.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import tvm
from tvm import s_tir

from mlc_lab.errors import MlcLabError


class KernelMismatch(MlcLabError, AssertionError):
    """A scheduled kernel computed something else than its reference."""


def as_module(kernel: s_tir.Schedule | tvm.IRModule | tvm.tirx.PrimFunc) -> tvm.IRModule:
    """The IRModule with one function named `main` (what `tvm.compile` and the timer expect)."""
    if isinstance(kernel, s_tir.Schedule):
        return kernel.mod
    if isinstance(kernel, tvm.tirx.PrimFunc):
        return tvm.IRModule({"main": kernel.with_attr("global_symbol", "main")})
    return kernel


def compile_kernel(kernel, target=None) -> tvm.runtime.Module:
    """Build a PrimFunc/Schedule/IRModule for this CPU (the compiler's host target: `mcpu` set)."""
    from mlc_lab.codegen.tvm.build import host_target

    return tvm.compile(as_module(kernel), target=target or host_target())


def run_kernel(
    kernel, inputs: Sequence[np.ndarray], out_shape: Sequence[int], *, expected: np.ndarray | None = None,
    rtol: float = 1e-4, number: int = 3, repeat: int = 3, min_repeat_ms: int = 20,
) -> float:
    """Seconds per call of `kernel(*inputs, out)`, after checking `out` against `expected`.

    The fastest of `repeat` runs, each of `number` calls or more (at least `min_repeat_ms` long): on a
    shared machine the minimum of runs long enough to average over scheduler noise is the most stable.
    """
    built = compile_kernel(kernel)
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(np.ascontiguousarray(x), dev) for x in inputs]
    out = tvm.runtime.tensor(np.zeros(tuple(out_shape), inputs[0].dtype), dev)
    built["main"](*args, out)
    if expected is not None:
        got = out.numpy()
        scale = float(np.abs(expected).max() or 1.0)
        if not np.allclose(got, expected, rtol=rtol, atol=rtol * scale):
            worst = float(np.abs(got - expected).max())
            raise KernelMismatch(f"kernel output differs from the reference by up to {worst:.3g} (scale {scale:.3g})")
    timer = built.mod.time_evaluator("main", dev, number=number, repeat=repeat, min_repeat_ms=min_repeat_ms)
    return float(min(timer(*args, out).results))


def script_diff(before: str, after: str, context: int = 1) -> str:
    """The lines of TVMScript a schedule primitive changed (unified diff, headers dropped)."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=context)
    return "\n".join(line for line in lines if not line.startswith(("---", "+++")))


def body_script(kernel) -> str:
    """A kernel's TVMScript without the import comments TVM prints first."""
    text = as_module(kernel)["main"].script()
    return "\n".join(line for line in text.splitlines() if not line.startswith("# from"))


def refusal(error: BaseException) -> str:
    """The line of a `ScheduleError` that says why TVM refused a primitive (its message is mostly IR)."""
    lines = str(error).splitlines()
    reason = [line for line in lines if line.startswith("Error message:")]
    if reason:
        return reason[-1].removeprefix("Error message:").strip()
    return lines[0] if lines else type(error).__name__


def trace_json(sch: s_tir.Schedule) -> str:
    """The primitives applied to `sch`, as JSON text that `replay` can apply to the original again."""
    return str(tvm.ir.save_json(sch.trace.as_json()))


def replay(func: tvm.tirx.PrimFunc | tvm.IRModule, trace: str) -> s_tir.Schedule:
    """Apply a schedule's trace (from `trace_json`) to a copy of `func`: TVM re-checks every primitive.

    The copy matters: replaying onto the caller's PrimFunc itself was seen to rewrite it in place.
    """
    sch = s_tir.Schedule(tvm.ir.load_json(tvm.ir.save_json(as_module(func))))
    s_tir.schedule.Trace.apply_json_to_schedule(tvm.ir.load_json(trace), sch)
    return sch
