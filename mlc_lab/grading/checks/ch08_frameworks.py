"""Official checks for exercises/08_frameworks.md (framework integration)."""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.session import Grading, check


def _linear(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    return (rng.standard_normal((n_out, n_in)).astype(np.float32) * 0.5, rng.standard_normal(n_out).astype(np.float32))


@check(points=3)
def check_elu_converter(g: Grading) -> None:
    """elu(cx, x, alpha=1.0, scale=1.0, input_scale=1.0): a converter making aten.elu importable.
    The student's process imports the model; the graph it returns is run here and compared with PyTorch."""
    import torch

    from mlc_lab.ir import Graph, interpret

    g.need("elu")
    for alpha in (1.0, 0.5, float(np.round(g.rng.uniform(0.1, 2.0), 3))):
        w, b = _linear(g.rng, 8, 16)
        x = (g.rng.standard_normal((4, 8)) * 3).astype(np.float32)
        with g.case(f"import Linear(8, 16) + ELU(alpha={alpha}) on x of shape (4, 8)") as case:
            graph = g.probe("import_with_converter", "elu", "elu", (w, b, alpha, x))
            assert isinstance(graph, Graph), "the import did not produce a graph"
            graph.verify()
            case.got = str(graph)[:160]
            got = interpret(graph, x)[0]
            model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ELU(alpha)).eval()
            with torch.no_grad():
                model[0].weight.copy_(torch.from_numpy(w))
                model[0].bias.copy_(torch.from_numpy(b))
                want = model(torch.from_numpy(x)).numpy()
            assert got.shape == want.shape, f"output shape {got.shape}, expected {want.shape}"
            err = float(np.abs(got - want).max())
            assert err < 1e-5, f"ELU(alpha={alpha}): imported graph differs from PyTorch by {err:.2e}"


def _mlp_reference(weights: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    h = x
    for i, (w, b) in enumerate(weights):
        h = (np.maximum(h, 0) if i else h) @ w.T + b
    return h


@check(points=2)
def check_register_backend(g: Grading) -> None:
    """build_tvm_naive(graph): a backend compiling with TVM and no schedule, registered as "tvm-naive"."""
    g.need("build_tvm_naive")
    weights = [_linear(g.rng, 8, 16), _linear(g.rng, 16, 4)]
    x = g.rng.standard_normal((2, 8)).astype(np.float32)
    with g.case("mlc_lab.compile(<Linear-ReLU-Linear>, backend='tvm-naive') on x of shape (2, 8)") as case:
        answer = g.probe("run_backend", "build_tvm_naive", weights, x)
        got = np.asarray(answer["out"])
        case.got = str(got.round(4).tolist())[:160]
        assert answer["backend"] == "tvm-naive", f"the model was compiled by {answer['backend']!r}"
        want = _mlp_reference(weights, x)
        assert got.shape == want.shape, f"output shape {got.shape}, expected {want.shape}"
        err = float(np.abs(got - want).max())
        assert err < 1e-4, f"the tvm-naive backend's output differs from PyTorch by {err:.2e}"


@check(points=2)
def check_counting_backend(g: Grading) -> None:
    """counting_backend(gm, example_inputs): a TorchDynamo backend that records how many call_function
    nodes each captured graph has (in CAPTURED) and runs the graph unchanged."""
    import torch

    g.need("counting_backend")
    g.need("CAPTURED")
    depth = int(g.rng.integers(2, 5))  # the count differs per run: a hard-coded answer does not do
    weights = [_linear(g.rng, 8, 8) for _ in range(depth - 1)] + [_linear(g.rng, 8, 2)]
    x = g.rng.standard_normal((3, 8)).astype(np.float32)
    reference: list[int] = []

    def ref_backend(gm, example_inputs):
        reference.append(sum(n.op == "call_function" for n in gm.graph.nodes))
        return gm.forward

    from mlc_lab.grading.probes import _mlp

    torch._dynamo.reset()
    with torch.no_grad():
        torch.compile(_mlp(weights), backend=ref_backend)(torch.from_numpy(x))
    torch._dynamo.reset()
    label = f"torch.compile(<{depth} Linear layers with ReLU between>, backend=counting_backend)"
    with g.case(label, expected=reference) as case:
        answer = g.probe("dynamo_count", "counting_backend", "CAPTURED", weights, x)
        case.got = repr(answer["captured"])
        got = np.asarray(answer["out"])
        assert np.allclose(got, _mlp_reference(weights, x), atol=1e-5), "the compiled model's output differs from eager"
        assert list(answer["captured"]) == reference, f"CAPTURED is {answer['captured']}, expected {reference}"
