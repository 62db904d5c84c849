"""mlc_lab as an ONNX backend (`onnx.backend.base.Backend`), so ONNX's own conformance runner can test it.

    from onnx.backend.test import BackendTest
    tests = BackendTest(backend_for("tvm"), __name__)

`BackendTest` feeds every model the `onnx` wheel ships (the nine light networks, the stored
pytorch-converted / pytorch-operator / simple cases) through `prepare` and `run`, and compares the
outputs with the stored references, the way TVM and onnxruntime test their own importers. A backend
class is made per mlc_lab backend ("interpreter", "tvm", "mlir"): the runner calls classmethods only.
A driver module: it imports `mlc_lab.compile`, so the core never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from mlc_lab.api import BACKENDS, CompiledModel
from mlc_lab.api import compile as mlc_compile

__all__ = ["MlcLabBackend", "MlcLabRep", "backend_for"]


class MlcLabRep(BackendRep):
    """A prepared model: ONNX inputs in graph order (a list, or a dict by name) -> a list of NumPy outputs."""

    def __init__(self, compiled: CompiledModel, input_names: Sequence[str]) -> None:
        self.compiled = compiled
        self.input_names = list(input_names)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            inputs = [inputs[name] for name in self.input_names]
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        return tuple(self.compiled.run_numpy(*(np.asarray(x) for x in inputs)))


class MlcLabBackend(Backend):
    """The ONNX backend interface over one mlc_lab backend (`backend`, set by `backend_for`)."""

    backend = "interpreter"
    #: extra options for `mlc_lab.compile` (passes=, target=, ...)
    options: dict[str, Any] = {}

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> MlcLabRep:
        super().prepare(model, device, **kwargs)
        if not cls.supports_device(device):
            raise ValueError(f"mlc_lab's {cls.backend} backend runs on the CPU, not on {device!r}")
        kwargs.pop("rtol", None), kwargs.pop("atol", None)  # the runner's tolerances, not compile options
        compiled = mlc_compile(model, backend=cls.backend, **{**cls.options, **kwargs})
        initializers = {init.name for init in model.graph.initializer}
        return MlcLabRep(compiled, [v.name for v in model.graph.input if v.name not in initializers])

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper() == "CPU"


def backend_for(backend: str, **options: Any) -> type[MlcLabBackend]:
    """An `onnx.backend.base.Backend` class running models on mlc_lab's `backend` ("interpreter", "tvm", "mlir")."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")
    name = f"MlcLab{backend.capitalize()}Backend"
    return type(
        name, (MlcLabBackend,), {"backend": backend, "options": dict(options), "__doc__": MlcLabBackend.__doc__}
    )
