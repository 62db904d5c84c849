"""The search space: schedules of one contraction kernel as plain data.

A *config* is a JSON-able dict of knob values, e.g.

    {"tile_i0": [8, 16, 1, 4], "tile_i1": [2, 4, 4, 16], "tile_k": [128, 4], "order": "ssrsrs",
     "cache_write": True, "pack": True, "parallel": True, "vectorize": True, "unroll": 64}

The template the knobs drive, `apply_config` (MetaSchedule's CPU structure "SSRSRS": register tile,
cache tile, packed weight, unrolling), lives with the code generator, `mlc_lab.codegen.tiling`,
because the compiler's default schedule is a point of the same template (`default_config`): one
schedule implementation, searched by the tuner and chosen by hand for the default. This module is the
space the tuner searches around it: the choices of each knob (`space_for`), and checking a config
against them (`SearchSpace.violation`).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlc_lab.codegen.tiling import (  # noqa: F401 - the template, re-exported for the tuner
    Config,
    KernelInfo,
    UnsupportedKernel,
    VectorISA,
    analyze,
    apply_config,
    default_config,
    has_window,
    target_isa,
)
from mlc_lab.codegen.winograd import TILE_SIZES as WINOGRAD_TILES

ORDERS = ("ssrsrs", "srssrs")
UNROLL = (0, 16, 64, 256)
#: Knobs added after logs were shipped: a config without one means its value here (what the template did
#: before the knob existed), so older records stay in the space and apply unchanged.
OPTIONAL_KNOBS: dict[str, Any] = {"taps_outer": False, "init_inner": False, "fuse_pad": False, "winograd": 0}


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
    #: Configs to measure first (the compiler's default point for this CPU): a search starts where the
    #: untuned build already is, so its best is never worse than the default.
    start: list[Config] = field(default_factory=list)

    def __len__(self) -> int:
        return math.prod(len(c) for c in self.knobs.values())

    def violation(self, config: Config) -> str | None:
        """Why a config is not in the space (None if it is).

        Exact, as JSON compares: `1` is not `true` and `1.0` is not `1` (Python's `==` would say they are),
        so a config read back from a log is in the space only if the tuner could have proposed it."""
        if not isinstance(config, dict):
            return f"a config is a dict of knob values, not a {type(config).__name__}"
        for name, choices in self.knobs.items():
            if name not in config and name not in OPTIONAL_KNOBS:
                return f"knob {name} is missing"
            value = config.get(name, OPTIONAL_KNOBS.get(name))
            if _as_json(value) not in self._choice_texts(name, choices):
                return f"knob {name}={_short(value)} is not one of its {len(choices)} choices"
        unknown = sorted(str(n) for n in config if n not in self.knobs)
        if unknown:
            return f"{', '.join(unknown[:3])} {'is not a knob' if len(unknown) == 1 else 'are not knobs'} of this space"
        if config.get("order") == "srssrs" and config.get("cache_write"):
            return "cache_write needs the whole reduction inside the tile (order ssrsrs)"
        if config.get("fuse_pad") and config.get("inline_pad"):
            return "fuse_pad pads a patch per tile: it needs the padding copy (inline_pad off)"
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


def space_for(
    info: KernelInfo, vector_max: int = 64, register_max: int = 8, lanes: int = 8, isa: VectorISA | None = None
) -> SearchSpace:
    """The knobs for one kernel: tile factorizations per loop plus the on/off and choice knobs; with `isa`
    (the measuring CPU's vector level), the template's default point for it is the space's `start`.

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
    if has_window(info):  # a conv's taps: their loop order (tiling.apply_config)
        knobs["taps_outer"] = [False, True]
    if info.reduce:  # where the accumulators start: zeroed registers, or a zero-filled output tile
        knobs["init_inner"] = [False, True]
    if info.winograd_ok:  # the algorithm: direct, or Winograd with 2x2 or 4x4 output tiles (codegen/winograd.py)
        knobs["winograd"] = [0, *WINOGRAD_TILES]
    if info.weight is not None:
        knobs["pack"] = [False, True]
    if info.pads:
        knobs["inline_pad"] = [False, True]
        knobs["fuse_pad"] = [False, True]
    knobs["parallel"] = [True, False]
    knobs["vectorize"] = [True, False]
    knobs["unroll"] = list(UNROLL)
    space = SearchSpace(knobs, info)
    if isa is not None:
        default = default_config(info, isa)
        if space.violation(default) is None:
            space.start.append(default)
            if info.winograd_ok:  # the same point with the other algorithm: Winograd's largest tile
                space.start.append({**default, "winograd": max(WINOGRAD_TILES)})
    return space
