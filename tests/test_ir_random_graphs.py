"""Hypothesis: random graphs of elementwise/matmul/reduction ops, interpreted vs plain NumPy."""

import numpy as np
from graph_strategies import random_graphs
from hypothesis import given, settings

from mlc_lab.ir import interpret


@settings(max_examples=150, deadline=None)
@given(random_graphs())
def test_interpreter_matches_numpy(rg):
    graph = rg.graph.verify()
    inputs = rg.random_inputs()
    ours = interpret(graph, *inputs)[0]
    ref = rg.numpy_eval(*inputs)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max(initial=0))))
