"""Robustness: generated graphs through every pass and every backend, compared with the interpreter.

CI runs a few hundred graphs per pass; `pytest --slow` runs >= 1,000 per pass (nightly size). The
counts appear in the test summary under "robustness".

The typed cases (`typed_cases`) add int64/int32/bool/float64 values, 0-d tensors and empty axes: many
small cases are packed into one graph so that one compilation checks 50 of them, and the interpreter's
own answers on them are checked against PyTorch.
"""

import numpy as np
import pytest
import robustness
import torch
from graph_strategies import pack_cases, random_conv_graphs, random_graphs, typed_cases
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from mlc_lab.ir import interpret
from mlc_lab.passes import (
    DeadCodeElimination,
    ElementwiseFusionPass,
    FoldBatchNorm,
    FoldConstants,
    OperatorFusionPass,
    PassManager,
)
from mlc_lab.passes.fusion import PATTERNS
from mlc_lab.passes.memory import CancelLayoutTransforms, MemoryLayoutOptimizer

PASSES = {
    "FoldConstants": FoldConstants,
    "DeadCodeElimination": DeadCodeElimination,
    "OperatorFusionPass(all patterns)": lambda: OperatorFusionPass(list(PATTERNS)),
    "ElementwiseFusionPass": ElementwiseFusionPass,
    "FoldBatchNorm": FoldBatchNorm,
    "MemoryLayoutOptimizer(NHWC)": lambda: MemoryLayoutOptimizer(target_layout="NHWC"),
    "MemoryLayoutOptimizer(NCHW8c)": lambda: MemoryLayoutOptimizer(target_layout="NCHW8c"),
    "CancelLayoutTransforms": CancelLayoutTransforms,
}
ANY_GRAPH = st.one_of(random_graphs(max_ops=10), random_conv_graphs(max_ops=6))
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def inputs_for(graph, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(x.type.shape).astype(x.type.dtype) for x in graph.inputs]


def assert_close(got, want, what):
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    err = float(np.abs(got - want).max(initial=0))
    assert got.shape == want.shape and err <= 1e-4 * scale, f"{what}: max abs error {err:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("name", list(PASSES))
def test_pass_on_generated_graphs(name):
    @settings(FAST, max_examples=robustness.examples(300, 1000))
    @given(ANY_GRAPH)
    def check(graph):
        graph = getattr(graph, "graph", graph)  # random_graphs gives a RandomGraph wrapper
        note(str(graph))
        out = PassManager([PASSES[name]()]).apply(graph)  # verifies the result
        x = inputs_for(graph)
        assert_close(interpret(out, *x)[0], interpret(graph, *x)[0], name)
        robustness.CASES[f"pass {name}"] += 1

    check()


def _tvm(graph):
    from mlc_lab.codegen.tvm import build

    return build(graph)


def _mlir(graph):
    from mlc_lab.codegen.mlir import build

    return build(graph)


def _simulator(cls_name, **config):
    def run(graph):
        from mlc_lab.backends import custom

        backend = getattr(custom, cls_name)(**config)
        program = backend.compile(graph)
        return lambda *x: backend.execute(program, list(x))[0]

    return run


BACKENDS = {
    "tvm": (_tvm, 40, 200),
    "mlir": (_mlir, 20, 100),
    "systolic": (_simulator("SystolicArrayBackend", rows=8, cols=8), 100, 1000),
    "cerebras": (_simulator("CerebrasLikeBackend", cores=10_000, memory_per_core_kb=48), 100, 1000),
    "dataflow": (_simulator("DataflowBackend", rows=4, cols=4), 100, 1000),
}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_on_generated_graphs(name):
    build, ci, slow = BACKENDS[name]

    @settings(FAST, max_examples=robustness.examples(ci, slow))
    @given(ANY_GRAPH, st.booleans())
    def check(graph, fuse):
        graph = getattr(graph, "graph", graph)
        if fuse:
            graph = ElementwiseFusionPass().apply(graph)
        note(str(graph))  # printed for a failing case
        run = build(graph)
        x = inputs_for(graph, seed=1)
        assert_close(np.asarray(run(*x)[0]), interpret(graph, *x)[0], f"{name} backend")
        robustness.CASES[f"backend {name}"] += 1

    check()


# == dtypes, 0-d and empty shapes ===================================================================
#: Cases per compiled graph: many small typed cases share one compilation, so CI checks >= 300 per backend.
CASES_PER_GRAPH = 50
TYPED_GRAPHS = {"ci": 6, "slow": 20}


def assert_same(got, want, what):
    """Same dtype, same shape, same values (exact for integers and bools; NaN equals NaN)."""
    got = np.asarray(got)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if want.dtype.kind == "f":
        # 1e-5 for float64 too: a float64 value may have been cast from a float32 one
        assert np.allclose(got, want, rtol=1e-5, atol=1e-5, equal_nan=True), f"{what}: values {got} != {want}"
    else:
        assert np.array_equal(got, want), f"{what}: values {got} != {want}"


def test_interpreter_on_typed_cases_matches_pytorch():
    """The oracle itself: the interpreter's dtype, 0-d and empty-axis semantics are PyTorch's."""

    @settings(FAST, max_examples=robustness.examples(300, 1000))
    @given(typed_cases())
    def check(case):
        graph, inputs = pack_cases([case])
        note(str(graph))
        (got,) = interpret(graph, *inputs)
        want = case.torch_eval().to(getattr(torch, got.dtype.name)).numpy()  # torch widens integer sums
        assert_same(got, want, "interpreter vs PyTorch")
        robustness.CASES["typed interpreter vs PyTorch"] += 1

    check()


TYPED_BACKENDS = {
    "tvm": _tvm,
    "mlir": _mlir,
    "systolic": _simulator("SystolicArrayBackend", rows=8, cols=8),
    "cerebras": _simulator("CerebrasLikeBackend", cores=10_000, memory_per_core_kb=48),
    "dataflow": _simulator("DataflowBackend", rows=4, cols=4),
}


@pytest.mark.parametrize("name", list(TYPED_BACKENDS))
def test_backend_on_typed_cases(name):
    """int64/int32/bool/float64, 0-d and empty shapes: same dtype, shape and values as the interpreter."""

    @settings(FAST, max_examples=TYPED_GRAPHS["slow" if robustness.SLOW else "ci"])
    @given(st.lists(typed_cases(), min_size=CASES_PER_GRAPH, max_size=CASES_PER_GRAPH), st.booleans())
    def check(cases, fuse):
        graph, inputs = pack_cases(cases)
        if fuse:
            graph = ElementwiseFusionPass().apply(graph)
        note(str(graph))
        got = TYPED_BACKENDS[name](graph)(*inputs)
        for k, (g, w) in enumerate(zip(got, interpret(graph, *inputs))):
            assert_same(g, w, f"{name} backend, case {k} (%{graph.outputs[k].name})")
        robustness.CASES[f"typed backend {name}"] += len(cases)

    check()
