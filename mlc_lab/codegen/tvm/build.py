"""`build(graph)`: lower every node or fused group, wrap them in a Relax module, compile, run on the VM.

    compiled = build(graph)                 # default schedule; schedule=None keeps the naive loops
    outputs = compiled(*numpy_inputs)       # a list of NumPy arrays, like `interpret(graph, ...)`
    print(compiled.module.script())         # the Relax module, as TVMScript
    compiled.time(*numpy_inputs)            # median seconds per run

The Relax pipeline is TVM's CPU pipeline without its front half (LegalizeOps, FuseOps, FuseTIR):
our kernels are already TensorIR and already fused the way our passes decided, so TVM must not
re-fuse them; only calling-convention lowering and memory planning (StaticPlanBlockMemory) run.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_pipeline

from mlc_lab.codegen.target import TargetLike, resolve_target
from mlc_lab.codegen.target import host_target as host_target  # re-exported: build.py was its home
from mlc_lab.codegen.tvm.lower import Kernel, ScheduleFn
from mlc_lab.codegen.tvm.native import native_kernel
from mlc_lab.codegen.tvm.prepack import prepack_constants
from mlc_lab.codegen.tvm.relax_module import lower_kernels, to_relax
from mlc_lab.codegen.tvm.schedule import default_schedule
from mlc_lab.codegen.tvm.te_ops.elementwise import te_function
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.interpreter import InterpreterError, check_inputs
from mlc_lab.ir.ops import is_source
from mlc_lab.passes.decompose import Decompose


def relax_pipeline(target: tvm.target.Target) -> tvm.transform.Pass:
    """Lower call_tir to the VM calling convention and plan memory; no legalisation, no re-fusion."""
    passes = cpu_pipeline.dataflow_lower_passes(target) + cpu_pipeline.finalize_passes(target)
    return tvm.transform.Sequential(passes, name="mlc_lab_relax_pipeline")


class CompiledGraph:
    """A graph compiled by TVM: call it with NumPy arrays, get a list of NumPy arrays.

    Safe to call from several threads: the Relax VM keeps the state of a call (registers, frames) in
    itself, so calls take `lock` and run one at a time (kernels parallelise inside a call anyway).
    """

    def __init__(
        self,
        graph: Graph,
        module: tvm.IRModule,
        kernels: dict[Node, Kernel],
        executable: Any,
        target: tvm.target.Target,
        lower_seconds: float,
        compile_seconds: float,
    ) -> None:
        self.graph = graph
        self.module = module  #: the Relax IRModule before compilation (`.script()` prints it)
        self.kernels = kernels  #: node -> Kernel (nodes with the same kernel key share one)
        self.executable = executable
        self.target = target
        self.lower_seconds = lower_seconds  #: TE -> TensorIR -> schedules -> Relax
        self.compile_seconds = compile_seconds  #: tvm.compile (Relax passes, TIR passes, LLVM)
        self.device = tvm.cpu()
        self.vm = relax.VirtualMachine(executable, self.device)
        self.lock = threading.Lock()  #: held around every use of `vm`: one call at a time

    def constant_outputs(self) -> set[int]:
        """Indices of the outputs the VM returns as a constant's own memory: the same buffer every call.

        A constant output comes back as the constant itself, and TVM turns a kernel that only moves
        elements in row-major order (`has_reshape_pattern`: reshape, squeeze, an identity copy) into a
        view of its input (RewriteDataflowReshape), so a chain of those over a constant is one too.
        """
        return {i for i, node in enumerate(self.graph.outputs) if self._views_constant(node)}

    def _views_constant(self, node: Node) -> bool:
        while not is_source(node.op):
            kernel = self.kernels[node]
            if not relax.analysis.has_reshape_pattern(kernel.func):
                return False
            if kernel.constants:  # a fused reshape of a constant lifted into the kernel
                return True
            node = node.inputs[0]
        return node.op == "constant"

    @property
    def num_kernels(self) -> int:
        """Kernel launches per run: one per op node or fused group."""
        return len(self.kernels)

    @property
    def num_prim_funcs(self) -> int:
        """Distinct PrimFuncs compiled (identical nodes share one)."""
        return len({id(k) for k in self.kernels.values()})

    def prim_funcs(self) -> dict[str, tvm.tirx.PrimFunc]:
        return {k.name: k.func for k in self.kernels.values()}

    def _arguments(self, inputs: Sequence[Any]) -> list[tvm.runtime.Tensor]:
        try:
            arrays = check_inputs(self.graph, tuple(inputs))
        except InterpreterError as e:
            raise ValueError(str(e)) from None
        # np.require, not np.ascontiguousarray: the latter turns a 0-d array into a 1-d one
        return [tvm.runtime.tensor(np.require(a, requirements="C"), self.device) for a in arrays]

    def __call__(self, *inputs: Any) -> list[np.ndarray]:
        arguments = self._arguments(inputs)
        with self.lock:
            result = self.vm["main"](*arguments)
            return [t.numpy() for t in result]  # copies: outputs never alias VM memory

    def time(self, *inputs: Any, repeat: int = 10, number: int = 1) -> float:
        """Median seconds per run over `repeat` measurements of `number` runs each (after a warm-up)."""
        arguments = self._arguments(inputs)
        with self.lock:
            timer = self.vm.time_evaluator("main", self.device, number=number, repeat=repeat)
            return float(timer(*arguments).median)

    def __repr__(self) -> str:
        return (
            f"<CompiledGraph {self.graph.name!r}: {self.num_kernels} kernels "
            f"({self.num_prim_funcs} distinct), target {self.target.attrs.get('mcpu', '')}>"
        )


def build(
    graph: Graph,
    target: TargetLike = "llvm",
    *,
    schedule: ScheduleFn | None = default_schedule,
) -> CompiledGraph:
    """Compile `graph` (fused or not) with TVM for `target` and load it into a Relax VM.

    `schedule(sch, node)` is applied to each kernel's `tvm.s_tir.Schedule`; None keeps the loop
    nests exactly as `te.create_prim_func` wrote them (after fusion's inlining).
    """
    graph.verify()
    graph = Decompose(native=lambda op: te_function(op) is not None or native_kernel(op) is not None).apply(graph)
    target = resolve_target(target)
    start = _time.perf_counter()
    kernels = lower_kernels(graph, schedule)
    module = to_relax(graph, kernels)
    lowered = _time.perf_counter()
    executable = tvm.compile(prepack_constants(module), target, relax_pipeline=relax_pipeline(target))
    compiled = _time.perf_counter()
    return CompiledGraph(graph, module, kernels, executable, target, lowered - start, compiled - lowered)
