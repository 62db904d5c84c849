"""A Cerebras-like wafer-scale processor: a 2-D mesh of cores with local SRAM, layers pipelined in space.

    backend = CerebrasLikeBackend(cores=400_000, memory_per_core_kb=48)
    program = backend.compile(graph)     # a rectangle of cores per stage, weights in their SRAM, routes between
    outputs, report = backend.execute(program, inputs)

Compile, in pipelined mode (the default):
1. cut the graph into stages (`stages.py`: a GEMM plus the cheap ops after it);
2. give each stage cores in proportion to its work (water-filling), but at least enough cores to hold
   its weights in SRAM and at most as many as it can keep busy;
3. place the stages as rectangles on the mesh (`mlc_lab.sim.mesh.slice_floorplan`), neighbours in
   pipeline order next to each other;
4. route every stage-to-stage tensor over the mesh (XY routing) and sum each link's load.
Inputs then stream through all stages at once: a new input enters every `interval` cycles, the time
of the slowest stage or the busiest link (the bottleneck).

If the weights do not fit in the wafer's SRAM, compile raises `MappingError`; with
`execution="weight_streaming"` the layers instead run one after another on the whole wafer while
their weights stream in from off-wafer memory (Cerebras's MemoryX mode).

Per-core state lives in NumPy arrays over the mesh (stage id, utilization, SRAM bytes, link loads):
there is never one Python object per core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.backends.custom.base import (
    MAX_CORES,
    MAX_PER_UNIT,
    CompiledProgram,
    ConfigError,
    LayerReport,
    MappingError,
    Report,
    choice,
    fraction,
    parse_grid,
    positive_float,
    positive_int,
)
from mlc_lab.backends.custom.executor import run_graph
from mlc_lab.backends.custom.stages import HOST, Edge, Stage, split_stages
from mlc_lab.ir import Graph
from mlc_lab.ir.memory import check_fits
from mlc_lab.sim.mesh import LinkLoads, Rect, Router, mesh_shape, slice_floorplan

if TYPE_CHECKING:
    import matplotlib.figure

EXECUTIONS = ("pipelined", "weight_streaming")

#: Published figures the presets are calibrated to (Cerebras product pages and Hot Chips talks).
WSE2_PUBLISHED = {"cores": 850_000, "sram_bytes": 40e9, "memory_bw_Bps": 20e15, "fabric_bps": 220e15}
WSE3_PUBLISHED = {"cores": 900_000, "sram_bytes": 44e9, "memory_bw_Bps": 21e15, "fabric_bps": 214e15, "flops": 125e15}


@dataclass
class WaferLayerReport(LayerReport):
    """One pipeline stage: its region, its work, its memory and its incoming traffic."""

    cores: int = 0  # cores in the stage's region
    used_cores: int = 0  # cores the stage can keep busy (<= cores)
    region: tuple[int, int, int, int] = (0, 0, 0, 0)  # (row, col, height, width) on the mesh
    ops: str = ""
    vector_ops: int = 0
    weight_bytes: int = 0
    sram_bytes_per_core: int = 0  # weights + activation tiles on each used core
    fabric_in_bytes: int = 0
    max_hops_in: int = 0
    bound: str = "compute"  # what sets the stage's cycles: compute, memory (SRAM bandwidth) or weights (streaming)


@dataclass
class WaferReport(Report):
    """`cycles`: one input's latency through the pipeline; `compute_cycles`: the interval between inputs
    (the bottleneck); `utilization`: MACs / (interval * all cores * MACs per core per cycle)."""

    mesh: tuple[int, int] = (0, 0)
    cores: int = 0
    cores_used: int = 0
    execution: str = "pipelined"
    interval_cycles: int = 0
    throughput_per_s: float = 0.0
    bottleneck: str = ""
    bottleneck_kind: str = ""  # "compute", "memory", "fabric" or "weights"
    fabric_byte_hops: float = 0.0
    max_link_bytes: float = 0.0
    peak_flops: float = 0.0
    layers: list[WaferLayerReport] = field(default_factory=list)

    def summary(self) -> str:
        return (
            super().summary() + f"\n  {self.execution}: one input every {self.interval_cycles:,} cycles "
            f"({self.throughput_per_s:,.0f}/s), bottleneck {self.bottleneck} ({self.bottleneck_kind})"
            f"\n  cores used {self.cores_used:,} of {self.cores:,} on a {self.mesh[0]}x{self.mesh[1]} mesh"
        )

    def table(self, columns: tuple[str, ...] = ("cores", "used_cores", "macs", "cycles", "utilization")) -> str:
        return super().table(columns)


@dataclass
class WaferState:
    """Per-core and per-link state as arrays over the mesh (rows x cols)."""

    stage: np.ndarray  # int32: stage index of each core, -1 if idle
    utilization: np.ndarray  # float32: busy fraction of each core over one interval
    sram_bytes: np.ndarray  # float32: bytes held in each core's SRAM
    links: LinkLoads  # bytes per link per input

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.stage, self.utilization, self.sram_bytes, self.links.east, self.links.south))


@dataclass
class WaferProgram(CompiledProgram):
    state: WaferState | None = None
    report: WaferReport | None = None

    def __str__(self) -> str:
        c = self.config
        head = (
            f"wafer program for {self.graph.name!r}: {len(self.layers)} stages on a {c['mesh'][0]}x{c['mesh'][1]} mesh "
            f"({c['execution']})"
        )
        rows = [f"{'stage':<22}{'region (r,c,h,w)':>26}{'cores':>10}{'used':>10}{'cycles':>10}  ops"]
        for la in self.layers:
            rows.append(
                f"{la.name:<22}{str(la.region):>26}{la.cores:>10,}{la.used_cores:>10,}{la.cycles:>10,}  {la.ops}"
            )
        return head + "\n" + "\n".join(rows)

    def draw(self, **kwargs: Any) -> matplotlib.figure.Figure:
        """The wafer's stage regions as a heatmap: a thin shortcut for
        `mlc_lab.viz.accelerators.plot_wafer_heatmap(self, **kwargs)`.

        The picture lives in `viz`, which reads this program as data; the import happens only when a
        picture is asked for (declared in pyproject.toml's import-linter contracts, `ignore_imports`).
        """
        from mlc_lab.viz.accelerators import plot_wafer_heatmap

        return plot_wafer_heatmap(self, **kwargs)


class CerebrasLikeBackend:
    """A wafer of `cores` cores on a 2-D mesh, each with `memory_per_core_kb` of SRAM.

    Defaults are the WSE-2 preset's (see `wse2`). Every parameter is validated; errors name it.
    `word_bytes` is the hardware's number size (2: fp16); numbers are computed in the graph's dtype.
    """

    def __init__(
        self,
        cores: int = 850_000,
        memory_per_core_kb: float = 48,
        clock_ghz: float = 1.1,
        macs_per_core_per_cycle: int = 4,
        link_bytes_per_cycle: float | None = None,
        memory_bytes_per_cycle: float | None = None,
        mesh: tuple[int, int] | str | None = None,
        word_bytes: int = 2,
        weight_memory_fraction: float = 0.75,
        execution: str = "pipelined",
        external_bandwidth_gbps: float = 150.0,
        min_reduction_per_core: int = 32,
        name: str = "wafer",
    ) -> None:
        self.cores = positive_int("cores", cores, MAX_CORES)
        self.memory_per_core_kb = positive_float("memory_per_core_kb", memory_per_core_kb)
        self.clock_ghz = positive_float("clock_ghz", clock_ghz)
        self.macs_per_core_per_cycle = positive_int("macs_per_core_per_cycle", macs_per_core_per_cycle, MAX_PER_UNIT)
        if link_bytes_per_cycle is None:  # WSE-2: 220 Pb/s over 850,000 cores x 4 outgoing links
            link_bytes_per_cycle = WSE2_PUBLISHED["fabric_bps"] / 8 / (WSE2_PUBLISHED["cores"] * 4) / 1.1e9
        self.link_bytes_per_cycle = positive_float("link_bytes_per_cycle", link_bytes_per_cycle)
        if memory_bytes_per_cycle is None:  # WSE-2: 20 PB/s over 850,000 cores
            memory_bytes_per_cycle = WSE2_PUBLISHED["memory_bw_Bps"] / WSE2_PUBLISHED["cores"] / 1.1e9
        self.memory_bytes_per_cycle = positive_float("memory_bytes_per_cycle", memory_bytes_per_cycle)
        if mesh is None:
            self.mesh = mesh_shape(self.cores)
        else:
            self.mesh = parse_grid("mesh", mesh, MAX_CORES)
            if self.mesh[0] * self.mesh[1] > self.cores:
                raise ConfigError(f"mesh {self.mesh[0]}x{self.mesh[1]} has more than cores={self.cores:,} cores")
        self.word_bytes = positive_int("word_bytes", word_bytes, MAX_PER_UNIT)
        self.weight_memory_fraction = fraction("weight_memory_fraction", weight_memory_fraction)
        self.execution = choice("execution", execution, EXECUTIONS)
        self.external_bandwidth_gbps = positive_float("external_bandwidth_gbps", external_bandwidth_gbps)
        self.min_reduction_per_core = positive_int("min_reduction_per_core", min_reduction_per_core, MAX_PER_UNIT)
        self.name = name

    # -- presets -----------------------------------------------------------------------------------
    @classmethod
    def wse2(cls, **overrides: Any) -> CerebrasLikeBackend:
        """Cerebras WSE-2 (CS-2): published 850,000 cores, 40 GB SRAM (48 KB per core), 20 PB/s memory
        bandwidth, 220 Pb/s fabric. Assumed (not in those figures): 1.1 GHz clock, 4 fp16 MACs per core
        per cycle, 4 links per core; link and SRAM bandwidth per cycle are the published totals divided
        over cores (and links) at that clock: 7.35 B/cycle per link, 21.4 B/cycle per core.
        Weight streaming at 150 GB/s (12 x 100 GbE, the CS-2's I/O)."""
        return cls(**{"cores": 850_000, "name": "wse2", **overrides})

    @classmethod
    def wse3(cls, **overrides: Any) -> CerebrasLikeBackend:
        """Cerebras WSE-3 (CS-3): published 900,000 cores, 44 GB SRAM (48 KB per core), 21 PB/s memory
        bandwidth, 214 Pb/s fabric, 125 PFLOPS peak. Assumed: 1.1 GHz and 8 fp16 MACs per core per
        cycle (dense: 15.8 PFLOPS; the published peak is not reproduced by a dense fp16 model with
        these assumptions, raise `macs_per_core_per_cycle` to explore it)."""
        p, clock = WSE3_PUBLISHED, 1.1e9
        config = dict(
            cores=p["cores"],
            macs_per_core_per_cycle=8,
            link_bytes_per_cycle=p["fabric_bps"] / 8 / (p["cores"] * 4) / clock,
            memory_bytes_per_cycle=p["memory_bw_Bps"] / p["cores"] / clock,
            name="wse3",
        )
        return cls(**{**config, **overrides})

    # -- derived -------------------------------------------------------------------------------------
    @property
    def clock_hz(self) -> float:
        return self.clock_ghz * 1e9

    @property
    def usable_cores(self) -> int:
        return self.mesh[0] * self.mesh[1]

    @property
    def peak_flops(self) -> float:
        return 2.0 * self.usable_cores * self.macs_per_core_per_cycle * self.clock_hz

    @property
    def sram_bytes(self) -> float:
        return self.usable_cores * self.memory_per_core_kb * 1024

    @property
    def fabric_bits_per_s(self) -> float:
        return self.usable_cores * 4 * self.link_bytes_per_cycle * 8 * self.clock_hz

    def config(self) -> dict[str, Any]:
        keys = (
            "name cores mesh memory_per_core_kb clock_ghz macs_per_core_per_cycle link_bytes_per_cycle "
            "memory_bytes_per_cycle word_bytes weight_memory_fraction execution external_bandwidth_gbps "
            "min_reduction_per_core"
        ).split()
        return {k: getattr(self, k) for k in keys}

    def __repr__(self) -> str:
        return (
            f"CerebrasLikeBackend({self.cores:,} cores on {self.mesh[0]}x{self.mesh[1]}, "
            f"{self.memory_per_core_kb:g} KB/core, {self.clock_ghz:g} GHz, {self.execution})"
        )

    # -- compile -------------------------------------------------------------------------------------
    def compile(self, graph: Graph) -> WaferProgram:
        """Allocate, place and route the graph's stages; everything costed here, numbers come in `execute`."""
        rows, cols = self.mesh
        check_fits(self.mesh_state_bytes(), f"the {rows:,}x{cols:,} mesh state of cores={self.cores:,}")
        stages, edges = split_stages(graph.verify())
        if not stages:
            raise MappingError(f"graph {graph.name!r} has no ops to map")
        if self.execution == "pipelined":
            rects, used = self._place(stages)
        else:
            rects, used = self._whole_wafer(stages)
        router = Router(*self.mesh)
        hops_in, bytes_in = self._route(edges, rects, router)
        links = router.loads()
        layers, stage_cycles = self._cost_stages(stages, rects, used, hops_in, bytes_in)
        state = self._state(stages, rects, used, stage_cycles, links)
        report = self._report(layers, stages, edges, rects, hops_in, stage_cycles, links, state)
        program = WaferProgram("wafer", graph, self.config(), layers, state=state, report=report)
        return program

    def mesh_state_bytes(self) -> int:
        """Bytes `compile` allocates over the mesh at its peak, from the arrays' dtypes: the router's two
        float64 difference arrays, the two float64 link-load arrays plus one cumulative-sum temporary,
        `WaferState`'s int32 stage map and two float32 maps, and `_state`'s per-region scratch (an int64
        index, a mask, two float64 `np.where` results)."""
        rows, cols = self.mesh
        cells = rows * cols
        return 2 * 8 * (rows + 1) * (cols + 1) + 3 * 8 * cells + (4 + 4 + 4) * cells + (8 + 1 + 8 + 8) * cells

    def _weights_min_cores(self, stage: Stage) -> int:
        capacity = self.memory_per_core_kb * 1024 * self.weight_memory_fraction
        return max(1, math.ceil(stage.weight_elements() * self.word_bytes / capacity))

    def _place(self, stages: list[Stage]) -> tuple[list[Rect], list[int]]:
        usable = self.usable_cores
        mins = np.array([self._weights_min_cores(s) for s in stages], dtype=np.int64)
        maxs = np.maximum(np.array([s.parallelism(self.min_reduction_per_core) for s in stages]), mins)
        if mins.sum() > usable or len(stages) > usable:
            need = int(mins.sum())
            worst = stages[int(np.argmax(mins))]
            raise MappingError(
                f"the weights do not fit: {len(stages)} stages need {need:,} cores to hold their weights "
                f"({sum(s.weight_elements() for s in stages) * self.word_bytes / 1e6:,.1f} MB at {self.word_bytes} B "
                f"per weight, {self.weight_memory_fraction:.0%} of memory_per_core_kb={self.memory_per_core_kb:g}), "
                f"the mesh has {usable:,} (cores={self.cores:,}); largest stage {worst.name!r} needs "
                f"{int(mins.max()):,}. Use more cores or memory_per_core_kb, or execution='weight_streaming'"
            )
        work = np.array([s.macs / self.macs_per_core_per_cycle + s.vector_ops for s in stages], dtype=np.float64)
        alloc = water_fill(np.maximum(work, 1.0), mins, maxs, usable)
        idle = usable - int(alloc.sum())
        weights = list(alloc) + ([idle] if idle > 0 else [])
        for _ in range(4):  # rounding in the floorplan can shave a few cores off: grow the short ones and retry
            rects = slice_floorplan(weights, *self.mesh)[: len(stages)]
            areas = np.array([r.area for r in rects])
            short = areas < mins
            if not short.any():
                break
            for i in np.nonzero(short)[0]:
                weights[i] = weights[i] * (mins[i] / areas[i]) * 1.05
        else:
            i = int(np.nonzero(short)[0][0])
            raise MappingError(
                f"stage {stages[i].name!r} needs {int(mins[i]):,} cores for its weights but its region got "
                f"{int(areas[i]):,}; use more cores or memory_per_core_kb"
            )
        used = [int(min(r.area, m)) for r, m in zip(rects, maxs)]
        return rects, used

    def _whole_wafer(self, stages: list[Stage]) -> tuple[list[Rect], list[int]]:
        full = Rect(0, 0, *self.mesh)
        used = [int(min(self.usable_cores, s.parallelism(self.min_reduction_per_core))) for s in stages]
        return [full] * len(stages), used

    def _route(self, edges: list[Edge], rects: list[Rect], router: Router) -> tuple[list[int], list[int]]:
        hops_in = [0] * len(rects)
        bytes_in = [0] * len(rects)
        for e in edges:
            nbytes = e.elements * self.word_bytes
            if e.src == HOST:
                hops = router.route_from_edge(rects[e.dst], nbytes, west=True)
            elif e.dst == HOST:
                router.route_from_edge(rects[e.src], nbytes, west=False)
                continue
            elif rects[e.src] == rects[e.dst]:  # weight streaming: every layer on the whole wafer, no transfer
                continue
            else:
                hops = router.route(rects[e.src], rects[e.dst], nbytes)
            hops_in[e.dst] = max(hops_in[e.dst], hops)
            bytes_in[e.dst] += nbytes
        return hops_in, bytes_in

    def _cost_stages(
        self, stages: list[Stage], rects: list[Rect], used: list[int], hops_in: list[int], bytes_in: list[int]
    ) -> tuple[list[WaferLayerReport], np.ndarray]:
        mpc, wb = self.macs_per_core_per_cycle, self.word_bytes
        stream_bytes_per_cycle = self.external_bandwidth_gbps * 1e9 / self.clock_hz
        layers, cycles = [], []
        for s, rect, u in zip(stages, rects, used):
            mac_cycles = math.ceil(s.macs / (u * mpc)) + math.ceil(s.vector_ops / (u * mpc))
            reduction = self._reduction_cycles(s, u)
            # Every MAC reads a weight and a partial sum and writes the partial sum (3 SRAM accesses).
            sram_per_core = 3 * wb * (s.macs + s.vector_ops) / u
            mem_cycles = math.ceil(sram_per_core / self.memory_bytes_per_cycle)
            compute = max(1, mac_cycles + reduction)  # a data-movement-only stage still takes a cycle to pass data on
            c, bound = (compute, "compute") if compute >= mem_cycles else (mem_cycles, "memory")
            weight_bytes = s.weight_elements() * wb
            if self.execution == "weight_streaming":
                stream = math.ceil(weight_bytes / stream_bytes_per_cycle)
                if stream > c:
                    c, bound = stream, "weights"
            held = 0 if self.execution == "weight_streaming" else weight_bytes
            act_per_core = (s.output_elements() * wb + bytes_in[s.index]) / u
            sram_bytes_per_core = math.ceil(held / u + act_per_core)
            if sram_bytes_per_core > self.memory_per_core_kb * 1024:
                raise MappingError(
                    f"stage {s.name!r} needs {sram_bytes_per_core:,} B per core (weights + activations) but "
                    f"memory_per_core_kb={self.memory_per_core_kb:g}; use more cores or memory"
                )
            cycles.append(c)
            region_cores = rect.area if self.execution == "pipelined" else self.usable_cores
            layers.append(
                WaferLayerReport(
                    name=s.name,
                    op=s.nodes[0].op,
                    macs=s.macs,
                    cycles=c,
                    utilization=s.macs / (c * region_cores * mpc),
                    cores=region_cores,
                    used_cores=u,
                    region=rect.as_tuple(),
                    ops="+".join(s.ops),
                    vector_ops=s.vector_ops,
                    weight_bytes=weight_bytes,
                    sram_bytes_per_core=sram_bytes_per_core,
                    fabric_in_bytes=bytes_in[s.index],
                    max_hops_in=hops_in[s.index],
                    bound=bound,
                )
            )
        return layers, np.array(cycles, dtype=np.int64)

    def _reduction_cycles(self, stage: Stage, used: int) -> int:
        """When cores split a GEMM's reduction, partial sums meet in a tree: log2(splits) neighbour hops."""
        outputs = sum(v.count * v.m * v.n for _, v in stage.gemms)
        if not outputs or used <= outputs:
            return 0
        splits = used // outputs
        tile_bytes = max(1, outputs // used) * self.word_bytes
        return math.ceil(math.log2(max(splits, 1))) * (1 + math.ceil(tile_bytes / self.link_bytes_per_cycle))

    def _state(
        self, stages: list[Stage], rects: list[Rect], used: list[int], cycles: np.ndarray, links: LinkLoads
    ) -> WaferState:
        rows, cols = self.mesh
        stage_map = np.full((rows, cols), -1, dtype=np.int32)
        busy = np.zeros((rows, cols), dtype=np.float32)
        sram = np.zeros((rows, cols), dtype=np.float32)
        interval = self._interval(cycles, links)[0]
        for s, rect, u, c in zip(stages, rects, used, cycles):
            sl = (slice(rect.r0, rect.r0 + rect.h), slice(rect.c0, rect.c0 + rect.w))
            active = np.arange(rect.area).reshape(rect.h, rect.w) < u  # the first `u` cores, row-major
            held = 0.0 if self.execution == "weight_streaming" else s.weight_elements() * self.word_bytes / u
            if self.execution == "pipelined":
                stage_map[sl] = s.index
                busy[sl] = np.where(active, c / interval, 0.0)
                sram[sl] = np.where(active, held + s.output_elements() * self.word_bytes / u, 0.0)
            else:  # layers take turns on the whole wafer: accumulate each one's share of the time
                stage_map[sl] = np.where(active, s.index, stage_map[sl])
                busy[sl] += np.where(active, c / interval, 0.0).astype(np.float32)
                sram[sl] = np.maximum(sram[sl], np.where(active, s.output_elements() * self.word_bytes / u, 0.0))
        return WaferState(stage_map, busy, sram, links)

    def _interval(self, cycles: np.ndarray, links: LinkLoads) -> tuple[int, str]:
        fabric = math.ceil(links.max_load / self.link_bytes_per_cycle)
        if self.execution == "weight_streaming":
            return int(cycles.sum()) + fabric, "sequential"
        compute = int(cycles.max())
        return (fabric, "fabric") if fabric > compute else (compute, "stage")

    def _report(
        self,
        layers: list[WaferLayerReport],
        stages: list[Stage],
        edges: list[Edge],
        rects: list[Rect],
        hops_in: list[int],
        cycles: np.ndarray,
        links: LinkLoads,
        state: WaferState,
    ) -> WaferReport:
        interval, why = self._interval(cycles, links)
        # Latency: the longest path through the stage graph, each edge adding its hop count.
        finish = np.zeros(len(stages), dtype=np.int64)
        for s in stages:
            start = max([finish[e.src] if e.src != HOST else 0 for e in edges if e.dst == s.index], default=0)
            finish[s.index] = start + hops_in[s.index] + cycles[s.index]
        latency = int(finish.max()) if self.execution == "pipelined" else interval
        slowest = int(np.argmax(cycles))
        if why == "fabric":
            bottleneck, kind = "fabric link", "fabric"
        else:  # the slowest stage (weight streaming: the layer that takes longest of the sequence)
            bottleneck, kind = layers[slowest].name, layers[slowest].bound
        macs = sum(s.macs for s in stages)
        io_bytes = sum(e.elements for e in edges if HOST in (e.src, e.dst)) * self.word_bytes
        streamed = sum(la.weight_bytes for la in layers) if self.execution == "weight_streaming" else 0
        sram_traffic = sum(3 * self.word_bytes * (s.macs + s.vector_ops) for s in stages)
        return WaferReport(
            backend=self.name,
            clock_hz=self.clock_hz,
            cycles=latency,
            compute_cycles=interval,
            utilization=macs / (interval * self.usable_cores * self.macs_per_core_per_cycle),
            onchip_bytes=int(sram_traffic + links.total),
            offchip_bytes=int(io_bytes + streamed),
            macs=macs,
            layers=layers,
            mesh=self.mesh,
            cores=self.usable_cores,
            cores_used=int((state.utilization > 0).sum()),
            execution=self.execution,
            interval_cycles=interval,
            throughput_per_s=self.clock_hz / interval,
            bottleneck=bottleneck,
            bottleneck_kind=kind,
            fabric_byte_hops=links.total,
            max_link_bytes=links.max_load,
            peak_flops=self.peak_flops,
        )

    # -- execute ------------------------------------------------------------------------------------
    def execute(self, program: WaferProgram, inputs: Any) -> tuple[list[np.ndarray], WaferReport]:
        """Compute the real outputs (every stage's ops in order) and return them with the report."""
        if not isinstance(program, WaferProgram):
            raise TypeError(f"execute needs a WaferProgram from CerebrasLikeBackend.compile, got {type(program)}")
        inputs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        outputs = run_graph(program.graph, inputs)
        return outputs, program.report


def water_fill(work: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: int) -> np.ndarray:
    """Integer core counts `n_i` in [lo_i, hi_i], sum <= total, making the slowest work_i / n_i as small as we can.

    n_i = clip(ceil(work_i / t), lo_i, hi_i) for the smallest time t whose counts still fit (bisection
    on t): a balanced pipeline, where no stage gets cores it cannot use and none lacks room for its weights.
    """
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    if lo.sum() > total:
        raise ValueError("the minimum allocation exceeds the cores available")
    if hi.sum() <= total:
        return hi.astype(np.int64)
    t_lo, t_hi = 0.0, float((work / lo).max())
    for _ in range(100):
        t = (t_lo + t_hi) / 2
        if np.clip(np.ceil(work / t), lo, hi).sum() > total:
            t_lo = t
        else:
            t_hi = t
    return np.clip(np.ceil(work / t_hi), lo, hi).astype(np.int64)
