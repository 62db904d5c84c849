"""Frontends: import models from other frameworks into the mlc_lab graph IR.

`base` holds what every frontend shares (the converter context, `same(...)` entries for 1:1 ops, the
check that lists every unsupported op before converting, the type checks); `torch`, `onnx` and
`tensorflow` are each a walker over that framework's graph plus a table from its ops to converters.
Supporting a new op is a table line: `aten.mish.default: same("mish")` in `torch.ATEN_OPS`,
`"Mish": OnnxOp(same("mish"), 22)` in `onnx.ONNX_OPS`, `"Mish": same("mish")` in `tensorflow.TF_OPS`
(or a short converter where the op is not 1:1).

`from_torch` is a thin wrapper so that `import mlc_lab` stays cheap: PyTorch is imported only when a
model is actually converted. `mlc_lab.frontends.onnx` and `.tensorflow` never import PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from mlc_lab.ir.graph import Graph

__all__ = ["from_torch"]


def from_torch(
    model: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...] | torch.Tensor,
    name: str | None = None,
) -> Graph:
    """Convert a PyTorch module into a verified mlc_lab Graph (see `mlc_lab.frontends.torch.from_torch`)."""
    from mlc_lab.frontends.torch import from_torch as _from_torch

    return _from_torch(model, example_inputs, name)
