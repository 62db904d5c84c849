"""The model zoo: deterministic models whose imported graphs compute what PyTorch computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import mlc_lab
from mlc_lab import zoo


def test_names():
    assert zoo.names() == ["mlp", "small_cnn", "resnet18", "transformer_block"]


def test_unknown_name_lists_the_zoo():
    with pytest.raises(ValueError, match="no zoo model 'resnet50'.*mlp, small_cnn, resnet18, transformer_block"):
        zoo.load("resnet50")


@pytest.mark.parametrize("name", zoo.names())
def test_graph_matches_pytorch(name):
    model = zoo.load(name)
    graph = model.graph()
    graph.verify()
    assert graph.name == name
    assert all(x.shape[0] == 1 for x in graph.inputs)  # batch 1
    got = mlc_lab.interpret(graph, *model.numpy_inputs())
    expected = model.torch_outputs()
    assert len(got) == len(expected) == 1
    assert got[0].shape == expected[0].shape and got[0].dtype == np.float32
    assert np.abs(expected[0]).max() > 0.05  # a real signal, not a vanishing one
    assert np.abs(got[0] - expected[0]).max() <= 1e-4


@pytest.mark.parametrize("name", zoo.names())
def test_weights_and_inputs_are_deterministic(name):
    torch.manual_seed(1234)  # the global RNG state must not matter...
    a = zoo.load(name)
    torch.rand(100)
    state = torch.get_rng_state()
    b = zoo.load(name)
    assert torch.equal(state, torch.get_rng_state())  # ...and loading must not consume it
    for (ka, va), (kb, vb) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    for x, y in zip(a.numpy_inputs(), b.numpy_inputs()):
        np.testing.assert_array_equal(x, y)


def test_seed_changes_weights_and_inputs():
    a, b = zoo.load("mlp"), zoo.load("mlp", seed=1)
    assert not torch.equal(a.module.fc1.weight, b.module.fc1.weight)
    assert not np.array_equal(a.numpy_inputs()[0], b.numpy_inputs()[0])


def test_graph_is_cached_and_inputs_are_copies():
    model = zoo.load("small_cnn")
    assert model.graph() is model.graph()
    model.numpy_inputs()[0][...] = 0
    assert np.abs(model.numpy_inputs()[0]).max() > 0


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_batch_norm_statistics_are_not_trivial(name):
    """Folding BN is only tested for real if mean != 0, var != 1, gamma != 1, beta != 0."""
    graph = zoo.load(name).graph()
    bns = [n for n in graph.ops if n.op == "batch_norm"]
    assert bns
    for bn in bns:
        gamma, beta, mean, var = (x.value for x in bn.inputs[1:])
        assert np.abs(mean).min() > 0 and np.abs(beta).min() > 0
        assert not np.allclose(var, 1) and not np.allclose(gamma, 1)


def test_mlp_structure():
    graph = zoo.load("mlp").graph()
    assert graph.op_counts() == {"dense": 3, "bias_add": 3, "relu": 2}
    assert [c.shape for c in graph.constants if c.name.endswith("weight")] == [(256, 784), (128, 256), (10, 128)]
    assert graph.outputs[0].shape == (1, 10)


def test_small_cnn_structure():
    graph = zoo.load("small_cnn").graph()
    counts = graph.op_counts()
    assert counts["conv2d"] == 2 and counts["batch_norm"] == 2 and counts["relu"] == 2 and counts["add"] == 1
    assert counts["max_pool2d"] == 1 and counts["dense"] == 1


def test_resnet18_topology():
    model = zoo.load("resnet18")
    graph = model.graph()
    convs = [n for n in graph.ops if n.op == "conv2d"]
    assert len(convs) == 20  # stem + 16 in the blocks + 3 downsample shortcuts
    stem = convs[0]
    assert stem.inputs[1].shape == (32, 3, 7, 7) and stem.attrs["strides"] == (2, 2)
    assert sum(c.inputs[1].shape[2:] == (1, 1) for c in convs) == 3
    (pool,) = [n for n in graph.ops if n.op == "max_pool2d"]
    assert pool.attrs["kernel"] == (3, 3) and pool.attrs["strides"] == (2, 2) and pool.shape == (1, 32, 16, 16)
    counts = graph.op_counts()
    assert counts["add"] == 8 and counts["batch_norm"] == 20 and counts["global_avg_pool2d"] == 1
    assert graph.node("fc.weight").shape == (10, 256)
    assert graph.inputs[0].shape == (1, 3, 64, 64)


def test_resnet18_width_and_image_size():
    model = zoo.load("resnet18", width=8, image_size=32, num_classes=5)
    graph = model.graph()
    assert graph.node("fc.weight").shape == (5, 64) and graph.inputs[0].shape == (1, 3, 32, 32)
    (out,) = mlc_lab.interpret(graph, *model.numpy_inputs())
    np.testing.assert_allclose(out, model.torch_outputs()[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_block(norm_first):
    model = zoo.load("transformer_block", norm_first=norm_first)
    graph = model.graph()
    assert graph.inputs[0].shape == (1, 32, 128)
    counts = graph.op_counts()
    assert counts["dense"] == 6 and counts["matmul"] == 2 and counts["softmax"] == 1
    assert counts["layer_norm"] == 2 and counts["gelu"] == 1
    (out,) = mlc_lab.interpret(graph, *model.numpy_inputs())
    np.testing.assert_allclose(out, model.torch_outputs()[0], atol=1e-4, rtol=0)
    assert ("pre-LN" if norm_first else "post-LN") in model.description


def test_batch_size_option():
    model = zoo.load("small_cnn", batch=2)
    (out,) = mlc_lab.interpret(model.graph(), *model.numpy_inputs())
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out, model.torch_outputs()[0], atol=1e-4, rtol=0)


def test_modules_are_in_eval_mode_and_readable():
    for name in zoo.names():
        model = zoo.load(name)
        assert isinstance(model.module, nn.Module) and not model.module.training
        assert model.description and name in repr(model)
