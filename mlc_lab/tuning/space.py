"""The search space: schedules of one contraction kernel as plain data, and the one function applying them.

A *config* is a JSON-able dict of knob values, e.g.

    {"tile_i0": [8, 16, 1, 4], "tile_i1": [2, 4, 4, 16], "tile_k": [128, 4], "order": "ssrsrs",
     "cache_write": True, "pack": True, "parallel": True, "vectorize": True, "unroll": 64}

(knobs are named after the kernel's loops as the code generator's TensorIR names them: a matmul
C[i0, i1] = sum_k A[i0, k] B[k, i1]; a conv adds rc, ry, rx; `space_for` lists them).

`apply_config(sch, config)` turns it into TensorIR schedule primitives. The loop structure is
MetaSchedule's CPU template "SSRSRS": every spatial loop split in 4, every reduction loop in 2,

    s0 (parallel, fused)  s1  r0  s2  r1  s3 (the innermost s3 of the last axis is vectorised)

so the s3 tiles make the register tile (accumulators: e.g. 4 rows x 16 lanes), s2/s1 tiles fit the caches,
`cache_write` accumulates a tile in a local buffer, `pack` copies the weight into a layout whose
innermost axis is the vector tile (BLAS's packed B), `unroll` asks for auto-unrolling, and order
"srssrs" moves the outer reduction loop outside s1 (k-blocking outermost, as BLAS does).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Config = dict[str, Any]

ORDERS = ("ssrsrs", "srssrs")
UNROLL = (0, 16, 64, 256)


@dataclass
class KernelInfo:
    """What the schedule needs to know about a lowered kernel (found by `analyze`)."""

    block: str  #: the contraction block
    spatial: list[tuple[str, int]]  #: (iter var name, extent) of its spatial loops, in order
    reduce: list[tuple[str, int]]  #: the same for its reduction loops
    pads: list[str] = field(default_factory=list)  #: padding stages feeding it
    epilogue: str | None = None  #: an elementwise stage consuming it (a fused group's tail)
    weight: tuple[int, int] | None = None  #: (read index, dim): an operand indexed by the vector axis alone


class UnsupportedKernel(ValueError):
    """The kernel is not one contraction (plus padding and an epilogue): this space does not apply."""


def _is_reduction(sch, block) -> bool:
    return any(int(iv.iter_type) != 0 for iv in sch.get(block).iter_vars)


def analyze(sch) -> KernelInfo:
    """Find the contraction block, its loops, padding stages, epilogue and packable weight."""
    from tvm.tirx.analysis import undefined_vars

    blocks = list(sch.get_child_blocks(sch.get_sblock("root")))
    reductions = [b for b in blocks if _is_reduction(sch, b)]
    if len(reductions) != 1:
        raise UnsupportedKernel(f"expected one reduction block, found {len(reductions)}")
    main = reductions[0]
    stmt = sch.get(main)
    if len(sch.get_loops(main)) != len(stmt.iter_vars):
        raise UnsupportedKernel("the contraction's loops were already transformed")
    spatial = [(iv.var.name.removeprefix("v_"), int(iv.dom.extent)) for iv in stmt.iter_vars if int(iv.iter_type) == 0]
    reduce = [(iv.var.name.removeprefix("v_"), int(iv.dom.extent)) for iv in stmt.iter_vars if int(iv.iter_type) != 0]
    pads = [sch.get(b).name_hint for b in sch.get_producers(main) if not _is_reduction(sch, b)]
    consumers = list(sch.get_consumers(main))
    if len(consumers) > 1:
        raise UnsupportedKernel("the contraction has several consumers")
    epilogue = sch.get(consumers[0]).name_hint if consumers else None
    spatial_vars = [iv.var for iv in stmt.iter_vars if int(iv.iter_type) == 0]
    vector_var, other_vars = spatial_vars[-1], spatial_vars[:-1]
    weight = None
    out_buffer = stmt.writes[0].source
    for index, region in enumerate(stmt.reads):
        if region.source.same_as(out_buffer) or region.source.name in pads:
            continue
        uses = [set(v.name for v in undefined_vars(r.min)) for r in region.region]
        if any(v.name in u for u in uses for v in other_vars):
            continue
        dims = [d for d, u in enumerate(uses) if vector_var.name in u]
        if len(dims) == 1 and region.region[dims[0]].min.same_as(vector_var):
            weight = (index, dims[0])
            break
    return KernelInfo(sch.get(main).name_hint, spatial, reduce, pads, epilogue, weight)


# -- the space as data ----------------------------------------------------------------------------------
def factorizations(extent: int, parts: int, innermost_max: int | None = None) -> list[list[int]]:
    """Every way to write `extent` as an ordered product of `parts` factors."""
    if parts == 1:
        return [[extent]]
    out = []
    for d in range(1, extent + 1):
        if extent % d == 0:
            out += [[d, *rest] for rest in factorizations(extent // d, parts - 1)]
    if innermost_max is not None:
        out = [f for f in out if f[-1] <= innermost_max]
    return out


@dataclass
class SearchSpace:
    """Knob name -> list of choices; a config picks one choice per knob. Plain data, printable."""

    knobs: dict[str, list[Any]]
    info: KernelInfo | None = None

    def __len__(self) -> int:
        return math.prod(len(c) for c in self.knobs.values())

    def violation(self, config: Config) -> str | None:
        """Why a config is not in the space (None if it is).

        Exact, as JSON compares: `1` is not `true` and `1.0` is not `1` (Python's `==` would say they are),
        so a config read back from a log is in the space only if the tuner could have proposed it."""
        if not isinstance(config, dict):
            return f"a config is a dict of knob values, not a {type(config).__name__}"
        for name, choices in self.knobs.items():
            if name not in config:
                return f"knob {name} is missing"
            if _as_json(config[name]) not in self._choice_texts(name, choices):
                return f"knob {name}={_short(config[name])} is not one of its {len(choices)} choices"
        unknown = sorted(str(n) for n in config if n not in self.knobs)
        if unknown:
            return f"{', '.join(unknown[:3])} {'is not a knob' if len(unknown) == 1 else 'are not knobs'} of this space"
        if config.get("order") == "srssrs" and config.get("cache_write"):
            return "cache_write needs the whole reduction inside the tile (order ssrsrs)"
        return None

    def _choice_texts(self, name: str, choices: list[Any]) -> frozenset[str]:
        """The knob's choices as JSON texts, cached (recomputed if the list was replaced or grew)."""
        cache = self.__dict__.setdefault("_texts", {})
        entry = cache.get(name)
        if entry is None or entry[0] is not choices or entry[1] != len(choices):
            entry = cache[name] = (choices, len(choices), frozenset(_as_json(c) for c in choices))
        return entry[2]

    def sample(self, rng: np.random.Generator) -> Config:
        while True:
            config = {name: choices[rng.integers(len(choices))] for name, choices in self.knobs.items()}
            if self.violation(config) is None:
                return config

    def mutate(self, config: Config, rng: np.random.Generator, changes: int = 1) -> Config:
        """A neighbour: `changes` knobs re-drawn (the move of annealing and evolution)."""
        names = [n for n, c in self.knobs.items() if len(c) > 1]
        while True:
            new = dict(config)
            for name in rng.choice(names, size=min(changes, len(names)), replace=False):
                choices = self.knobs[name]
                new[name] = choices[rng.integers(len(choices))]
            if new != config and self.violation(new) is None:
                return new

    def grid(self) -> Iterator[Config]:
        """Every valid config, in lexicographic order of the knobs' choice lists."""
        names = list(self.knobs)
        for values in itertools.product(*(self.knobs[n] for n in names)):
            config = dict(zip(names, values))
            if self.violation(config) is None:
                yield config


def _as_json(value: Any) -> str:
    """A knob value as JSON text (NumPy scalars as the Python numbers they hold), the form a log stores."""
    return json.dumps(value, sort_keys=True, default=lambda v: v.item() if isinstance(v, np.generic) else repr(v))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def space_for(info: KernelInfo, vector_max: int = 64, register_max: int = 8, lanes: int = 8) -> SearchSpace:
    """The knobs for one kernel: tile factorizations per loop plus the on/off and choice knobs.

    The innermost tile of the last (vectorised) axis is kept to whole vectors (multiples of `lanes`)
    when the extent allows: a 1-, 2- or 3-wide "vector" is never the fast schedule, and leaving such
    tiles out makes the space small enough for 64 trials. Other innermost tiles (the rows of the
    register tile) stay <= `register_max`, so the accumulators fit in registers.
    """
    knobs: dict[str, list[Any]] = {}
    for i, (name, extent) in enumerate(info.spatial):
        if i < len(info.spatial) - 1:
            knobs[f"tile_{name}"] = factorizations(extent, 4, register_max)
            continue
        tiles = factorizations(extent, 4, vector_max)
        whole = [t for t in tiles if t[-1] % lanes == 0]
        knobs[f"tile_{name}"] = whole or tiles
    for name, extent in info.reduce:
        knobs[f"tile_{name}"] = factorizations(extent, 2)
    knobs["order"] = list(ORDERS)
    knobs["cache_write"] = [False, True]
    if info.weight is not None:
        knobs["pack"] = [False, True]
    if info.pads:
        knobs["inline_pad"] = [False, True]
    knobs["parallel"] = [True, False]
    knobs["vectorize"] = [True, False]
    knobs["unroll"] = list(UNROLL)
    return SearchSpace(knobs, info)


# -- applying a config ---------------------------------------------------------------------------------
def apply_config(sch, config: Config, info: KernelInfo | None = None) -> None:
    """Schedule the kernel in `sch` as `config` says (see the module docstring for the loop structure)."""
    info = info or analyze(sch)
    block = sch.get_sblock(info.block)
    spatial_tiles = [config[f"tile_{n}"] for n, _ in info.spatial]
    reduce_tiles = [config[f"tile_{n}"] for n, _ in info.reduce]
    vector = spatial_tiles[-1][-1]
    if config.get("pack") and info.weight is not None:
        _pack_weight(sch, block, info.weight, vector, config.get("parallel", True))
    for pad in info.pads:
        if config.get("inline_pad"):
            sch.compute_inline(sch.get_sblock(pad))
        elif config.get("parallel", True):
            sch.parallel(sch.get_loops(sch.get_sblock(pad))[0])
    loops = sch.get_loops(block)
    n_spatial = len(info.spatial)
    s = [sch.split(loop, factors=f) for loop, f in zip(loops[:n_spatial], spatial_tiles)]
    r = [sch.split(loop, factors=f) for loop, f in zip(loops[n_spatial:], reduce_tiles)]
    level = lambda k: [split[k] for split in s]
    if config["order"] == "ssrsrs":
        order = level(0) + level(1) + [x[0] for x in r] + level(2) + [x[1] for x in r] + level(3)
        anchor = level(1)[-1]
    else:  # srssrs: outer reduction loop right inside the parallel loop
        order = level(0) + [x[0] for x in r] + level(1) + level(2) + [x[1] for x in r] + level(3)
        anchor = level(0)[-1]
    sch.reorder(*order)
    consumer = _attach_consumer(sch, block, info, config.get("cache_write", False), anchor)
    outer = sch.fuse(*level(0)) if n_spatial > 1 else level(0)[0]
    if config.get("parallel", True):
        sch.parallel(outer)
    if config.get("vectorize", True) and vector > 1:
        sch.vectorize(level(3)[-1])
        if consumer is not None:
            _vectorize_inner(sch, consumer, vector)
    if config.get("unroll", 0):
        sch.annotate(outer, "pragma_auto_unroll_max_step", int(config["unroll"]))
        sch.annotate(outer, "pragma_unroll_explicit", 1)
    sch.decompose_reduction(block, r[0][0] if r else order[-1])


def _attach_consumer(sch, block, info: KernelInfo, cache_write: bool, anchor):
    """Place the epilogue (or a cache_write copy) after each output tile, so the tile stays hot."""
    if info.epilogue is not None:
        consumer = sch.get_sblock(info.epilogue)
        if cache_write:
            sch.set_scope(block, 0, "local")
    elif cache_write:
        consumer = sch.cache_write(block, 0, "local")
    else:
        return None
    sch.reverse_compute_at(consumer, anchor)
    return consumer


def _vectorize_inner(sch, block, vector: int) -> None:
    inner = sch.get_loops(block)[-1]
    extent = int(sch.get(inner).extent)
    if extent % vector == 0 and extent > 1:
        sch.vectorize(sch.split(inner, factors=[None, vector])[1] if extent > vector else inner)


def _pack_weight(sch, block, weight: tuple[int, int], vector: int, parallel: bool) -> None:
    """Copy the weight so the vector axis's tile is innermost: [.., N, ..] -> [N / v, .., v] (packed B)."""
    index, dim = weight
    extent = int(sch.get(block).reads[index].source.shape[dim])
    ndim = len(sch.get(block).reads[index].source.shape)
    if vector <= 1 or extent % vector or (dim == ndim - 1 and vector == extent):
        return  # nothing to gain: the layout already has the vector axis innermost and whole
    packed = sch.cache_read(block, index, "global")

    def index_map(*idx):
        rest = [x for d, x in enumerate(idx) if d != dim]
        return (idx[dim] // vector, *rest, idx[dim] % vector)

    sch.transform_layout(packed, ("write", 0), index_map)
    if parallel:
        sch.parallel(sch.get_loops(packed)[0])
