"""Address traces of loop nests over tensors stored in a given layout.

A loop nest is an ordered list of (loop variable, extent); an access is a tensor, its layout and a
function from loop variables to its NCHW indices. The trace lists byte addresses in execution order,
which the cache simulator replays. This is how the layout chapter shows *why* a layout helps a
schedule: the same loops, a different layout, a different miss count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mlc_lab.ir import layout as L
from mlc_lab.ir.memory import check_fits

MAX_TRACE = 20_000_000


def element_offsets(layout: str, nchw_shape: tuple[int, int, int, int], n, c, h, w) -> np.ndarray:
    """Element offset of NCHW indices (arrays) in a tensor stored in `layout`."""
    shape = L.layout_shape(nchw_shape, "NCHW", layout)
    index = {"N": n, "C": c, "H": h, "W": w}
    coords = []
    for axis, block in L.parse_layout(layout):
        if block is None:
            inner = dict(L.parse_layout(layout)).get(axis.lower())
            coords.append(index[axis] // inner if inner else index[axis])
        else:
            coords.append(index[axis.upper()] % block)
    strides = np.cumprod((1,) + shape[:0:-1])[::-1]
    return sum(np.asarray(i, dtype=np.int64) * int(s) for i, s in zip(coords, strides))


@dataclass
class Access:
    name: str
    layout: str
    nchw_shape: tuple[int, int, int, int]
    index: Callable[[dict[str, np.ndarray]], tuple]  # loop vars -> (n, c, h, w)
    base: int = 0  # byte address of element 0
    itemsize: int = 4


def loop_nest_trace(loops: Sequence[tuple[str, int]], accesses: Sequence[Access]) -> np.ndarray:
    """Byte addresses of every access in every iteration, innermost loop fastest, accesses interleaved."""
    total = math.prod(e for _, e in loops)
    if total * len(accesses) > MAX_TRACE:
        raise ValueError(f"loop nest has {total * len(accesses):,} accesses; the limit is {MAX_TRACE:,}")
    # int64 everywhere: one index grid per loop, and per access its offsets, ~3 temporaries and the trace.
    check_fits(8 * total * (len(loops) + 5 * len(accesses)), f"the address trace of a {total:,}-iteration loop nest")
    grids = np.meshgrid(*[np.arange(e) for _, e in loops], indexing="ij")
    env = {name: g.ravel() for (name, _), g in zip(loops, grids)}
    per_access = [a.base + a.itemsize * element_offsets(a.layout, a.nchw_shape, *a.index(env)) for a in accesses]
    return np.stack(per_access, axis=1).ravel()


def conv2d_input_trace(
    layout: str,
    channels: int,
    height: int,
    width: int,
    kernel: int = 3,
    loop_order: str = "oh ow c kh kw",
) -> np.ndarray:
    """Input reads of a direct 3x3 convolution (valid padding, stride 1) for one output channel.

    `loop_order` lists the loops outermost first; reading the same input through different layouts
    with the same loops isolates the effect of the layout.
    """
    oh, ow = height - kernel + 1, width - kernel + 1
    extents = {"oh": oh, "ow": ow, "c": channels, "kh": kernel, "kw": kernel}
    names = loop_order.split()
    if sorted(names) != sorted(extents):
        raise ValueError(f"loop_order must order {sorted(extents)}, got {names}")
    x = Access(
        "input",
        layout,
        (1, channels, height, width),
        lambda v: (0, v["c"], v["oh"] + v["kh"], v["ow"] + v["kw"]),
    )
    return loop_nest_trace([(name, extents[name]) for name in names], [x])
