"""`mlc_lab.compile`: the one entry point. A model in, a callable out, in the caller's own tensor type.

    fast = mlc_lab.compile(model, example_inputs, backend="tvm")
    y = fast(x)                    # torch tensor in -> torch tensor out; NumPy in -> NumPy out

Three steps, each a part of the package you can also call by hand:

1. import (`import_model`, in `mlc_lab.frontends.auto`): a torch.nn.Module, an mlc_lab Graph, a Keras
   model / tf.function, or an ONNX file/ModelProto becomes one verified Graph (every backend consumes the same IR);
2. optimise (`resolve_passes`, in `mlc_lab.passes.presets`): a list of passes, or a named preset ("default", "none");
3. build (`BACKENDS[name](graph, **options)`): a function NumPy arrays -> list of NumPy arrays.

The returned `CompiledModel` converts the caller's tensors to NumPy, checks them against the graph
(naming the input that does not fit), runs, and converts the results back.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlc_lab._deps import require
from mlc_lab.frontends.auto import import_model
from mlc_lab.ir.graph import Graph
from mlc_lab.ir.interpreter import InterpreterError, check_inputs, fresh_outputs, interpret
from mlc_lab.ir.memory import check_graph_fits
from mlc_lab.passes import Pass, PassManager
from mlc_lab.passes.presets import DEFAULT_CONV_LAYOUT, PASS_PRESETS, resolve_passes

__all__ = [
    "BACKENDS",
    "DEFAULT_CONV_LAYOUT",
    "PASS_PRESETS",
    "CompiledModel",
    "compile",
    "import_model",
    "register_backend",
    "resolve_passes",
]

Runner = Callable[..., list[np.ndarray]]
BackendFn = Callable[..., Runner]


# == backends: name -> build(graph, **options) -> NumPy-callable ===================================
def _interpreter(graph: Graph) -> Runner:
    """The reference: NumPy, one op at a time. Slow, obviously right; no state shared between calls."""
    return lambda *arrays: interpret(graph, *arrays)


def _tvm(
    graph: Graph,
    tuning_db: str | os.PathLike | None = None,
    probe: bool | None = None,
    tuned_now: Sequence[str] = (),
    **options: Any,
) -> Runner:
    """TensorIR kernels per node/group, compiled by TVM. Schedules: `schedule=` if given, else the tuning
    database's, else the best this machine knows (`mlc_lab.tuning.sources`: cache, shipped, transferred)."""
    require("tvm", "backend 'tvm'")
    from mlc_lab.codegen.tvm import build

    if _gpu_target(options.get("target")):
        return _tvm_gpu(graph, tuning_db, **options)
    if tuning_db is not None:
        options["schedule"] = _schedule_from_db(tuning_db)
    elif "schedule" not in options:
        options["schedule"] = _schedule_sources(probe, tuned_now, options.get("target", "llvm"))
    runner = TVMRunner(build(graph, **options))
    runner.schedules = options["schedule"]  # where each kernel's schedule came from (`.sources`), if it says
    return runner


def _gpu_target(target: Any) -> bool:
    """A CUDA/NVPTX target ("cuda", "cuda:H100", "nvptx", a dict or tvm Target of that kind)."""
    if target is None or (isinstance(target, str) and target == "llvm"):
        return False
    from mlc_lab.codegen.tvm.gpu.target import is_gpu_target

    return is_gpu_target(target)


def _tvm_gpu(graph: Graph, tuning_db: Any = None, **options: Any) -> Runner:
    """TVM for a CUDA GPU (`mlc_lab.codegen.tvm.gpu`): builds anywhere; runs where a CUDA GPU is."""
    if tuning_db is not None or "schedule" in options:
        raise ValueError("tuning_db= and schedule= are CPU schedules; a GPU target uses the GPU schedules")
    from mlc_lab.codegen.tvm.gpu import build_gpu

    return build_gpu(graph, **options)  # a GPUCompiledGraph: calling it without a GPU raises NoGPUError


