"""Rewrites applied to a module just before IREE compiles it, each for a measured IREE 3.13 miscompile.

Reductions of a folded value. IREE folds `sum(x * 0 + 1)` (integers), `sum(x ** 0)` or
`sum(float(b | True))` into a reduction of a splat constant, and its CPU code then adds the constant once
per 16-lane vector instead of once per element: 3 elements gave 1, 16 gave 16, 17 gave 2 (int32, int64 and
float32 alike; no compiler flag changed it). Which values IREE can fold is IREE's business, so every
reduction (a `linalg.generic` with a reduction iterator, a named contraction, convolution or pooling) reads its
inputs through `util.optimization_barrier`: IREE cannot look through the barrier, so it never sees a splat.
The price is that an elementwise producer is no longer fused into the reduction that reads it (the
emitter already folds softmax's and layer norm's elementwise steps into their reductions' bodies).
"""

from __future__ import annotations

from iree.compiler import ir

#: Named linalg ops that reduce (their iterator types are implicit): contractions, convolutions, pooling.
_NAMED_REDUCTIONS = ("linalg.matmul", "linalg.batch_matmul", "linalg.conv_", "linalg.pooling_", "linalg.depthwise_")


def _is_reduction(op: ir.Operation) -> bool:
    if op.name == "linalg.generic":
        return "reduction" in str(op.attributes["iterator_types"])
    return op.name.startswith(_NAMED_REDUCTIONS)


def guard_reductions(text: str) -> str:
    """`text` with an optimization barrier on every tensor input of every reduction."""
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        found: list[ir.Operation] = []

        def visit(op: ir.OpView) -> ir.WalkResult:
            if _is_reduction(op.operation):
                found.append(op.operation)
            return ir.WalkResult.ADVANCE

        module.operation.walk(visit)
        if not found:
            return text
        for op in found:
            for i in range(len(op.operands) - len(op.results)):  # ins; the outs are the accumulators
                value = op.operands[i]
                if isinstance(value.type.maybe_downcast(), ir.RankedTensorType):
                    with ir.InsertionPoint(op):
                        barrier = ir.Operation.create("util.optimization_barrier", [value.type], [value])
                    op.operands[i] = barrier.result
        return str(module)
