"""Any supported model -> a verified Graph: pick the frontend from the object, then call it.

Here, below the drivers, so that `mlc_lab.compile` and the tuner's `tune_model` import a model the
same way without the tuner importing `mlc_lab.api`. No framework is imported just to ask what a model is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mlc_lab.ir.graph import Graph

__all__ = ["import_model", "model_kind"]


def model_kind(model: Any) -> str:
    """Which frontend: decided by the object's module, so no framework is imported just to ask."""
    if isinstance(model, Graph):
        return "graph"
    if isinstance(model, (str, os.PathLike)):
        return "onnx"
    root = type(model).__module__.split(".")[0]
    if root == "onnx":
        return "onnx"
    if root in ("keras", "tf_keras", "tensorflow"):
        return "tensorflow"
    if root == "torch" or _is_torch_module(model):
        return "torch"
    raise TypeError(
        f"cannot compile a {type(model).__module__}.{type(model).__name__}: give a torch.nn.Module, an mlc_lab "
        "Graph, a Keras model or tf.function, or an ONNX model (path or ModelProto)"
    )


def _is_torch_module(model: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, torch.nn.Module)


def import_model(
    model: Any,
    example_inputs: Any = None,
    name: str | None = None,
    input_shapes: dict[str, Sequence[int]] | None = None,
) -> Graph:
    """Any supported model -> a verified Graph. Graphs and ONNX files carry their own input shapes.

    input_shapes: for an ONNX model, static shapes of inputs it leaves symbolic ({"x": (1, 784)}).
    """
    kind = model_kind(model)
    if input_shapes is not None and kind != "onnx":
        raise ValueError(f"input_shapes applies to ONNX models only; a {kind} model's shapes come from example_inputs")
    if kind == "graph":
        return model
    if kind == "onnx":
        from mlc_lab.frontends.onnx import from_onnx

        return from_onnx(model, name=name, input_shapes=input_shapes)
    if example_inputs is None:
        raise ValueError(f"a {kind} model needs example_inputs (its shapes and dtypes fix the compiled graph)")
    if kind == "tensorflow":
        from mlc_lab.frontends.tensorflow import from_tensorflow

        return from_tensorflow(model, example_inputs, name=name)
    from mlc_lab.frontends import from_torch

    return from_torch(model, _as_tuple(example_inputs), name=name)


def _as_tuple(inputs: Any) -> tuple[Any, ...]:
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
