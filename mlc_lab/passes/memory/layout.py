"""Memory layout optimisation: run spatial ops in NHWC or blocked NCHW[x]c instead of NCHW.

Why: a convolution's inner loop walks channels. In NCHW neighbouring channels are H*W elements
apart; in NHWC they are adjacent, and in NCHW8c eight of them fill one vector register. The pass:
1. rewrites layout-sensitive ops (conv2d, pools) into the target layout, pre-transforming constant
   weights at compile time (kernels become HWIO or OIHW{x}i{x}o);
2. lets layout-agnostic ops (relu, add, bias_add, batch_norm, ...) run in whatever layout their
   input already has, transforming their constant operands instead of the activations;
3. inserts `layout_transform` only at boundaries (graph inputs/outputs, ops that need NCHW), one per
   value and layout, and finally cancels transform pairs that undo each other.
An op that cannot be expressed in the target layout (3 input channels do not block by 8) stays in NCHW.
Run it before fusion: fused groups are opaque to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from mlc_lab.ir import Graph, GraphRewriter, Node, OpError, OpKind, TensorType, get_op
from mlc_lab.ir import layout as L
from mlc_lab.ir.ops import Trait, has_trait, is_source
from mlc_lab.passes.base import Pass
from mlc_lab.passes.dce import DeadCodeElimination
from mlc_lab.passes.memory.cancel import CancelLayoutTransforms


class MemoryLayout(StrEnum):
    NCHW = "NCHW"
    NHWC = "NHWC"
    NCHW4c = "NCHW4c"
    NCHW8c = "NCHW8c"
    NCHW16c = "NCHW16c"

    @staticmethod
    def blocked(block: int) -> str:
        """Any blocked layout NCHW{block}c, e.g. MemoryLayout.blocked(32)."""
        return f"NCHW{int(block)}c"


def check_layout(layout: str | MemoryLayout) -> str:
    text = str(layout.value if isinstance(layout, MemoryLayout) else layout)
    try:
        parsed = L.parse_layout(text)
    except L.LayoutError:
        parsed = None
    supported = text in ("NCHW", "NHWC") or (parsed is not None and [a for a, _ in parsed] == ["N", "C", "H", "W", "c"])
    if not supported:
        raise ValueError(f"unsupported layout {text!r}: MemoryLayoutOptimizer supports NCHW, NHWC and NCHW<x>c")
    return text


def kernel_layout_for(data_layout: str) -> str:
    if data_layout == "NCHW":
        return "OIHW"
    if data_layout == "NHWC":
        return "HWIO"
    block = L.parse_layout(data_layout)[-1][1]
    return f"OIHW{block}i{block}o"


def fits(nchw_shape: tuple[int, ...], layout: str) -> bool:
    try:
        L.layout_shape(nchw_shape, "NCHW", layout)
        return True
    except L.LayoutError:
        return False


@dataclass(frozen=True)
class MemoryLayoutOptimizer(Pass):
    """target_layout: NCHW (no change), NHWC or a blocked NCHW<x>c, as a string or a `MemoryLayout`."""

    target_layout: str | MemoryLayout = MemoryLayout.NHWC

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_layout", check_layout(self.target_layout))

    @property
    def target(self) -> str:
        return str(self.target_layout)

    def run(self, graph: Graph) -> Graph:
        if self.target == "NCHW":
            return graph.copy()
        rewritten = _LayoutRewriter(graph, self.target).run()
        return DeadCodeElimination().apply(CancelLayoutTransforms().apply(rewritten))


class _LayoutRewriter(GraphRewriter):
    """Tracks the layout each new 4-D activation is stored in (absent = NCHW)."""

    def __init__(self, graph: Graph, target: str) -> None:
        super().__init__(graph)
        self.target = target
        self.layout: dict[Node, str] = {}
        self.transforms: dict[tuple[Node, str], Node] = {}

    # -- helpers ----------------------------------------------------------------------------------
    def layout_of(self, node: Node) -> str:
        return self.layout.get(node, "NCHW")

    def to_layout(self, value: Node, layout: str) -> Node:
        """`value` stored in `layout`: itself, a cached transform, or a new one."""
        current = self.layout_of(value)
        if current == layout or value.type.rank < 4:
            return value
        key = (value, layout)
        if key not in self.transforms:
            attrs = {"src_layout": current, "dst_layout": layout}
            ty = get_op("layout_transform").infer([value.type], attrs)
            node = self.emit(Node("layout_transform", (value,), attrs, ty, self.fresh_name(f"{value.name}_{layout}")))
            if layout != "NCHW":
                self.layout[node] = layout
            self.transforms[key] = node
        return self.transforms[key]

    def constant(self, value: np.ndarray, name: str) -> Node:
        attrs = get_op("constant").normalize_attrs({"value": value})
        return self.emit(Node("constant", (), attrs, TensorType.of(value), self.fresh_name(name)))

    def make(self, old: Node, inputs: tuple[Node, ...], attrs: dict, layout: str) -> Node | None:
        """A copy of `old` on new inputs/attrs, or None if its type rule rejects them."""
        try:
            opdef = get_op(old.op)
            attrs = opdef.normalize_attrs(attrs)
            ty = opdef.infer([x.type for x in inputs], attrs)
        except OpError:
            return None
        node = self.emit(Node(old.op, inputs, attrs, ty, old.name))
        if layout != "NCHW" and ty.rank >= 4:
            self.layout[node] = layout
        return node

    def constant_in_layout(self, const: Node, nchw_shape: tuple[int, ...], layout: str) -> Node | None:
        """A broadcastable constant (scalar, (C,1,1), (1,C,1,1), ...) re-stored to broadcast in `layout`."""
        value = const.value
        if value.ndim > 4:
            return None
        value4 = value.reshape((1,) * (4 - value.ndim) + value.shape)
        if value4.shape[1] == 1 and layout != "NHWC":  # a blocked layout splits C: give it all channels
            value4 = np.broadcast_to(value4, (value4.shape[0], nchw_shape[1], *value4.shape[2:]))
        try:
            converted = L.to_layout(np.ascontiguousarray(value4), "NCHW", layout)
        except L.LayoutError:
            return None
        return self.constant(converted, f"{const.name}_{layout}")

    # -- the rewrite ---------------------------------------------------------------------------------
    def rewrite(self, node: Node, inputs: tuple[Node, ...]) -> Node:
        if is_source(node.op):
            return super().rewrite(node, inputs)
        if has_trait(node.op, Trait.LAYOUT_SENSITIVE) and node.attrs["data_layout"] == "NCHW":
            new = self.rewrite_spatial(node, inputs)
        elif has_trait(node.op, Trait.CHANNELWISE) and node.type.rank == 4 and self.layout_of(inputs[0]) != "NCHW":
            new = self.rewrite_channelwise(node, inputs)
        elif get_op(node.op).kind in (OpKind.ELEMWISE, OpKind.BROADCAST) and node.type.rank == 4:
            new = self.rewrite_elementwise(node, inputs)
        else:
            new = None
        if new is not None:
            return new
        # Anything else reads NCHW: transform its 4-D inputs back at this boundary.
        copy = self.make(node, tuple(self.to_layout(x, "NCHW") for x in inputs), dict(node.attrs), "NCHW")
        assert copy is not None, f"%{node.name}: restoring NCHW inputs must reproduce the original types"
        return copy

    def rewrite_spatial(self, node: Node, inputs: tuple[Node, ...]) -> Node | None:
        layout = self.target
        if not (fits(node.inputs[0].type.shape, layout) and fits(node.type.shape, layout)):
            return None  # e.g. 3 input channels do not block by 8: this op stays NCHW
        attrs = {**node.attrs, "data_layout": layout}
        rest = inputs[1:]
        if node.op == "conv2d":
            weight = inputs[1]
            if weight.op != "constant" or node.attrs["kernel_layout"] != "OIHW":
                return None
            kernel_layout = kernel_layout_for(layout)
            try:
                w = L.to_layout(weight.value, "OIHW", kernel_layout)
            except L.LayoutError:
                return None
            rest = (self.constant(w, f"{weight.name}_{kernel_layout}"),)
            attrs["kernel_layout"] = kernel_layout
        return self.make(node, (self.to_layout(inputs[0], layout), *rest), attrs, layout)

    def rewrite_channelwise(self, node: Node, inputs: tuple[Node, ...]) -> Node | None:
        """bias_add / batch_norm along the channel axis of a non-NCHW activation."""
        x = inputs[0]
        layout = self.layout_of(x)
        if node.attrs["axis"] % 4 != 1:
            return None
        if layout == "NHWC":
            return self.make(node, inputs, {**node.attrs, "axis": 3}, layout)
        if any(p.op != "constant" for p in inputs[1:]):
            return None
        # Blocked: channels are split over two axes, so express it as broadcasting constants.
        c = x.type.shape[1] * x.type.shape[4]
        if node.op == "bias_add":
            shift = inputs[1].value.reshape(1, c, 1, 1)
            return self.make(
                _renamed(node, "add"), (x, self._blocked_const(shift, f"{node.name}_shift", layout)), {}, layout
            )
        gamma, beta, mean, var = (p.value for p in inputs[1:])
        scale = gamma / np.sqrt(var + node.attrs["eps"])
        shift = beta - mean * scale
        mul = self.make(
            _renamed(node, "mul", f"{node.name}_scale"),
            (x, self._blocked_const(scale.reshape(1, c, 1, 1), f"{node.name}_scale_c", layout)),
            {},
            layout,
        )
        shift_node = self._blocked_const(shift.reshape(1, c, 1, 1), f"{node.name}_shift", layout)
        return self.make(_renamed(node, "add"), (mul, shift_node), {}, layout)

    def _blocked_const(self, value: np.ndarray, name: str, layout: str) -> Node:
        """A (1, C, 1, 1) per-channel constant re-stored in `layout`, keeping its dtype (a float64
        graph's parameters stay float64, so the broadcasting add/mul still type-checks)."""
        return self.constant(L.to_layout(value, "NCHW", layout), name)

    def rewrite_elementwise(self, node: Node, inputs: tuple[Node, ...]) -> Node | None:
        """Keep the layout of the first non-NCHW activation input, if every operand can follow."""
        layout = next((self.layout_of(x) for x in inputs if self.layout_of(x) != "NCHW"), None)
        if layout is None:
            return None
        new_inputs = []
        for old, x in zip(node.inputs, inputs):
            if x.op == "constant":
                moved = self.constant_in_layout(x, node.type.shape, layout)
                if moved is None:
                    return None
                new_inputs.append(moved)
            elif old.type.shape == node.type.shape:
                new_inputs.append(self.to_layout(x, layout))
            else:
                return None  # a broadcasting activation: not worth it, stay NCHW
        return self.make(node, tuple(new_inputs), dict(node.attrs), layout)

    def run(self) -> Graph:
        graph = super().run()
        outputs = []
        for old, new in zip(self.graph.outputs, graph.outputs):
            outputs.append(self.to_layout(new, "NCHW") if old.type.rank == 4 else new)
        return Graph(self.new_nodes, graph.inputs, outputs, graph.name)


def _renamed(node: Node, op: str, name: str | None = None) -> Node:
    """A stand-in with another op, so `make` copies the name and type-checks the new op."""
    return Node(op, node.inputs, {}, node.type, name or node.name)
