"""Rewrites applied to a module just before IREE compiles it, each for a measured IREE 3.13 miscompile.

Reductions of a folded value. IREE folds `sum(x * 0 + 1)` (integers), `sum(x ** 0)` or
`sum(float(b | True))` into a reduction of a splat constant, and its CPU code then adds the constant once
per 16-lane vector instead of once per element: 3 elements gave 1, 16 gave 16, 17 gave 2 (int32, int64 and
float32 alike; no compiler flag changed it). Which values IREE can fold is IREE's business, so every
reduction (a `linalg.generic` with a reduction iterator, a named contraction, convolution or pooling) reads its
inputs through `util.optimization_barrier`: IREE cannot look through the barrier, so it never sees a splat.
The price is that an elementwise producer is no longer fused into the reduction that reads it (the
emitter already folds softmax's and layer norm's elementwise steps into their reductions' bodies).
A value with dynamic dimensions (`tensor<?x...>`) gets its sizes back after the barrier
(`flow.tensor.tie_shape`, sizes taken with `tensor.dim` from the value before it): IREE cannot see through
the barrier for them either, and without them it stopped with "'tensor.dim' op unexpected during shape
cleanup" on every reduction of the dynamic LLM prefill.
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
                ty = value.type.maybe_downcast()
                if isinstance(ty, ir.RankedTensorType):
                    with ir.InsertionPoint(op):
                        barrier = ir.Operation.create("util.optimization_barrier", [value.type], [value])
                        op.operands[i] = _with_sizes(barrier.result, value, ty)
        return str(module)


def _with_sizes(result: ir.Value, source: ir.Value, ty: ir.RankedTensorType) -> ir.Value:
    """`result` tied to the dynamic sizes of `source` (the same value before the barrier); static: itself."""
    dynamic = [axis for axis in range(ty.rank) if ty.is_dynamic_dim(axis)]
    if not dynamic:
        return result
    index = ir.IndexType.get()
    sizes = []
    for axis in dynamic:
        c = ir.Operation.create("arith.constant", [index], attributes={"value": ir.IntegerAttr.get(index, axis)})
        sizes.append(ir.Operation.create("tensor.dim", [index], [source, c.result]).result)
    return ir.Operation.create("flow.tensor.tie_shape", [ty], [result, *sizes]).result
