"""mlc_lab in eight steps: import a PyTorch model, optimise its graph, compile it three ways, time it.

Steps 1-5 work on the IR (import, fusion, layout, a pass pipeline, what it bought); 6 emits MLIR and
runs it through IREE; 7 targets a simulated systolic-array accelerator; 8 compiles end to end with
`mlc_lab.compile` and times it against PyTorch eager (interleaved medians, 1 thread each).

Run: python examples/basic_usage.py
"""

from __future__ import annotations

import os
import time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[var] = "1"  # before NumPy/torch/TVM load: each reads its thread count once, at load time

from mlc_lab.bench import pin_threads  # noqa: E402

pin_threads(1)  # every runtime on one thread, so the timings in step 8 compare like with like

import numpy as np  # noqa: E402
import torch  # noqa: E402

import mlc_lab  # noqa: E402
from mlc_lab import zoo  # noqa: E402
from mlc_lab.bench import interleaved_medians  # noqa: E402
from mlc_lab.metrics import compare  # noqa: E402
from mlc_lab.passes import DeadCodeElimination, FoldConstants, PassManager  # noqa: E402
from mlc_lab.passes.fusion import ElementwiseFusionPass, FoldBatchNorm, OperatorFusionPass  # noqa: E402
from mlc_lab.passes.memory import MemoryLayout, MemoryLayoutOptimizer, plan_memory  # noqa: E402


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

    print("\n6. MLIR: emit linalg-on-tensors, compile with IREE (llvm-cpu, this CPU), run")
    from mlc_lab.codegen import mlir

    default = PassManager([FoldConstants(), FoldBatchNorm(), ElementwiseFusionPass(), DeadCodeElimination()])
    folded = default.apply(graph)
    text = str(mlir.emit(folded))
    linalg_ops = sum(line.count("linalg.") for line in text.splitlines())
    start = time.perf_counter()
    run_mlir = mlir.build(folded)
    print(
        f"   {len(text.splitlines())} lines of MLIR, {linalg_ops} linalg ops; IREE compiled it in "
        f"{time.perf_counter() - start:.2f} s"
    )
    error = np.abs(run_mlir(*model.numpy_inputs())[0] - model.torch_outputs()[0]).max()
    print(f"   IREE vs PyTorch: max abs error {error:.2e}")

    print("\n7. Accelerator targeting: a 32x32 weight-stationary systolic array (simulated)")
    systolic = mlc_lab.compile(model.module, model.example_inputs, backend="systolic", rows=32, cols=32)
    out = systolic(*model.example_inputs)
    report = systolic.report
    print(
        f"   {report.cycles:,} cycles = {report.time_s * 1e6:,.1f} us at {report.clock_hz / 1e6:,.0f} MHz, "
        f"utilization {report.utilization:.1%}, {report.offchip_bytes / 1e6:.2f} MB off-chip"
    )
    print(f"   max abs error {np.abs(out.numpy() - model.torch_outputs()[0]).max():.2e}")

    print("\n8. End to end: mlc_lab.compile(model, inputs, backend='tvm'), timed against PyTorch eager")
    fast = mlc_lab.compile(model.module, model.example_inputs, backend="tvm")
    print(f"   {fast}")
    with torch.no_grad():
        times = interleaved_medians(
            {"eager": lambda: model.module(*model.example_inputs), "tvm": lambda: fast(*model.example_inputs)},
            rounds=10,
            calls=5,
        )
    error = np.abs(fast(*model.example_inputs).numpy() - model.torch_outputs()[0]).max()
    print(
        f"   PyTorch eager {times['eager'] * 1e3:.2f} ms, mlc_lab/TVM {times['tvm'] * 1e3:.2f} ms per call "
        f"(ratio {times['tvm'] / times['eager']:.2f}; default schedules, no tuning), max abs error {error:.2e}"
    )


if __name__ == "__main__":
    main()
