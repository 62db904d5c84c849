"""Timing a zoo model three ways: our TVM build (fused or not, any layout), and PyTorch eager.

    rows = benchmark("resnet18", [Variant(fusion) for fusion in FUSIONS])

Pin the thread counts first (TVM_NUM_THREADS before TVM's thread pool starts, torch.set_num_threads),
so both sides use the same cores; on a shared machine single-threaded numbers are the steadiest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlc_lab import zoo
from mlc_lab.bench import interleaved_medians
from mlc_lab.codegen.tvm.build import build
from mlc_lab.codegen.tvm.schedule import default_schedule
from mlc_lab.ir.graph import Graph
from mlc_lab.passes import ElementwiseFusionPass, FoldBatchNorm, OperatorFusionPass
from mlc_lab.passes.memory import MemoryLayoutOptimizer

#: The fusion variants the book compares.
FUSIONS: dict[str, Callable[[Graph], Graph]] = {
    "unfused": lambda g: g,
    "operator_fusion": lambda g: OperatorFusionPass().apply(g),
    "bn_folded+elementwise_fusion": lambda g: ElementwiseFusionPass().apply(FoldBatchNorm().apply(g)),
}


@dataclass
class BenchmarkRow:
    model: str
    fusion: str
    layout: str
    scheduled: bool
    kernels: int
    compile_seconds: float  #: lowering + tvm.compile
    run_seconds: float  #: median per call
    torch_seconds: float  #: PyTorch eager, median per call, measured interleaved with ours
    max_abs_error: float  #: against the reference interpreter

    @property
    def vs_torch(self) -> float:
        return self.run_seconds / self.torch_seconds


@dataclass(frozen=True)
class Variant:
    fusion: str = "unfused"
    layout: str = "NCHW"
    scheduled: bool = True


def compile_variant(model: zoo.ZooModel, variant: Variant):
    graph = model.graph()
    if variant.layout != "NCHW":
        graph = MemoryLayoutOptimizer(variant.layout).apply(graph)
    graph = FUSIONS[variant.fusion](graph)
    return build(graph, schedule=default_schedule if variant.scheduled else None)


def benchmark(name: str, variants: Sequence[Variant], rounds: int = 9, calls: int = 5) -> list[BenchmarkRow]:
    """Build every variant of a zoo model, check it against the interpreter, and time it next to PyTorch
    eager: interleaved rounds, median per call (`mlc_lab.bench.interleaved_medians`)."""
    import torch

    model = zoo.load(name)
    inputs = model.numpy_inputs()
    reference = model.graph()(*inputs)
    compiled = [compile_variant(model, v) for v in variants]
    errors = [max(float(abs(a - b).max()) for a, b in zip(c(*inputs), reference)) for c in compiled]
    module = model.module.eval()

    def eager() -> object:
        with torch.no_grad():
            return module(*model.example_inputs)

    contenders = {str(k): (lambda c=c: c(*inputs)) for k, c in enumerate(compiled)}
    times = interleaved_medians({**contenders, "torch": eager}, rounds, calls)
    return [
        BenchmarkRow(
            name,
            v.fusion,
            v.layout,
            v.scheduled,
            c.num_kernels,
            c.lower_seconds + c.compile_seconds,
            times[str(k)],
            times["torch"],
            error,
        )
        for k, (v, c, error) in enumerate(zip(variants, compiled, errors))
    ]
