"""The PyTorch frontend: every converter against PyTorch's own answers, and its error messages."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mlc_lab
from mlc_lab.frontends.torch import _RENAME, ATEN_OPS, FrontendError, UnsupportedOpError, from_torch, supported_ops
from mlc_lab.ir import interpret

aten = torch.ops.aten


class Fn(nn.Module):
    """Wrap a function as a module, so each test is one line of PyTorch."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def check(module: nn.Module, *inputs: torch.Tensor, atol: float = 1e-4) -> mlc_lab.Graph:
    """Convert, verify, run the interpreter and compare every output with PyTorch's."""
    graph = from_torch(module, inputs)
    graph.verify()
    with torch.no_grad():
        expected = module.eval()(*inputs)  # from_torch leaves train/eval flags as it found them
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    got = interpret(graph, *[t.numpy() for t in inputs])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == tuple(e.shape)
        assert g.dtype == e.numpy().dtype
        np.testing.assert_allclose(g, e.numpy(), atol=atol, rtol=0)
    return graph


def ops(graph: mlc_lab.Graph) -> dict[str, int]:
    return graph.op_counts()


# -- layers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_channels=3, out_channels=8, kernel_size=3),
        dict(in_channels=3, out_channels=8, kernel_size=3, stride=2, padding=1),
        dict(in_channels=3, out_channels=8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2)),
        dict(in_channels=3, out_channels=4, kernel_size=3, dilation=2, padding=2),
        dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, padding=1),
        dict(in_channels=4, out_channels=4, kernel_size=3, groups=4, padding=1, stride=2),  # depthwise
        dict(in_channels=4, out_channels=8, kernel_size=1, bias=False),
        dict(in_channels=3, out_channels=4, kernel_size=4, padding="same"),  # odd total padding: extra at the end
        dict(in_channels=3, out_channels=4, kernel_size=3, padding="same", dilation=2),
        dict(in_channels=3, out_channels=4, kernel_size=3, padding="valid"),
    ],
)
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv2d(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(**kwargs)
    graph = check(conv, rand(1, kwargs["in_channels"], 11, 10))
    assert ops(graph)["conv2d"] == 1
    assert ops(graph).get("bias_add", 0) == (1 if kwargs.get("bias", True) else 0)
    node = next(n for n in graph.ops if n.op == "conv2d")
    assert node.attrs["groups"] == kwargs.get("groups", 1)


def test_conv2d_on_unbatched_input():
    """PyTorch convolves an unbatched (C, H, W) input; so does the frontend (a batch of one)."""
    torch.manual_seed(0)
    check(nn.Conv2d(3, 4, 3), rand(3, 8, 8))


@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias):
    torch.manual_seed(0)
    graph = check(nn.Linear(6, 5, bias=bias), rand(2, 3, 6))
    assert ops(graph) == ({"dense": 1, "bias_add": 1} if bias else {"dense": 1})


def _random_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    with torch.no_grad():
        bn.running_mean.copy_(rand(bn.num_features, seed=1))
        bn.running_var.copy_(rand(bn.num_features, seed=2).abs() + 0.5)
        if bn.affine:
            bn.weight.copy_(rand(bn.num_features, seed=3))
            bn.bias.copy_(rand(bn.num_features, seed=4))
    return bn


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_inference(affine):
    graph = check(_random_bn(nn.BatchNorm2d(4, affine=affine, eps=1e-3)), rand(1, 4, 5, 5))
    (bn,) = [n for n in graph.ops if n.op == "batch_norm"]
    assert bn.attrs["eps"] == 1e-3
    assert graph.node("running_var").op == "constant"


def test_batch_norm_constants_are_named_after_the_module_path():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), _random_bn(nn.BatchNorm2d(4)))
    graph = check(model, rand(1, 3, 6, 6))
    names = {n.name for n in graph.constants}
    assert names == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"}
    np.testing.assert_array_equal(graph.node("1.running_mean").value, model[1].running_mean.numpy())


def test_batch_norm_in_training_mode_is_a_clear_error():
    bn = nn.BatchNorm2d(3)
    model = Fn(lambda x: F.batch_norm(x, bn.running_mean, bn.running_var, training=True))
    with pytest.raises(FrontendError, match=r"aten\.batch_norm\.default.*training mode.*model\.eval\(\)"):
        from_torch(model, rand(2, 3, 4, 4))


