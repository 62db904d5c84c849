"""TensorFlow frontend: Keras MLP and CNN equal TensorFlow's outputs on every backend; errors name the op."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlc_lab.frontends.tensorflow")  # imports TensorFlow after MLIR's LLVM (see that module)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import mlc_lab  # noqa: E402
from mlc_lab.api import BACKENDS  # noqa: E402
from mlc_lab.frontends.torch import UnsupportedOpError  # noqa: E402


def _mlp() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def _cnn() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
            keras.layers.AveragePooling2D(2, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
            keras.layers.Softmax(),
        ]
    )


def _randomize_bn(model: keras.Model) -> None:
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.2, mean.shape),
                    rng.uniform(0.5, 2, var.shape),
                ]
            )


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def keras_model(request) -> tuple[keras.Model, np.ndarray]:
    keras.utils.set_random_seed(0)
    model = _mlp() if request.param == "mlp" else _cnn()
    _randomize_bn(model)
    shape = (1, 784) if request.param == "mlp" else (1, 16, 16, 3)
    return model, np.random.default_rng(0).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_keras_equals_tensorflow(keras_model, backend: str) -> None:
    model, x = keras_model
    reference = model(x, training=False).numpy()
    out = mlc_lab.compile(model, (x,), backend=backend)(tf.constant(x))
    assert isinstance(out, tf.Tensor)
    np.testing.assert_allclose(out.numpy(), reference, atol=1e-4, rtol=0)


def test_tf_function() -> None:
    w = tf.constant(np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32))

    @tf.function
    def f(x):
        return tf.nn.softmax(tf.tanh(tf.matmul(x, w)) * 2.0)

    x = np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32)
    out = mlc_lab.compile(f, (x,), backend="interpreter")(x)
    np.testing.assert_allclose(out, f(x).numpy(), atol=1e-5, rtol=0)


def test_unsupported_op_names_op_and_node() -> None:
    @tf.function
    def f(x):
        return tf.math.cumsum(x, name="running_total")

    with pytest.raises(UnsupportedOpError, match="TF Cumsum.*running_total"):
        mlc_lab.compile(f, (np.zeros((3,), np.float32),), backend="interpreter")
