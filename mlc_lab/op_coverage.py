"""Which backend can run which op, asked of the backends themselves: the check behind "add an op end to end".

A backend runs an op if it lowers it natively or the op has a decomposition (the `Decompose` pass
lowers it to simpler ops first, see `mlc_lab.passes.decompose`). Natively means:

- interpreter and simulators: the op has a reference compute (its own, or derived from a scalar
  definition or a decomposition);
- tvm: a TE function (`TE_OPS`, or derived from the op's scalar definition);
- mlir: an emitter (`EMITTERS`, or the elementwise one for an op with a scalar definition).

    check_op_coverage()          # raises OpCoverageError naming every op a backend cannot run, and why
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.ops import OPS, get_op, is_source


class OpCoverageError(MlcLabError, LookupError):
    """A registered op that some backend can neither lower nor decompose; the message names both."""


def _reference(op: str) -> bool:
    return get_op(op).compute is not None


def _tvm(op: str) -> bool:
    from mlc_lab.codegen.tvm.te_ops.elementwise import te_function

    return op == "fused" or te_function(op) is not None  # a fused group is its ops, composed (lower.compose)


def _mlir(op: str) -> bool:
    from mlc_lab.codegen.mlir.ops import emitter_for

    return emitter_for(op) is not None


#: Backend -> (does it lower this op itself?, what it would need, in words for the error message).
NATIVE: dict[str, tuple[Callable[[str], bool], str]] = {
    "interpreter": (_reference, "a reference compute (compute=, scalar= or decompose=)"),
    "tvm": (_tvm, "a TE function (mlc_lab.codegen.tvm TE_OPS) or a scalar definition (scalar=)"),
    "mlir": (_mlir, "an MLIR emitter (mlc_lab.codegen.mlir.ops EMITTERS) or a scalar definition (scalar=)"),
    "simulators": (_reference, "a reference compute (compute=, scalar= or decompose=)"),
}


def missing_lowerings(ops: Iterable[str] | None = None, backends: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Backend -> the ops (default: all registered) it has neither a native lowering nor a decomposition for."""
    names = sorted(OPS if ops is None else ops)
    missing: dict[str, list[str]] = {}
    for backend in backends or NATIVE:
        native, _ = NATIVE[backend]
        gaps = [op for op in names if not is_source(op) and get_op(op).decompose is None and not native(op)]
        if gaps:
            missing[backend] = gaps
    return missing


def check_op_coverage(ops: Iterable[str] | None = None, backends: Iterable[str] | None = None) -> None:
    """Raise OpCoverageError listing, per backend, each op it cannot run and the piece that is missing."""
    missing = missing_lowerings(ops, backends)
    if missing:
        lines = [
            f"{backend}: op {op!r} needs {NATIVE[backend][1]}, or a decomposition (decompose=)"
            for backend, gaps in missing.items()
            for op in gaps
        ]
        raise OpCoverageError("ops some backend cannot run: " + "; ".join(lines))