def test_batch_norm_without_running_stats_is_a_clear_error():
    with pytest.raises(FrontendError, match="training mode"):
        from_torch(nn.BatchNorm2d(3, track_running_stats=False), rand(2, 3, 4, 4))


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(affine):
    ln = nn.LayerNorm((4, 6), elementwise_affine=affine, eps=1e-6)
    if affine:
        with torch.no_grad():
            ln.weight.copy_(rand(4, 6, seed=1))
            ln.bias.copy_(rand(4, 6, seed=2))
    graph = check(ln, rand(2, 4, 6) * 3 + 1)
    (node,) = [n for n in graph.ops if n.op == "layer_norm"]
    assert node.attrs["axis"] == -2 and node.attrs["eps"] == 1e-6


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(2),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.MaxPool2d(2, stride=1, dilation=2),
        nn.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True),
        nn.AvgPool2d(2),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.AvgPool2d(3, stride=2, ceil_mode=True),
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    ],
    ids=repr,
)
def test_pools(pool):
    graph = check(pool, rand(1, 3, 9, 8))
    kind = "max_pool2d" if isinstance(pool, nn.MaxPool2d) else "avg_pool2d"
    assert ops(graph) == {kind: 1}


def test_avg_pool_divisor_override_is_rejected():
    with pytest.raises(FrontendError, match="divisor_override"):
        from_torch(nn.AvgPool2d(2, divisor_override=3), rand(1, 1, 4, 4))


def test_adaptive_avg_pool_to_1x1_is_global_pooling():
    graph = check(nn.AdaptiveAvgPool2d(1), rand(1, 3, 7, 5))
    assert ops(graph) == {"global_avg_pool2d": 1}


def test_adaptive_avg_pool_to_a_divisor_is_avg_pool():
    graph = check(nn.AdaptiveAvgPool2d((2, 3)), rand(1, 3, 8, 9))
    (node,) = graph.ops
    assert node.op == "avg_pool2d" and node.attrs["kernel"] == (4, 3)


def test_adaptive_avg_pool_uneven_is_a_clear_error():
    with pytest.raises(FrontendError, match=r"adaptive_avg_pool2d from 7x7 to 3x3"):
        from_torch(nn.AdaptiveAvgPool2d(3), rand(1, 3, 7, 7))


@pytest.mark.parametrize("fn", [lambda x: F.softmax(x, dim=1), lambda x: torch.log_softmax(x, -1), nn.Softmax(0)])
def test_softmax(fn):
    check(fn if isinstance(fn, nn.Module) else Fn(fn), rand(3, 4, 5) * 4)


# -- attention ----------------------------------------------------------------------------------------
def test_sdpa_is_decomposed():
    q, k, v = rand(1, 2, 5, 8, seed=1), rand(1, 2, 7, 8, seed=2), rand(1, 2, 7, 4, seed=3)
    graph = check(Fn(F.scaled_dot_product_attention), q, k, v)
    assert ops(graph) == {"transpose": 1, "matmul": 2, "mul": 1, "softmax": 1}


@pytest.mark.parametrize("shapes", [(6, 6), (4, 6), (6, 4)])
def test_sdpa_causal(shapes):
    q_len, k_len = shapes
    q, k, v = rand(2, q_len, 8, seed=1), rand(2, k_len, 8, seed=2), rand(2, k_len, 8, seed=3)
    graph = check(Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)), q, k, v)
    (mask,) = [n for n in graph.constants if n.name.endswith("causal_mask")]
    assert mask.shape == (q_len, k_len) and np.isneginf(mask.value[0, 1])


def test_sdpa_scale():
    q, k, v = rand(1, 3, 4, seed=1), rand(1, 3, 4, seed=2), rand(1, 3, 4, seed=3)
    graph = check(Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3)), q, k, v)
    (scale,) = [n for n in graph.constants if n.name.endswith("scale")]
    assert scale.value == np.float32(0.3)


class MaskedAttention(nn.Module):
    def forward(self, q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def test_sdpa_float_mask_input():
    q, k, v = rand(1, 2, 4, 8, seed=1), rand(1, 2, 6, 8, seed=2), rand(1, 2, 6, 8, seed=3)
    graph = check(MaskedAttention(), q, k, v, rand(4, 6, seed=4))
    assert [x.name for x in graph.inputs] == ["q", "k", "v", "mask"]


def test_sdpa_bool_mask_buffer():
    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mask", rand(4, 6, seed=5) > 0)

        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask)

    q, k, v = rand(1, 4, 8, seed=1), rand(1, 6, 8, seed=2), rand(1, 6, 8, seed=3)
    graph = check(Masked(), q, k, v)
    assert "log" not in ops(graph)  # a constant mask is turned into 0 / -inf at import time


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log")
def test_sdpa_bool_mask_input():
    q, k, v = rand(1, 4, 8, seed=1), rand(1, 6, 8, seed=2), rand(1, 6, 8, seed=3)
    mask = rand(4, 6, seed=6) > 0
    mask[:, 0] = True  # every query sees at least one key
    graph = check(MaskedAttention(), q, k, v, mask)
    assert graph.inputs[3].dtype == "bool"