def _schedule_sources(probe: bool | None, tuned_now: Sequence[str], target: Any) -> Any:
    """The default hook: user cache, shipped logs, transfers from similar CPUs, then default schedules."""
    from mlc_lab.tuning.sources import schedule_sources

    key = ""
    if not (isinstance(target, str) and target == "llvm"):  # another CPU than this one: keyed by its mcpu
        from mlc_lab.codegen.tvm.build import resolve_target
        from mlc_lab.tuning.task import target_signature

        key = target_signature(resolve_target(target))
    return schedule_sources(probe=probe, tuned_now=tuned_now, target=key)


class TVMRunner:
    """A TVM CompiledGraph behind a lean call path: at batch 1 the kernels take microseconds, so copies count.

    Inputs are copied into buffers allocated once (not a new TVM tensor per call), and outputs are handed
    over without a copy (DLPack) where they are the call's own allocations. Measured on the MLP: 41 ->
    ~20 us per call around a 10 us VM run.

    Threads: a call holds the CompiledGraph's lock (the VM and the input buffers are shared), so calls
    from several threads run one at a time. Chosen over per-thread VMs and buffers because kernels already
    use every core inside a call and a VM per thread would load the weights once per thread. Cost, with
    the alias checks below: zoo MLP via `run_numpy`, old and new call paths timed interleaved (15 rounds
    of 2,000 calls, one thread): median 33.1 -> 34.4 us per call; the uncontended lock is ~0.2 us of that.
    Aliasing: the VM returns an output that is an input, or a reshape-like view of one (TVM turns such
    kernels into views), as the input buffer the next call overwrites; a constant output as the constant
    itself; one value returned twice as one tensor. Those outputs, and only those, are copied.
    """

    def __init__(self, compiled: Any) -> None:
        import tvm

        self.compiled = compiled  #: the CompiledGraph (module, kernels, .time())
        self._main = compiled.vm["main"]
        self._constant_outputs = compiled.constant_outputs()
        if not all(x.type.is_static for x in compiled.graph.inputs):
            self._buffers = None  # symbolic input shapes (SymDim): no buffer can be allocated once
            return
        self._buffers = [tvm.runtime.empty(x.type.shape, x.type.dtype, compiled.device) for x in compiled.graph.inputs]
        self._buffer_arrays = [np.from_dlpack(b) for b in self._buffers]  # the same memory, to compare with

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if self._buffers is None:  # symbolic input shapes: tensors of this call's sizes, outputs copied
            import tvm

            device = self.compiled.device
            with self.compiled.lock:
                return [t.numpy() for t in self._main(*(tvm.runtime.tensor(np.require(a, requirements="C"), device)
                                                        for a in arrays))]  # fmt: skip
        with self.compiled.lock:
            for buffer, array in zip(self._buffers, arrays):
                buffer.copyfrom(np.require(array, requirements="C"))
            outputs = [np.from_dlpack(t) for t in self._main(*self._buffers)]
            for i in self._constant_outputs:
                outputs[i] = outputs[i].copy()
            return fresh_outputs(outputs, self._buffer_arrays)


def _schedule_from_db(db_path: str | os.PathLike) -> Any:
    """The auto-tuner's schedule hook; imported lazily so that TVM without a tuner still works."""
    try:
        from mlc_lab.tuning import schedule_from_db
    except ImportError:
        raise RuntimeError(
            f"tuning_db={str(db_path)!r} was given, but this mlc_lab has no auto-tuner "
            "(mlc_lab.tuning.schedule_from_db is missing); drop tuning_db to use the default schedules"
        ) from None
    return schedule_from_db(db_path)


def _mlir(graph: Graph, **options: Any) -> Runner:
    """linalg-on-tensors MLIR, compiled by IREE for this CPU."""
    require("mlir", "backend 'mlir'")
    from mlc_lab.codegen.mlir import build

    return build(graph, **options)


