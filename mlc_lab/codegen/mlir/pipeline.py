"""The upstream MLIR pass pipeline, as named stages a chapter can print one by one.

Each stage is a textual pass pipeline run by MLIR's PassManager (or, for tiling, a transform-dialect
script run by the transform interpreter). `lower_stages(module)` runs them in order and returns the
IR after each, so the reader sees tensors become tiles, then buffers, then loops, then LLVM.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.passmanager import PassManager

from mlc_lab.codegen.mlir.module import MLIRModule, MLIRVerificationError, _diagnostics, parse, verify


@dataclass(frozen=True)
class Stage:
    """A named step: a PassManager pipeline string, or a Python function that rewrites the module."""

    name: str
    passes: str | Callable[[ir.Module], None]
    why: str = ""

    def run(self, module: ir.Module) -> None:
        if callable(self.passes):
            self.passes(module)
        else:
            run_passes(module, self.passes)
        verify(module)


def run_passes(module: ir.Module, pipeline: str) -> None:
    """Run a `builtin.module(...)` pipeline in place; failures raise with MLIR's diagnostics."""
    with module.context:
        pm = PassManager.parse(f"builtin.module({pipeline})")
        try:
            pm.run(module.operation)
        except ir.MLIRError as e:
            raise MLIRVerificationError(f"pass pipeline {pipeline!r} failed", _diagnostics(e)) from None


# -- tiling with the transform dialect ----------------------------------------------------------------
#: Tile sizes per named op: the outer parallel loops become scf.for loops over tiles.
TILE_SIZES: dict[str, Sequence[int]] = {
    "linalg.matmul": (8, 32),
    "linalg.batch_matmul": (1, 8, 32),
    "linalg.conv_2d_nchw_fchw": (1, 8, 4),
    "linalg.conv_2d_nhwc_hwcf": (1, 4, 4, 8),
}
#: For generics with a reduction loop (matmuls that elementwise fusion turned into generics, norms):
#: the last two parallel loops get these sizes, outer parallel loops 1, reduction loops stay whole.
GENERIC_TILE = (8, 32)


def generic_tile_sizes(iterator_types: Sequence[str], inner: Sequence[int] = GENERIC_TILE) -> tuple[int, ...]:
    """["parallel", "parallel", "reduction"] -> (8, 32, 0)."""
    parallel = [i for i, t in enumerate(iterator_types) if t == "parallel"]
    sizes = [0] * len(iterator_types)
    for i in parallel:
        sizes[i] = 1
    for i, size in zip(parallel[-len(inner) :], inner[-len(parallel) :]):
        sizes[i] = size
    return tuple(sizes)


def _tag_reductions(module: ir.Module) -> dict[str, tuple[int, ...]]:
    """Mark each reducing linalg.generic with a unit attribute naming its tile sizes; return tag -> sizes."""
    tags: dict[tuple[int, ...], str] = {}

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == "linalg.generic":
            kinds = re.findall(r"iterator_type<(\w+)>", str(op.attributes["iterator_types"]))
            if "reduction" in kinds and "parallel" in kinds:
                sizes = generic_tile_sizes(kinds)
                tag = tags.setdefault(sizes, f"mlc_tile_{len(tags)}")
                op.attributes[tag] = ir.UnitAttr.get()
        return ir.WalkResult.ADVANCE

    with module.context:
        module.operation.walk(visit)
    return {tag: sizes for sizes, tag in tags.items()}


def tiling_script(
    tile_sizes: dict[str, Sequence[int]] = TILE_SIZES, tags: dict[str, Sequence[int]] | None = None
) -> str:
    """A transform-dialect script: match ops (by name, or by tag attribute), tile each with `tile_using_for`."""
    targets = [(f'ops{{["{op}"]}}', sizes) for op, sizes in tile_sizes.items()]
    targets += [(f"attributes{{{tag}}}", sizes) for tag, sizes in (tags or {}).items()]
    lines = []
    for k, (what, sizes) in enumerate(targets):
        loops = sum(1 for s in sizes if s)
        results = ", ".join(["!transform.any_op"] * (loops + 1))
        lines.append(
            f"    %m{k} = transform.structured.match {what} in %root : (!transform.any_op) -> !transform.any_op"
        )
        lines.append(
            f"    %t{k}, %l{k}:{loops} = transform.structured.tile_using_for %m{k} tile_sizes "
            f"[{', '.join(map(str, sizes))}] : (!transform.any_op) -> ({results})"
        )
    body = "\n".join(lines)
    return (
        "module attributes {transform.with_named_sequence} {\n"
        "  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {\n"
        f"{body}\n    transform.yield\n  }}\n}}\n"
    )


