"""Malformed input to public entry points: a clear error naming the problem, never a silent wrong answer.

NaN and Inf inputs are data, not errors (a model may legitimately see them): every backend must give
exactly what PyTorch gives, NaN where PyTorch has NaN. (LLVM's max/min drop NaN; the TVM backend's
NaN-propagating max is what keeps relu, clip, max pooling and max/min reductions honest.)
"""

import numpy as np
import pytest
import torch

import mlc_lab
from mlc_lab import zoo
from mlc_lab.backends.custom import CerebrasLikeBackend, DataflowBackend, SystolicArrayBackend
from mlc_lab.ir import Graph, GraphBuilder, Node, TensorType, VerificationError
from mlc_lab.passes import PassError, PassManager
from mlc_lab.passes.fusion import ElementwiseFusionPass


@pytest.fixture(scope="module")
def mlp():
    return zoo.load("mlp")


@pytest.mark.parametrize("backend", ["interpreter", "tvm", "mlir", "systolic"])
def test_wrong_shape_dtype_and_count_are_named(mlp, backend):
    compiled = mlc_lab.compile(mlp.module, mlp.example_inputs, backend=backend)
    with pytest.raises(ValueError, match=r"input %x: expected shape \[1, 784\], got \[1, 10\]"):
        compiled(torch.ones(1, 10))
    with pytest.raises(ValueError, match=r"input %x: expected dtype float32, got float64"):
        compiled(torch.ones(1, 784, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"takes 1 inputs"):
        compiled(torch.ones(1, 784), torch.ones(1, 784))


@pytest.mark.parametrize("backend", ["interpreter", "tvm", "mlir", "systolic", "cerebras", "dataflow"])
@pytest.mark.parametrize("name", ["small_cnn", "transformer_block"])
def test_nan_and_inf_propagate_as_in_pytorch(name, backend):
    model = zoo.load(name)
    x = model.example_inputs[0].clone()
    x.view(-1)[:5] = float("nan")
    x.view(-1)[5] = float("inf")
    x.view(-1)[6] = -float("inf")
    with torch.no_grad():
        want = model.module(x).numpy()
    got = mlc_lab.compile(model.module, model.example_inputs, backend=backend)(x).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{backend}: NaN where PyTorch has none, or the reverse"
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], atol=1e-4)


def test_check_finite_refuses_nan_and_inf_naming_the_input(mlp):
    compiled = mlc_lab.compile(mlp.module, mlp.example_inputs, backend="tvm", check_finite=True)
    x = mlp.example_inputs[0].clone()
    assert compiled(x).shape == (1, 10)
    x[0, :3] = float("nan")
    x[0, 3] = float("inf")
    with pytest.raises(ValueError, match=r"input %x has 4 NaN/Inf values"):
        compiled(x)


def test_empty_and_cyclic_graphs_are_rejected_everywhere():
    empty = Graph([], [], [])
    with pytest.raises(VerificationError, match="no outputs"):
        mlc_lab.compile(empty, backend="tvm")
    b = GraphBuilder()
    x = b.input("x", (2,))
    a = Node("relu", (x,), {}, TensorType((2,)), "a")
    c = Node("neg", (a,), {}, TensorType((2,)), "c")
    a.inputs = (c,)
    cyclic = Graph([x, a, c], [x], [c])
    for run in (lambda: PassManager([ElementwiseFusionPass()]).apply(cyclic), lambda: mlc_lab.compile(cyclic)):
        with pytest.raises((VerificationError, PassError), match=r"cycle: .*%a"):
            run()


def test_unsupported_torch_op_is_named(monkeypatch):
    from mlc_lab.frontends.torch import ATEN_OPS

    monkeypatch.delitem(ATEN_OPS, torch.ops.aten.cumsum.default)  # converted since issue 13: taken out here

    class Cumsum(torch.nn.Module):
        def forward(self, x):
            return x.cumsum(0)

    with pytest.raises(Exception, match=r"aten\.cumsum\.default.*%cumsum"):
        mlc_lab.compile(Cumsum(), (torch.ones(3),))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SystolicArrayBackend(rows=0, cols=8), "rows must be a positive integer at most 4,096, got 0"),
        (lambda: SystolicArrayBackend(rows=8, cols=8, dataflow="xy"), "unknown dataflow 'xy'"),
        (lambda: CerebrasLikeBackend(cores=-1), "cores must be a positive integer at most 10,000,000, got -1"),
        (lambda: CerebrasLikeBackend(memory_per_core_kb=0), "memory_per_core_kb must be a positive number"),
        (lambda: DataflowBackend(rows=0, cols=4), "rows must be a positive integer at most 256, got 0"),
        (
            lambda: mlc_lab.compile(zoo.load("mlp").module, zoo.load("mlp").example_inputs, backend="gpu"),
            "unknown backend 'gpu'",
        ),
    ],
)
def test_impossible_configurations_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_weights_that_cannot_fit_on_the_wafer_say_so():
    with pytest.raises(ValueError, match=r"the weights do not fit.*cores=100"):
        CerebrasLikeBackend(cores=100, memory_per_core_kb=1).compile(zoo.load("resnet18").graph())
