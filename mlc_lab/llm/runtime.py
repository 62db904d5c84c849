"""How the generation loop calls a compiled prefill/decode: `(arrays...) -> (logits, k cache, v cache)`.

On TVM the caches stay TVM tensors from one call to the next (the VM's outputs are passed straight
back as inputs): no NumPy copy of the cache is ever made, and only the logits come back to NumPy for
the argmax. On MLIR (IREE) likewise with IREE DeviceArrays: decode's update is a `tensor.insert_slice`,
and the entry function names each cache argument as its result's storage (`iree.abi.output`), so IREE
writes the new rows into the buffer it was given, as TVM does.
Other backends go through `CompiledModel.run_numpy` (NumPy in and out).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TVMSteps:
    """A TVM-compiled graph called on the Relax VM with TVM tensors."""

    def __init__(self, compiled_model: Any) -> None:
        import tvm

        graph = compiled_model.runner.compiled  # the CompiledGraph behind mlc_lab.api's TVMRunner
        self._tensor_type = tvm.runtime.Tensor
        self._to_tensor = tvm.runtime.tensor
        self._main = graph.vm["main"]
        self._device = graph.device
        self._lock = graph.lock

    def __call__(self, *args: Any) -> tuple[np.ndarray, Any, Any]:
        tensors = [
            a if isinstance(a, self._tensor_type) else self._to_tensor(np.require(a, requirements="C"), self._device)
            for a in args
        ]
        with self._lock:
            logits, k, v = self._main(*tensors)
        return logits.numpy(), k, v


class IREESteps:
    """An MLIR-compiled graph called through IREE with DeviceArrays: the caches never leave IREE's buffers."""

    def __init__(self, compiled_model: Any) -> None:
        self._call = compiled_model.runner.call_on_device  # the IREEFunction behind mlc_lab.api's MLIR backend

    def __call__(self, *args: Any) -> tuple[np.ndarray, Any, Any]:
        logits, k, v = self._call(*args)
        return np.array(logits.to_host()), k, v  # a copy: the logits are the caller's, not a view of IREE's buffer


class NumPySteps:
    """Any backend's CompiledModel, on NumPy arrays."""

    def __init__(self, compiled_model: Any) -> None:
        self._run = compiled_model.run_numpy

    def __call__(self, *args: Any) -> tuple[np.ndarray, Any, Any]:
        logits, k, v = self._run(*args)
        return logits, k, v


def steps_for(compiled_model: Any) -> TVMSteps | IREESteps | NumPySteps:
    """The fastest call path this compiled model has."""
    if compiled_model.backend == "tvm" and hasattr(getattr(compiled_model.runner, "compiled", None), "vm"):
        return TVMSteps(compiled_model)
    if compiled_model.backend == "mlir" and hasattr(compiled_model.runner, "call_on_device"):
        return IREESteps(compiled_model)
    return NumPySteps(compiled_model)
