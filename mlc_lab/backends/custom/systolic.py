"""A TPU-like systolic array backend: GEMMs on an R x C grid of MACs, everything else on a vector unit.

    backend = SystolicArrayBackend(rows=32, cols=32, dataflow="ws")
    program = backend.compile(graph)            # each conv/dense/matmul lowered to GEMM and folded
    outputs, report = backend.execute(program, inputs)

Cycle counts come from the per-fold model in `mlc_lab.sim.systolic` (equal to SCALE-Sim 3.0's compute
cycles, layer by layer); traffic from `mlc_lab.sim.systolic_memory`. With `mode="cycle_accurate"`
the GEMMs' numbers are computed by driving the data through the PE registers cycle by cycle
(`mlc_lab.sim.systolic_pe`), and the report carries the cycles that run measured next to the model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.backends.custom.base import (
    MAX_ARRAY_SIDE,
    MAX_CYCLES,
    MAX_LAYER_DIM,
    MAX_PER_UNIT,
    CompiledProgram,
    ConfigError,
    LayerReport,
    MappingError,
    Report,
    choice,
    positive_float,
    positive_int,
)
from mlc_lab.backends.custom.executor import run_graph
from mlc_lab.backends.custom.lowering import GemmView, flatten, gemm_view, vector_ops
from mlc_lab.ir import Graph, Node, is_source
from mlc_lab.sim.systolic import DATAFLOWS, FoldStats, check_dataflow, conv_as_gemm, gemm_folds
from mlc_lab.sim.systolic_int8 import dequant_product
from mlc_lab.sim.systolic_memory import fold_footprint, gemm_traffic
from mlc_lab.sim.systolic_pe import DEFAULT_MAX_CYCLES, simulate_gemm_pe

if TYPE_CHECKING:
    import matplotlib.figure

MODES = ("fast", "cycle_accurate")
#: The weight-quantized product the array runs in integers (`mlc_lab.sim.systolic_int8`), not decomposed.
INT8_GEMM = "matmul_dequant"


def array_view(node: Node) -> GemmView | None:
    """The GEMM a node puts on the array: conv2d/dense/matmul (`gemm_view`), or an int8 `matmul_dequant`,
    which maps exactly as the dense/matmul it was quantized from (the same folds and cycles)."""
    if node.op != INT8_GEMM:
        return gemm_view(node)
    x, w = node.inputs[0].type, node.inputs[1].type
    n, k = w.shape if node.attrs["transpose_b"] else w.shape[::-1]
    m = x.numel // max(k, 1)
    return GemmView(m, n, k) if min(m, n, k) > 0 else None


@dataclass
class SystolicLayerReport(LayerReport):
    kind: str = "gemm"  # "gemm" (systolic array), "vector" (vector unit) or "move" (no arithmetic)
    m: int = 0
    n: int = 0
    k: int = 0
    count: int = 1  # independent GEMMs (conv groups, matmul batch)
    row_folds: int = 0
    col_folds: int = 0
    fold_cycles: int = 0
    compute_cycles: int = 0  # SCALE-Sim convention (see mlc_lab.sim.systolic)
    mapping_efficiency: float = 0.0
    stall_cycles: int = 0  # cycles waiting for DRAM beyond the compute
    vector_ops: int = 0
    sram_bytes: int = 0
    dram_bytes: int = 0
    measured_cycles: int | None = None  # cycle-accurate mode: cycles the PE simulation took

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds * self.count


@dataclass
class SystolicReport(Report):
    """`utilization` is SCALE-Sim's "Overall Util": MACs / (compute_cycles * R * C), the array's busy
    fraction while it computes; `overall_utilization` divides by all `cycles` instead (DRAM stalls
    and vector-unit time included)."""

    rows: int = 0
    cols: int = 0
    dataflow: str = "ws"
    mapping_efficiency: float = 0.0  # mean over all folds of the network
    stall_cycles: int = 0
    vector_cycles: int = 0
    peak_ops_per_s: float = 0.0
    overall_utilization: float = 0.0
    layers: list[SystolicLayerReport] = field(default_factory=list)

    def table(self, columns: tuple[str, ...] = ("op", "m", "n", "k", "compute_cycles", "utilization")) -> str:
        return super().table(columns)


@dataclass
class SystolicProgram(CompiledProgram):
    """The graph lowered to GEMM folds: one `SystolicLayerReport` per op, in execution order."""

    def table(self) -> str:
        head = f"{'layer':<24}{'kind':>7}{'M':>7}{'N':>6}{'K':>6}{'folds':>7}{'cycles':>11}{'map.eff':>9}"
        rows = [head]
        for layer in self.layers:
            if layer.kind == "gemm":
                rows.append(
                    f"{layer.name:<24}{layer.kind:>7}{layer.m:>7}{layer.n:>6}{layer.k:>6}{layer.folds:>7}"
                    f"{layer.cycles:>11,}{layer.mapping_efficiency:>9.1%}"
                )
            else:
                rows.append(f"{layer.name:<24}{layer.kind:>7}{'':>26}{layer.cycles:>11,}")
        return "\n".join(rows)

    def __str__(self) -> str:
        c = self.config
        return (
            f"systolic program for {self.graph.name!r} on {c['rows']}x{c['cols']} "
            f"({DATAFLOWS[c['dataflow']]}), {c['mode']} mode\n" + self.table()
        )

    def draw(self, **kwargs: Any) -> matplotlib.figure.Figure:
        """Cycles and utilization per layer: a thin shortcut for
        `mlc_lab.viz.accelerators.plot_systolic_layers(self, **kwargs)`.

        The picture lives in `viz`, which reads this program as data; the import happens only when a
        picture is asked for (declared in pyproject.toml's import-linter contracts, `ignore_imports`).
        """
        from mlc_lab.viz.accelerators import plot_systolic_layers

        return plot_systolic_layers(self, **kwargs)


class SystolicArrayBackend:
    """An R x C weight/output/input-stationary systolic array with ifmap, filter and ofmap SRAMs.

    Parameters are validated on construction; every error names the parameter. `word_bytes` is the
    size of one operand in the hardware (1 for int8): traffic is counted in it, while the numbers
    themselves are computed in the graph's dtype.
    """

    def __init__(
        self,
        rows: int = 32,
        cols: int = 32,
        dataflow: str = "ws",
        clock_mhz: float = 1000.0,
        ifmap_sram_kb: float = 256,
        filter_sram_kb: float = 256,
        ofmap_sram_kb: float = 256,
        dram_bandwidth_gbps: float = 16.0,
        word_bytes: int = 1,
        vector_lanes: int | None = None,
        mode: str = "fast",
        max_cycles: int = DEFAULT_MAX_CYCLES,
        name: str = "systolic",
    ) -> None:
        self.rows = positive_int("rows", rows, MAX_ARRAY_SIDE)
        self.cols = positive_int("cols", cols, MAX_ARRAY_SIDE)
        try:
            self.dataflow = check_dataflow(dataflow)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.clock_mhz = positive_float("clock_mhz", clock_mhz)
        self.ifmap_sram_kb = positive_float("ifmap_sram_kb", ifmap_sram_kb)
        self.filter_sram_kb = positive_float("filter_sram_kb", filter_sram_kb)
        self.ofmap_sram_kb = positive_float("ofmap_sram_kb", ofmap_sram_kb)
        self.dram_bandwidth_gbps = positive_float("dram_bandwidth_gbps", dram_bandwidth_gbps)
        self.word_bytes = positive_int("word_bytes", word_bytes, MAX_PER_UNIT)
        self.vector_lanes = (
            self.cols if vector_lanes is None else positive_int("vector_lanes", vector_lanes, MAX_PER_UNIT)
        )
        self.mode = choice("mode", mode, MODES)
        self.max_cycles = positive_int("max_cycles", max_cycles, MAX_CYCLES)
        self.name = name

    # -- presets -----------------------------------------------------------------------------------
    @classmethod
    def tpu_v1(cls, **overrides: Any) -> SystolicArrayBackend:
        """Google's first TPU (Jouppi et al., "In-Datacenter Performance Analysis of a Tensor Processing Unit",
        ISCA 2017): a 256 x 256 int8 MAC array (65,536 MACs) at 700 MHz, 92 TOPS peak; weight stationary;
        a 24 MiB Unified Buffer for activations (our ifmap SRAM), 4 MiB of 32-bit accumulators (ofmap),
        a weight FIFO four 64 KiB tiles deep (filter, 256 KiB), weights from 8 GiB DDR3 at 34 GB/s.
        Assumed: the activation pipeline processes one 256-wide row per cycle (vector_lanes=256).
        """
        config = dict(
            rows=256,
            cols=256,
            dataflow="ws",
            clock_mhz=700.0,
            ifmap_sram_kb=24 * 1024,
            filter_sram_kb=256,
            ofmap_sram_kb=4 * 1024,
            dram_bandwidth_gbps=34.0,
            word_bytes=1,
            name="tpu_v1",
        )
        return cls(**{**config, **overrides})

    # -- derived numbers -----------------------------------------------------------------------------
    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def peak_ops_per_s(self) -> float:
        """2 ops (multiply + add) per MAC per cycle: TPU v1 gives 2 * 65,536 * 700e6 = 91.75e12, '92 TOPS'."""
        return 2.0 * self.rows * self.cols * self.clock_hz

    @property
    def buffer_words(self) -> dict[str, int]:
        """Usable words per SRAM: half of each (the other half is being refilled: double buffering)."""
        half = {"ifmap": self.ifmap_sram_kb, "filter": self.filter_sram_kb, "ofmap": self.ofmap_sram_kb}
        return {k: int(v * 1024 / 2 // self.word_bytes) for k, v in half.items()}

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_bandwidth_gbps * 1e9 / self.clock_hz

    def config(self) -> dict[str, Any]:
        keys = (
            "name rows cols dataflow clock_mhz ifmap_sram_kb filter_sram_kb ofmap_sram_kb "
            "dram_bandwidth_gbps word_bytes vector_lanes mode max_cycles"
        ).split()
        return {k: getattr(self, k) for k in keys}

    def __repr__(self) -> str:
        return f"SystolicArrayBackend({self.rows}x{self.cols}, {self.dataflow}, {self.clock_mhz:g} MHz, {self.mode})"

    # -- one GEMM --------------------------------------------------------------------------------------
    def gemm_layer(
        self,
        m: int,
        n: int,
        k: int,
        name: str = "gemm",
        op: str = "gemm",
        count: int = 1,
        ifmap_words: int | None = None,
        ifmap_resident: bool = False,
        ofmap_resident: bool = False,
    ) -> SystolicLayerReport:
        """Cost of `count` products (m x k) @ (k x n); raises MappingError if one fold does not fit the SRAMs."""
        s = gemm_folds(m, n, k, self.rows, self.cols, self.dataflow)
        self._check_fits(s, name)
        traffic = gemm_traffic(
            s, m * k if ifmap_words is None else ifmap_words, self.buffer_words, ifmap_resident, ofmap_resident
        )
        memory_cycles = int(np.ceil(traffic.dram_words * count * self.word_bytes / self.dram_bytes_per_cycle))
        compute = s.cycles * count
        cycles = max(compute, memory_cycles)
        return SystolicLayerReport(
            name=name,
            op=op,
            macs=s.macs * count,
            cycles=cycles,
            utilization=s.utilization,
            kind="gemm",
            m=m,
            n=n,
            k=k,
            count=count,
            row_folds=s.row_folds,
            col_folds=s.col_folds,
            fold_cycles=s.fold_cycles,
            compute_cycles=s.compute_cycles * count,
            mapping_efficiency=s.mapping_efficiency,
            stall_cycles=cycles - compute,
            sram_bytes=traffic.sram_words * count * self.word_bytes,
            dram_bytes=traffic.dram_words * count * self.word_bytes,
        )

    def _check_fits(self, s: FoldStats, name: str) -> None:
        need = fold_footprint(s)
        have = self.buffer_words
        for buf in ("ifmap", "filter", "ofmap"):
            if need[buf] > have[buf]:
                kib = need[buf] * self.word_bytes / 1024
                size = getattr(self, f"{buf}_sram_kb")
                raise MappingError(
                    f"layer {name!r} (GEMM {s.m}x{s.k} @ {s.k}x{s.n}) cannot fit: one {s.dataflow.upper()} fold "
                    f"holds {need[buf]:,} {buf} words ({kib:,.1f} KiB) but {buf}_sram_kb={size:g} "
                    f"leaves {have[buf] * self.word_bytes / 1024:,.1f} KiB per double-buffer half; "
                    f"raise {buf}_sram_kb or try another dataflow"
                )

    def simulate_gemm(self, m: int, n: int, k: int) -> SystolicReport:
        """The cost of a single GEMM (no numbers computed): what `mlc-lab simulate systolic --gemm` prints."""
        m, n, k = (positive_int(name, v, MAX_LAYER_DIM) for name, v in (("M", m), ("N", n), ("K", k)))
        layer = self._checked_layer(lambda: self.gemm_layer(m, n, k))
        return self._report([layer])

    def simulate_conv(self, h: int, w: int, kh: int, kw: int, c: int, f: int, stride: int = 1) -> SystolicReport:
        """The cost of one valid (unpadded) convolution, lowered by im2col as SCALE-Sim lowers it."""
        dims = dict(H=h, W=w, KH=kh, KW=kw, C=c, F=f, STRIDE=stride)
        h, w, kh, kw, c, f, stride = (positive_int(f"conv {name}", v, MAX_LAYER_DIM) for name, v in dims.items())
        try:
            m, n, k = conv_as_gemm(h, w, kh, kw, c, f, stride)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        layer = self._checked_layer(lambda: self.gemm_layer(m, n, k, "conv", "conv2d", ifmap_words=h * w * c))
        return self._report([layer])

    @staticmethod
    def _checked_layer(make):
        try:
            return make()
        except MappingError:
            raise
        except ValueError as e:
            raise ConfigError(str(e)) from None

    # -- whole graphs --------------------------------------------------------------------------------
    def compile(self, graph: Graph) -> SystolicProgram:
        """Lower every GEMM op to folds on the array and cost every other op on the vector unit."""
        graph = flatten(graph, keep={INT8_GEMM}).verify()
        resident_limit = self.buffer_words["ifmap"]
        outputs = set(graph.outputs)

        def on_chip(x: Node) -> bool:  # an activation kept in the (ifmap) SRAM between layers
            return not is_source(x.op) and x.type.numel <= resident_limit

        layers = []
        for node in graph.ops:
            view = array_view(node)
            if view is not None:
                if self.mode == "cycle_accurate":
                    self._check_cycle_budget(node, view)
                layer = self.gemm_layer(
                    view.m,
                    view.n,
                    view.k,
                    node.name,
                    node.op,
                    view.count,
                    ifmap_words=node.inputs[0].type.numel // view.count,
                    ifmap_resident=on_chip(node.inputs[0]),
                    ofmap_resident=node not in outputs and on_chip(node),
                )
            else:
                layer = self._vector_layer(node, on_chip, outputs)
            layers.append(layer)
        return SystolicProgram("systolic", graph, self.config(), layers)

    def _vector_layer(self, node: Node, on_chip, outputs: set[Node]) -> SystolicLayerReport:
        ops = vector_ops(node)
        words = node.type.numel + sum(x.type.numel for x in node.inputs)
        dram = sum(x.type.numel for x in node.inputs if not on_chip(x))
        if node in outputs or not on_chip(node):
            dram += node.type.numel
        compute = -(-ops // self.vector_lanes)
        memory = int(np.ceil(dram * self.word_bytes / self.dram_bytes_per_cycle)) if ops else 0
        return SystolicLayerReport(
            name=node.name,
            op=node.op,
            macs=0,
            cycles=max(compute, memory),
            utilization=0.0,
            kind="vector" if ops else "move",
            stall_cycles=max(compute, memory) - compute,
            vector_ops=ops,
            sram_bytes=words * self.word_bytes if ops else 0,
            dram_bytes=dram * self.word_bytes if ops else 0,
        )

    def _check_cycle_budget(self, node: Node, view) -> None:
        s = gemm_folds(view.m, view.n, view.k, self.rows, self.cols, self.dataflow)
        if s.cycles * view.count > self.max_cycles:
            raise MappingError(
                f"max_cycles: layer {node.name!r} needs {s.cycles * view.count:,} cycles on {self.rows}x{self.cols} "
                f"in cycle_accurate mode, more than max_cycles={self.max_cycles:,}; use mode='fast' for it"
            )

    def execute(self, program: SystolicProgram, inputs: Any) -> tuple[list[np.ndarray], SystolicReport]:
        """Compute the real outputs and return them with the cost report."""
        if not isinstance(program, SystolicProgram):
            raise TypeError(f"execute needs a SystolicProgram from SystolicArrayBackend.compile, got {type(program)}")
        inputs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        measured: dict[str, int] = {}

        def gemm(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            if self.mode != "cycle_accurate":
                return a @ b
            result = simulate_gemm_pe(a, b, self.rows, self.cols, self.dataflow, max_cycles=self.max_cycles)
            measured[node.name] = measured.get(node.name, 0) + result.cycles
            return result.output

        def int8(node: Node, args: list[np.ndarray]) -> np.ndarray:
            """int8 activations x int8 weights, int32 accumulators on the array (`systolic_int8`)."""
            x, w_q, scales = args
            return dequant_product(x, w_q, scales, node.attrs["transpose_b"], lambda a, b: gemm(node, a, b))

        outputs = run_graph(program.graph, inputs, gemm, kernels={INT8_GEMM: int8})
        layers = []
        for layer in program.layers:
            copy = SystolicLayerReport(**{**layer.__dict__})
            copy.measured_cycles = measured.get(layer.name)
            layers.append(copy)
        return outputs, self._report(layers)

    def _report(self, layers: list[SystolicLayerReport]) -> SystolicReport:
        gemms = [la for la in layers if la.kind == "gemm"]
        cycles = sum(la.cycles for la in layers)
        macs = sum(la.macs for la in gemms)
        folds = sum(la.folds for la in gemms)
        compute = sum(la.compute_cycles for la in gemms)
        return SystolicReport(
            backend=self.name,
            clock_hz=self.clock_hz,
            cycles=cycles,
            compute_cycles=compute,
            utilization=macs / (max(compute, 1) * self.rows * self.cols),
            onchip_bytes=sum(la.sram_bytes for la in layers),
            offchip_bytes=sum(la.dram_bytes for la in layers),
            macs=macs,
            layers=layers,
            rows=self.rows,
            cols=self.cols,
            dataflow=self.dataflow,
            mapping_efficiency=sum(la.mapping_efficiency * la.folds for la in gemms) / folds if folds else 0.0,
            stall_cycles=sum(la.stall_cycles for la in layers),
            vector_cycles=sum(la.cycles for la in layers if la.kind == "vector"),
            peak_ops_per_s=self.peak_ops_per_s,
            overall_utilization=macs / (max(cycles, 1) * self.rows * self.cols),
        )
