"""Differential tests of every pass on every zoo model: the graph after the pass computes what the graph
before it computed (and what PyTorch computes), on the model's inputs and on fresh random inputs."""

import numpy as np
import pytest

from mlc_lab import zoo
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

PIPELINES = {
    "fold+dce": lambda: [FoldConstants(), DeadCodeElimination()],
    "all patterns": lambda: [OperatorFusionPass(list(PATTERNS))],
    "elementwise": lambda: [ElementwiseFusionPass()],
    "bn folding + elementwise": lambda: [FoldBatchNorm(), ElementwiseFusionPass()],
    "NHWC": lambda: [MemoryLayoutOptimizer(target_layout="NHWC"), CancelLayoutTransforms()],
    "NCHW8c + fusion": lambda: [
        FoldBatchNorm(),
        MemoryLayoutOptimizer(target_layout="NCHW8c"),
        ElementwiseFusionPass(),
    ],
    "NCHW16c + patterns": lambda: [MemoryLayoutOptimizer(target_layout="NCHW16c"), OperatorFusionPass(list(PATTERNS))],
}


@pytest.fixture(scope="module", params=zoo.names())
def model(request):
    return zoo.load(request.param)


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_pipeline_preserves_semantics(model, pipeline):
    graph = model.graph()
    before_text = str(graph)
    out = PassManager(PIPELINES[pipeline]()).apply(graph)  # verifies after every pass
    assert str(graph) == before_text, "a pass edited its input graph"
    assert [o.type for o in out.outputs] == [o.type for o in graph.outputs]
    rng = np.random.default_rng(0)
    random_inputs = [rng.standard_normal(x.type.shape).astype(x.type.dtype) for x in graph.inputs]
    for inputs in (model.numpy_inputs(), random_inputs):
        np.testing.assert_allclose(interpret(out, *inputs)[0], interpret(graph, *inputs)[0], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(interpret(out, *model.numpy_inputs())[0], model.torch_outputs()[0], atol=1e-4)
