"""The three accelerator models on the zoo's models: same graph, same outputs, three very different costs.

.venv/bin/python examples/accelerators.py                  # a table per model
.venv/bin/python examples/accelerators.py --plots out/     # also the chapter's pictures, as PNG files
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mlc_lab import interpret, zoo
from mlc_lab.backends.custom import CerebrasLikeBackend, DataflowBackend, SystolicArrayBackend


def backends() -> dict[str, object]:
    return {
        "TPU v1 (256x256 systolic, WS)": SystolicArrayBackend.tpu_v1(),
        "32x32 systolic, OS": SystolicArrayBackend(rows=32, cols=32, dataflow="os"),
        "wafer, 400k cores (pipelined)": CerebrasLikeBackend(cores=400_000, memory_per_core_kb=48),
        "CGRA 8x8 PEs": DataflowBackend(rows=8, cols=8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["mlp", "small_cnn", "resnet18", "transformer_block"])
    parser.add_argument("--plots", type=Path, help="folder for the figures")
    args = parser.parse_args()

    for name in args.models:
        model = zoo.load(name)
        graph, inputs = model.graph(), model.numpy_inputs()
        reference = interpret(graph, *inputs)
        print(f"\n== {name}: {model.description}")
        print(
            f"{'backend':<32}{'cycles':>12}{'time (us)':>11}{'utilization':>13}{'off-chip (KB)':>15}  max |out - ref|"
        )
        for label, backend in backends().items():
            program = backend.compile(graph)
            outputs, report = backend.execute(program, inputs)
            err = max(float(np.abs(o - r).max()) for o, r in zip(outputs, reference))
            print(
                f"{label:<32}{report.cycles:>12,}{report.time_s * 1e6:>11.1f}{report.utilization:>13.1%}"
                f"{report.offchip_bytes / 1e3:>15,.1f}  {err:.1e}"
            )
            if "wafer" in label:
                print(f"{'':<32}one input every {report.interval_cycles:,} cycles; bottleneck {report.bottleneck}")
            if "CGRA" in label:
                print(f"{'':<32}II {report.initiation_interval:,} cycles over {report.configurations} configuration(s)")

    if args.plots:
        import matplotlib

        matplotlib.use("Agg")
        from mlc_lab.sim.systolic_pe import simulate_gemm_pe
        from mlc_lab.viz import plot_pe_snapshots, plot_systolic_utilization

        args.plots.mkdir(parents=True, exist_ok=True)
        graph = zoo.load("resnet18").graph()
        plot_systolic_utilization(graph).savefig(args.plots / "systolic_utilization.png", dpi=120)
        CerebrasLikeBackend(cores=400_000).compile(graph).draw().savefig(args.plots / "wafer_heatmap.png", dpi=120)
        DataflowBackend(rows=8, cols=8).compile(graph).draw().savefig(args.plots / "cgra_mapping.png", dpi=120)
        rng = np.random.default_rng(0)
        run = simulate_gemm_pe(rng.random((4, 6)), rng.random((6, 4)), 4, 4, "os", record=12)
        plot_pe_snapshots(run).savefig(args.plots / "systolic_wavefront.png", dpi=120)
        print(f"\nfigures written to {args.plots}/")


if __name__ == "__main__":
    main()
