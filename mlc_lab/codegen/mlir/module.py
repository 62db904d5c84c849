"""An emitted MLIR module: its full text plus the upstream bindings' parsed and verified Module.

We hold the module in torch-mlir's build of the MLIR bindings (it has every upstream dialect and
pass, and the ExecutionEngine); IREE's build has its own classes, so IREE gets the text.
Verifier diagnostics are turned into `MLIRVerificationError`, whose message lists each error with
its location: the op's `loc("<node name>")`, so the graph node is named.
"""

from __future__ import annotations

import sys
from typing import Any

from mlc_lab.errors import MlcLabError

if "tensorflow" in sys.modules and "torch_mlir.ir" not in sys.modules:
    # TensorFlow and torch-mlir each link LLVM; loaded in this order, LLVM aborts the process
    # ("Option 'print-inst-addrs' registered more than once"). The other order works.
    raise ImportError(
        "the MLIR backend must be loaded before TensorFlow (both bundle LLVM): import mlc_lab.codegen.mlir "
        "(or mlc_lab.frontends.tensorflow, which does it for you) before `import tensorflow`"
    )

from torch_mlir import ir  # noqa: E402


class MLIRVerificationError(MlcLabError, ValueError):
    """MLIR's parser or verifier rejected a module; `diagnostics` holds (location, message) pairs."""

    def __init__(self, what: str, diagnostics: list[tuple[str, str]]) -> None:
        self.diagnostics = diagnostics
        lines = [f"{what}:"] + [f"  {loc}: {msg}" for loc, msg in diagnostics]
        super().__init__("\n".join(lines))


def _diagnostics(error: ir.MLIRError) -> list[tuple[str, str]]:
    out = []
    for d in error.error_diagnostics:
        out.append((str(d.location), d.message))
        out += [(str(n.location), "note: " + n.message) for n in d.notes]
    return out or [("?", error.message)]


def new_context() -> ir.Context:
    """A context with every upstream dialect registered (torch-mlir's registry)."""
    context = ir.Context()
    try:
        from torch_mlir.dialects import torch as _torch  # noqa: F401  (torch dialect, for its IR)
    except ImportError:  # pragma: no cover
        pass
    return context


def parse(text: str, context: ir.Context | None = None) -> ir.Module:
    """Parse and verify `text`; raise `MLIRVerificationError` with every diagnostic, never swallow them."""
    context = context or new_context()
    with context:
        try:
            module = ir.Module.parse(text)
        except ir.MLIRError as e:
            raise MLIRVerificationError("MLIR rejected the module", _diagnostics(e)) from None
        verify(module)
    return module


def verify(module: ir.Module) -> None:
    try:
        module.operation.verify()
    except ir.MLIRError as e:
        raise MLIRVerificationError("MLIR's verifier rejected the module", _diagnostics(e)) from None


class MLIRModule:
    """A verified module. `str()` prints it with large constants elided; `.text` is the full source."""

    def __init__(self, text: str, module: ir.Module | None = None) -> None:
        self.text = text
        self.module = module if module is not None else parse(text)

    def __str__(self) -> str:
        return self.asm(elide=True)

    def asm(self, elide: bool = True, debug_info: bool = False) -> str:
        """The bindings' printout; `elide` shows big weights as `dense_resource<__elided__>`."""
        return self.module.operation.get_asm(
            large_elements_limit=16 if elide else None,
            enable_debug_info=debug_info,
            use_name_loc_as_prefix=True,
        )

    @property
    def context(self) -> Any:
        return self.module.context

    def op_counts(self) -> dict[str, int]:
        """How many of each op the module holds (walking the real IR, regions included)."""
        counts: dict[str, int] = {}

        def visit(op: Any) -> ir.WalkResult:
            counts[op.name] = counts.get(op.name, 0) + 1
            return ir.WalkResult.ADVANCE

        self.module.operation.walk(visit)
        counts.pop("builtin.module", None)
        return counts

    def __repr__(self) -> str:
        return f"<MLIRModule: {sum(self.op_counts().values())} ops, {len(self.text)} chars of source>"
