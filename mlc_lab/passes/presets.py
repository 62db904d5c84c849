"""Named pass pipelines ("default", "int8", "none") and how a `passes=` argument becomes a list of passes.

Here, below the drivers, so that `mlc_lab.compile` and the tuner's `tune_model` pick the same passes
(the tuning records' keys must match what compile builds) without the tuner importing `mlc_lab.api`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mlc_lab.ir.graph import Graph
from mlc_lab.passes.base import Pass
from mlc_lab.passes.dce import DeadCodeElimination
from mlc_lab.passes.fold import FoldConstants
from mlc_lab.passes.fuse_attention import FuseAttention
from mlc_lab.passes.fusion import ElementwiseFusionPass, FoldBatchNorm
from mlc_lab.passes.quantize import QuantizeWeights

__all__ = ["DEFAULT_CONV_LAYOUT", "NATIVE_ATTENTION", "PASS_PRESETS", "default_passes", "int8_passes", "resolve_passes"]

#: Backends whose "default" preset fuses attention (`FuseAttention`, causal and decode sites: where it
#: was measured faster): those with a native kernel for `fused_attention` that never writes the score
#: matrix (TVM on the CPU: benchmarks/attention.py). The others would only decompose it back.
NATIVE_ATTENTION: frozenset[str] = frozenset({"tvm"})

#: Activation layout the "default" preset gives convolutions on each backend. Measured on ResNet-18
#: (batch 1, one core, default schedules): NCHW 8.2 ms, NHWC 5.7, NCHW8c 5.7, NCHW16c 3.9 (eager 3.3);
#: channels innermost give the vectoriser 16 lanes where late-stage images are only 2x2 or 4x4 wide.
DEFAULT_CONV_LAYOUT: dict[str, str] = {"tvm": "NCHW16c"}


def default_passes(graph: Graph | None = None, backend: str | None = None) -> list[Pass]:
    """Fold what is known at compile time, fold BatchNorm into convs, fuse elementwise chains, clean up.

    Convolutions also change layout where that was measured to help (`DEFAULT_CONV_LAYOUT`), and
    attention becomes one kernel where the backend has one (`NATIVE_ATTENTION`).
    """
    passes: list[Pass] = [FoldConstants(), FoldBatchNorm()]
    layout = DEFAULT_CONV_LAYOUT.get(backend or "")
    if layout and graph is not None and any(n.op == "conv2d" for n in graph.ops):
        from mlc_lab.passes.memory import MemoryLayoutOptimizer

        passes.append(MemoryLayoutOptimizer(target_layout=layout))
    if backend in NATIVE_ATTENTION:
        passes.append(FuseAttention(skip_dense_prefill=True))  # where the kernel was measured faster
    return [*passes, ElementwiseFusionPass(), DeadCodeElimination()]


def int8_passes(graph: Graph | None = None, backend: str | None = None) -> list[Pass]:
    """The default pipeline with constant dense/matmul weights quantized to int8 first (`QuantizeWeights`).

    After FoldConstants, so a weight the frontend transposed or reshaped is a constant by then, and
    before fusion, so bias and activation epilogues fuse into the quantized product as into dense.
    """
    passes = default_passes(graph, backend)
    return [passes[0], QuantizeWeights(bits=8), *passes[1:]]


PASS_PRESETS: dict[str, Callable[..., list[Pass]]] = {
    "default": default_passes,
    "int8": int8_passes,
    "none": lambda *_: [],
}


def resolve_passes(
    passes: str | Sequence[Pass] | None, graph: Graph | None = None, backend: str | None = None
) -> list[Pass]:
    """A preset name (chosen for `graph` on `backend`), a list of passes, or None (= "none")."""
    if passes is None:
        return []
    if isinstance(passes, str):
        if passes not in PASS_PRESETS:
            presets = ", ".join(PASS_PRESETS)
            raise ValueError(f"unknown pass preset {passes!r}; presets: {presets} (or a list of passes)")
        return PASS_PRESETS[passes](graph, backend)
    passes = list(passes)
    for p in passes:
        if not hasattr(p, "apply"):
            raise TypeError(f"passes= takes mlc_lab passes (objects with .apply(graph)); got {type(p).__name__}")
    return passes
