"""Frontends: import models from other frameworks into the mlc_lab graph IR.

`from_torch` is a thin wrapper so that `import mlc_lab` stays cheap: PyTorch is imported only when a
model is actually converted.
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
