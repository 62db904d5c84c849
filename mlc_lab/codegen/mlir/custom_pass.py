"""A pass written in Python with xDSL: algebraic clean-ups inside `linalg.generic` bodies.

xDSL is MLIR-compatible and pure Python: the module goes out as MLIR text (generic op form), is
rewritten by small `RewritePattern` classes, and comes back as text that real MLIR parses, verifies,
and compiles. The patterns, each one idea:

- `InlineSplatOperand`: a generic input that is a splat constant (every element the same) becomes a
  scalar constant inside the body: one operand, one memory stream and one indexing map fewer.
- `FoldMulByOne` / `FoldAddZero`: x * 1.0 -> x, x + 0.0 -> x.
- `DivByConstant`: x / c -> x * (1/c) (a multiply is several times cheaper than a divide).
- `DropCopyGeneric`: a generic that only yields its input, unchanged and with the same indexing, is
  that input.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.context import Context
from xdsl.dialects import arith, builtin, get_all_dialects
from xdsl.dialects.linalg.ops import FillOp, GenericOp, MatmulOp, YieldOp
from xdsl.dialects.tensor import EmptyOp
from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import AffineMap
from xdsl.parser import Parser
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.printer import Printer
from xdsl.rewriter import InsertPoint, Rewriter

from mlc_lab.codegen.mlir.module import MLIRModule


def _float_constant(value: SSAValue) -> float | None:
    """The value of a scalar float `arith.constant`, else None."""
    op = value.owner
    if isinstance(op, arith.ConstantOp) and isinstance(op.value, builtin.FloatAttr):
        return op.value.value.data
    return None


def _splat_constant(value: SSAValue) -> builtin.FloatAttr | None:
    """The element of a splat dense float tensor constant, else None."""
    op = value.owner
    if not isinstance(op, arith.ConstantOp) or not isinstance(op.value, builtin.DenseIntOrFPElementsAttr):
        return None
    attr = op.value
    if not isinstance(attr.get_element_type(), builtin.AnyFloat) or not attr.is_splat():
        return None
    return builtin.FloatAttr(attr.get_values()[0], attr.get_element_type())


class InlineSplatOperand(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: GenericOp, rewriter: PatternRewriter) -> None:
        splats = [(i, e) for i, v in enumerate(op.inputs) if (e := _splat_constant(v)) is not None]
        if not splats:
            return
        i, element = splats[0]
        body = op.body.block
        scalar = arith.ConstantOp(element)
        rewriter.insert(scalar, InsertPoint.at_start(body))
        body.args[i].replace_all_uses_with(scalar.result)
        rewriter.erase_block_argument(body.args[i])
        maps = list(op.indexing_maps.data)
        del maps[i]
        new = GenericOp(
            [v for k, v in enumerate(op.inputs) if k != i],
            list(op.outputs),
            rewriter.move_region_contents_to_new_regions(op.body),
            maps,
            op.iterator_types,
            [r.type for r in op.results],
        )
        rewriter.replace(op, new)


class FoldMulByOne(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: arith.MulfOp, rewriter: PatternRewriter) -> None:
        for keep, other in ((op.lhs, op.rhs), (op.rhs, op.lhs)):
            if _float_constant(other) == 1.0:
                rewriter.replace(op, [], [keep])
                return


class FoldAddZero(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: arith.AddfOp, rewriter: PatternRewriter) -> None:
        for keep, other in ((op.lhs, op.rhs), (op.rhs, op.lhs)):
            if _float_constant(other) == 0.0:
                rewriter.replace(op, [], [keep])
                return


class DivByConstant(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: arith.DivfOp, rewriter: PatternRewriter) -> None:
        c = _float_constant(op.rhs)
        if c is None or c == 0.0:
            return
        inverse = arith.ConstantOp(builtin.FloatAttr(1.0 / c, op.rhs.type))
        rewriter.replace(op, [inverse, arith.MulfOp(op.lhs, inverse.result)])


class DropCopyGeneric(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: GenericOp, rewriter: PatternRewriter) -> None:
        block = op.body.block
        yield_op = block.last_op
        if not isinstance(yield_op, YieldOp) or len(op.inputs) < 1 or len(op.results) != 1:
            return
        (yielded,) = yield_op.operands
        if yielded is not block.args[0] or op.inputs[0].type != op.results[0].type:
            return
        maps = [m.data for m in op.indexing_maps.data]
        if maps[0] != maps[len(op.inputs)] or maps[0] != AffineMap.identity(maps[0].num_dims):
            return
        rewriter.replace(op, [], [op.inputs[0]])


PATTERNS = (InlineSplatOperand, FoldMulByOne, FoldAddZero, DivByConstant, DropCopyGeneric)


def _context() -> Context:
    ctx = Context(allow_unregistered=True)
    for name, dialect in get_all_dialects().items():
        ctx.register_dialect(name, dialect)
    return ctx


def rewrite_text(text: str, patterns: Sequence[type[RewritePattern]] = PATTERNS) -> str:
    """Parse MLIR text with xDSL, apply `patterns` to a fixed point, print it back (dead ops removed)."""
    module = Parser(_context(), text).parse_module()
    walker = PatternRewriteWalker(GreedyRewritePatternApplier([p() for p in patterns]), apply_recursively=True)
    walker.rewrite_module(module)
    _remove_dead(module)
    from io import StringIO

    out = StringIO()
    Printer(stream=out).print_op(module)
    return out.getvalue()


#: Ops that only compute their results (on tensors): unused, they can go.
PURE_OPS = (arith.ConstantOp, GenericOp, FillOp, MatmulOp, EmptyOp)


def _remove_dead(module: Operation) -> None:
    """Erase side-effect-free ops whose results nobody reads (constants, fills, ops a pattern made unused).

    Only ops with results: a linalg op on memrefs has none, and writes memory.
    """
    changed = True
    while changed:
        changed = False
        for op in list(module.walk(reverse=True)):
            if isinstance(op, PURE_OPS) and op.results and all(not r.uses for r in op.results):
                Rewriter.erase_op(op)  # detaches it from its block first
                changed = True
                break  # the walk's list holds ops nested in the erased one: walk again


def fold_trivial_arith(module: MLIRModule, patterns: Sequence[type[RewritePattern]] = PATTERNS) -> MLIRModule:
    """Run the xDSL pass (`patterns`, default all of the above) on `module`; real MLIR re-parses and verifies it."""
    text = module.module.operation.get_asm(print_generic_op_form=True)
    return MLIRModule(rewrite_text(text, patterns))
