"""Rewrites applied to a module just before IREE compiles it, each for a measured IREE 3.13 miscompile.

Integer reductions of a folded value. IREE folds `sum(x * 0 + 1)` (or `sum(x ** 0)`) into a reduction of a
splat constant, and its CPU code then adds the constant once per 16-lane vector instead of once per element:
3 elements gave 1, 16 gave 16, 17 gave 2 (int32 and int64 alike; float sums are right, and no compiler flag
changed it). A silent wrong answer, so every integer reduction (a `linalg.generic` with a reduction
iterator, `linalg.matmul`, `linalg.batch_matmul`) reads its inputs through `util.optimization_barrier`: IREE
cannot look through the barrier, so it never sees the splat. Integer reductions are rare in models (index
arithmetic, counts), so the fusion this blocks costs little.
"""

from __future__ import annotations

from iree.compiler import ir

#: linalg ops that reduce although their iterator types are implicit.
_NAMED_REDUCTIONS = frozenset({"linalg.matmul", "linalg.batch_matmul"})


def _integer_tensor(t: ir.Type) -> bool:
    t = t.maybe_downcast()
    return isinstance(t, ir.RankedTensorType) and isinstance(t.element_type.maybe_downcast(), ir.IntegerType)


def _is_integer_reduction(op: ir.Operation) -> bool:
    if op.name == "linalg.generic":
        reduces = "reduction" in str(op.attributes["iterator_types"])
    else:
        reduces = op.name in _NAMED_REDUCTIONS
    return reduces and any(_integer_tensor(r.type) for r in op.results)


def guard_integer_reductions(text: str) -> str:
    """`text` with an optimization barrier on every tensor input of every integer reduction."""
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        found: list[ir.Operation] = []

        def visit(op: ir.OpView) -> ir.WalkResult:
            if _is_integer_reduction(op.operation):
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
