"""Official checks for exercises/07_frameworks.md (framework integration)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlc_lab.grading.checks.common import need


def check_elu_converter(ns: dict[str, Any]) -> None:
    """elu(cx, x, alpha=1.0, scale=1.0, input_scale=1.0): a converter making aten.elu importable."""
    import torch

    from mlc_lab.frontends import torch as frontend

    fn = need(ns, "elu")
    op = torch.ops.aten.elu.default
    saved = frontend.ATEN_OPS.pop(op, None)
    frontend.ATEN_OPS[op] = fn
    try:
        torch.manual_seed(0)
        for alpha in (1.0, 0.5):
            model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ELU(alpha)).eval()
            x = torch.randn(4, 8) * 3
            graph = frontend.from_torch(model, (x,))
            from mlc_lab.ir import interpret

            got = interpret(graph, x.numpy())[0]
            with torch.no_grad():
                want = model(x).numpy()
            err = float(np.abs(got - want).max())
            assert err < 1e-5, f"ELU(alpha={alpha}): imported graph differs from PyTorch by {err:.2e}"
    finally:
        frontend.ATEN_OPS.pop(op, None)
        if saved is not None:
            frontend.ATEN_OPS[op] = saved


def check_register_backend(ns: dict[str, Any]) -> None:
    """build_tvm_naive(graph): a backend compiling with TVM and no schedule, registered as "tvm-naive"."""
    import mlc_lab
    from mlc_lab import zoo

    fn = need(ns, "build_tvm_naive")
    mlc_lab.api.register_backend("tvm-naive", fn)
    try:
        model = zoo.load("mlp")
        compiled = mlc_lab.compile(model.module, model.example_inputs, backend="tvm-naive")
        got = compiled(model.example_inputs[0]).detach().numpy()
        err = float(np.abs(got - model.torch_outputs()[0]).max())
        assert err < 1e-4, f"the tvm-naive backend's output differs from PyTorch by {err:.2e}"
        assert compiled.backend == "tvm-naive"
    finally:
        mlc_lab.api.BACKENDS.pop("tvm-naive", None)


def check_counting_backend(ns: dict[str, Any]) -> None:
    """counting_backend(gm, example_inputs): a TorchDynamo backend that records how many call_function
    nodes each captured graph has (in CAPTURED) and runs the graph unchanged."""
    import torch

    fn = need(ns, "counting_backend")
    captured = need(ns, "CAPTURED")
    captured.clear()
    reference: list[int] = []

    def ref_backend(gm, example_inputs):
        reference.append(sum(n.op == "call_function" for n in gm.graph.nodes))
        return gm.forward

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    x = torch.randn(3, 8)
    fn(torch.fx.symbolic_trace(model), [x])  # a direct call first: its errors read better than Dynamo's
    captured.clear()
    torch._dynamo.reset()
    with torch.no_grad():
        ours = torch.compile(model, backend=fn)(x)
        torch._dynamo.reset()
        torch.compile(model, backend=ref_backend)(x)
        torch._dynamo.reset()
        assert torch.allclose(ours, model(x)), "the compiled model's output differs from eager"
    assert list(captured) == reference, f"CAPTURED is {list(captured)}, expected {reference}"