def test_sdpa_dropout_is_rejected():
    q = rand(1, 3, 4)
    with pytest.raises(FrontendError, match="dropout_p=0.1"):
        from_torch(Fn(lambda q: F.scaled_dot_product_attention(q, q, q, dropout_p=0.1)), q)


# -- elementwise --------------------------------------------------------------------------------------
UNARY = {
    "relu": (torch.relu, "relu"),
    "sigmoid": (torch.sigmoid, "sigmoid"),
    "tanh": (torch.tanh, "tanh"),
    "silu": (F.silu, "silu"),
    "exp": (torch.exp, "exp"),
    "log": (lambda x: torch.log(x.abs() + 0.1), "log"),
    "sqrt": (lambda x: torch.sqrt(x.abs()), "sqrt"),
    "rsqrt": (lambda x: torch.rsqrt(x.abs() + 0.1), "rsqrt"),
    "erf": (torch.erf, "erf"),
    "neg": (torch.neg, "neg"),
    "abs": (torch.abs, "abs"),
    "gelu": (F.gelu, "gelu"),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), "gelu"),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 1.5), "clip"),
    "relu6": (lambda x: F.relu6(x * 4), "clip"),
    "clamp": (lambda x: x.clamp(-0.2, 0.7), "clip"),
    "clamp_min": (lambda x: x.clamp(min=0.1), "clip"),
    "hardsigmoid": (lambda x: F.hardsigmoid(x * 4), "clip"),
    "hardswish": (lambda x: F.hardswish(x * 4), "clip"),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), "maximum"),
    "square": (lambda x: x**2, "pow"),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name):
    fn, op = UNARY[name]
    graph = check(Fn(fn), rand(2, 3, 4))
    assert op in ops(graph)


def test_leaky_relu_with_a_large_slope_is_rejected():
    with pytest.raises(FrontendError, match="negative_slope=2"):
        from_torch(Fn(lambda x: F.leaky_relu(x, 2.0)), rand(3))


BINARY = {
    "add": lambda x, y: x + y,
    "add_alpha": lambda x, y: torch.add(x, y, alpha=2.5),
    "sub": lambda x, y: x - y,
    "sub_alpha_scalar": lambda x, y: torch.sub(x, 3, alpha=2) + y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / (y.abs() + 1),
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "pow": lambda x, y: torch.pow(x.abs() + 0.5, y),
    "rsub_tensor": lambda x, y: torch.rsub(x, y, alpha=3),
    "scalars": lambda x, y: (2 * x + 1.5) * y - 0.5 / (y * y + 1),  # 0.5 / t is aten.reciprocal
    "rsub_scalar": lambda x, y: 1 - x * y,
    "int_scalar": lambda x, y: x * 3 + y / 2,
}


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (3, 1)), ((1, 4), (3, 1))], ids=str)
def test_binary_broadcasting(name, shapes):
    check(Fn(BINARY[name]), rand(*shapes[0], seed=1), rand(*shapes[1], seed=2))


def test_scalars_become_constants_of_the_operand_dtype():
    graph = check(Fn(lambda x: x * 2 + 1), rand(3))
    scalars = [n for n in graph.constants if n.shape == ()]
    assert len(scalars) == 2 and all(n.dtype == "float32" for n in scalars)
    assert sorted(float(n.value) for n in scalars) == [1.0, 2.0]


def test_type_promotion_casts_int_inputs():
    x = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    graph = check(Fn(lambda x: x * 0.5 + x), x)
    assert "cast" in ops(graph)


def test_integer_arithmetic_stays_integer():
    x = torch.arange(6, dtype=torch.int64).reshape(2, 3)
    graph = check(Fn(lambda x: x * 3 - 1), x)
    assert graph.outputs[0].dtype == "int64" and "cast" not in ops(graph)


def test_division_with_rounding_mode_is_rejected():
    with pytest.raises(FrontendError, match="rounding_mode='floor'"):
        from_torch(Fn(lambda x: torch.div(x, 2, rounding_mode="floor")), rand(3))


def test_casts():
    graph = check(Fn(lambda x: (x * 3).to(torch.int32).float() + x.double().float()), rand(2, 5))
    casts = [n.attrs["dtype"] for n in graph.ops if n.op == "cast"]
    assert sorted(casts) == ["float32", "float32", "float64", "int32"]


