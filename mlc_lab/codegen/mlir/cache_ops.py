"""MLIR for `cache_write`: the new rows go into the cache with one `tensor.insert_slice` at the run-time
position (an `index` read from the position tensor), instead of the registry's decomposition (a select
over every element of the cache). The op's value semantics stay: the result is a new tensor, and whether
the runtime reuses the cache argument's buffer for it is the runtime's business. `result_storage` names,
for the entry function, which cache argument may hold which result (`{iree.abi.output = N}`): IREE then
writes the updated cache into the buffer it was given (measured: tests/test_llm_generate.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlc_lab.codegen.mlir.ops import EMITTERS, dynamic_dims
from mlc_lab.codegen.mlir.scalar import mlir_scalar
from mlc_lab.codegen.mlir.syntax import is_static_dim, tensor_type
from mlc_lab.ir import Graph, Node

if TYPE_CHECKING:
    from mlc_lab.codegen.mlir.emit import FunctionEmitter


@dynamic_dims
def emit_cache_write(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """cache[layer, ..., position : position + t, :] = rows. A position outside [0, length - t] is clamped
    into it (a kernel cannot raise; the interpreter names the bad position instead)."""
    cache, rows, position = node.inputs
    length, t, rank = cache.shape[-2], rows.shape[-2], cache.type.rank
    zero = f.op("arith.constant 0 : index", "c")
    p = f.op(f"tensor.extract {args[2]}[{zero}] : {tensor_type(position.shape, position.dtype)}", "position")
    p = f.op(f"arith.index_cast {p} : {mlir_scalar(position.dtype)} to index", "position")
    if is_static_dim(length) and is_static_dim(t):
        room = f.op(f"arith.constant {int(length) - int(t)} : index", "room")
    else:
        room = f.op(f"arith.subi {f.size(length)}, {f.size(t)} : index", "room")
    p = f.op(f"arith.maxsi {f.op(f'arith.minsi {p}, {room} : index', 'position')}, {zero} : index", "position")
    block = (1, *rows.shape)  # one layer's worth of rows, with the layer axis
    source = f.reshape(args[1], rows.shape, block, rows.dtype)
    offsets = [node.attrs["layer"], *[0] * (rank - 3), p, 0]
    return f.op(
        f"tensor.insert_slice {source} into {args[0]}[{f.sizes(offsets)}] [{f.sizes(block)}] "
        f"[{', '.join(['1'] * rank)}] : {tensor_type(block, rows.dtype)} into {tensor_type(cache.shape, cache.dtype)}",
        "cache",
    )


EMITTERS["cache_write"] = emit_cache_write


def result_storage(graph: Graph) -> dict[Node, int]:
    """Graph input -> index of the output it can be storage for: the output is a chain of `cache_write`s
    into that input, and the chain's first write is the input's only reader (so nothing reads the old
    contents after the new ones land)."""
    users = graph.users()
    storage: dict[Node, int] = {}
    for index, out in enumerate(graph.outputs):
        node = out
        while node.op == "cache_write":
            node = node.inputs[0]
        if node is out or node not in graph.inputs or node in storage or len(users[node]) != 1:
            continue
        storage[node] = index
    return storage
