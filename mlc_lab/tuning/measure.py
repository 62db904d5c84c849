"""One trial: lower with the config as schedule, build with TVM, check the output, time it.

Every outcome is a `TrialResult`: a failed schedule, build, run or a wrong answer keeps its reason
(`error`), so a tuning log shows what did not work and why, instead of silently dropping it.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlc_lab.codegen.tiling import ConfigSchedule
from mlc_lab.tuning.lowering import lower
from mlc_lab.tuning.space import Config, KernelInfo, analyze
from mlc_lab.tuning.task import Task


@dataclass
class TrialResult:
    """`cost` is seconds for measured trials (or a simulator's cycles); inf when `error` is set."""

    config: Config
    cost: float = float("inf")
    error: str | None = None
    build_s: float = 0.0
    measure_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


#: A cost function: config -> TrialResult. Measured seconds on the CPU, or simulated cycles.
CostFunction = Callable[[Config], TrialResult]


def kernel_info(task: Task) -> KernelInfo:
    """Analyse the kernel exactly as the compiler lowers it (the hook sees the unscheduled PrimFunc)."""
    found: list[KernelInfo] = []
    lower(task.node, lambda sch, node: found.append(analyze(sch)))
    return found[0]


def scheduled_func(task: Task, config: Config | None, info: KernelInfo | None = None):
    """The PrimFunc the compiler would build for `task` with `config` (None: the naive loops)."""
    return lower(task.node, None if config is None else ConfigSchedule(config, info))


def timed_trial(
    config: Config | None, build: Callable[[], Any], run: Callable[[Any], float], where: str = ""
) -> TrialResult:
    """`run(build())` as one trial, each step timed; an exception in either becomes the trial's reason
    ("build: ...", "run{where}: ..."), so one bad candidate never stops a tuner."""
    result = TrialResult(dict(config or {}))
    start = time.perf_counter()
    try:
        built = build()
    except Exception as e:  # a schedule primitive refused, or TVM/LLVM failed: keep the reason
        result.error = f"build: {type(e).__name__}: {error_line(e)}"
        result.build_s = time.perf_counter() - start
        return result
    result.build_s = time.perf_counter() - start
    start = time.perf_counter()
    try:
        result.cost = run(built)
    except Exception as e:  # a wrong answer, a runtime failure, a lost connection
        result.error = f"run{where}: {type(e).__name__}: {error_line(e)}"
    result.measure_s = time.perf_counter() - start
    return result


#: How a kernel is timed: "wall" (TVM's time_evaluator) or "cpu" (the calling thread's CPU clock).
CLOCKS = ("wall", "cpu")


def default_clock() -> str:
    """The thread's CPU clock ("cpu") when TVM runs kernels on the calling thread alone (TVM_NUM_THREADS=1),
    else the wall clock ("wall").

    On a shared machine the wall clock counts the time other processes hold the core: at a load of 9 on
    2 cores (znver4, 1 thread) a tuner timing 3x3 convs by wall clock kept configs 1.2-1.4x slower than
    the default schedule it started from, because they happened to be timed in quieter moments. The
    thread's CPU clock leaves that time out. With more threads the work runs on TVM's pool threads,
    which that clock does not see, so only the wall clock is right."""
    return "cpu" if os.environ.get("TVM_NUM_THREADS") == "1" else "wall"


def kernel_seconds(
    module, args: list, repeat: int, min_repeat_ms: int, clock: str = "wall", func_name: str = "main"
) -> list[float]:
    """Seconds per call of `module[func_name](*args)`, one number per repeat (each repeat at least
    `min_repeat_ms` long), on the wall clock (TVM's time_evaluator) or the calling thread's CPU clock."""
    if clock not in CLOCKS:
        raise ValueError(f"clock {clock!r}: expected one of {', '.join(CLOCKS)}")
    if clock == "wall":
        import tvm

        timer = module.time_evaluator(func_name, tvm.cpu(), number=1, repeat=repeat, min_repeat_ms=min_repeat_ms)
        return [float(x) for x in timer(*args).results]
    fn = module[func_name]
    fn(*args)  # warm-up, as time_evaluator does
    out = []
    for _ in range(repeat):
        calls, start = 0, time.thread_time()
        while True:
            fn(*args)
            calls += 1
            elapsed = time.thread_time() - start
            if elapsed * 1e3 >= min_repeat_ms:
                break
        out.append(elapsed / calls)
    return out


class MeasuredCost:
    """Build and time each config on this CPU (in-process: no worker pool, no 50 s imports).

    The cost is the fastest of `repeat` timings (each at least `min_repeat_ms` long): on a shared
    machine other processes only ever add time, so the minimum is the steadiest estimate. `clock`
    (`default_clock()`: the thread's CPU clock when TVM runs on 1 thread) is how each is timed.

    The first call computes the reference output with the interpreter; a config whose output
    differs (rtol/atol) is a failed trial with the reason "wrong result".
    """

    def __init__(
        self,
        task: Task,
        target=None,
        repeat: int = 5,
        min_repeat_ms: int = 20,
        rtol: float = 1e-3,
        clock: str | None = None,
    ):
        from mlc_lab.codegen.tvm.build import host_target

        self.clock = clock or default_clock()
        if self.clock not in CLOCKS:
            raise ValueError(f"clock {self.clock!r}: expected one of {', '.join(CLOCKS)}")
        self.task = task
        self.target = target or host_target()
        self.repeat, self.min_repeat_ms, self.rtol = repeat, min_repeat_ms, rtol
        self.info = kernel_info(task)
        self.inputs = task.random_inputs()
        self.expected = task.reference(self.inputs)
        self.atol = rtol * float(np.abs(self.expected).max() or 1.0)

    def __call__(self, config: Config | None) -> TrialResult:
        return self.measure_hook(None if config is None else ConfigSchedule(config, self.info), config)

    def measure_hook(self, hook, config: Config | None = None) -> TrialResult:
        """Build, check and time the kernel under any schedule hook `(sch, node)` (the default schedule, say)."""
        import tvm

        from mlc_lab.codegen.tvm.prepack import prepacked_kernel

        def build():
            func, constants = lower(self.task.node, hook)
            # as the model runs it: constant weights packed once, before timing (their packing is
            # checked too: the output below is computed from the packed arrays)
            weights = [x.op == "constant" for x in self.task.node.inputs] + [True] * len(constants)
            func, arrays = prepacked_kernel(func, [*self.inputs, *constants], weights)
            return tvm.compile(tvm.IRModule({"main": func}), target=self.target), arrays

        return timed_trial(config, build, lambda built: self._run(*built))

    def _run(self, executable, arrays) -> float:
        import tvm

        dev = tvm.cpu()
        args = [tvm.runtime.tensor(a, dev) for a in arrays]
        out = tvm.runtime.tensor(np.zeros(self.expected.shape, self.expected.dtype), dev)
        executable["main"](*args, out)
        if not np.allclose(out.numpy(), self.expected, rtol=self.rtol, atol=self.atol):
            err = float(np.abs(out.numpy() - self.expected).max())
            raise WrongResult(f"wrong result: max abs error {err:.3g}")
        seconds = kernel_seconds(executable.mod, [*args, out], self.repeat, self.min_repeat_ms, self.clock)
        return float(min(seconds))  # min: interference from other processes only adds time


class WrongResult(AssertionError):
    pass


def error_line(e: BaseException) -> str:
    """The message of a (TVM) exception in one line, for a log record or a warning."""
    text = str(e).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # TVM errors end with the message after a traceback; keep the last meaningful line
    return (lines[-1] if lines else traceback.format_exception_only(type(e), e)[-1]).strip()[:300]


def schedule_script(task: Task, config: Config | None) -> str:
    """The kernel under `config` as TVMScript: what the chapter prints to show a tuned schedule."""
    func, _ = scheduled_func(task, config)
    return func.script()
