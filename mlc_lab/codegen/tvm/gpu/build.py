"""`build_gpu(graph)`: the graph's kernels with GPU schedules, compiled for CUDA; run where a GPU is.

    compiled = build_gpu(graph, "cuda")      # or "cuda:H100", "nvptx", a dict, a tvm Target
    print(compiled.cuda_source)              # CUDA C of every kernel (any machine)
    print(compiled.ptx)                      # PTX from LLVM's NVPTX backend (any machine)
    compiled.kernel_facts()                  # launch geometry, shared memory, registers per kernel
    compiled.predict("H100")                 # the GPU model's times (mlc_lab.sim.gpu_model)
    outputs = compiled(*numpy_inputs)        # needs a CUDA GPU: NoGPUError names what is missing

Kernels are lowered as for the CPU (same TE, same fusion), then scheduled for the GPU
(`gpu.schedule`: the tiled template for matmul/dense, dlight for the rest) and compiled by
`tvm.compile` with TVM's CUDA Relax pipeline minus its front half (as build.py does for the CPU).
"""

from __future__ import annotations

import functools
import threading
import time as _time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tvm
from tvm import relax
from tvm.relax.backend.cuda import pipeline as cuda_pipeline

from mlc_lab.codegen.tvm.gpu.device_code import (
    DeviceKernel,
    cuda_source,
    device_module,
    kernel_facts,
    ptx_source,
    registers_per_kernel,
)
from mlc_lab.codegen.tvm.gpu.schedule import SCHEDULED, TileConfig, apply_dlight, schedule_matmul
from mlc_lab.codegen.tvm.gpu.target import (
    NoGPUError,
    cuda_device_present,
    cuda_target,
    gpu_target,
    nvptx_target,
    prepare_cuda_compiler,
    target_arch,
)
from mlc_lab.codegen.tvm.lower import Kernel, ScheduleFn
from mlc_lab.codegen.tvm.relax_module import kernel_name, lower_kernels, to_relax
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.interpreter import InterpreterError, check_inputs
from mlc_lab.ir.ops import is_contraction_kernel, node_cost
from mlc_lab.sim.gpu_model import KernelLaunch, ModelPrediction, predict_model


def gpu_schedule_hook(target: tvm.target.Target, tile: TileConfig | None = None) -> ScheduleFn:
    """The lowering hook: the tiled template on matmul/dense kernels, dlight's rules on the rest.

    It runs before `lower_node` attaches epilogues, so dlight sees each stage as its own loop nest.
    """

    def schedule(sch, node: Node) -> None:
        if not (is_contraction_kernel(node) and schedule_matmul(sch, tile)):
            apply_dlight(sch, target, kernel_name(node))

    return schedule


def mark_scheduled(kernels: dict[Node, Kernel]) -> None:
    """Tell TVM's pipeline the kernels are scheduled (its own dlight pass must leave them alone)."""
    for kernel in {id(k): k for k in kernels.values()}.values():
        kernel.func = kernel.func.with_attr(SCHEDULED, True)


def relax_pipeline(target: tvm.target.Target) -> tvm.transform.Pass:
    """CUDA's calling-convention lowering and memory planning; no legalisation, fusion or dlight pass."""
    passes = cuda_pipeline.dataflow_lower_passes(target) + cuda_pipeline.finalize_passes(target)
    return tvm.transform.Sequential(passes, name="mlc_lab_cuda_pipeline")


