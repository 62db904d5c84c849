"""torch.compile(model, backend=mlc_lab.torch_backend): equals eager; unsupported graphs fall back to eager."""

from __future__ import annotations

import logging

import pytest
import torch

import mlc_lab
from mlc_lab import zoo
from mlc_lab.interop.torch_dynamo import make_torch_backend


@pytest.mark.parametrize("name", zoo.names())
def test_torch_compile_equals_eager(name: str) -> None:
    torch._dynamo.reset()
    m = zoo.load(name)
    compiled = torch.compile(m.module, backend=mlc_lab.torch_backend)
    with torch.no_grad():
        out = compiled(*m.example_inputs)
    torch.testing.assert_close(out, torch.from_numpy(m.torch_outputs()[0]), atol=1e-4, rtol=0)


def test_other_mlc_backend() -> None:
    torch._dynamo.reset()
    m = zoo.load("mlp")
    compiled = torch.compile(m.module, backend=make_torch_backend("interpreter"))
    with torch.no_grad():
        out = compiled(*m.example_inputs)
    torch.testing.assert_close(out, torch.from_numpy(m.torch_outputs()[0]), atol=1e-4, rtol=0)


class _Unsupported(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(torch.relu(x), 0) + 1  # no converter for cumsum (taken out of the table below)


def test_unsupported_graph_falls_back_to_eager(caplog, monkeypatch) -> None:
    from mlc_lab.frontends.torch import ATEN_OPS

    monkeypatch.delitem(ATEN_OPS, torch.ops.aten.cumsum.default)  # converted since issue 13
    torch._dynamo.reset()
    x = torch.randn(4, 3)
    with caplog.at_level(logging.WARNING, logger="mlc_lab.interop.torch_dynamo"):
        out = torch.compile(_Unsupported(), backend=mlc_lab.torch_backend)(x)
    torch.testing.assert_close(out, _Unsupported()(x))
    assert "running graph eagerly" in caplog.text and "cumsum" in caplog.text
