"""Hypothesis strategies for random graphs, shared by the differential tests.

`random_graphs()` draws a small DAG of elementwise, broadcasting, matmul/dense and reduction ops over
float32 tensors, with the recipe that built it, so a test can evaluate the same computation with
plain NumPy (independently of the op registry) and compare.
"""

from __future__ import annotations

from dataclasses import dataclass

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
