"""Timing a zoo model three ways: our TVM build (fused or not, any layout), and PyTorch eager.

    rows = benchmark("resnet18", [Variant(fusion) for fusion in FUSIONS])

Pin the thread counts first (TVM_NUM_THREADS before TVM's thread pool starts, torch.set_num_threads),
so both sides use the same cores; on a shared machine single-threaded numbers are the steadiest.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlc_lab import zoo
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
    run_seconds: float  #: median of `repeat` runs
    torch_seconds: float  #: PyTorch eager, median of `repeat` runs
    max_abs_error: float  #: against the reference interpreter

    @property
    def vs_torch(self) -> float:
        return self.run_seconds / self.torch_seconds


def torch_eager_seconds(model: zoo.ZooModel, repeat: int = 20) -> float:
    import torch

    module = model.module.eval()
    with torch.no_grad():
        module(*model.example_inputs)  # warm-up
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            module(*model.example_inputs)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


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


def benchmark(name: str, variants: Sequence[Variant], repeat: int = 20, rounds: int = 3) -> list[BenchmarkRow]:
    """Build every variant of a zoo model, check it against the interpreter, time it and PyTorch eager.

    Timing runs in `rounds` interleaved rounds (variant 1, 2, ..., torch, then again) and keeps each
    one's best round median: on a shared machine a neighbour's burst then spoils one round, not a row.
    """
    model = zoo.load(name)
    inputs = model.numpy_inputs()
    reference = model.graph()(*inputs)
    compiled = [compile_variant(model, v) for v in variants]
    errors = [max(float(abs(a - b).max()) for a, b in zip(c(*inputs), reference)) for c in compiled]
    best = [float("inf")] * (len(variants) + 1)
    for _ in range(rounds):
        times = [c.time(*inputs, repeat=repeat) for c in compiled] + [torch_eager_seconds(model, repeat)]
        best = [min(b, t) for b, t in zip(best, times)]
    return [
        BenchmarkRow(
            name,
            v.fusion,
            v.layout,
            v.scheduled,
            c.num_kernels,
            c.lower_seconds + c.compile_seconds,
            seconds,
            best[-1],
            error,
        )
        for v, c, seconds, error in zip(variants, compiled, best, errors)
    ]
