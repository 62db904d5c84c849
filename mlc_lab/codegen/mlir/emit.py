"""Graph -> MLIR text: one function per graph, one small emitter per op (the table in `ops.py`).

We write MLIR's textual form directly and let the real MLIR parser and verifier (the upstream Python
bindings) check it: text is what a reader sees, and it is the one form both MLIR builds (torch-mlir's
and IREE's) accept. Every op line carries `loc("<node name>")`, so a verifier error names the graph
node it came from. Weights become `arith.constant dense<"0x...">` (raw bytes: fast to parse); the
printed module elides them so `str()` stays readable.

Dynamic dimensions: a `SymDim` in a type is written `?` (`tensor<1x?xi64>`). Each function takes the
run-time value of every SymDim once, as an `index` (`%n = tensor.dim %ids, %c1`), from the first
argument that carries it; `tensor.empty`, slices and reshapes get those values as their dynamic sizes.
Arguments that share a SymDim are not compared in the module: the callers check them before the call
(`mlc_lab.ir.interpreter.bind_inputs`, the check the interpreter and TVM make: one size per name, at most
its bound), so a mismatch never reaches the compiled code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import count

import numpy as np

from mlc_lab.codegen.mlir import cache_ops, index_ops  # noqa: F401  (register the `cache_write`, `take` emitters)
from mlc_lab.codegen.mlir.ops import emit_node, emitter_for
from mlc_lab.codegen.mlir.scalar import Body, float_literal, is_float, mlir_scalar
from mlc_lab.codegen.mlir.syntax import (
    MLIRLoweringError,
    Operand,
    affine_map,
    dense_literal,
    dynamic_axis_error,
    is_static_dim,
    tensor_type,
)
from mlc_lab.ir import Graph, Node, is_source
from mlc_lab.ir.types import SymDim
from mlc_lab.passes.decompose import Decompose

__all__ = ["FunctionEmitter", "MLIRLoweringError", "ModuleEmitter", "emit_text"]


class FunctionEmitter:
    """Writes one `func.func`: graph values become SSA names, ops become lines."""

    def __init__(self, module: ModuleEmitter, graph: Graph, name: str, private: bool = False) -> None:
        self.module = module
        self.graph = graph
        self.name = name
        self.private = private
        self.lines: list[str] = []
        self.values: dict[Node, str] = {}
        self.dims: dict[str, str] = {}  #: SymDim name -> its `index` SSA value in this function
        self.node: Node | None = None  #: the node being emitted (errors name it)
        self.loc = ""

    # -- names and lines ------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        return self.module.fresh(hint)

    def op(self, text: str, hint: str = "t") -> str:
        """Write `%name = text loc(...)` and return %name."""
        name = self.fresh(hint)
        self.lines.append(f"{name} = {text}{self.loc}")
        return name

    # -- sizes: static ints, SymDims, and `index` values computed from them --------------------------
    def size(self, d: object) -> str:
        """A dimension as an MLIR size operand: the int itself, or the `index` SSA value it has at run time."""
        if is_static_dim(d):
            return str(int(d))  # type: ignore[call-overload]
        if isinstance(d, SymDim):
            if d.name not in self.dims:
                raise MLIRLoweringError(
                    f"function @{self.name}: symbolic dimension {d} is not the size of any argument's axis"
                )
            return self.dims[d.name]
        return str(d)  # already an SSA `index` value (a product of sizes)

    def sizes(self, shape: Sequence[object]) -> str:
        return ", ".join(self.size(d) for d in shape)

    def product(self, dims: Sequence[object]) -> int | str:
        """The number of elements of `dims`: an int when all are static, else an `index` SSA value."""
        static = int(np.prod([int(d) for d in dims if is_static_dim(d)], dtype=np.int64))  # type: ignore[call-overload]
        dynamic = [self.size(d) for d in dims if not is_static_dim(d)]
        if not dynamic:
            return static
        if static != 1:
            dynamic.append(self.op(f"arith.constant {static} : index", "c"))
        total = dynamic[0]
        for d in dynamic[1:]:
            total = self.op(f"arith.muli {total}, {d} : index", "numel")
        return total

    def add_sizes(self, a: int | str, b: object) -> int | str:
        """a + b for offsets along an axis (ints stay ints)."""
        if is_static_dim(a) and is_static_dim(b):
            return int(a) + int(b)  # type: ignore[call-overload]
        return self.op(f"arith.addi {self.size(a)}, {self.size(b)} : index", "offset")

    def _bind_dims(self) -> None:
        """`%n = tensor.dim %arg, %c<axis>` once per SymDim, from the first argument that carries it."""
        for node in self.graph.inputs:
            for axis, d in enumerate(node.shape):
                if isinstance(d, SymDim) and d.name not in self.dims:
                    self.loc = f' loc("{node.name}")'
                    c = self.op(f"arith.constant {axis} : index", "c")
                    ty = tensor_type(node.shape, node.dtype)
                    self.dims[d.name] = self.op(f"tensor.dim {self.values[node]}, {c} : {ty}", d.name)
        self.loc = ""

    # -- building blocks the op emitters share -----------------------------------------------------
    def empty(self, shape: Sequence[object], dtype: str) -> str:
        dynamic = ", ".join(self.size(d) for d in shape if not is_static_dim(d))
        return self.op(f"tensor.empty({dynamic}) : {tensor_type(shape, dtype)}", "empty")

    def scalar(self, value: float, dtype: str) -> str:
        literal = float_literal(value, dtype) if is_float(dtype) else str(int(value))
        return self.op(f"arith.constant {literal} : {mlir_scalar(dtype)}", "cst")

    def filled(self, value: float, shape: Sequence[int], dtype: str) -> str:
        ty = tensor_type(shape, dtype)
        v, e = self.scalar(value, dtype), self.empty(shape, dtype)
        return self.op(f"linalg.fill ins({v} : {mlir_scalar(dtype)}) outs({e} : {ty}) -> {ty}", "fill")

    def constant(self, array: np.ndarray, hint: str = "cst") -> str:
        ty = tensor_type(array.shape, array.dtype.name)
        return self.op(f"arith.constant {dense_literal(array)} : {ty}", hint)

    def generic(
        self,
        operands: Sequence[Operand],
        out_shape: Sequence[int],
        out_dtype: str,
        body: Callable[[Body, list[str]], str],
        *,
        rank: int | None = None,
        reduced: frozenset[int] = frozenset(),
        init: str | None = None,
        hint: str = "gen",
    ) -> str:
        """A `linalg.generic` over `rank` loops (default: the output's rank).

        `body(b, scalars)` computes one element from the operands' scalars followed by the output's
        current element (the accumulator, for reductions). Loops in `reduced` are reduction loops; the
        output is indexed by the other loops, in order. Reductions pass an `init` already filled.
        """
        rank = len(out_shape) if rank is None else rank
        out_ty = tensor_type(out_shape, out_dtype)
        out_exprs = [f"d{i}" for i in range(rank) if i not in reduced]
        if init is None:
            init = self.empty(out_shape, out_dtype)
        maps = [affine_map(rank, exprs) for _, _, exprs in operands] + [affine_map(rank, out_exprs)]
        iters = ", ".join('"reduction"' if i in reduced else '"parallel"' for i in range(rank))
        ins = ", ".join(name for name, _, _ in operands)
        in_types = ", ".join(ty for _, ty, _ in operands)
        b = Body(self.fresh)
        args = [self.fresh("in") for _ in operands] + [self.fresh("out")]
        arg_types = [_element_type(ty) for _, ty, _ in operands] + [mlir_scalar(out_dtype)]
        result = body(b, args)  # operand scalars, then the output's (the accumulator of a reduction)
        ins_text = f" ins({ins} : {in_types})" if operands else ""
        name = self.fresh(hint)
        self.lines.append(
            f"{name} = linalg.generic {{indexing_maps = [{', '.join(maps)}], iterator_types = [{iters}]}}"
            f"{ins_text} outs({init} : {out_ty}) {{"
        )
        self.lines.append(f"^bb0({', '.join(f'{a}: {t}' for a, t in zip(args, arg_types))}):")
        self.lines += ["  " + line for line in b.lines]
        self.lines.append(f"  linalg.yield {result} : {mlir_scalar(out_dtype)}")
        self.lines.append(f"}} -> {out_ty}{self.loc}")
        return name

    def reshape(self, x: str, src: Sequence[int], dst: Sequence[int], dtype: str) -> str:
        """Any static reshape: collapse to 1-D, then expand (canonicalize folds the pair when it can)."""
        src, dst = tuple(src), tuple(dst)
        if src == dst:
            return x
        numel = self.product(src)
        flat, flat_ty = x, tensor_type((numel,), dtype)
        if not src:  # 0-d -> [1]: expanding with no reassociation groups
            flat = self.op(f"tensor.expand_shape {x} [] output_shape [1] : {tensor_type(src, dtype)} into {flat_ty}")
        elif len(src) != 1:
            groups = "[" + ", ".join(str(i) for i in range(len(src))) + "]"
            flat = self.op(
                f"tensor.collapse_shape {x} [{groups}] : {tensor_type(src, dtype)} into {flat_ty}", "collapsed"
            )
        if len(dst) == 1:
            return flat
        if not dst:  # [1] -> 0-d
            return self.op(f"tensor.collapse_shape {flat} [] : {flat_ty} into {tensor_type(dst, dtype)}", "collapsed")
        groups = "[" + ", ".join(str(i) for i in range(len(dst))) + "]"
        shape = self.sizes(dst)
        return self.op(
            f"tensor.expand_shape {flat} [{groups}] output_shape [{shape}] : "
            f"{tensor_type((numel,), dtype)} into {tensor_type(dst, dtype)}",
            "expanded",
        )

    def transpose(self, x: str, shape: Sequence[int], perm: Sequence[int], dtype: str) -> str:
        if list(perm) == list(range(len(shape))):
            return x
        out = [shape[p] for p in perm]
        init = self.empty(out, dtype)
        return self.op(
            f"linalg.transpose ins({x} : {tensor_type(shape, dtype)}) outs({init} : {tensor_type(out, dtype)}) "
            f"permutation = [{', '.join(map(str, perm))}]",
            "transposed",
        )

    def pad(
        self, x: str, shape: Sequence[int], low: Sequence[int], high: Sequence[int], value: float, dtype: str
    ) -> str:
        if not any(low) and not any(high):
            return x
        for axis, (d, lo, hi) in enumerate(zip(shape, low, high)):
            if not is_static_dim(d) and (lo or hi):
                node = self.node
                raise dynamic_axis_error(node.op, node.name, axis, d, "only static axes are padded")
        out = [d + lo + hi if lo or hi else d for d, lo, hi in zip(shape, low, high)]
        v = self.scalar(value, dtype)
        idx = ", ".join(f"{self.fresh('i')}: index" for _ in shape)
        name = self.fresh("padded")
        self.lines.append(
            f"{name} = tensor.pad {x} low[{', '.join(map(str, low))}] high[{', '.join(map(str, high))}] {{"
        )
        self.lines.append(f"^bb0({idx}):")
        self.lines.append(f"  tensor.yield {v} : {mlir_scalar(dtype)}")
        self.lines.append(f"}} : {tensor_type(shape, dtype)} to {tensor_type(out, dtype)}{self.loc}")
        return name

    # -- the function -----------------------------------------------------------------------------
    def emit_body(self) -> None:
        for node in self.graph.nodes:
            if is_source(node.op):  # constants are written where first used
                continue
            self.loc, self.node = f' loc("{node.name}")', node
            self.values[node] = emit_node(self, node, _Args(self, node.inputs))
        self.loc = ""

    def value(self, node: Node) -> str:
        """The SSA name of `node`; a constant is emitted on first use, next to its reader."""
        if node not in self.values:
            if node.op != "constant":
                raise MLIRLoweringError(f"%{node.name} is used before it is defined")
            loc, self.loc = self.loc, f' loc("{node.name}")'
            self.values[node] = self.constant(node.value, node.name)
            self.loc = loc
        return self.values[node]

    def text(self) -> str:
        args = []
        storage = {} if self.private else cache_ops.result_storage(self.graph)
        for node in self.graph.inputs:
            self.values[node] = self.fresh(node.name)
            tied = f" {{iree.abi.output = {storage[node]} : index}}" if node in storage else ""
            args.append(f"{self.values[node]}: {tensor_type(node.shape, node.dtype)}{tied}")
        self._bind_dims()
        self.emit_body()
        results = [self.value(o) for o in self.graph.outputs]
        types = [tensor_type(o.shape, o.dtype) for o in self.graph.outputs]
        head = "func.func private" if self.private else "func.func"
        lines = [f"{head} @{self.name}({', '.join(args)}) -> ({', '.join(types)}) {{"]
        lines += ["  " + line for line in self.lines]
        lines.append(f"  func.return {', '.join(results)} : {', '.join(types)}")
        lines.append("}")
        return "\n".join(lines)


class _Args(Sequence[str]):
    """A node's operands as SSA names, looked up only when an emitter reads them (see `value`)."""

    def __init__(self, f: FunctionEmitter, nodes: Sequence[Node]) -> None:
        self.f, self.nodes = f, nodes

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return self.f.value(self.nodes[i])

    def __len__(self) -> int:
        return len(self.nodes)


def _element_type(tensor_ty: str) -> str:
    """`tensor<2x3xf32>` -> `f32`, `tensor<i1>` -> `i1`."""
    return tensor_ty[:-1].split("x")[-1].removeprefix("tensor<")


_NAME_BAD = re.compile(r"[^A-Za-z0-9_$.]")


class ModuleEmitter:
    """Owns SSA-name uniqueness and the extra functions fused groups need."""

    def __init__(self) -> None:
        self.functions: list[str] = []
        self._counter = count()
        self._used: set[str] = set()
        self._symbols: set[str] = set()

    def fresh(self, hint: str) -> str:
        base = _NAME_BAD.sub("_", hint) or "v"
        if base[0].isdigit():
            base = "v" + base
        name = base
        while name in self._used:
            name = f"{base}_{next(self._counter)}"
        self._used.add(name)
        return "%" + name

    def symbol(self, hint: str) -> str:
        base = _NAME_BAD.sub("_", hint)
        name, k = base, 1
        while name in self._symbols:
            name, k = f"{base}_{k}", k + 1
        self._symbols.add(name)
        return name

    def add_function(self, graph: Graph, name: str, private: bool = False) -> str:
        symbol = self.symbol(name)
        text = FunctionEmitter(self, graph, symbol, private).text()
        self.functions.append(text)
        return symbol

    def text(self) -> str:
        return "module {\n" + "\n".join(self.functions) + "\n}\n"


def emit_text(graph: Graph, name: str = "main") -> str:
    """The MLIR text of `graph` as `func.func @main` (plus private functions for non-elementwise fused groups).

    Composite ops with no emitter of their own are first replaced by their decompositions (`Decompose`).
    """
    graph.verify()
    graph = Decompose(native=lambda op: emitter_for(op) is not None).apply(graph)
    module = ModuleEmitter()
    module.add_function(graph, name)
    return module.text()
