"""A CGRA-like dataflow accelerator: a small grid of reconfigurable PEs joined by a routing network.

    backend = DataflowBackend(rows=8, cols=8)
    program = backend.compile(graph)   # stages placed on PEs, routes between them, one or more configurations
    outputs, report = backend.execute(program, inputs)

The compiler maps the fused graph spatially, as a pipeline:
1. stages (a GEMM plus the element-wise ops fused after it, `stages.py`) are grouped into
   *configurations*: as many consecutive stages as the grid has PEs and memory for. A configuration
   is loaded (`reconfiguration_cycles`), a batch streams through it, its results go to DRAM, the
   next configuration is loaded;
2. inside a configuration each stage gets PEs in proportion to its work (at least enough to hold its
   weights), placed as a cluster next to the PEs that produce its inputs;
3. each stage-to-stage tensor is routed PE to PE over the mesh links (XY or YX, whichever is less
   loaded so far); a link has `tracks_per_link` tracks, one word per cycle each.
The *initiation interval* (II) of a configuration is the cycles between two inputs entering it: the
most any stage, any link, or the DRAM port needs per input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.backends.custom.base import (
    MAX_CYCLES,
    MAX_GRID_SIDE,
    MAX_PER_UNIT,
    CompiledProgram,
    LayerReport,
    MappingError,
    Report,
    non_negative_int,
    positive_float,
    positive_int,
)
from mlc_lab.backends.custom.executor import run_graph
from mlc_lab.backends.custom.stages import HOST, Edge, Stage, split_stages
from mlc_lab.backends.custom.wafer import water_fill
from mlc_lab.ir import Graph
from mlc_lab.ir.memory import check_fits

if TYPE_CHECKING:
    import matplotlib.figure


@dataclass
class DataflowLayerReport(LayerReport):
    """One stage: its configuration, its PEs and its share of the II."""

    config: int = 0
    pes: list[tuple[int, int]] = field(default_factory=list)
    ops: str = ""
    vector_ops: int = 0
    weight_bytes: int = 0


@dataclass
class DataflowReport(Report):
    """`cycles`: the whole batch through every configuration; `compute_cycles`: II x batch summed over
    configurations; `initiation_interval`: cycles per input in steady state (the configurations' IIs summed)."""

    grid: tuple[int, int] = (0, 0)
    batch: int = 1
    configurations: int = 1
    initiation_interval: int = 0
    initiation_intervals: list[int] = field(default_factory=list)
    ii_limits: list[str] = field(default_factory=list)  # per configuration: "compute", "routing" or "dram"
    latency_cycles: int = 0  # one input through all configurations, pipeline empty
    reconfiguration_cycles: int = 0
    max_link_words: float = 0.0
    layers: list[DataflowLayerReport] = field(default_factory=list)

    def summary(self) -> str:
        limits = ", ".join(f"{ii} ({why})" for ii, why in zip(self.initiation_intervals, self.ii_limits))
        return (
            super().summary()
            + f"\n  {self.configurations} configuration(s), II per configuration: {limits}; batch {self.batch}"
        )

    def table(self, columns: tuple[str, ...] = ("config", "ops", "macs", "cycles", "utilization")) -> str:
        return super().table(columns)


@dataclass
class Configuration:
    """One loaded configuration: its stages, where their PEs are, and the link loads its routes make."""

    index: int
    stages: list[int]
    pe_stage: np.ndarray  # int32 rows x cols: stage index on each PE (-1: unused)
    east: np.ndarray  # words per input on each eastward link (r, c)-(r, c+1)
    south: np.ndarray  # words per input on each southward link (r, c)-(r+1, c)
    routes: list[tuple[int, int, tuple[int, int], tuple[int, int]]]  # (src stage, dst stage, src PE, dst PE)
    ii: int = 0
    limit: str = "compute"
    latency: int = 0  # one input through this configuration with the pipeline empty


@dataclass
class DataflowProgram(CompiledProgram):
    configurations: list[Configuration] = field(default_factory=list)
    report: DataflowReport | None = None

    def __str__(self) -> str:
        c = self.config
        lines = [f"dataflow program for {self.graph.name!r} on a {c['rows']}x{c['cols']} PE grid"]
        for conf in self.configurations:
            lines.append(f" configuration {conf.index}: II {conf.ii} cycles ({conf.limit})")
            for i in conf.stages:
                la = self.layers[i]
                lines.append(f"   {la.name:<20} {len(la.pes):>3} PEs  {la.cycles:>9,} cycles  {la.ops}")
        return "\n".join(lines)

    def draw(self, configuration: int = 0, **kwargs: Any) -> matplotlib.figure.Figure:
        """The PE grid's mapping of one configuration: a thin shortcut for
        `mlc_lab.viz.accelerators.plot_dataflow_mapping(self, configuration, **kwargs)`.

        The picture lives in `viz`, which reads this program as data; the import happens only when a
        picture is asked for (declared in pyproject.toml's import-linter contracts, `ignore_imports`).
        """
        from mlc_lab.viz.accelerators import plot_dataflow_mapping

        return plot_dataflow_mapping(self, configuration, **kwargs)


class DataflowBackend:
    """A rows x cols grid of PEs, each with `macs_per_pe_per_cycle` MAC lanes and `pe_memory_kb` of scratchpad."""

    def __init__(
        self,
        rows: int = 8,
        cols: int = 8,
        macs_per_pe_per_cycle: int = 16,
        pe_memory_kb: float = 256,
        tracks_per_link: int = 4,
        clock_mhz: float = 1000.0,
        dram_bandwidth_gbps: float = 64.0,
        reconfiguration_cycles: int = 10_000,
        word_bytes: int = 2,
        batch: int = 1,
        name: str = "dataflow",
    ) -> None:
        self.rows = positive_int("rows", rows, MAX_GRID_SIDE)
        self.cols = positive_int("cols", cols, MAX_GRID_SIDE)
        self.macs_per_pe_per_cycle = positive_int("macs_per_pe_per_cycle", macs_per_pe_per_cycle, MAX_PER_UNIT)
        self.pe_memory_kb = positive_float("pe_memory_kb", pe_memory_kb)
        self.tracks_per_link = positive_int("tracks_per_link", tracks_per_link, MAX_PER_UNIT)
        self.clock_mhz = positive_float("clock_mhz", clock_mhz)
        self.dram_bandwidth_gbps = positive_float("dram_bandwidth_gbps", dram_bandwidth_gbps)
        self.reconfiguration_cycles = non_negative_int("reconfiguration_cycles", reconfiguration_cycles, MAX_CYCLES)
        self.word_bytes = positive_int("word_bytes", word_bytes, MAX_PER_UNIT)
        self.batch = positive_int("batch", batch, MAX_PER_UNIT)
        self.name = name

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def dram_words_per_cycle(self) -> float:
        return self.dram_bandwidth_gbps * 1e9 / self.clock_hz / self.word_bytes

    def config(self) -> dict[str, Any]:
        keys = (
            "name rows cols macs_per_pe_per_cycle pe_memory_kb tracks_per_link clock_mhz dram_bandwidth_gbps "
            "reconfiguration_cycles word_bytes batch"
        ).split()
        return {k: getattr(self, k) for k in keys}

    def __repr__(self) -> str:
        return (
            f"DataflowBackend({self.rows}x{self.cols} PEs, {self.macs_per_pe_per_cycle} MACs/PE, "
            f"{self.clock_mhz:g} MHz)"
        )

    # -- compile -------------------------------------------------------------------------------------
    def compile(self, graph: Graph) -> DataflowProgram:
        stages, edges = split_stages(graph.verify())
        if not stages:
            raise MappingError(f"graph {graph.name!r} has no ops to map")
        mins = [self._min_pes(s) for s in stages]
        groups = self._configurations(stages, mins)
        check_fits(
            self.grid_state_bytes(len(groups)),
            f"mapping {len(groups)} configuration(s) onto the {self.rows}x{self.cols} PE grid",
        )
        config_of = {i: c for c, group in enumerate(groups) for i in group}
        layers: list[DataflowLayerReport | None] = [None] * len(stages)
        configurations = []
        for c, group in enumerate(groups):
            conf, stage_layers = self._map_configuration(c, group, stages, edges, mins, config_of)
            configurations.append(conf)
            for i, layer in stage_layers.items():
                layers[i] = layer
        report = self._report(stages, edges, layers, configurations, config_of)
        return DataflowProgram("dataflow", graph, self.config(), layers, configurations, report)

    def grid_state_bytes(self, configurations: int) -> int:
        """Bytes `compile` holds for `configurations` mappings of the grid, at its peak. Per PE and
        configuration: the int32 stage map and two float64 link-load arrays, a PE coordinate tuple in
        its layer report (~64 B) and a route tuple (~200 B); per PE once, the placement's scratch (two
        int64 index grids, float64 distances and their temporaries, an int64 argsort: ~72 B)."""
        return self.pes * (configurations * (4 + 8 + 8 + 64 + 200) + 72)

    def _min_pes(self, stage: Stage) -> int:
        need = math.ceil(stage.weight_elements() * self.word_bytes / (self.pe_memory_kb * 1024))
        if need > self.pes:
            raise MappingError(
                f"stage {stage.name!r} has {stage.weight_elements() * self.word_bytes / 1024:,.0f} KiB of weights, "
                "more "
                f"than the whole grid holds ({self.rows}x{self.cols} PEs x pe_memory_kb={self.pe_memory_kb:g}); "
                "raise pe_memory_kb or the grid size"
            )
        return max(1, need)

    def _configurations(self, stages: list[Stage], mins: list[int]) -> list[list[int]]:
        """Consecutive stages per configuration while their PEs (one at least, more for weights) fit."""
        groups, current, used = [], [], 0
        for s, need in zip(stages, mins):
            if current and used + need > self.pes:
                groups.append(current)
                current, used = [], 0
            current.append(s.index)
            used += need
        groups.append(current)
        return groups

    def _map_configuration(self, c, group, stages, edges, mins, config_of):
        work = np.array([stages[i].macs + stages[i].vector_ops for i in group], dtype=np.float64)
        lo = np.array([mins[i] for i in group])
        hi = np.maximum(np.array([stages[i].parallelism(1) for i in group]), lo)
        alloc = water_fill(np.maximum(work, 1.0), lo, hi, self.pes)
        pe_stage = np.full((self.rows, self.cols), -1, dtype=np.int32)
        placed: dict[int, np.ndarray] = {}
        rr, cc = np.indices((self.rows, self.cols))
        for i, n in zip(group, alloc):
            producers = [placed[e.src] for e in edges if e.dst == i and e.src in placed]
            if producers:
                target = np.concatenate(producers).mean(axis=0)
            else:  # fed from DRAM: start at the west edge, middle row
                target = np.array([(self.rows - 1) / 2, 0.0])
            dist = np.abs(rr - target[0]) + np.abs(cc - target[1]) + np.where(pe_stage >= 0, np.inf, 0)
            order = np.argsort(dist, axis=None, kind="stable")[:n]
            cells = np.stack(np.unravel_index(order, dist.shape), axis=1)
            pe_stage[cells[:, 0], cells[:, 1]] = i
            placed[i] = cells
        east = np.zeros((self.rows, max(self.cols - 1, 0)))
        south = np.zeros((max(self.rows - 1, 0), self.cols))
        routes = []
        hops_in: dict[int, int] = {}
        for e in edges:
            if e.src in placed and e.dst in placed:
                hops = self._route(e, placed[e.src], placed[e.dst], east, south, routes)
                hops_in[e.dst] = max(hops_in.get(e.dst, 0), hops)
        stage_layers = {}
        cycles = {}
        for i in group:
            s, n = stages[i], len(placed[i])
            lanes = n * self.macs_per_pe_per_cycle
            cycles[i] = max(1, math.ceil(s.macs / lanes) + math.ceil(s.vector_ops / lanes))
            stage_layers[i] = DataflowLayerReport(
                name=s.name,
                op=s.nodes[0].op,
                macs=s.macs,
                cycles=cycles[i],
                utilization=0.0,  # set once the II is known
                config=c,
                pes=[tuple(map(int, p)) for p in placed[i]],
                ops="+".join(s.ops),
                vector_ops=s.vector_ops,
                weight_bytes=s.weight_elements() * self.word_bytes,
            )
        route_ii = math.ceil(max(east.max(initial=0), south.max(initial=0)) / self.tracks_per_link)
        dram_words = sum(e.elements for e in edges if _crosses(e, group))
        dram_ii = math.ceil(dram_words / self.dram_words_per_cycle)
        compute_ii = max(cycles.values())
        ii, limit = max((compute_ii, "compute"), (route_ii, "routing"), (dram_ii, "dram"))
        for i in group:
            la = stage_layers[i]
            la.utilization = la.macs / (ii * len(la.pes) * self.macs_per_pe_per_cycle)
        latency = self._latency(group, edges, cycles, hops_in)
        return Configuration(c, list(group), pe_stage, east, south, routes, ii, limit, latency), stage_layers

    def _route(self, e: Edge, src: np.ndarray, dst: np.ndarray, east, south, routes) -> int:
        """One connection per destination PE, from its nearest source PE; XY or YX, whichever is less loaded."""
        words = e.elements / len(dst)
        longest = 0
        for d in dst:
            s = src[np.argmin(np.abs(src - d).sum(axis=1))]
            (r0, c0), (r1, c1) = s, d
            xy = _max_load(east, south, r0, c0, r1, c1, xy=True)
            yx = _max_load(east, south, r0, c0, r1, c1, xy=False)
            _add_path(east, south, r0, c0, r1, c1, words, xy=xy <= yx)
            routes.append((e.src, e.dst, (int(r0), int(c0)), (int(r1), int(c1))))
            longest = max(longest, abs(r1 - r0) + abs(c1 - c0))
        return int(longest)

    @staticmethod
    def _latency(group, edges, cycles, hops_in) -> int:
        finish: dict[int, int] = {}
        for i in group:
            start = max([finish.get(e.src, 0) for e in edges if e.dst == i and e.src != HOST], default=0)
            finish[i] = start + hops_in.get(i, 0) + cycles[i]
        return max(finish.values())

    def _report(self, stages, edges, layers, configurations, config_of) -> DataflowReport:
        batch = self.batch
        host = sum(e.elements for e in edges if HOST in (e.src, e.dst))
        # A tensor from one configuration to a later one is written to DRAM and read back.
        spilled = sum(e.elements for e in edges if HOST not in (e.src, e.dst) and config_of[e.src] != config_of[e.dst])
        dram_words = host + 2 * spilled
        weights = sum(s.weight_elements() for s in stages)  # loaded once per configuration load
        reconfig = self.reconfiguration_cycles * len(configurations)
        cycles = sum(c.latency + (batch - 1) * c.ii for c in configurations) + reconfig
        compute = sum(c.ii for c in configurations) * batch
        macs = sum(s.macs for s in stages) * batch
        route_words = sum(c.east.sum() + c.south.sum() for c in configurations) * batch
        return DataflowReport(
            backend=self.name,
            clock_hz=self.clock_hz,
            cycles=int(cycles),
            compute_cycles=int(compute),
            utilization=macs / (compute * self.pes * self.macs_per_pe_per_cycle),
            onchip_bytes=int((3 * (macs + sum(s.vector_ops for s in stages) * batch) + route_words) * self.word_bytes),
            offchip_bytes=int((dram_words * batch + weights) * self.word_bytes),
            macs=macs,
            layers=layers,
            grid=(self.rows, self.cols),
            batch=batch,
            configurations=len(configurations),
            initiation_interval=int(sum(c.ii for c in configurations)),
            initiation_intervals=[int(c.ii) for c in configurations],
            ii_limits=[c.limit for c in configurations],
            latency_cycles=int(sum(c.latency for c in configurations) + reconfig),
            reconfiguration_cycles=reconfig,
            max_link_words=float(max(max(c.east.max(initial=0), c.south.max(initial=0)) for c in configurations)),
        )

    # -- execute ------------------------------------------------------------------------------------
    def execute(self, program: DataflowProgram, inputs: Any) -> tuple[list[np.ndarray], DataflowReport]:
        if not isinstance(program, DataflowProgram):
            raise TypeError(f"execute needs a DataflowProgram from DataflowBackend.compile, got {type(program)}")
        inputs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        return run_graph(program.graph, inputs), program.report


def _crosses(e: Edge, group: list[int]) -> bool:
    """Does this tensor enter or leave the configuration (through DRAM)?"""
    return (e.src in group) != (e.dst in group)


def _path_slices(r0, c0, r1, c1, xy: bool):
    """The links of a dimension-ordered path: (row, cols) of its horizontal leg, (col, rows) of its vertical leg."""
    h_row = r0 if xy else r1
    v_col = c1 if xy else c0
    return (h_row, min(c0, c1), max(c0, c1)), (v_col, min(r0, r1), max(r0, r1))


def _max_load(east, south, r0, c0, r1, c1, xy: bool) -> float:
    (hr, ca, cb), (vc, ra, rb) = _path_slices(r0, c0, r1, c1, xy)
    return max(east[hr, ca:cb].max(initial=0), south[ra:rb, vc].max(initial=0))


def _add_path(east, south, r0, c0, r1, c1, words: float, xy: bool) -> None:
    (hr, ca, cb), (vc, ra, rb) = _path_slices(r0, c0, r1, c1, xy)
    east[hr, ca:cb] += words
    south[ra:rb, vc] += words
