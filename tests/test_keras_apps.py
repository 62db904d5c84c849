"""Keras applications through the TensorFlow frontend: MobileNetV2 and ResNet50 equal TensorFlow everywhere.

The real architectures from `keras.applications` with random weights (`weights=None`: nothing is
downloaded), at 32x32, the smallest input both accept, and a 10-class head without softmax (logits
are compared, so a wrong value cannot hide behind a near-uniform softmax). Batch-norm statistics are
randomized: with Keras' initial ones (mean 0, variance 1) MobileNetV2's logits come out ~1e-12 and
any converter bug would vanish below the tolerance. Each model is imported once and compiled once
per backend.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlc_lab.frontends.tensorflow")  # imports TensorFlow after MLIR's LLVM (see that module)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import mlc_lab  # noqa: E402
from mlc_lab.frontends.tensorflow import from_tensorflow  # noqa: E402
from mlc_lab.interop.model_suites import KERAS_APPS, keras_app  # noqa: E402

BACKENDS = ["interpreter", "tvm", "mlir"]


@pytest.fixture(scope="module", params=list(KERAS_APPS))
def app(request) -> tuple[keras.Model, mlc_lab.Graph, np.ndarray, np.ndarray]:
    """(Keras model, its imported Graph, an input, TensorFlow's logits for it), built as `mlc-lab coverage` does."""
    suite = keras_app(request.param)
    (x,), (reference,) = suite.inputs, suite.reference
    return suite.model, from_tensorflow(suite.model, (x,), name=request.param), x, reference


def test_the_whole_architecture_is_imported(app) -> None:
    """Every Keras convolution (depthwise ones as grouped conv2d) and the classifier are in the graph."""
    model, graph, _, _ = app
    convs = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    depthwise = [layer for layer in convs if isinstance(layer, keras.layers.DepthwiseConv2D)]
    ir_convs = [n for n in graph.nodes if n.op == "conv2d"]
    assert len(ir_convs) == len(convs) > 20
    assert sum(n.attrs["groups"] > 1 for n in ir_convs) == len(depthwise)
    assert [n.op for n in graph.nodes].count("dense") + [n.op for n in graph.nodes].count("matmul") == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_app_equals_tensorflow(app, backend: str) -> None:
    _, graph, x, reference = app
    scale = float(np.abs(reference).max())
    assert scale > 0.05 and np.ptp(reference) > 0.05  # logits that differ: the comparison can fail
    out = mlc_lab.compile(graph, backend=backend)(x)
    assert out.dtype == np.float32 and out.shape == reference.shape
    np.testing.assert_allclose(out, reference, atol=1e-4 * scale, rtol=0)


# -- the converters the applications need, each alone against TensorFlow -------------------------
def _check(fn, x: np.ndarray) -> None:
    graph = from_tensorflow(tf.function(fn), (x,))
    np.testing.assert_allclose(graph(x)[0], fn(tf.constant(x)).numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("strides, padding", [(1, "SAME"), (2, "SAME"), (2, "VALID")])
def test_depthwise_conv_with_channel_multiplier(strides: int, padding: str) -> None:
    rng = np.random.default_rng(3)
    w = tf.constant(rng.standard_normal((3, 3, 4, 2)).astype(np.float32))  # [H, W, C, multiplier]
    fn = lambda x: tf.nn.depthwise_conv2d(x, w, (1, strides, strides, 1), padding)
    _check(fn, rng.standard_normal((1, 7, 6, 4)).astype(np.float32))


def test_pad_with_a_fill_value_and_explicit_conv_padding() -> None:
    rng = np.random.default_rng(4)
    w = tf.constant(rng.standard_normal((3, 3, 3, 5)).astype(np.float32))
    explicit = [[0, 0], [1, 2], [0, 1], [0, 0]]
    fn = lambda x: tf.nn.conv2d(tf.pad(x, [[0, 0], [2, 1], [0, 3], [0, 0]], constant_values=1.5), w, 1, explicit)
    graph = from_tensorflow(tf.function(fn), (np.zeros((1, 5, 5, 3), np.float32),))
    assert {n.op for n in graph.nodes} >= {"pad", "conv2d"}
    _check(fn, rng.standard_normal((1, 5, 5, 3)).astype(np.float32))


def test_fused_batch_norm_as_tf_keras_and_older_graphs_emit_it() -> None:
    """Keras 3 writes batch norm as Rsqrt/Mul/Sub; tf_keras and frozen TF1 graphs use FusedBatchNormV3."""
    rng = np.random.default_rng(5)
    scale, offset, mean = (tf.constant(rng.normal(0, 1, 4).astype(np.float32)) for _ in range(3))
    var = tf.constant(rng.uniform(0.5, 2, 4).astype(np.float32))
    fn = lambda x: tf.compat.v1.nn.fused_batch_norm(x, scale, offset, mean, var, 1e-3, is_training=False)[0]
    graph = from_tensorflow(tf.function(fn), (np.zeros((1, 3, 3, 4), np.float32),))
    assert "batch_norm" in {n.op for n in graph.nodes}
    _check(fn, rng.standard_normal((1, 3, 3, 4)).astype(np.float32))