class SimulatedRunner:
    """Runs an accelerator model: real outputs (NumPy), plus a report of simulated cycles and time.

    `last_report` holds the report of the calling thread's most recent call (None before its first):
    simulated time is not wall time, so it is kept apart from what a stopwatch around the call measures,
    and per thread, so that concurrent calls never see each other's. The wafer and dataflow models
    return the program's own report (the same object every call): treat reports as read-only.
    Outputs are computed in NumPy, whose views (a reshape, an identity) could be the caller's input or
    a weight: those are copied.
    """

    def __init__(self, backend: Any, graph: Graph) -> None:
        self.backend = backend
        self.program = backend.compile(graph)
        self._constants = [n.value for n in getattr(self.program, "graph", graph).constants]
        self._reports = threading.local()

    @property
    def last_report(self) -> Any:
        return getattr(self._reports, "last", None)

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        outputs, self._reports.last = self.backend.execute(self.program, list(arrays))
        return fresh_outputs(outputs, [*arrays, *self._constants])


def _simulator(cls_path: str) -> BackendFn:
    def build(graph: Graph, **options: Any) -> Runner:
        from mlc_lab.backends import custom

        return SimulatedRunner(getattr(custom, cls_path)(**options), graph)

    build.__doc__ = f"mlc_lab.backends.custom.{cls_path}: simulated cycles, outputs computed in NumPy."
    return build


BACKENDS: dict[str, BackendFn] = {
    "interpreter": _interpreter,
    "tvm": _tvm,
    "mlir": _mlir,
    "systolic": _simulator("SystolicArrayBackend"),
    "cerebras": _simulator("CerebrasLikeBackend"),
    "dataflow": _simulator("DataflowBackend"),
}


def register_backend(name: str, build: BackendFn) -> None:
    """Add a backend: `build(graph, **options)` returns a function NumPy arrays -> list of NumPy arrays.

    CompiledModel copies outputs that alias its inputs or each other; the function must itself be safe to
    call from several threads (or take a lock) and must not hand out memory it reuses (weights, buffers).
    """
    BACKENDS[name] = build


# == tensors in and out ============================================================================
def _framework(value: Any) -> str:
    root = type(value).__module__.split(".")[0]
    return {"torch": "torch", "tensorflow": "tensorflow"}.get(root, "numpy")


def _to_numpy(value: Any) -> np.ndarray:
    kind = _framework(value)
    if kind == "torch":
        return value.detach().cpu().numpy()
    if kind == "tensorflow":
        return value.numpy()
    return np.asarray(value)


def _from_numpy(array: np.ndarray, kind: str) -> Any:
    if kind == "torch":
        import torch

        # np.require, not np.ascontiguousarray: the latter turns a 0-d array into a 1-d one
        return torch.from_numpy(np.require(array, requirements="C"))
    if kind == "tensorflow":
        import tensorflow as tf

        return tf.convert_to_tensor(array)
    return array


def _write_back(target: Any, value: np.ndarray, what: str) -> None:
    """Copy a mutated input's new value into the caller's tensor (torch or a writeable NumPy array)."""
    kind = _framework(target)
    if kind == "torch":
        import torch

        with torch.no_grad():
            target.copy_(torch.from_numpy(np.require(value, requirements="C")))
    elif isinstance(target, np.ndarray) and target.flags.writeable:
        np.copyto(target, value)
    else:
        raise ValueError(
            f"the model mutates {what} in place, but a {type(target).__name__} cannot be updated: pass a torch "
            "tensor or a writeable NumPy array"
        )


