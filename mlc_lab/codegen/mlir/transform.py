"""Applying a transform-dialect script, and running one pipeline on a copy: the chapter's building blocks.

The transform dialect writes *how to transform* IR as IR: a `transform.named_sequence
@__transform_main` whose ops match payload ops (`transform.structured.match`) and transform them
(`transform.structured.tile_using_for`, fuse, vectorize...). The `transform-interpreter` pass finds
that sequence in the module and executes it on the rest. `apply_transform` puts a sequence into a
copy of a module, runs the interpreter pass, removes the sequence again and cleans up.
"""

from __future__ import annotations

from torch_mlir import ir

from mlc_lab.codegen.mlir.module import MLIRModule, MLIRVerificationError, _diagnostics, parse, verify
from mlc_lab.codegen.mlir.pipeline import run_passes

WITH_SEQUENCES = "transform.with_named_sequence"


def after(module: MLIRModule, passes: str) -> MLIRModule:
    """A copy of `module` after the pass pipeline `passes` (verified; `module` is left as it was)."""
    copy = parse(module.text)
    run_passes(copy, passes)
    verify(copy)
    return MLIRModule(copy.operation.get_asm(enable_debug_info=True), copy)


def apply_transform(module: MLIRModule, sequence: str, cleanup: str = "canonicalize,cse") -> MLIRModule:
    """A copy of `module` transformed by `sequence` (the text of a `transform.named_sequence
    @__transform_main`) through the `transform-interpreter` pass, then `cleanup`."""
    payload = parse(module.text)
    with payload.context:
        try:
            script = ir.Module.parse(f"module attributes {{{WITH_SEQUENCES}}} {{\n{sequence}\n}}")
        except ir.MLIRError as e:
            raise MLIRVerificationError("the transform script does not parse", _diagnostics(e)) from None
        entries = [op for op in script.body.operations if op.name == "transform.named_sequence"]
        if not entries:
            raise MLIRVerificationError("the transform script has no transform.named_sequence", [])
        payload.operation.attributes[WITH_SEQUENCES] = ir.UnitAttr.get()
        for op in entries:
            op.operation.detach_from_parent()
            payload.body.append(op.operation)
        try:
            run_passes(payload, "transform-interpreter")
        finally:
            for op in list(payload.body.operations):
                if op.name == "transform.named_sequence":
                    op.operation.erase()
            del payload.operation.attributes[WITH_SEQUENCES]
    if cleanup:
        run_passes(payload, cleanup)
    verify(payload)
    return MLIRModule(payload.operation.get_asm(enable_debug_info=True), payload)
