"""Issue-3 targets: what fusion and layout buy, from the IR and from TVM-compiled code, side by side.

    python benchmarks/fusion.py                 # resnet18 and transformer_block, batch 1
    python benchmarks/fusion.py --rounds 15

For each model: kernels and intermediate traffic (computed from the IR), compiled run time of the
unfused vs fused graph (TVM, our default schedule, interleaved medians, 1 thread each), and the number
of kernels TVM's own FuseOps + FuseTIR produce on the same PyTorch model.
"""

from __future__ import annotations

from mlc_lab.bench import pin_threads

pin_threads(1)

import argparse  # noqa: E402

import numpy as np  # noqa: E402

from mlc_lab import zoo  # noqa: E402
from mlc_lab.bench import interleaved_medians  # noqa: E402
from mlc_lab.codegen.tvm import build  # noqa: E402
from mlc_lab.interop.relax_reference import relax_reference  # noqa: E402
from mlc_lab.metrics import graph_metrics  # noqa: E402
from mlc_lab.passes import ElementwiseFusionPass, FoldBatchNorm, PassManager  # noqa: E402
from mlc_lab.passes.memory import MemoryLayoutOptimizer  # noqa: E402


def variants(graph):
    fused = PassManager([FoldBatchNorm(), ElementwiseFusionPass()]).apply(graph)
    out = {"unfused": graph, "fused": fused}
    if any(n.op == "conv2d" for n in graph.ops):
        out["fused+NHWC"] = PassManager(
            [FoldBatchNorm(), MemoryLayoutOptimizer(target_layout="NHWC"), ElementwiseFusionPass()]
        ).apply(graph)
    return out


def bench(name: str, rounds: int, calls: int) -> None:
    model = zoo.load(name)
    inputs = model.numpy_inputs()
    graphs = variants(model.graph())
    compiled = {label: build(g) for label, g in graphs.items()}
    for label, fn in compiled.items():
        err = float(np.abs(fn(*inputs)[0] - model.torch_outputs()[0]).max())
        assert err < 1e-4, f"{name} {label}: compiled output differs from PyTorch by {err}"
    times = interleaved_medians({k: (lambda f=f: f(*inputs)) for k, f in compiled.items()}, rounds, calls)
    tvm_groups = relax_reference(model.module, model.example_inputs).num_groups

    base = graph_metrics(graphs["unfused"])
    print(f"\n{name} (batch 1)")
    print(f"  {'variant':<12}{'kernels':>9}{'traffic KiB':>13}{'traffic cut':>13}{'run ms':>9}{'speed-up':>10}")
    for label, g in graphs.items():
        m = graph_metrics(g)
        cut = 1 - m.intermediate_traffic_bytes / base.intermediate_traffic_bytes
        speedup = times["unfused"] / times[label]
        print(
            f"  {label:<12}{m.kernels:>9}{m.intermediate_traffic_bytes / 1024:>13.0f}{cut:>13.0%}"
            f"{times[label] * 1e3:>9.2f}{speedup:>9.2f}x"
        )
    fused = graph_metrics(graphs["fused"])
    print(f"  kernel count cut: {base.kernels / fused.kernels:.2f}x (target >= 2x)")
    cut = 1 - fused.intermediate_traffic_bytes / base.intermediate_traffic_bytes
    print(f"  traffic cut: {cut:.0%} (target >= 40%)")
    print(f"  fused vs unfused compiled: {times['unfused'] / times['fused']:.2f}x faster (target > 1)")
    print(f"  TVM FuseOps+FuseTIR kernels: {tvm_groups}; ours: {fused.kernels} (target: ours <= TVM's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet18", "transformer_block"])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    for name in args.models:
        bench(name, args.rounds, args.calls)


if __name__ == "__main__":
    main()
