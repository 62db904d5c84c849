"""Sizes and memory: the limit a tensor must stay within, and a check before anything big is allocated.

Two ways to be too big, caught at two moments:

- *Beyond the stated limit* (`MAX_TENSOR_BYTES`): no process on this kind of machine can hold it.
  The verifier refuses such a shape outright, naming the node (`shape_problem`).
- *Within the limit but larger than this machine's free memory*: the simulators, constant folding,
  `mlc_lab.compile` and the interpreter estimate what they are about to allocate and refuse with a
  `MemoryLimitError` that names the size in GiB and what needed it, instead of dying halfway with
  NumPy's `MemoryError` or TVM's `std::bad_alloc` (`check_fits`, `check_graph_fits`).

Every size is a Python int (`math.prod` of the shape, times the element size from the graph's own
types), so an element count cannot overflow int64 the way `np.prod(shape)` silently does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.ops.registry import is_source
from mlc_lab.ir.types import TensorType, upper

if TYPE_CHECKING:
    from mlc_lab.ir.graph import Graph, Node

#: The largest tensor the IR accepts: 2^47 bytes (128 TiB), x86-64's user address space with 4-level
#: paging. Dimensions are bounded by it too (even in an empty tensor), which keeps every size far
#: inside int64, the index type of NumPy and TVM.
MAX_TENSOR_BYTES: int = 2**47

#: Fraction of the available memory (`psutil.virtual_memory().available`) an allocation may take; the
#: rest is head room for the allocator, temporaries the estimate does not count, and everything else.
SAFETY_FRACTION: float = 0.8

#: Below this many bytes an allocation is not worth asking the OS about (keeps hot paths cheap).
ALWAYS_FITS_BYTES: int = 64 * 2**20


class MemoryLimitError(MlcLabError, MemoryError, ValueError):
    """An allocation was refused before it was tried: it would not fit in this machine's free memory.

    A MemoryError (what it prevents) and a ValueError (the input is too big, as every size error is).
    """


def gib(nbytes: float) -> str:
    """`nbytes` in GiB, the unit every message here uses: "74.5 GiB"; small sizes also in MiB."""
    if nbytes >= 2**30 / 10:
        return f"{nbytes / 2**30:,.1f} GiB"
    return f"{nbytes / 2**30:.2g} GiB ({nbytes / 2**20:,.1f} MiB)"


def tensor_bytes(ty: TensorType) -> int:
    """Bytes of a tensor of type `ty`, exactly, as a Python int (no overflow)."""
    return ty.numel * ty.itemsize  # symbolic dimensions at their upper bound


def shape_problem(ty: TensorType) -> str | None:
    """Why a tensor type is beyond the stated limit, or None when it is within it."""
    shape = list(ty.shape)
    if any(upper(d) > MAX_TENSOR_BYTES for d in ty.shape):
        return f"shape {shape} has a dimension larger than the limit of {MAX_TENSOR_BYTES:,} (MAX_TENSOR_BYTES)"
    elements = ty.numel  # symbolic dimensions at their upper bound
    nbytes = elements * ty.itemsize
    if nbytes > MAX_TENSOR_BYTES:
        return (
            f"shape {shape} ({ty.dtype}) has {elements:,} elements = {gib(nbytes)}, more than the "
            f"{gib(MAX_TENSOR_BYTES)} a tensor may hold (MAX_TENSOR_BYTES: x86-64's user address space)"
        )
    return None


def available_bytes() -> int:
    """Memory the OS can give this process now without swapping (psutil's `available`)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency; this is a fallback for odd installs
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.virtual_memory().available)


def check_fits(nbytes: int, what: str, detail: str = "") -> None:
    """Refuse (`MemoryLimitError`) an allocation of `nbytes` for `what` that would not fit in free memory."""
    if nbytes <= ALWAYS_FITS_BYTES:
        return
    free = available_bytes()
    usable = int(free * SAFETY_FRACTION)
    if nbytes > usable:
        raise MemoryLimitError(
            f"{what} needs {gib(nbytes)} of memory{detail}, but this machine has {gib(free)} available "
            f"(at most {SAFETY_FRACTION:.0%} of it, {gib(usable)}, may be used); make it smaller"
        )


def graph_bytes(graph: Graph, reuse: bool = False, held: bool = True) -> tuple[int, Node | None]:
    """Bytes a run of `graph` holds at its peak, and the largest tensor (to name in messages).

    reuse=False: every value stays alive to the end (the interpreter's environment keeps them all),
    including the intermediates inside fused nodes. reuse=True: a value dies after its last reader
    (the least a backend with memory planning needs); inputs, constants and outputs live throughout.
    held=False leaves out the inputs and constants (already in memory when the interpreter is called).
    """
    sizes = {node: tensor_bytes(node.type) for node in graph.nodes}
    largest = max(sizes, key=sizes.get, default=None)
    given = {n for n in graph.nodes if is_source(n.op)}
    base = sum(sizes[n] for n in given) if held else 0
    if not reuse:
        inner = sum(graph_bytes(n.subgraph)[0] for n in graph.nodes if n.op == "fused" and "subgraph" in n.attrs)
        return base + sum(s for n, s in sizes.items() if n not in given) + inner, largest
    last_use = {node: i for i, node in enumerate(graph.nodes)}
    for i, node in enumerate(graph.nodes):
        for x in node.inputs:
            last_use[x] = i
    keep = given | set(graph.outputs)
    dying: dict[int, int] = {}
    for node, i in last_use.items():
        if node not in keep:
            dying[i] = dying.get(i, 0) + sizes[node]
    live = peak = base
    for i, node in enumerate(graph.nodes):
        if node not in given:
            live += sizes[node]
        peak = max(peak, live)
        live -= dying.get(i, 0)
    return peak, largest


def check_graph_fits(graph: Graph, what: str, reuse: bool = False, held: bool = True) -> None:
    """`check_fits` for a run of `graph` (see `graph_bytes`), naming its largest tensor."""
    nbytes, largest = graph_bytes(graph, reuse, held)
    detail = ""
    if largest is not None:
        detail = f" (largest tensor %{largest.name} ({largest.op}) {largest.type} = {gib(tensor_bytes(largest.type))})"
    check_fits(nbytes, what, detail)