def tile(module: ir.Module, tile_sizes: dict[str, Sequence[int]] = TILE_SIZES) -> None:
    """Tile named ops and reducing generics with the transform interpreter, then clean up."""
    from torch_mlir.dialects.transform import interpreter

    tags = _tag_reductions(module)
    with module.context:
        script = ir.Module.parse(tiling_script(tile_sizes, tags))
        sequence = script.body.operations[0]
        try:
            interpreter.apply_named_sequence(module.operation, sequence, script)
        except ir.MLIRError as e:
            raise MLIRVerificationError("tiling (transform dialect) failed", _diagnostics(e)) from None
        _untag(module, tags)
    run_passes(module, "canonicalize,cse")


def _untag(module: ir.Module, tags: dict[str, Sequence[int]]) -> None:
    def visit(op: ir.Operation) -> ir.WalkResult:
        for tag in tags:
            if tag in op.attributes:
                del op.attributes[tag]
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)


# -- the stages ---------------------------------------------------------------------------------------
BUFFERIZE = (
    "one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},"
    "buffer-results-to-out-params{hoist-static-allocs modify-public-functions},"
    "canonicalize,cse"
)
TO_LLVM = (
    "convert-scf-to-cf,expand-strided-metadata,lower-affine,"
    "func.func(math-expand-ops),convert-math-to-libm,convert-to-llvm,reconcile-unrealized-casts"
)

STAGES: list[Stage] = [
    Stage("canonicalize", "inline,canonicalize,cse", "inline fused-group functions, fold reshapes, share constants"),
    Stage("elementwise-fusion", "linalg-fuse-elementwise-ops,canonicalize,cse", "chains of generics become one"),
    Stage("tiling", tile, "transform dialect: matmuls and convolutions become loops over tiles"),
    Stage("bufferize", BUFFERIZE, "tensors become memrefs; results become out-parameters"),
    Stage("loops", "func.func(convert-linalg-to-loops),canonicalize", "every linalg op becomes scf.for loops"),
    Stage("llvm", TO_LLVM, "scf/cf/arith/math/memref to the LLVM dialect"),
]


def lower_stages(module: MLIRModule, stages: Sequence[Stage] = STAGES, elide: bool = True) -> list[tuple[str, str]]:
    """Run `stages` on a copy of `module`; return [(stage name, IR text after it)], input first."""
    return [(name, m.asm(elide=elide)) for name, m in lower(module, stages)]


def lower(module: MLIRModule, stages: Sequence[Stage] = STAGES) -> list[tuple[str, MLIRModule]]:
    """Like `lower_stages`, keeping a module per stage (re-parsed copies: each stays inspectable)."""
    current = parse(module.text)
    out = [("input", MLIRModule(module.text, current))]
    for stage in stages:
        current = parse(current.operation.get_asm())
        stage.run(current)
        out.append((stage.name, MLIRModule(_source(current), current)))
    return out


def _source(module: ir.Module) -> str:
    return module.operation.get_asm(enable_debug_info=True)


def lower_to_llvm(module: MLIRModule, stages: Sequence[Stage] = STAGES) -> MLIRModule:
    """Run every stage in place on one copy (no per-stage copies): the LLVM-dialect module for the JIT.

    Public functions get `llvm.emit_c_interface`, the wrapper ExecutionEngine.invoke calls.
    """
    current = parse(module.text)
    with current.context:
        for op in current.body.operations:
            if "sym_visibility" not in op.attributes:
                op.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
    for stage in stages:
        stage.run(current)
    return MLIRModule(_source(current), current)
