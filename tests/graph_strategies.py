"""Hypothesis strategies for random graphs, shared by the differential tests.

`random_graphs()` draws a small DAG of elementwise, broadcasting, matmul/dense and reduction ops over
float32 tensors, with the recipe that built it, so a test can evaluate the same computation with
plain NumPy (independently of the op registry) and compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from mlc_lab.ir import Graph, GraphBuilder, Node

# Plain NumPy meanings, written independently of mlc_lab.ir.ops.
UNARY = {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "neg": np.negative,
    "abs": np.abs,
    "exp": lambda x: np.exp(np.clip(x, -20, 20)),  # inputs are clipped in the graph too
}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum}


@dataclass
class RandomGraph:
    graph: Graph
    steps: list[tuple]  # (kind, op, input indices, extra) in build order; index -> value
    input_shapes: list[tuple[int, ...]]
    constants: dict[int, np.ndarray]

    def numpy_eval(self, *inputs: np.ndarray) -> np.ndarray:
        values: list[np.ndarray] = [x.astype(np.float64) for x in inputs]
        for kind, op, args, extra in self.steps:
            xs = [values[a] for a in args]
            if kind == "const":
                values.append(self.constants[extra].astype(np.float64))
            elif kind == "unary":
                x = np.clip(xs[0], -20, 20) if op == "exp" else xs[0]
                values.append(UNARY[op](x))
            elif kind == "binary":
                values.append(BINARY[op](*xs))
            elif kind == "matmul":
                values.append(xs[0] @ xs[1])
            elif kind == "dense":
                values.append(xs[0] @ xs[1].T)
            elif kind == "sum":
                values.append(xs[0].sum(axis=extra, keepdims=True))
            elif kind == "softmax":
                e = np.exp(xs[0] - xs[0].max(axis=-1, keepdims=True))
                values.append(e / e.sum(axis=-1, keepdims=True))
        return values[-1]

    def random_inputs(self, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [rng.standard_normal(s).astype(np.float32) for s in self.input_shapes]


@st.composite
def random_graphs(draw, max_ops: int = 12, allow_reductions: bool = True) -> RandomGraph:
    rows = draw(st.integers(1, 6))
    cols = draw(st.integers(1, 6))
    b = GraphBuilder("random")
    nodes: list[Node] = []
    steps: list[tuple] = []
    constants: dict[int, np.ndarray] = {}
    n_inputs = draw(st.integers(1, 3))
    shapes = [(rows, cols)] * n_inputs
    for k in range(n_inputs):
        nodes.append(b.input(f"x{k}", (rows, cols)))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)

    def add_constant(shape):
        value = rng.standard_normal(shape).astype(np.float32)
        cid = len(constants)
        constants[cid] = value
        node = b.constant(value, f"c{cid}")
        steps.append(("const", None, (), cid))
        nodes.append(node)
        return len(nodes) - 1

    kinds = ["unary", "binary", "binary_const", "matmul", "dense"] + (["sum", "softmax"] if allow_reductions else [])
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(kinds))
        # operate on 2-D values of the current working shape (the last value's shape)
        current = [i for i, n in enumerate(nodes) if n.type.rank == 2 and n.op != "constant"]
        a = draw(st.sampled_from(current))
        x = nodes[a]
        if kind == "unary":
            op = draw(st.sampled_from(sorted(UNARY)))
            src = b.clip(x, min=-20.0, max=20.0) if op == "exp" else x
            node = getattr(b, op)(src)
            steps.append(("unary", op, (a,), None))
        elif kind == "binary":
            same = [i for i in current if nodes[i].type.shape == x.type.shape]
            c = draw(st.sampled_from(same))
            op = draw(st.sampled_from(sorted(BINARY)))
            node = getattr(b, op)(x, nodes[c])
            steps.append(("binary", op, (a, c), None))
        elif kind == "binary_const":
            r, c = x.type.shape
            shape = draw(st.sampled_from([(r, c), (1, c), (c,), (r, 1), ()]))
            ci = add_constant(shape)
            op = draw(st.sampled_from(sorted(BINARY)))
            node = getattr(b, op)(x, nodes[ci])
            steps.append(("binary", op, (a, ci), None))
        elif kind in ("matmul", "dense"):
            k = x.type.shape[1]
            n = draw(st.integers(1, 6))
            ci = add_constant((k, n) if kind == "matmul" else (n, k))
            node = getattr(b, kind)(x, nodes[ci])
            steps.append((kind, None, (a, ci), None))
        elif kind == "sum":
            axis = draw(st.integers(0, 1))
            node = b.sum(x, axes=(axis,), keepdims=True)
            steps.append(("sum", None, (a,), axis))
        else:
            node = b.softmax(x, axis=-1)
            steps.append(("softmax", None, (a,), None))
        nodes.append(node)
    return RandomGraph(b.build(nodes[-1]), steps, shapes, constants)


@st.composite
def random_conv_graphs(draw, max_ops: int = 8) -> Graph:
    """Small NCHW conv nets: conv2d/pools/relu/bias_add/batch_norm/residual add/scalar mul, then a head.

    Channel counts are drawn from {3, 4, 8, 12, 16} so blocked layouts sometimes fit and sometimes do not.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    channels = st.sampled_from([3, 4, 8, 12, 16])
    c = draw(channels)
    size = draw(st.integers(6, 12))
    b = GraphBuilder("random_conv")
    x = b.input("x", (1, c, size, size))

    def const(*shape):
        return b.constant(rng.standard_normal(shape).astype(np.float32))

    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "relu", "bias", "bn", "residual", "scale"]))
        cur_c, h = x.type.shape[1], x.type.shape[2]
        if kind == "conv":
            out_c = draw(channels)
            k = draw(st.sampled_from([1, 3]))
            stride = draw(st.sampled_from([1, 2])) if h >= 4 else 1
            x = b.conv2d(x, const(out_c, cur_c, k, k), strides=stride, padding=k // 2)
        elif kind == "pool" and h >= 2:
            x = getattr(b, draw(st.sampled_from(["max_pool2d", "avg_pool2d"])))(x, kernel=2)
        elif kind == "relu":
            x = b.relu(x)
        elif kind == "bias":
            x = b.bias_add(x, const(cur_c), axis=1)
        elif kind == "bn":
            var = b.constant(np.abs(rng.standard_normal(cur_c)).astype(np.float32) + 0.5)
            x = b.batch_norm(x, const(cur_c), const(cur_c), const(cur_c), var)
        elif kind == "residual":
            x = b.add(x, b.relu(x))
        elif kind == "scale":
            x = b.mul(x, const(1, cur_c, 1, 1))
    head = draw(st.sampled_from(["gap", "flatten"]))
    x = b.global_avg_pool2d(x) if head == "gap" else x
    return b.build(b.reshape(x, shape=(1, -1)))


# == typed cases: int64/int32/bool/float64 values, 0-d and empty shapes ==========================
TYPED_DTYPES = ("float32", "float64", "int32", "int64", "bool")
TYPED_SHAPES = ((), (0,), (3,), (2, 3), (2, 0), (0, 3), (1, 4), (3, 1, 2))
#: Ops drawn per kind of dtype (the IR refuses neg/abs/sub/div/pow on bool, as PyTorch does).
TYPED_UNARY = {"float": ("relu", "neg", "abs", "tanh", "sigmoid"), "int": ("neg", "abs"), "bool": ()}
TYPED_BINARY = {
    "float": ("add", "sub", "mul", "maximum", "minimum", "div"),
    "int": ("add", "sub", "mul", "maximum", "minimum"),
    "bool": ("add", "mul", "maximum", "minimum"),
}




def dtype_kind(dtype: str) -> str:
    return "float" if dtype.startswith("float") else "bool" if dtype == "bool" else "int"


def typed_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Small values: integers in [-4, 4] (no overflow, so wraparound never enters the comparison)."""
    kind = dtype_kind(dtype)
    if kind == "float":
        return np.asarray(rng.standard_normal(shape)).astype(dtype)
    if kind == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    return np.asarray(rng.integers(-4, 5, shape)).astype(dtype)


@dataclass
class TypedCase:
    """A few ops on one dtype. `steps` replay the case with PyTorch: (op, argument indices, attrs)."""

    inputs: list[np.ndarray]
    steps: list[tuple[str, tuple[int, ...], dict]]
    constants: dict[int, np.ndarray]  # value index -> array (values are inputs, constants, results)

    def build(self, b: GraphBuilder, prefix: str) -> Node:
        values: list[Node] = []
        for k, x in enumerate(self.inputs):
            values.append(b.input(f"{prefix}x{k}", x.shape, x.dtype.name))
        for op, args, attrs in self.steps:
            if op == "constant":
                values.append(b.constant(self.constants[len(values)], f"{prefix}c"))
            else:
                values.append(b.op(op, *(values[a] for a in args), name=f"{prefix}{op}", **attrs))
        return values[-1]

    def torch_eval(self) -> Any:
        """The same computation in PyTorch (the oracle for the interpreter's semantics)."""
        import torch

        values = [torch.from_numpy(x.copy()) for x in self.inputs]
        for op, args, attrs in self.steps:
            xs = [values[a] for a in args]
            if op == "constant":
                values.append(torch.from_numpy(self.constants[len(values)].copy()))
                continue
            values.append(_TORCH[op](*xs, **attrs))
        return values[-1]


def _torch_table() -> dict:
    import torch

    def reduce(fn):
        def run(x, axes, keepdims):
            dims = list(range(x.dim())) if axes is None else list(axes)
            return fn(x, dims, keepdims) if dims else x

        return run

    def floor_or_true_div(a, b):
        return torch.div(a, b, rounding_mode=None if a.dtype.is_floating_point else "floor")

    logical_or, logical_and = torch.logical_or, torch.logical_and
    bool_safe = {"add": logical_or, "mul": logical_and, "maximum": logical_or, "minimum": logical_and}

    def binary(name, fn):
        return lambda a, b: bool_safe[name](a, b) if a.dtype == torch.bool else fn(a, b)

    return {
        "relu": torch.relu, "neg": torch.neg, "abs": torch.abs, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
        "add": binary("add", torch.add), "sub": torch.sub, "mul": binary("mul", torch.mul),
        "maximum": binary("maximum", torch.maximum), "minimum": binary("minimum", torch.minimum),
        "div": floor_or_true_div, "pow": torch.pow,
        "sum": reduce(lambda x, d, k: torch.sum(x, d, keepdim=k)),
        "max": reduce(lambda x, d, k: torch.amax(x, d, keepdim=k)),
        "min": reduce(lambda x, d, k: torch.amin(x, d, keepdim=k)),
        "mean": reduce(lambda x, d, k: torch.mean(x, d, keepdim=k)),
        "cast": lambda x, dtype: x.to(getattr(torch, dtype)),
        "clip": lambda x, min, max: torch.clamp(x, min, max),
        "matmul": torch.matmul,
        "dense": lambda x, w: torch.matmul(x, w.T),
        "reshape": lambda x, shape: x.reshape(shape),
        "transpose": lambda x, perm: x.permute(perm),
    }  # fmt: skip


class _LazyTable(dict):
    def __missing__(self, key):
        self.update(_torch_table())
        return dict.__getitem__(self, key)


_TORCH = _LazyTable()


@st.composite
def typed_cases(draw) -> TypedCase:
    """1-4 ops on one dtype and one shape (0-d and empty included), some with 0-d constants of that dtype."""
    dtype = draw(st.sampled_from(TYPED_DTYPES))
    kind = dtype_kind(dtype)
    shape = draw(st.sampled_from(TYPED_SHAPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    inputs = [typed_values(rng, shape, dtype) for _ in range(draw(st.integers(1, 2)))]
    steps: list[tuple[str, tuple[int, ...], dict]] = []
    constants: dict[int, np.ndarray] = {}
    types = [(x.shape, dtype) for x in inputs]  # (shape, dtype) of every value so far
    may_be_nan = False

    def add(op, args, attrs, shape_, dtype_):
        steps.append((op, args, attrs))
        types.append((shape_, dtype_))

    def constant(value):
        constants[len(types)] = value
        add("constant", (), {}, value.shape, value.dtype.name)
        return len(types) - 1

    for _ in range(draw(st.integers(1, 4))):
        last = len(types) - 1
        shape, dtype = types[last]
        kind = dtype_kind(dtype)
        choice = draw(st.sampled_from(["unary", "binary", "scalar", "reduce", "cast", "move", "special"]))
        if choice == "unary" and TYPED_UNARY[kind]:
            add(draw(st.sampled_from(TYPED_UNARY[kind])), (last,), {}, shape, dtype)
        elif choice in ("binary", "scalar"):
            ops = TYPED_BINARY[kind]
            op = draw(st.sampled_from(ops))
            if choice == "scalar" or op == "div":  # a 0-d constant of the graph's dtype (never 0 for div)
                value = typed_values(rng, (), dtype)
                if op == "div":
                    value = np.asarray(draw(st.sampled_from([2, 3, -2])) if kind == "int" else 1.5).astype(dtype)
                other = constant(np.asarray(value))
            else:
                same = [i for i, t in enumerate(types) if t == (shape, dtype)]
                other = draw(st.sampled_from(same))
            add(op, (last, other), {}, shape, dtype)
        elif choice == "reduce" and len(shape) > 0:
            axis = draw(st.integers(0, len(shape) - 1))
            ops = ["sum"] + (["mean"] if kind == "float" else []) + (["max", "min"] if shape[axis] else [])
            op = draw(st.sampled_from(ops))
            may_be_nan |= op == "mean" and shape[axis] == 0  # the mean of nothing is NaN
            keep = draw(st.booleans())
            out = shape[:axis] + ((1,) if keep else ()) + shape[axis + 1 :]
            add(op, (last,), {"axes": (axis,), "keepdims": keep}, out, dtype)
        elif choice == "cast":
            # NaN -> integer is undefined (in C, LLVM and PyTorch alike): no backend owes an answer
            to = draw(st.sampled_from([t for t in TYPED_DTYPES if not (may_be_nan and dtype_kind(t) == "int")]))
            if kind == "float" and to != dtype and dtype_kind(to) != "float":  # keep float -> int casts in range
                last_clip = len(types)
                add("clip", (last,), {"min": -100.0, "max": 100.0}, shape, dtype)
                last = last_clip
            add("cast", (last,), {"dtype": to}, shape, to)
        elif choice == "move" and len(shape) >= 2:
            perm = tuple(reversed(range(len(shape))))
            add("transpose", (last,), {"perm": perm}, tuple(shape[p] for p in perm), dtype)
        elif choice == "move":
            add("reshape", (last,), {"shape": (*shape, 1)}, (*shape, 1), dtype)
        elif choice == "special" and kind == "int":
            # 0 too: x ** 0 and x * 0 fold to constants, which IREE once summed wrongly (iree_workarounds.py)
            e = constant(np.asarray(draw(st.integers(0, 4))).astype(dtype))
            add("pow", (last, e), {}, shape, dtype)
        elif choice == "special" and kind == "float" and len(shape) == 2:  # matmul/dense, inner dim may be 0
            n = draw(st.integers(0, 2))
            w = constant(typed_values(rng, (shape[1], n), dtype))
            add("matmul", (last, w), {}, (shape[0], n), dtype)
        else:
            add("clip", (last,), {"min": 0, "max": 2} if kind != "float" else {"min": -0.5, "max": 0.5}, shape, dtype)
    return TypedCase(inputs, steps, constants)


def pack_cases(cases: list[TypedCase]) -> tuple[Graph, list[np.ndarray]]:
    """Many cases as one graph (one output each), so one compilation checks them all."""
    b = GraphBuilder("typed_cases")
    outputs = [case.build(b, f"k{k}_") for k, case in enumerate(cases)]
    inputs = [x for case in cases for x in case.inputs]
    return b.build(outputs), inputs