class CompiledModel:
    """A compiled model: call it like the original. Outputs come back in the type of the first input.

    One output comes back as one tensor, several as a tuple, as the model's own forward would.
    Safe to call from several threads, on every built-in backend (TVM and MLIR serialise calls with a
    lock, the NumPy backends share no state), and every call returns fresh arrays: an output never
    shares memory with an input, a weight or another output, so mutating it changes nothing else.
    """

    def __init__(
        self,
        graph: Graph,
        optimized: Graph,
        backend: str,
        runner: Runner,
        compile_seconds: float,
        check_finite: bool = False,
    ) -> None:
        self.graph = graph  #: the imported graph
        self.optimized = optimized  #: after the passes: what the backend compiled
        self.backend = backend
        self.runner = runner  #: NumPy arrays -> list of NumPy arrays
        self.compile_seconds = compile_seconds
        self.check_finite = check_finite  #: refuse NaN/Inf inputs instead of propagating them

    @property
    def schedule_sources(self) -> dict[str, Any]:
        """TVM: tunable kernel (node name) -> where its schedule came from (`mlc_lab.tuning.sources.KernelSource`:
        kind "tuned now", "exact", "transferred" or "default"); empty on other backends."""
        return dict(getattr(getattr(self.runner, "schedules", None), "sources", None) or {})

    def schedule_coverage(self) -> dict[str, int]:
        """How many tunable kernels got each kind of schedule source."""
        from collections import Counter

        from mlc_lab.tuning.sources import SOURCE_KINDS

        counts = Counter(s.kind for s in self.schedule_sources.values())
        return {kind: counts[kind] for kind in SOURCE_KINDS}

    @property
    def cuda_source(self) -> str:
        """TVM on a GPU target: the CUDA C of every kernel (generated without a GPU)."""
        return self._gpu_code().cuda_source

    @property
    def ptx(self) -> str:
        """TVM on a GPU target: the PTX of every kernel (LLVM's NVPTX backend; no GPU needed)."""
        return self._gpu_code().ptx

    def _gpu_code(self) -> Any:
        if not hasattr(self.runner, "cuda_source"):
            raise AttributeError(f"this {self.backend} model was compiled for the CPU: no GPU code (use target='cuda')")
        return self.runner  # the GPUCompiledGraph: also .predict(gpu), .kernel_facts(), .registers

    @property
    def report(self) -> Any:
        """The simulated backends' report of this thread's last call (cycles, simulated time); None elsewhere."""
        return getattr(self.runner, "last_report", None)

    def run_numpy(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """The backend on NumPy arrays, after checking count, shapes and dtypes against the graph."""
        try:
            checked = check_inputs(self.optimized, arrays)
        except InterpreterError as e:
            raise ValueError(f"{type(self).__name__} ({self.backend}): {e}") from None
        if self.check_finite:
            for node, array in zip(self.optimized.inputs, checked):
                bad = int(array.size - np.isfinite(array).sum()) if array.dtype.kind == "f" else 0
                if bad:
                    raise ValueError(
                        f"{type(self).__name__} ({self.backend}): input %{node.name} has {bad} NaN/Inf values"
                    )
        # Built-in runners already return fresh arrays; this keeps the promise for registered ones too.
        return fresh_outputs(self.runner(*checked), checked)

    def __call__(self, *inputs: Any) -> Any:
        """Run on the caller's tensors; results come back arranged as the model returned them.

        The arrangement is the one the frontend recorded (`Graph.output_structure`: a dict, namedtuple,
        nested tuples); without one, one output is a tensor and several a tuple. An input the model
        mutates in place (`x.add_(1)`) is updated in the caller's tensor, as PyTorch would.
        """
        kind = _framework(inputs[0]) if inputs else "numpy"
        results = self.run_numpy(*(_to_numpy(x) for x in inputs))
        mutations = self.graph.input_mutations
        for out_index, in_index in mutations.items():
            _write_back(inputs[in_index], results[out_index], f"input {in_index} (%{self.graph.inputs[in_index].name})")
        outputs = [_from_numpy(o, kind) for i, o in enumerate(results) if i not in mutations]
        structure = self.graph.output_structure
        if structure is not None:
            return structure.unflatten(outputs)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def __repr__(self) -> str:
        sources = self.schedule_sources
        shown = ", ".join(f"{n} {kind}" for kind, n in self.schedule_coverage().items() if n) if sources else ""
        return (
            f"<CompiledModel {self.graph.name!r} on {self.backend}: {len(self.optimized.ops)} ops after passes, "
            f"compiled in {self.compile_seconds:.2f} s{f'; schedules: {shown}' if shown else ''}>"
        )


def _tuning_budget(tune: str | float | None, backend: str, tuning_db: Any) -> float | None:
    """Seconds of `compile(tune=...)`, checked before anything is imported or built."""
    if tune is None:
        return None
    if backend != "tvm":
        raise ValueError(f"tune= applies to the tvm backend only, not {backend!r}")
    if tuning_db is not None:
        raise ValueError("tune= tunes into the user's tuning cache; give tune= or tuning_db=, not both")
    from mlc_lab.tuning.budget import parse_budget

    return parse_budget(tune)


def compile(  # noqa: A001 - named like torch.compile on purpose
    model: Any,
    example_inputs: Any = None,
    backend: str = "tvm",
    passes: str | Sequence[Pass] | None = "default",
    tuning_db: str | os.PathLike | None = None,
    check_finite: bool = False,
    input_shapes: dict[str, Sequence[int]] | None = None,
    tune: str | float | None = None,
    **options: Any,
) -> CompiledModel:
    """Import `model`, run `passes`, build it for `backend`; returns a callable in the model's tensor type.

    backend: one of `BACKENDS` ("tvm", "mlir", "interpreter", "systolic", "cerebras", "dataflow").
    passes: "default" (chosen per backend, see `mlc_lab.passes.presets.default_passes`), "int8" (the default plus
        per-channel int8 weight quantization, `QuantizeWeights`), "none", or a list of passes.
    tuning_db: the auto-tuner's database (TVM only). Without it, TVM kernels get the best schedules this
        machine knows (`mlc_lab.tuning.sources`; `compiled.schedule_sources` says which, per kernel).
    tune: a time budget ("90s", "5m", "1h", or seconds; TVM only): tune this model's kernels into the
        user's tuning cache first (`mlc_lab.tuning.budget`), then compile with the result.
    check_finite: refuse inputs holding NaN or Inf with an error naming the input. By default they are
        data, propagated exactly as PyTorch propagates them (every backend is tested for that).
    input_shapes: static shapes for an ONNX model's symbolic input dimensions ({"x": (1, 3, 224, 224)}).
    options: passed to the backend (e.g. target= for TVM, rows=/cols= for the systolic array).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")
    if tuning_db is not None:
        if backend != "tvm":
            raise ValueError(f"tuning_db applies to the tvm backend only, not {backend!r}")
        options["tuning_db"] = tuning_db
    budget_s = _tuning_budget(tune, backend, tuning_db)
    start = time.perf_counter()
    graph = import_model(model, example_inputs, input_shapes=input_shapes)
    on_gpu = backend == "tvm" and _gpu_target(options.get("target"))
    if on_gpu and tune is not None:
        raise ValueError("tune= tunes CPU schedules; it does not apply to a GPU target")
    layout_key = "tvm-gpu" if on_gpu else backend  # no DEFAULT_CONV_LAYOUT entry: convs stay NCHW on GPUs
    optimized = PassManager(resolve_passes(passes, graph, layout_key)).apply(graph) if passes else graph
    if not passes:  # (the PassManager verifies after each pass) sizes too: a shape beyond the limit names its node
        optimized.verify()
    check_graph_fits(optimized, f"compiling graph {optimized.name!r} for backend {backend!r}", reuse=True)
    if budget_s is not None:
        from mlc_lab.tuning.budget import tune_graph

        options["tuned_now"] = list(tune_graph(optimized, budget_s))
    runner = BACKENDS[backend](optimized, **options)
    return CompiledModel(graph, optimized, backend, runner, time.perf_counter() - start, check_finite)
