"""The ops real models use, through the PyTorch frontend, on the user's own data (not folded away).

One small module uses them all on run-time inputs (float activations, int64 ids, an int64 mask): lookups
(embedding, gather, index_select, x[idx]), comparisons, masks (masked_fill, where, triu/tril, &, |, ~),
cumsum, repeat/tile/stack, rms_norm; its many outputs must equal PyTorch's, dtypes included, on the
interpreter, TVM and MLIR. Static sub-graphs (arange, ones, masks built from them) are folded at import.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mlc_lab
from mlc_lab.api import import_model
from mlc_lab.frontends.errors import UnsupportedOpError
from mlc_lab.ir.interpreter import InterpreterError


class RealModelOps(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(7, 4))
        self.scale = torch.nn.Parameter(torch.rand(6) + 0.5)

    def forward(self, x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor):
        keep = mask.bool()
        picked = torch.gather(x, 2, ids.unsqueeze(-1).expand(2, 5, 3))
        masked = x.masked_fill(~keep[..., None], -1.0)
        square = x[..., :5]
        triangles = torch.triu(square) + 2 * torch.tril(square, -1)
        leaky = torch.where(x > 0, x, x * 0.1)
        flags = ((ids == 3) | (ids >= 4)) & (mask != 0)
        positions = torch.cumsum(mask, dim=1) * mask + ids.new_ones((2, 5))
        return (
            F.embedding(ids, self.table),
            picked,
            masked,
            triangles,
            leaky,
            flags,
            positions,
            torch.stack([x, leaky], dim=1),
            x.repeat(1, 2, 1) + torch.tile(x, (2, 1)),
            F.rms_norm(x, (6,), self.scale, eps=1e-6),
            x[:, ids[0]],
            x[ids[1] // 3, ids[0]],
            torch.index_select(x, 2, ids[0]),
        )


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 6, generator=g)
    ids = torch.randint(0, 6, (2, 5), generator=g)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])
    return x, ids, mask


@pytest.fixture(scope="module")
def imported():
    torch.manual_seed(0)
    model = RealModelOps().eval()
    args = _inputs()
    with torch.no_grad():
        expected = model(*args)
    return model, args, expected, import_model(model, args)


@pytest.mark.parametrize("backend", ["interpreter", "tvm", "mlir"])
def test_real_model_ops_equal_pytorch(imported, backend: str) -> None:
    _, args, expected, graph = imported
    got = mlc_lab.compile(graph, backend=backend)(*args)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, f"output {i}: {g.dtype} {tuple(g.shape)}"
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-5, err_msg=f"output {i}")


def test_ops_on_user_data_stay_in_the_graph(imported) -> None:
    """Nothing that reads an input is folded: the lookups and comparisons are real graph ops."""
    ops = {n.op for n in imported[3].nodes}
    assert {"take", "where", "equal", "greater_equal", "logical_or", "logical_and", "logical_not"} <= ops


def test_static_subgraphs_are_folded_at_import() -> None:
    """arange/ones/triu on constants become one constant; only the add that reads x is converted."""

    class CausalBias(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = x.shape[-1]
            positions = torch.arange(n)
            allowed = positions[None, :] <= positions[:, None]
            return x + torch.zeros(n, n).masked_fill(~allowed, -1e4)

    x = torch.randn(2, 4, 4)
    graph = import_model(CausalBias().eval(), (x,))
    assert sorted(n.op for n in graph.nodes) == ["add", "constant", "input"]
    np.testing.assert_array_equal(mlc_lab.compile(graph, backend="interpreter")(x).numpy(), CausalBias()(x).numpy())


def test_out_of_range_position_is_named_by_the_interpreter() -> None:
    table = torch.nn.Embedding(4, 2).eval()
    compiled = mlc_lab.compile(table, (torch.tensor([0, 1]),), backend="interpreter")
    with pytest.raises(InterpreterError, match=r"%embedding \(take\).*position 9 is out of range for axis 0 of size 4"):
        compiled(torch.tensor([0, 9]))


def test_grad_mode_regions_are_inlined() -> None:
    """`with torch.no_grad():` in forward becomes a `wrap_with_set_grad_enabled` region in the export;
    its ops are converted inline (and a static region, a mask from constants, is folded)."""

    class GradModes(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                y = self.linear(x) * 2
            with torch.no_grad():
                keep = torch.ones(4, 4).tril() > 0
                z = y.relu().masked_fill(~keep[:2], 0.5)
            return z

    model, x = GradModes().eval(), torch.randn(2, 4)
    exported = torch.export.export(model, (x,))
    assert any(n.target is torch.ops.higher_order.wrap_with_set_grad_enabled for n in exported.graph.nodes)
    compiled = mlc_lab.compile(model, (x,), backend="interpreter")
    with torch.no_grad():
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


class LayerOps(torch.nn.Module):
    """The layers of audio, video, segmentation and generative models: 1-d/3-d convolution and pooling,
    transposed convolution, group/instance norm, flip/roll, nearest and (bi)linear interpolation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv1d(3, 4, 3, stride=2, padding=1, dilation=1)
        self.conv3 = torch.nn.Conv3d(3, 4, (2, 3, 3), stride=(2, 1, 1), padding=(1, 1, 0), groups=1)
        self.up1 = torch.nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1)
        self.up2 = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.group = torch.nn.GroupNorm(2, 4)
        self.instance = torch.nn.InstanceNorm2d(2, affine=True)
        with torch.no_grad():  # not the identity affine map a fresh layer starts with
            for norm in (self.group, self.instance):
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.5, 0.5)

    def forward(self, seq: torch.Tensor, img: torch.Tensor, vol: torch.Tensor):
        return (
            self.conv1(seq),
            F.conv1d(seq, self.conv1.weight, padding="same"),
            self.conv3(vol),
            self.up1(seq),
            self.up2(torch.cat([img, img.flip(1)], dim=1)),
            F.max_pool1d(seq, 3, stride=2, padding=1),
            F.avg_pool1d(seq, 2, ceil_mode=True, count_include_pad=False),
            F.max_pool3d(vol, (2, 2, 2), stride=(1, 2, 2)),
            F.avg_pool3d(vol, 2, padding=(1, 0, 0)),
            self.group(self.conv3(vol)),
            self.instance(img),
            F.instance_norm(seq),
            torch.flip(img, [1, -1]),
            torch.roll(img, shifts=(1, -2), dims=(2, 3)) + torch.roll(img, 5),
            F.interpolate(img, scale_factor=2, mode="nearest"),
            F.interpolate(img, size=(5, 9), mode="nearest"),
            F.interpolate(img, size=(5, 9), mode="bilinear", align_corners=False),
            F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=True),
            F.interpolate(seq, scale_factor=1.5, mode="linear"),
            F.interpolate(img, size=(4, 10), mode="nearest-exact"),
        )


