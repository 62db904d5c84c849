"""Pictures of the accelerator models: systolic utilization curves, wafer heatmaps, CGRA mappings, PE wavefronts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import matplotlib.axes
    import matplotlib.figure

    from mlc_lab.backends.custom.dataflow import DataflowProgram
    from mlc_lab.backends.custom.systolic import SystolicProgram
    from mlc_lab.backends.custom.wafer import WaferProgram
    from mlc_lab.ir import Graph
    from mlc_lab.sim.systolic_pe import PESimResult

DATAFLOW_STYLE = {"os": ("tab:blue", "o"), "ws": ("tab:orange", "s"), "is": ("tab:green", "^")}


def _figure(ax: matplotlib.axes.Axes | None, figsize: tuple[float, float]):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def plot_systolic_utilization(
    workload: Graph | Sequence[tuple[int, int, int]],
    sizes: Sequence[int] = (4, 8, 16, 32, 64, 128, 256),
    dataflows: Sequence[str] = ("os", "ws", "is"),
    ax: matplotlib.axes.Axes | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """Utilization of square R x R arrays vs R, one line per dataflow, for a graph's GEMMs (or a GEMM list)."""
    from mlc_lab.backends.custom.lowering import graph_gemms  # what the graph lowers to is the backend's fact
    from mlc_lab.ir import Graph
    from mlc_lab.sim.systolic import DATAFLOWS, utilization_sweep

    gemms = graph_gemms(workload) if isinstance(workload, Graph) else list(workload)
    sweep = utilization_sweep(gemms, tuple(sizes), tuple(dataflows))
    fig, ax = _figure(ax, (6, 4))
    for df, util in sweep.items():
        color, marker = DATAFLOW_STYLE[df]
        ax.plot(sizes, util * 100, marker=marker, color=color, label=f"{df.upper()} ({DATAFLOWS[df]})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(sizes), [f"{s}x{s}" for s in sizes])
    ax.set_ylim(0, 100)
    ax.set_xlabel("array size")
    ax.set_ylabel("utilization (% of PE-cycles doing a MAC)")
    name = workload.name if isinstance(workload, Graph) else f"{len(gemms)} GEMMs"
    ax.set_title(title or f"Systolic array utilization: {name}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_systolic_layers(program: SystolicProgram, ax: matplotlib.axes.Axes | None = None) -> matplotlib.figure.Figure:
    """Compute cycles per GEMM layer (bars) and mapping efficiency (dots, right axis)."""
    gemms = [la for la in program.layers if la.kind == "gemm"]
    fig, ax = _figure(ax, (max(6, 0.35 * len(gemms)), 4))
    x = np.arange(len(gemms))
    ax.bar(x, [la.compute_cycles for la in gemms], color="tab:blue")
    ax.set_ylabel("compute cycles", color="tab:blue")
    ax.set_xticks(x, [la.name for la in gemms], rotation=70, fontsize=7)
    twin = ax.twinx()
    twin.plot(x, [la.mapping_efficiency * 100 for la in gemms], "o", color="tab:red")
    twin.set_ylim(0, 105)
    twin.set_ylabel("mapping efficiency %", color="tab:red")
    c = program.config
    ax.set_title(f"{program.graph.name} on {c['rows']}x{c['cols']}, {c['dataflow'].upper()}")
    fig.tight_layout()
    return fig


def plot_wafer_heatmap(
    program: WaferProgram,
    quantities: Sequence[str] = ("stage", "utilization"),
    label: bool = True,
    axes: Sequence[matplotlib.axes.Axes] | None = None,
) -> matplotlib.figure.Figure:
    """The wafer as images over its mesh: which stage each core runs ("stage"), how busy it is
    ("utilization"), how full its SRAM is ("sram"), and the busiest links ("fabric")."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    state = program.state
    if axes is None:
        fig, axes = plt.subplots(1, len(quantities), figsize=(5.2 * len(quantities), 4.6), squeeze=False)
        axes = list(axes[0])
    fig = axes[0].figure
    rows, cols = program.config["mesh"]
    for ax, q in zip(axes, quantities):
        if q == "stage":
            n = max(1, int(state.stage.max()) + 1)
            base = plt.get_cmap("tab20")(np.arange(n) % 20)
            cmap = ListedColormap(np.vstack([[0.92, 0.92, 0.92, 1.0], base]))
            im = ax.imshow(state.stage + 1, cmap=cmap, vmin=-0.5, vmax=n + 0.5, interpolation="nearest")
            ax.set_title("placement (one colour per stage)")
            if label and program.config["execution"] == "pipelined":
                for la in program.layers:
                    r0, c0, h, w = la.region
                    if h * w > rows * cols / 150:
                        ax.text(c0 + w / 2, r0 + h / 2, la.name, ha="center", va="center", fontsize=6)
        elif q == "utilization":
            im = ax.imshow(state.utilization * 100, cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
            fig.colorbar(im, ax=ax, fraction=0.046, label="% busy per input interval")
            ax.set_title("core utilization")
        elif q == "sram":
            kb = state.sram_bytes / 1024
            im = ax.imshow(kb, cmap="magma", vmin=0, interpolation="nearest")
            fig.colorbar(
                im, ax=ax, fraction=0.046, label=f"KiB used per core (of {program.config['memory_per_core_kb']:g})"
            )
            ax.set_title("SRAM per core")
        elif q == "fabric":
            east = np.pad(state.links.east, ((0, 0), (0, 1)))
            south = np.pad(state.links.south, ((0, 1), (0, 0)))
            im = ax.imshow(np.maximum(east, south), cmap="inferno", interpolation="nearest")
            fig.colorbar(im, ax=ax, fraction=0.046, label="bytes per input on the busier outgoing link")
            ax.set_title("fabric load")
        else:
            raise ValueError(f"quantities: unknown {q!r}; choose from stage, utilization, sram, fabric")
        ax.set_xlabel(f"core column (of {cols})")
        ax.set_ylabel(f"core row (of {rows})")
    report = program.report
    fig.suptitle(
        f"{program.graph.name} on {report.cores:,} cores: one input every {report.interval_cycles:,} cycles, "
        f"utilization {report.utilization:.1%}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_dataflow_mapping(
    program: DataflowProgram, configuration: int = 0, ax: matplotlib.axes.Axes | None = None
) -> matplotlib.figure.Figure:
    """The PE grid of one configuration: PEs coloured and labelled by stage, routes drawn as arrows."""
    import matplotlib.pyplot as plt

    conf = program.configurations[configuration]
    rows, cols = conf.pe_stage.shape
    fig, ax = _figure(ax, (max(4, 0.7 * cols), max(4, 0.7 * rows)))
    colors = plt.get_cmap("tab20")
    for (r, c), s in np.ndenumerate(conf.pe_stage):
        face = colors(s % 20) if s >= 0 else (0.93, 0.93, 0.93, 1)
        ax.add_patch(plt.Rectangle((c - 0.45, r - 0.45), 0.9, 0.9, facecolor=face, edgecolor="black", lw=0.5))
        if s >= 0 and rows * cols <= 256:
            ax.text(c, r, program.layers[s].name.replace("conv2d", "conv"), ha="center", va="center", fontsize=5)
    for _, _, (r0, c0), (r1, c1) in conf.routes:
        if (r0, c0) != (r1, c1):
            ax.annotate("", (c1, r1), (c0, r0), arrowprops=dict(arrowstyle="->", color="black", alpha=0.35, lw=0.6))
    ax.set_xlim(-0.6, cols - 0.4)
    ax.set_ylim(rows - 0.4, -0.6)
    ax.set_aspect("equal")
    ax.set_title(f"configuration {configuration}: II = {conf.ii:,} cycles ({conf.limit}-bound)")
    fig.tight_layout()
    return fig


def plot_pe_snapshots(
    result: PESimResult, cycles: Sequence[int] | None = None, ncols: int = 4, **kwargs: Any
) -> matplotlib.figure.Figure:
    """Small multiples of the cycle-accurate array: active PEs in colour, each labelled with the index
    of the streamed element it holds, so the diagonal wavefront is visible."""
    import matplotlib.pyplot as plt

    snaps = result.snapshots
    if not snaps:
        raise ValueError("the result has no snapshots: run simulate_gemm_pe(..., record=N)")
    chosen = [snaps[c] for c in (cycles if cycles is not None else range(min(len(snaps), 8)))]
    nrows = -(-len(chosen) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows), squeeze=False)
    for ax, snap in zip(axes.flat, chosen):
        ax.imshow(snap.active, cmap="Greens", vmin=0, vmax=1.4)
        for (r, c), tok in np.ndenumerate(snap.token):
            if tok >= 0:
                ax.text(c, r, str(tok), ha="center", va="center", fontsize=7)
        ax.set_title(f"cycle {snap.cycle} ({snap.phase})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    fig.suptitle(f"{result.rows}x{result.cols} array, {result.dataflow.upper()}: element index in each PE", fontsize=9)
    fig.tight_layout()
    return fig