# -- matrix products and reductions -------------------------------------------------------------------
@pytest.mark.parametrize(
    "shapes",
    [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 5)), ((2, 3, 4), (4,)), ((4,), (4,))],
    ids=str,
)
def test_matmul(shapes):
    check(Fn(torch.matmul), rand(*shapes[0], seed=1), rand(*shapes[1], seed=2))


def test_mm_and_bmm():
    graph = check(Fn(lambda a, b: torch.mm(a[0], b[0]) + torch.bmm(a, b)), rand(2, 3, 4, seed=1), rand(2, 4, 5, seed=2))
    assert ops(graph)["matmul"] == 2


REDUCTIONS = {
    "mean_dim": lambda x: x.mean(dim=1),
    "mean_keepdim": lambda x: x.mean(dim=(1, -1), keepdim=True),
    "mean_all": lambda x: x.mean(),
    "sum_dims": lambda x: x.sum(dim=[0, 2]),
    "sum_all": lambda x: x.sum(),
    "amax": lambda x: x.amax(dim=-1),
    "amin_keepdim": lambda x: x.amin(dim=1, keepdim=True),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions(name):
    check(Fn(REDUCTIONS[name]), rand(2, 3, 4))


# -- shapes ---------------------------------------------------------------------------------------------
SHAPES = {
    "view": lambda x: x.view(4, -1),
    "reshape": lambda x: x.permute(0, 2, 1).reshape(2, 12),  # non-contiguous: reshape, not view
    "flatten": lambda x: torch.flatten(x),
    "flatten_middle": lambda x: x.unsqueeze(-1).flatten(1, 2),
    "permute": lambda x: x.permute(2, -3, 1),
    "transpose": lambda x: x.transpose(0, -1),
    "t": lambda x: x[0].t(),
    "unsqueeze": lambda x: x.unsqueeze(-2),
    "squeeze": lambda x: x[:, :1].squeeze(),
    "squeeze_dim": lambda x: x[:, :1].squeeze(1),
    "squeeze_dims": lambda x: x[:1, :1].squeeze((0, 1)),
    "expand": lambda x: x[:, :1].expand(2, 3, 4),
    "expand_new_axes": lambda x: x[:, :1].expand(5, -1, -1, 4),
    "cat": lambda x: torch.cat([x, x * 2, x[:, :1]], dim=1),
    "cat_last": lambda x: torch.cat([x, -x], dim=-1),
    "slice": lambda x: x[:, 1:, ::2],
    "slice_negative": lambda x: x[..., -3:-1],
    "select": lambda x: x[1, :, -1],
    "split": lambda x: torch.split(x, 3, dim=2)[1],
    "split_sizes": lambda x: torch.split(x, [1, 2], dim=1)[1],
    "chunk_uneven": lambda x: torch.chunk(x, 3, dim=-1)[-1],
    "unbind": lambda x: torch.unbind(x, 1)[2],
    "pad": lambda x: F.pad(x, (1, 2, 0, 3), value=0.5),
    "constant_pad_nd": lambda x: torch.constant_pad_nd(x, (2, 1)),
    "identities": lambda x: F.dropout(x.clone().contiguous().detach(), 0.5, training=False),
    "alias": lambda x: torch.ops.aten.alias(x) + 1,
    "lifted_constant": lambda x: x + torch.tensor([1.0, 2.0, 3.0, 4.0]),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_shapes(name):
    check(Fn(SHAPES[name]), rand(2, 3, 4))


DIRECT_ATEN_CALLS = {  # overloads torch.export produces only from some code paths: call them directly
    "add.Scalar": lambda x: aten.add.Scalar(x, 2, alpha=3),
    "sub.Scalar": lambda x: aten.sub.Scalar(x, 1.5),
    "mul.Scalar": lambda x: aten.mul.Scalar(x, -2),
    "div.Scalar": lambda x: aten.div.Scalar(x, 4),
    "_softmax": lambda x: aten._softmax(x, 1, False),
    "_log_softmax": lambda x: aten._log_softmax(x, -1, False),
    "_to_copy": lambda x: aten._to_copy(x, dtype=torch.float64).float() + aten._to_copy(x),
    "_unsafe_view": lambda x: aten._unsafe_view(x * 2, [6, 4]),
    "contiguous": lambda x: aten.contiguous(x.transpose(0, 1)),
}


@pytest.mark.parametrize("name", list(DIRECT_ATEN_CALLS))
def test_direct_aten_calls(name):
    model = Fn(DIRECT_ATEN_CALLS[name])
    targets = [str(n.target) for n in torch.export.export(model, (rand(2, 3, 4),)).graph.nodes]
    assert any(t.startswith(f"aten.{name}") for t in targets)  # the overload really reaches the importer
    check(model, rand(2, 3, 4))


def test_multi_output_ops_keep_only_used_pieces():
    graph = check(Fn(lambda x: torch.chunk(x, 4, dim=1)[1] + torch.split(x, 2, dim=1)[1]), rand(1, 8))
    assert ops(graph) == {"slice": 2, "add": 1}


def test_multiple_outputs_and_returned_inputs():
    graph = check(Fn(lambda x, y: (x + y, x, torch.relu(y), x + y)), rand(2, 3, seed=1), rand(2, 3, seed=2))
    assert len(graph.outputs) == 4 and graph.outputs[1] is graph.inputs[0]


def test_names_graph_inputs_and_constants():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
            self.register_buffer("offset", torch.ones(4))

        def forward(self, image, extra):
            return self.body(image) + self.offset * extra

    graph = check(Net(), rand(2, 4, seed=1), rand(2, 4, seed=2))
    assert graph.name == "Net"
    assert [x.name for x in graph.inputs] == ["image", "extra"]
    assert {n.name for n in graph.constants} >= {"body.0.weight", "body.0.bias", "offset"}
    assert from_torch(Net(), (rand(2, 4), rand(2, 4)), name="custom").name == "custom"


def test_training_flags_are_restored():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    model[0].eval()
    from_torch(model, rand(2, 3))
    assert model.training and not model[0].training and model[1].training


def test_export_failures_are_frontend_errors():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(FrontendError, match="torch.export could not trace DataDependent"):
        from_torch(DataDependent(), rand(3))


def test_single_tensor_input_and_top_level_export():
    graph = mlc_lab.from_torch(nn.ReLU(), rand(3, 4))
    assert [x.shape for x in graph.inputs] == [(3, 4)]


# -- errors -------------------------------------------------------------------------------------------
class CumSum(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=1) * 2


def test_unsupported_op_error_names_op_node_line_and_supported_ops(monkeypatch):
    monkeypatch.delitem(ATEN_OPS, torch.ops.aten.cumsum.default)  # converted since issue 13: taken out here
    with pytest.raises(UnsupportedOpError) as info:
        from_torch(CumSum(), rand(2, 3))
    message = str(info.value)
    assert "aten.cumsum.default" in message
    assert "%cumsum" in message
    assert "test_frontend_torch.py" in message and "in forward: return torch.cumsum(x, dim=1) * 2" in message
    assert "aten.conv2d.default" in message and "aten.scaled_dot_product_attention.default" in message


def test_supported_ops_lists_every_table_entry():
    names = supported_ops()
    assert names == sorted(names) and len(names) == len(ATEN_OPS)
    assert "aten.linear.default" in names and "aten.add.Tensor" in names


def test_every_converter_accepts_its_ops_arguments():
    """Converters take the schema's argument names; a mismatch would only show when the op is used."""
    for op, convert in ATEN_OPS.items():
        names = {_RENAME.get(a.name, a.name): None for a in op._schema.arguments}
        inspect.signature(convert).bind(None, **names)


def test_converter_bugs_are_caught_by_the_type_guard(monkeypatch):
    def wrong_relu(cx, x):  # transposes by mistake
        return cx.op("transpose", cx.op("relu", x))

    monkeypatch.setitem(ATEN_OPS, aten.relu.default, wrong_relu)
    with pytest.raises(FrontendError, match=r"aten\.relu\.default \(fx node %relu.*f32\[4, 3\].*f32\[3, 4\]"):
        from_torch(nn.ReLU(), rand(3, 4))


def test_dropout_in_training_mode_is_rejected():
    with pytest.raises(FrontendError, match="dropout in training mode"):
        from_torch(Fn(lambda x: F.dropout(x, 0.5, training=True)), rand(3))


def test_in_place_buffer_update_is_rejected():
    class Counter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("count", torch.zeros(1))

        def forward(self, x):
            self.count.add_(1)
            return x + self.count

    where = r"aten\.add_\.Tensor \(fx node %add_, at .*self\.count\.add_\(1\)"
    with pytest.raises(FrontendError, match=where + r".* writes to count in place"):
        from_torch(Counter(), rand(3))


def test_non_tensor_inputs_are_rejected():
    with pytest.raises(FrontendError, match="example input 1 is a int"):
        from_torch(Fn(lambda x, n: x * n), (rand(3), 2))


def test_import_mlc_lab_does_not_import_torch():
    code = "import sys, mlc_lab; assert callable(mlc_lab.from_torch); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