@pytest.fixture(scope="module")
def layers():
    torch.manual_seed(0)
    model = LayerOps().eval()
    g = torch.Generator().manual_seed(1)
    args = (
        torch.randn(2, 3, 9, generator=g),
        torch.randn(1, 2, 6, 7, generator=g),
        torch.randn(1, 3, 4, 5, 6, generator=g),
    )
    with torch.no_grad():
        expected = model(*args)
    return args, expected, import_model(model, args)


@pytest.mark.parametrize("backend", ["interpreter", "tvm", "mlir"])
def test_layer_ops_equal_pytorch(layers, backend: str) -> None:
    args, expected, graph = layers
    got = mlc_lab.compile(graph, backend=backend)(*args)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, f"output {i}: {g.dtype} {tuple(g.shape)}"
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-4, atol=1e-5, err_msg=f"output {i}")


def test_3d_transposed_convolution_is_refused_before_conversion() -> None:
    """No composition for it: listed up front with its node, like every op the table lacks."""
    model = torch.nn.ConvTranspose3d(2, 2, 2).eval()
    with pytest.raises(
        UnsupportedOpError,
        match=r"cannot convert: aten\.conv_transpose3d\.input\n.*no converter \(1 node: %conv_transpose3d\)",
    ):
        import_model(model, (torch.randn(1, 2, 3, 3, 3),))
    weight = torch.nn.Parameter(torch.randn(2, 2, 2, 2, 2))  # the same layer as aten.convolution: refused by name

    def convolution(x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.convolution(x, weight, None, [1] * 3, [0] * 3, [1] * 3, True, [0] * 3, 1)

    with pytest.raises(UnsupportedOpError, match=r"aten\.convolution.*3-d transposed convolution is not supported"):
        import_model(_Fn(convolution), (torch.randn(1, 2, 3, 3, 3),))


class _Fn(torch.nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)