class GPUCompiledGraph:
    """A graph compiled for a CUDA GPU: its code is readable anywhere, it runs only where a GPU is."""

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
        self.module = module  #: the Relax IRModule (`.script()` prints it)
        self.kernels = kernels  #: node -> Kernel (scheduled PrimFuncs; nodes with one key share one)
        self.executable = executable
        self.target = target
        self.lower_seconds = lower_seconds
        self.compile_seconds = compile_seconds
        self.lock = threading.Lock()
        self._vm = None

    # -- the generated code ----------------------------------------------------------------------------------
    def prim_funcs(self) -> dict[str, tvm.tirx.PrimFunc]:
        return {k.name: k.func for k in self.kernels.values()}

    def _funcs_module(self) -> tvm.IRModule:
        return tvm.IRModule({name: f.with_attr("global_symbol", name) for name, f in self.prim_funcs().items()})

    @functools.cached_property
    def device_module(self) -> tvm.IRModule:
        """The CUDA kernels as TIR after TVM's pipeline (one PrimFunc per kernel launch)."""
        return device_module(self._funcs_module(), cuda_target(self.target))

    @functools.cached_property
    def cuda_source(self) -> str:
        """CUDA C of every kernel."""
        return cuda_source(self.device_module, cuda_target(self.target))

    @functools.cached_property
    def ptx_modules(self) -> dict[str, str]:
        """PrimFunc name -> PTX of its kernels, written by LLVM's NVPTX backend from the same scheduled TIR.

        One module per PrimFunc: TVM declares a libdevice function (`__nv_fmaf`) once per LLVM module
        with the first use's types, so kernels using it on scalars and on vectors cannot share a module.
        """
        target = nvptx_target(self.target)
        modules = {}
        for name, func in self.prim_funcs().items():
            device = device_module(tvm.IRModule({name: func.with_attr("global_symbol", name)}), target)
            modules[name] = ptx_source(device, target)
        return modules

    @property
    def ptx(self) -> str:
        """PTX of every kernel (the modules of `ptx_modules`, one after another)."""
        return "\n".join(self.ptx_modules.values())

    @functools.cached_property
    def registers(self) -> tuple[dict[str, int], str]:
        """(kernel -> registers per thread, "ptxas" or "PTX estimate"): see `gpu.device_code`."""
        found, sources = {}, set()
        threads = {k.name: k.threads_per_block for k in self.kernel_facts()}
        for ptx in self.ptx_modules.values():
            registers, source = registers_per_kernel(ptx, nvptx_target(self.target), threads)
            found.update(registers)
            sources.add(source)
        return found, " and ".join(sorted(sources))

    def kernel_facts(self) -> list[DeviceKernel]:
        return kernel_facts(self.device_module)

    def launches(self) -> list[KernelLaunch]:
        """One `KernelLaunch` per op node, in execution order, for the GPU model.

        FLOPs and bytes come from the registry (`node_cost`: compulsory traffic, every input read once
        and the output written once), plus the constants a fused kernel reads. A PrimFunc lowered to
        several CUDA kernels (a padding copy, then the conv) is modelled with the geometry of its largest
        kernel and counts each kernel's launch.
        """
        facts = self.kernel_facts()
        registers, _ = self.registers
        launches = []
        for node in self.graph.ops:
            kernel = self.kernels[node]
            own = [f for f in facts if f.name == kernel.name or f.name.startswith(kernel.name + "_kernel")]
            if not own:
                continue  # no device code (e.g. an empty output): nothing launches
            main = max(own, key=lambda f: f.blocks * f.threads_per_block)
            cost = node_cost(node)
            launches.append(
                KernelLaunch(
                    name=node.name,
                    flops=cost.flops,
                    bytes=cost.bytes + sum(c.nbytes for c in kernel.constants),
                    blocks=main.blocks,
                    threads_per_block=main.threads_per_block,
                    shared_bytes=main.shared_bytes,
                    registers=max(1, registers.get(main.name, 32)),
                    launches=len(own),
                )
            )
        return launches

    def predict(self, gpu: str = "A100") -> ModelPrediction:
        """The GPU model's per-kernel and total time for one run (`mlc_lab.sim.gpu_model`)."""
        return predict_model(self.launches(), gpu)

    # -- running --------------------------------------------------------------------------------------------
    @property
    def vm(self) -> relax.VirtualMachine:
        if not cuda_device_present():
            raise NoGPUError(
                f"graph {self.graph.name!r} was compiled for {self.target.kind.name} "
                f"({target_arch(self.target)}), but no CUDA device is available here (tvm.cuda(0) does not exist); "
                "its code is in .cuda_source and .ptx, and .predict() gives the GPU model's times"
            )
        if self._vm is None:
            self._vm = relax.VirtualMachine(self.executable, tvm.cuda(0))
        return self._vm

    def _arguments(self, inputs: Sequence[Any]) -> list[tvm.runtime.Tensor]:
        try:
            arrays = check_inputs(self.graph, tuple(inputs))
        except InterpreterError as e:
            raise ValueError(str(e)) from None
        return [tvm.runtime.tensor(np.require(a, requirements="C"), tvm.cuda(0)) for a in arrays]

    def __call__(self, *inputs: Any) -> list[np.ndarray]:
        with self.lock:
            vm = self.vm
            result = vm["main"](*self._arguments(inputs))
            return [t.numpy() for t in result]

    def time(self, *inputs: Any, repeat: int = 10, number: int = 10) -> float:
        """Median seconds per run on the GPU (after a warm-up), as TVM's time_evaluator measures it."""
        with self.lock:
            vm = self.vm
            timer = vm.time_evaluator("main", tvm.cuda(0), number=number, repeat=repeat)
            return float(timer(*self._arguments(inputs)).median)

    def __repr__(self) -> str:
        return f"<GPUCompiledGraph {self.graph.name!r}: {len(self.kernels)} kernels, {target_arch(self.target)}>"


def build_gpu(graph: Graph, target: Any = "cuda", *, tile: TileConfig | None = None) -> GPUCompiledGraph:
    """Compile `graph` for a CUDA GPU (module docstring). No GPU is needed to build."""
    graph.verify()
    target = gpu_target(target)
    cuda = cuda_target(target)  # the VM runs CUDA kernels either way
    prepare_cuda_compiler()
    start = _time.perf_counter()
    kernels = lower_kernels(graph, gpu_schedule_hook(cuda, tile))
    mark_scheduled(kernels)
    module = to_relax(graph, kernels)
    lowered = _time.perf_counter()
    executable = tvm.compile(module, cuda, relax_pipeline=relax_pipeline(cuda))
    done = _time.perf_counter()
    return GPUCompiledGraph(graph, module, kernels, executable, target, lowered - start, done - lowered)
