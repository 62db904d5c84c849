"""MLIR for `take`: a `linalg.generic` over the output whose body reads the table with `tensor.extract`
at the position loaded from the index tensor (the portable spelling of a gather in both MLIR builds)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlc_lab.codegen.mlir.ops import EMITTERS, dynamic_dims
from mlc_lab.codegen.mlir.scalar import Body, mlir_scalar
from mlc_lab.codegen.mlir.syntax import is_static_dim, tensor_type
from mlc_lab.ir import Node

if TYPE_CHECKING:
    from mlc_lab.codegen.mlir.emit import FunctionEmitter


@dynamic_dims
def emit_take(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """out[a, i, b] = x[a, indices[i], b]; a negative position counts from the end, one out of range is
    clamped (a kernel cannot raise; the interpreter names it instead)."""
    x, indices = node.inputs
    axis = node.attrs["axis"] % x.type.rank
    n, k, rank = x.shape[axis], indices.type.rank, node.type.rank
    table, ity = args[0], mlir_scalar(indices.dtype)
    operand = (args[1], tensor_type(indices.shape, indices.dtype), [f"d{j}" for j in range(axis, axis + k)])
    if not is_static_dim(n):  # a table of run-time length: its size (and so the clamp) is an index value
        n_int = f.op(f"arith.index_cast {f.size(n)} : index to {ity}", "len")
        one = f.op(f"arith.constant 1 : {ity}", "c")
        dynamic = (n_int, f.op(f"arith.subi {n_int}, {one} : {ity}", "last"))

    def body(b: Body, scalars: list[str]) -> str:
        zero = b.op("arith.constant 0", ity, "c")
        if is_static_dim(n):
            size, last = (b.op(f"arith.constant {v}", ity, "c") for v in (n, n - 1))
        else:
            size, last = dynamic
        negative = b.op(f"arith.cmpi slt, {scalars[0]}, {zero}", ity, "neg")
        wrapped = b.op(f"arith.select {negative}, {b.op(f'arith.addi {scalars[0]}, {size}', ity)}, {scalars[0]}", ity)
        clamped = b.op(f"arith.maxsi {b.op(f'arith.minsi {wrapped}, {last}', ity)}, {zero}", ity)
        position = b.op(f"arith.index_cast {clamped}", f"{ity} to index", "pos")
        loops = [b.op(f"linalg.index {j}", "index", "i") for j in range(rank)]
        at = [*loops[:axis], position, *loops[axis + k :]]
        return b.op(f"tensor.extract {table}[{', '.join(at)}]", tensor_type(x.shape, x.dtype), "v")

    return f.generic([operand], node.shape, node.dtype, body, hint="take")


EMITTERS["take"] = emit_take
