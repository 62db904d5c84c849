"""mlc_lab in five steps: import a PyTorch model, optimise its graph, check it still computes the same thing.

Run: python examples/basic_usage.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

import mlc_lab
from mlc_lab import zoo
from mlc_lab.metrics import compare
from mlc_lab.passes import DeadCodeElimination, FoldConstants, PassManager
from mlc_lab.passes.fusion import ElementwiseFusionPass, FoldBatchNorm, OperatorFusionPass
from mlc_lab.passes.memory import MemoryLayout, MemoryLayoutOptimizer, plan_memory


def max_error(graph: mlc_lab.Graph, model: zoo.ZooModel) -> float:
    ours = mlc_lab.interpret(graph, *model.numpy_inputs())[0]
    with torch.no_grad():
        reference = model.module(*model.example_inputs).numpy()
    return float(np.abs(ours - reference).max())


def main() -> None:
    model = zoo.load("resnet18")
    print(f"1. Import: {model.description}")
    start = time.perf_counter()
    graph = mlc_lab.from_torch(model.module, model.example_inputs)
    print(f"   {len(graph.ops)} ops, {graph.num_params:,} parameters, imported in {time.perf_counter() - start:.2f} s")
    print(f"   interpreter vs PyTorch: max abs error {max_error(graph, model):.2e}")

    print("\n2. Operator fusion: OperatorFusionPass(fusion_patterns=['conv2d_bn_relu', 'matmul_add'])")
    fused = OperatorFusionPass(fusion_patterns=["conv2d_bn_relu", "matmul_add"]).apply(graph)
    print(f"   {len(graph.ops)} kernels -> {len(fused.ops)} kernels, max abs error {max_error(fused, model):.2e}")

    print("\n3. Memory layout: MemoryLayoutOptimizer(target_layout=MemoryLayout.NHWC)")
    nhwc = MemoryLayoutOptimizer(target_layout=MemoryLayout.NHWC).apply(graph)
    convs = [n for n in nhwc.ops if n.op == "conv2d"]
    transforms = nhwc.op_counts().get("layout_transform", 0)
    print(f"   {len(convs)} convs now run in {convs[0].attrs['data_layout']}; {transforms} transforms at the edges")
    print(f"   max abs error {max_error(nhwc, model):.2e}")

    print("\n4. A whole pipeline, verified after every pass")
    pipeline = PassManager(
        [
            FoldConstants(),
            FoldBatchNorm(),
            MemoryLayoutOptimizer(target_layout=MemoryLayout.NHWC),
            ElementwiseFusionPass(),
            DeadCodeElimination(),
        ]
    )
    optimized = pipeline.apply(graph)
    print(pipeline.summary())
    print(f"   max abs error {max_error(optimized, model):.2e}")

    print("\n5. What it bought (computed from the IR)")
    print(compare(graph, optimized, ("imported", "optimized")))
    print(plan_memory(optimized))


if __name__ == "__main__":
    main()
