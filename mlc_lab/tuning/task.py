"""A tuning task: one kernel of the compiler (one op node or one fused group) on one target.

The task *is* an IR node, so what we tune is exactly what `mlc_lab.codegen.tvm.build` compiles:
the same lowering produces the PrimFunc, and our schedule runs as its schedule hook. The task key
(op, shapes, dtype, layouts, attributes, fused ops, target cpu and threads) is what the tuning
database is indexed by: a record applies to every node with the same key.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.interpreter import interpret
from mlc_lab.ir.memory import check_fits
from mlc_lab.ir.ops import Trait, has_trait, node_cost


def _attr_text(attrs) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(attrs.items()) if k != "subgraph"}


def node_signature(node: Node) -> str:
    """What determines a kernel's code: op, input/output types and attributes (names excluded)."""
    if node.op == "fused":
        body = [node_signature(n) for n in node.subgraph.nodes if n.op not in ("input",)]
        inner = {"fused": body}
    elif node.op == "constant":
        inner = {"const": list(node.shape)}
    else:
        inner = {"op": node.op, "attrs": _attr_text(node.attrs)}
    inner["in"] = [f"{x.dtype}{list(x.shape)}" for x in node.inputs]
    inner["out"] = f"{node.dtype}{list(node.shape)}"
    return json.dumps(inner, sort_keys=True, separators=(",", ":"), default=str)


def target_signature(target=None, threads: int | None = None) -> str:
    """`mcpu` and thread count: a schedule tuned for one is not evidence about the other."""
    if target is None:
        from mlc_lab.tuning.isa import system_cpu

        mcpu = system_cpu()
    else:
        mcpu = str(target.attrs.get("mcpu", "generic"))
    threads = threads or int(os.environ.get("TVM_NUM_THREADS", 0)) or os.cpu_count() or 1
    return f"llvm -mcpu={mcpu} -threads={threads}"


#: A target key as `target_signature` writes it: the CPU and the thread count.
TARGET_KEY = re.compile(r"llvm -mcpu=(?P<mcpu>[\w.+-]+) -threads=(?P<threads>[0-9]+)")


def split_key(key: str) -> tuple[str, str, int] | None:
    """(kernel signature, mcpu, threads) of a record key; None for a key of another form (MetaSchedule's)."""
    signature, _, target = key.rpartition("@")
    match = TARGET_KEY.fullmatch(target)
    if not signature or match is None:
        return None
    return signature, match["mcpu"], int(match["threads"])


@dataclass(eq=False)
class Task:
    """One kernel to tune: `node` (whose inputs are the kernel's inputs) on `target` (a string key)."""

    name: str
    node: Node
    target: str = ""

    def __post_init__(self) -> None:
        if not self.target:
            self.target = target_signature()
        for x in (*self.node.inputs, self.node):
            if 0 in x.shape:
                raise ValueError(
                    f"task {self.name}: %{x.name} has shape {list(x.shape)}: an empty kernel has nothing to tune"
                )
        # Tuning holds the tensors twice: the interpreter's reference run and the measured TVM buffers.
        check_fits(2 * self.min_bytes, f"tuning {self.name}", " (its tensors, held twice: reference and measured)")

    @property
    def op(self) -> str:
        return self.node.op

    @cached_property
    def key(self) -> str:
        return f"{node_signature(self.node)}@{self.target}"

    @property
    def flops(self) -> float:
        return float(kernel_flops(self.node))

    @property
    def min_bytes(self) -> int:
        """Compulsory memory traffic (every input read once, the output written once): the registry's cost."""
        return node_cost(self.node).bytes

    @property
    def arithmetic_intensity(self) -> float:
        """FLOP per byte of compulsory traffic: the kernel's x position on the roofline."""
        return self.flops / self.min_bytes

    def random_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Random activations; weights (constant inputs) keep their values (a BN variance must stay > 0)."""
        rng = np.random.default_rng(seed)
        return [
            np.asarray(x.value) if x.op == "constant" else rng.standard_normal(x.shape).astype(x.dtype)
            for x in self.node.inputs
        ]

    def reference(self, inputs: list[np.ndarray]) -> np.ndarray:
        """The interpreter's output: every candidate is checked against it before it may win."""
        return interpret(single_node_graph(self.node), *inputs)[0]


def single_node_graph(node: Node) -> Graph:
    """A graph holding just `node`, with its inputs as graph inputs."""
    b = GraphBuilder(f"task_{node.name}")
    args = [b.input(x.name, x.shape, x.dtype) for x in node.inputs]
    new = Node(node.op, args, dict(node.attrs), node.type, b.unique_name(node.name))
    b.add_node(new)
    return b.build(new)


def kernel_flops(node: Node) -> int:
    """FLOPs of the kernel's contractions (GEMM ops), by the registry's cost rule; epilogues are not counted."""
    if node.op == "fused":
        return sum(kernel_flops(n) for n in node.subgraph.nodes)
    return node_cost(node).flops if has_trait(node.op, Trait.GEMM) else 0


# -- the book's tasks ------------------------------------------------------------------------------------
def matmul_task(m: int, n: int, k: int, dtype: str = "float32", target: str = "") -> Task:
    b = GraphBuilder("matmul")
    node = b.matmul(b.input("A", (m, k), dtype), b.input("B", (k, n), dtype))
    return Task(f"matmul_{m}x{n}x{k}", node, target)


def dense_task(m: int, n: int, k: int, dtype: str = "float32", target: str = "") -> Task:
    b = GraphBuilder("dense")
    node = b.dense(b.input("x", (m, k), dtype), b.input("w", (n, k), dtype))
    return Task(f"dense_{m}x{n}x{k}", node, target)


_KERNEL_FOR = {"NCHW": "OIHW", "NHWC": "HWIO"}


def conv2d_task(
    batch: int = 1,
    size: int | tuple[int, int] = 56,
    cin: int = 64,
    cout: int = 64,
    kernel: int = 3,
    layout: str = "NCHW",
    dtype: str = "float32",
    target: str = "",
) -> Task:
    """A stride-1 'same' conv on a `size` (or (height, width)) image.

    Layouts: NCHW (OIHW kernel), NHWC (HWIO), NCHW{b}c (OIHW{b}i{b}o).
    """
    from mlc_lab.ir import layout as L

    height, width = (size, size) if isinstance(size, int) else size

    if layout in _KERNEL_FOR:
        kernel_layout = _KERNEL_FOR[layout]
    else:
        block = int("".join(ch for ch in layout if ch.isdigit()))
        kernel_layout = f"OIHW{block}i{block}o"
    b = GraphBuilder("conv2d")
    x = b.input("x", L.layout_shape((batch, cin, height, width), "NCHW", layout), dtype)
    w = b.input("w", L.layout_shape((cout, cin, kernel, kernel), "OIHW", kernel_layout), dtype)
    pad = kernel // 2
    node = b.conv2d(x, w, padding=pad, data_layout=layout, kernel_layout=kernel_layout)
    return Task(f"conv2d_{layout}_{height}x{width}_{cin}to{cout}_k{kernel}", node, target)


def roofline_point(task: Task, seconds: float, label: str | None = None) -> tuple[str, float, float]:
    """(label, FLOP/byte, GFLOP/s): a measured kernel as a point for `mlc_lab.viz.roofline.draw_roofline`."""
    return (label or task.name, task.arithmetic_intensity, task.flops / seconds / 1e9)
