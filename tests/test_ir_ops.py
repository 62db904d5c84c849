"""Each op's NumPy meaning against PyTorch (an independent implementation), in every layout."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlc_lab.ir import GraphBuilder, InterpreterError, OpError, TensorType, interpret
from mlc_lab.ir import layout as L

RNG = np.random.default_rng(0)


def run1(op, *arrays, **attrs):
    b = GraphBuilder(op)
    nodes = [b.input(f"x{i}", a.shape, a.dtype.name) for i, a in enumerate(arrays)]
    return interpret(b.build(b.op(op, *nodes, **attrs)), *arrays)[0]


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    "stride,padding,dilation,groups",
    [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (2, 1, 1, 2), (1, 1, 1, 4), ((2, 1), (1, 0), (1, 2), 1)],
)
def test_conv2d_matches_torch(stride, padding, dilation, groups):
    x, w = randn(2, 4, 9, 8), randn(8, 4 // groups, 3, 3)
    ours = run1("conv2d", x, w, strides=stride, padding=padding, dilation=dilation, groups=groups)
    ref = F.conv2d(t(x), t(w), stride=stride, padding=padding, dilation=dilation, groups=groups).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_conv2d_asymmetric_padding():
    x, w = randn(1, 2, 6, 6), randn(3, 2, 3, 3)
    ours = run1("conv2d", x, w, padding=(1, 0, 2, 1))  # top, left, bottom, right
    ref = F.conv2d(F.pad(t(x), (0, 1, 1, 2)), t(w)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("data_layout,kernel_layout", [("NHWC", "HWIO"), ("NCHW4c", "OIHW4i2o"), ("NHWC", "OHWI")])
def test_conv2d_any_layout_means_the_same(data_layout, kernel_layout):
    x, w = randn(1, 8, 7, 7), randn(8, 8, 3, 3)
    ref = run1("conv2d", x, w, strides=2, padding=1)
    xl, wl = L.to_layout(x, "NCHW", data_layout), L.to_layout(w, "OIHW", kernel_layout)
    out = run1("conv2d", xl, wl, strides=2, padding=1, data_layout=data_layout, kernel_layout=kernel_layout)
    np.testing.assert_allclose(L.from_layout(out, "NCHW", data_layout), ref, atol=1e-5)


@pytest.mark.parametrize(
    "kernel,stride,padding,ceil", [(2, 2, 0, False), (3, 2, 1, False), (3, 2, 1, True), (2, 1, 0, True)]
)
def test_max_pool_matches_torch(kernel, stride, padding, ceil):
    x = randn(1, 3, 7, 8)
    ours = run1("max_pool2d", x, kernel=kernel, strides=stride, padding=padding, ceil_mode=ceil)
    ref = F.max_pool2d(t(x), kernel, stride, padding, ceil_mode=ceil).numpy()
    np.testing.assert_allclose(ours, ref)


@pytest.mark.parametrize(
    "kernel,stride,padding,ceil,include",
    [(2, 2, 0, False, True), (3, 2, 1, True, True), (3, 2, 1, True, False), (3, 1, 1, False, False)],
)
def test_avg_pool_matches_torch(kernel, stride, padding, ceil, include):
    x = randn(1, 2, 7, 6)
    ours = run1(
        "avg_pool2d", x, kernel=kernel, strides=stride, padding=padding, ceil_mode=ceil, count_include_pad=include
    )
    ref = F.avg_pool2d(t(x), kernel, stride, padding, ceil_mode=ceil, count_include_pad=include).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_global_avg_pool_nhwc():
    x = randn(2, 5, 4, 3)
    ours = run1("global_avg_pool2d", L.to_layout(x, "NCHW", "NHWC"), data_layout="NHWC")
    np.testing.assert_allclose(L.from_layout(ours, "NCHW", "NHWC"), F.adaptive_avg_pool2d(t(x), 1).numpy(), atol=1e-6)


def test_norms_and_softmax_match_torch():
    x = randn(2, 4, 5, 5)
    g, b, m, v = randn(4), randn(4), randn(4), np.abs(randn(4)) + 0.5
    ours = run1("batch_norm", x, g, b, m, v, eps=1e-3)
    ref = F.batch_norm(t(x), t(m), t(v), t(g), t(b), training=False, eps=1e-3).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    y, gam, bet = randn(3, 6, 8), randn(6, 8), randn(6, 8)
    ours = run1("layer_norm", y, gam, bet, axis=-2)
    np.testing.assert_allclose(ours, F.layer_norm(t(y), (6, 8), t(gam), t(bet)).numpy(), atol=1e-5)
    np.testing.assert_allclose(run1("softmax", y, axis=1), torch.softmax(t(y), 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(run1("log_softmax", y, axis=-1), torch.log_softmax(t(y), -1).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "op,ref",
    [
        ("relu", torch.relu),
        ("sigmoid", torch.sigmoid),
        ("tanh", torch.tanh),
        ("silu", F.silu),
        ("gelu", F.gelu),
        ("erf", torch.erf),
        ("exp", torch.exp),
        ("neg", torch.neg),
        ("abs", torch.abs),
    ],
)
def test_unary_matches_torch(op, ref):
    x = randn(3, 7)
    np.testing.assert_allclose(run1(op, x), ref(t(x)).numpy(), atol=1e-6, rtol=1e-6)


def test_gelu_tanh_and_clip():
    x = randn(50)
    np.testing.assert_allclose(run1("gelu", x, approximate="tanh"), F.gelu(t(x), approximate="tanh").numpy(), atol=1e-6)
    np.testing.assert_allclose(run1("clip", x, min=0.0, max=0.5), F.hardtanh(t(x), 0.0, 0.5).numpy())


def test_binary_broadcasting_and_matmul():
    a, b = randn(2, 1, 4), randn(3, 1)
    np.testing.assert_allclose(run1("sub", a, b), a - b)
    m1, m2 = randn(2, 3, 4, 5), randn(3, 5, 6)
    np.testing.assert_allclose(run1("matmul", m1, m2), (t(m1) @ t(m2)).numpy(), atol=1e-5)
    x, w = randn(4, 5), randn(7, 5)
    np.testing.assert_allclose(run1("dense", x, w), F.linear(t(x), t(w)).numpy(), atol=1e-5)
    np.testing.assert_allclose(run1("bias_add", x, randn(4), axis=0).shape, (4, 5))


def test_integer_division_floors():
    a = np.array([7, -7], np.int64)
    b = np.array([2, 2], np.int64)
    assert run1("div", a, b).tolist() == [3, -4]


def test_shape_ops():
    x = randn(2, 3, 4)
    assert run1("reshape", x, shape=(4, -1)).shape == (4, 6)
    np.testing.assert_array_equal(run1("transpose", x, perm=(2, 0, 1)), x.transpose(2, 0, 1))
    np.testing.assert_array_equal(run1("concat", x, x, axis=1), np.concatenate([x, x], 1))
    np.testing.assert_array_equal(run1("slice", x, axes=(2,), starts=(1,), ends=(100,), steps=(2,)), x[:, :, 1::2])
    np.testing.assert_array_equal(
        run1("pad", x, pads=(0, 0, 1, 0, 0, 2), value=1.5), np.pad(x, ((0, 0), (1, 0), (0, 2)), constant_values=1.5)
    )
    np.testing.assert_array_equal(run1("broadcast_to", randn(3, 1), shape=(2, 3, 4)).shape, (2, 3, 4))
    np.testing.assert_allclose(run1("sum", x, axes=(0, 2)), x.sum((0, 2)), rtol=1e-6)
    np.testing.assert_allclose(run1("mean", x, axes=None, keepdims=True), x.mean(keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(run1("max", x, axes=(1,)), x.max(1))


def test_shape_errors_name_op_and_shapes():
    b = GraphBuilder()
    x = b.input("x", (2, 3))
    with pytest.raises(OpError, match=r"reshape: cannot reshape \[2, 3\] \(6 elements\) into \[4, 2\]"):
        b.reshape(x, shape=(4, 2))
    with pytest.raises(OpError, match=r"transpose: perm \[0, 0\]"):
        b.transpose(x, perm=(0, 0))
    with pytest.raises(OpError, match=r"matmul: inner dimensions differ"):
        b.matmul(x, x)
    with pytest.raises(OpError, match=r"add: shapes \[\[2, 3\], \[4\]\] do not broadcast"):
        b.add(x, b.input("y", (4,)))
    with pytest.raises(OpError, match=r"max_pool2d: window 5 is larger than the padded input 3"):
        b.max_pool2d(b.input("img", (1, 1, 3, 3)), kernel=5)


@pytest.mark.parametrize("layout,kernel_layout", [("NHWC", None), ("NCHW8c", None), ("CHWN", None), (None, "OIHW4i4o")])
def test_layout_round_trip(layout, kernel_layout):
    if layout:
        x = randn(2, 16, 3, 5)
        assert np.array_equal(L.from_layout(L.to_layout(x, "NCHW", layout), "NCHW", layout), x)
    else:
        w = randn(8, 12, 3, 3)
        wl = L.to_layout(w, "OIHW", kernel_layout)
        assert wl.shape == (2, 3, 3, 3, 4, 4)
        assert np.array_equal(L.from_layout(wl, "OIHW", kernel_layout), w)


def test_blocked_layout_puts_channels_innermost():
    x = np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1)
    y = L.to_layout(x, "NCHW", "NCHW8c")
    assert y.shape == (1, 2, 1, 1, 8)
    assert y[0, 1, 0, 0].tolist() == list(range(8, 16))


def test_layout_errors():
    with pytest.raises(L.LayoutError, match="not divisible by block 8"):
        L.layout_shape((1, 12, 4, 4), "NCHW", "NCHW8c")
    with pytest.raises(L.LayoutError, match="cannot parse"):
        L.parse_layout("NC-HW")


def test_interpreter_input_errors():
    b = GraphBuilder("g")
    x = b.input("x", (2, 3))
    g = b.build(b.relu(x))
    with pytest.raises(InterpreterError, match=r"takes 1 inputs \(%x: f32\[2, 3\]\), got 2"):
        interpret(g, randn(2, 3), randn(2, 3))
    with pytest.raises(InterpreterError, match=r"input %x: expected shape \[2, 3\], got \[3, 2\]"):
        interpret(g, randn(3, 2))
    with pytest.raises(InterpreterError, match=r"input %x: expected dtype float32, got float64"):
        interpret(g, np.zeros((2, 3)))
    assert interpret(g, torch.ones(2, 3))[0].sum() == 6  # torch tensors are accepted


def test_tensor_type_basics():
    ty = TensorType((2, 3), "f32")
    assert ty.dtype == "float32" and ty.nbytes == 24 and str(ty) == "f32[2, 3]"
    with pytest.raises(TypeError, match="unsupported dtype 'complex64'"):
        TensorType((1,), "complex64")
