"""The same task tuned by TVM's MetaSchedule, for comparison on the same axes as our tuner.

MetaSchedule's default LocalBuilder builds in worker processes whose first step imports
`tvm.s_tir.tensor_intrin` (~50 s in this wheel), past its 30 s build timeout: every candidate
fails. So the bridge builds and measures in this process: `InProcessBuilder` keeps each compiled
module in a dict (the "artifact path" is a fresh temporary directory, because MetaSchedule's
cleanup deletes the artifact's parent) and `InProcessRunner` times it with the same settings and clock
our tuner uses (`measure.kernel_seconds`), logging (trial, wall time, fastest repeat) for the curves.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from mlc_lab.tuning.lowering import lower
from mlc_lab.tuning.measure import TrialResult, default_clock, kernel_seconds
from mlc_lab.tuning.task import Task
from mlc_lab.tuning.tuner import TuneResult


@dataclass
class _Measurement:
    seconds: float
    wall_s: float
    error: str | None = None


def _classes():
    """Define the PyBuilder/PyRunner subclasses lazily: importing MetaSchedule takes seconds."""
    import tvm
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.runner.utils import alloc_argument_common

    modules: dict[str, object] = {}

    @derived_object
    class InProcessBuilder(ms.builder.PyBuilder):
        def build(self, build_inputs):
            results = []
            for item in build_inputs:
                try:
                    module = tvm.tirx.build(item.mod, target=item.target)
                except Exception as e:  # reported to MetaSchedule, which skips the candidate
                    results.append(ms.builder.BuilderResult(None, f"{type(e).__name__}: {e}"))
                    continue
                path = os.path.join(tempfile.mkdtemp(prefix="mlc_ms_"), "module")
                modules[path] = module
                results.append(ms.builder.BuilderResult(path, None))
            return results

    @derived_object
    class DoneFuture(ms.runner.PyRunnerFuture):
        def __init__(self, result) -> None:
            super().__init__()
            self._result = result

        def done(self) -> bool:
            return True

        def result(self):
            return self._result

    @derived_object
    class InProcessRunner(ms.runner.PyRunner):
        def __init__(self, config, log: list[_Measurement], start: float) -> None:
            super().__init__()
            self.config, self.log, self.start = config, log, start
            self.clock = default_clock()

        def run(self, runner_inputs):
            futures = []
            device = tvm.cpu()
            fill = tvm.get_global_func("tvm.contrib.random.random_fill_for_measure", allow_missing=True)
            for item in runner_inputs:
                try:
                    module = modules.pop(item.artifact_path)
                    info = [a.as_json() for a in item.args_info]
                    args = alloc_argument_common(fill or _numpy_fill, device, info, 1)
                    secs = [
                        t
                        for one in args
                        for t in kernel_seconds(
                            module, one, self.config.repeat, self.config.min_repeat_ms, self.clock, module.entry_name
                        )
                    ]
                    result = ms.runner.RunnerResult(secs, None)
                    self.log.append(_Measurement(float(min(secs)), time.perf_counter() - self.start))
                except Exception as e:
                    result = ms.runner.RunnerResult(None, f"{type(e).__name__}: {e}")
                    self.log.append(_Measurement(float("inf"), time.perf_counter() - self.start, str(e)[:200]))
                futures.append(DoneFuture(result))
            return futures

    return InProcessBuilder, InProcessRunner


def light_tensor_intrin() -> None:
    """Make `import tvm.s_tir.tensor_intrin` load only the x86 intrinsics (~1 s instead of 50-150 s).

    MetaSchedule's TuneContext imports that package, which parses every CUDA/ROCm/Hexagon/ARM
    intrinsic; a CPU search needs at most the x86 ones. The package's real folder stays its path, so
    any submodule still imports on demand. A no-op once the package is loaded (either way).
    """
    import importlib
    import importlib.util
    import sys
    import types

    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return
    package = types.ModuleType(name, "TVM's tensor intrinsics, x86 only (see mlc_lab.tuning.metaschedule)")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    sys.modules[name] = package
    importlib.import_module(f"{name}.x86")


def plain_text_tables() -> None:
    """MetaSchedule prints its progress table through pandas when it finds a Jupyter kernel, and pandas is
    not installed: tell it there is no kernel, so the table prints as text (in a notebook too)."""
    import tvm_ffi

    tvm_ffi.register_global_func("s_tir.meta_schedule.using_ipython", lambda: False, override=True)


def _numpy_fill(tensor) -> None:
    tensor.copyfrom(np.random.default_rng(0).standard_normal(tensor.shape).astype(tensor.dtype))


@dataclass
class MetaScheduleResult:
    """MetaSchedule's run as a `TuneResult` (same curves), plus its best PrimFunc."""

    result: TuneResult
    best_func: object | None
    verified: bool
    trace: str | None = None  #: the best schedule as the primitives MetaSchedule applied (Python text)


def tune_metaschedule(
    task: Task,
    trials: int = 64,
    *,
    target=None,
    work_dir: str | None = None,
    trials_per_iter: int = 16,
    seed: int = 0,
    repeat: int = 5,
    min_repeat_ms: int = 20,
    verbose: bool = False,
    strategy: str = "evolutionary",
) -> MetaScheduleResult:
    """Tune the kernel `task` compiles to with MetaSchedule (evolutionary search + XGBoost model).

    `strategy="replay-trace"` samples the design space without the evolutionary search's population
    of thousands of candidates: a few trials in seconds (a live demo), not a real search."""
    import logging

    import tvm
    from tvm.s_tir import meta_schedule as ms

    from mlc_lab.codegen.tvm.build import host_target

    if not verbose:  # MetaSchedule sizes its console handler from this logger's level
        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    target = target or host_target()
    light_tensor_intrin()
    plain_text_tables()
    func, constants = lower(task.node, None)
    mod = tvm.IRModule({"main": func.with_attr("global_symbol", "main")})
    log: list[_Measurement] = []
    builder_cls, runner_cls = _classes()
    config = ms.runner.EvaluatorConfig(number=1, repeat=repeat, min_repeat_ms=min_repeat_ms)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        database = ms.tune_tir(
            mod,
            target,
            work_dir or tmp,
            max_trials_global=trials,
            num_trials_per_iter=trials_per_iter,
            builder=builder_cls(),
            runner=runner_cls(config, log, start),
            cost_model="xgb",
            strategy=strategy,
            seed=seed,
        )
        sch = ms.tir_integration.compile_tir(database, mod, target)
    wall = time.perf_counter() - start
    result = TuneResult(task.key + "#metaschedule", flops=task.flops, tuning_wall_s=wall)
    for k, m in enumerate(log):
        result.trials.append(TrialResult({"metaschedule_trial": k}, m.seconds, m.error))
        result.wall.append(m.wall_s)
    best = None if sch is None else sch.mod["main"]
    verified = best is not None and _verify(task, best, constants, target)
    return MetaScheduleResult(result, best, verified, None if sch is None else str(sch.trace))


def _verify(task: Task, func, constants, target) -> bool:
    import tvm

    inputs = task.random_inputs()
    expected = task.reference(inputs)
    executable = tvm.compile(tvm.IRModule({"main": func}), target=target)
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros(expected.shape, expected.dtype), dev)
    executable["main"](*[tvm.runtime.tensor(a, dev) for a in [*inputs, *constants]], out)
    scale = float(np.abs(expected).max() or 1.0)
    return bool(np.allclose(out.numpy(), expected, rtol=1e-3, atol=1e-3 * scale))
