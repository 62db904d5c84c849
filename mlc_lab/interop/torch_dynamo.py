"""`torch.compile(model, backend=mlc_lab.torch_backend)`: mlc_lab as a TorchDynamo backend.

TorchDynamo traces the Python code of `model` and hands each graph it captured to a backend as an FX
GraphModule plus example inputs; the backend returns a callable that replaces that graph. Ours:

1. splits the graph's inputs into weights (module parameters and buffers, which Dynamo lifts into
   inputs) and the user's tensors. Weights are frozen into the compiled graph as constants, so
   FoldBatchNorm and constant folding can use them (like inductor's `freezing=True`): change a weight
   after compiling and the compiled graph keeps the old value;
2. wraps the GraphModule in a module taking the user's tensors only, imports it with `from_torch`
   (torch.export of the GraphModule) and compiles it with `mlc_lab.compile` (TVM by default);
3. if anything fails (an op we cannot import, dynamic shapes, non-tensor inputs), it logs why and
   returns the GraphModule itself, so PyTorch runs that graph eagerly and `torch.compile` still works.

Inference only: the outputs carry no autograd history. Shapes are static: when a second input shape
makes Dynamo recompile with symbolic sizes, that graph falls back to eager; pass
`torch.compile(..., dynamic=False)` to get one mlc_lab compilation per shape instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn

log = logging.getLogger(__name__)

__all__ = ["make_torch_backend", "torch_backend"]


def torch_backend(gm: fx.GraphModule, example_inputs: Sequence[Any], **options: Any) -> Callable[..., Any]:
    """A torch.compile backend: compile the captured graph with mlc_lab, or fall back to eager PyTorch."""
    try:
        return _compile_graph(gm, list(example_inputs), **options)
    except Exception as e:  # noqa: BLE001 - any failure means "run this graph eagerly", never a crash
        log.warning("mlc_lab.torch_backend: running graph eagerly (%s: %s)", type(e).__name__, str(e).splitlines()[0])
        gm.mlc_lab_fallback_reason = f"{type(e).__name__}: {e}"
        return gm.forward


def make_torch_backend(backend: str = "tvm", **options: Any) -> Callable[..., Any]:
    """A torch.compile backend for another mlc_lab backend: `torch.compile(m, backend=make_torch_backend("mlir"))`."""
    return functools.partial(torch_backend, backend=backend, **options)


class _FrozenWeights(nn.Module):
    """The GraphModule with its weight inputs bound to buffers: forward takes the user's tensors only."""

    def __init__(self, gm: fx.GraphModule, weights: dict[int, torch.Tensor], num_inputs: int) -> None:
        super().__init__()
        self.gm = gm
        self.weight_index = dict(weights)
        self.user_index = [i for i in range(num_inputs) if i not in weights]
        for i, w in weights.items():
            self.register_buffer(f"w{i}", w.detach())

    def forward(self, *user: torch.Tensor) -> Any:
        args: list[Any] = [None] * (len(self.weight_index) + len(self.user_index))
        for i in self.weight_index:
            args[i] = getattr(self, f"w{i}")
        for i, x in zip(self.user_index, user):
            args[i] = x
        return self.gm(*args)


def _is_weight(node: fx.Node, value: Any) -> bool:
    """Dynamo records where each input came from: `self.fc1._parameters['weight']` is a weight."""
    source = getattr(node.meta.get("grapharg"), "source", None)
    if source is not None:
        name = source.name() if callable(getattr(source, "name", None)) else str(source)
        return "_parameters" in name or "_buffers" in name
    return isinstance(value, nn.Parameter)


def _compile_graph(gm: fx.GraphModule, example_inputs: list[Any], backend: str = "tvm", **options: Any):
    from mlc_lab.api import compile as mlc_compile

    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for node, value in zip(placeholders, example_inputs):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"input {node.name} is a {type(value).__name__} (dynamic shape?); tensors only")
    weights = {i: v for i, (n, v) in enumerate(zip(placeholders, example_inputs)) if _is_weight(n, v)}
    wrapper = _FrozenWeights(gm, weights, len(example_inputs))
    user_inputs = tuple(example_inputs[i] for i in wrapper.user_index)
    compiled = mlc_compile(wrapper, user_inputs, backend=backend, **options)
    returns_tuple = _returns_sequence(gm)
    log.info("mlc_lab.torch_backend: compiled %s", compiled)

    def run(*args: Any) -> Any:
        arrays = [args[i].detach().cpu().numpy() for i in wrapper.user_index]
        outputs = [torch.from_numpy(o) for o in compiled.run_numpy(*arrays)]
        return tuple(outputs) if returns_tuple else outputs[0]

    run.mlc_lab_compiled = compiled
    return run


def _returns_sequence(gm: fx.GraphModule) -> bool:
    output = next(n for n in gm.graph.nodes if n.op == "output")
    return isinstance(output.args[0], (tuple, list))
