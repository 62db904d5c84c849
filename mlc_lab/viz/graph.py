"""Draw a graph with matplotlib: nodes in layers by depth, coloured by how they fuse.

A small layered (Sugiyama-style) layout: depth = longest path from an input, then a few sweeps that
order each layer by the mean position of its neighbours to reduce edge crossings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlc_lab.ir.ops import OpKind, get_op, is_source

if TYPE_CHECKING:  # the graph is only read here; importing the IR's graph module would close a cycle with Graph.draw
    import matplotlib.axes
    import matplotlib.figure

    from mlc_lab.ir.graph import Graph, Node

KIND_COLORS = {
    "input": "#d9d9d9",
    "constant": "#f2f2f2",
    OpKind.ELEMWISE: "#b3e2cd",
    OpKind.BROADCAST: "#b3e2cd",
    OpKind.INJECTIVE: "#cbd5e8",
    OpKind.REDUCTION: "#fdcdac",
    OpKind.OUT_FUSABLE: "#f4cae4",
    "fused": "#fff2ae",
}


def node_color(node: Node) -> str:
    if is_source(node.op) or node.op == "fused":
        return KIND_COLORS[node.op]
    return KIND_COLORS.get(get_op(node.op).kind, "#ffffff")


def node_label(node: Node) -> str:
    shape = "x".join(map(str, node.type.shape)) or "scalar"
    if node.op == "fused":
        members = [n.op for n in node.subgraph.ops]
        title = node.attrs.get("pattern") or "fused"
        return f"{title}\n[{' + '.join(members)}]\n{shape}"
    if node.op == "input":
        return f"{node.name}\n{shape}"
    return f"{node.op}\n{shape}"


def layered_layout(graph: Graph, show_constants: bool = False, sweeps: int = 4) -> dict[Node, tuple[float, int]]:
    """(x, layer) for each drawn node."""
    shown = [n for n in graph.nodes if show_constants or n.op != "constant"]
    shown_set = set(shown)
    depth: dict[Node, int] = {}
    for n in shown:
        parents = [depth[i] for i in n.inputs if i in shown_set]
        depth[n] = max(parents, default=-1) + 1
    layers: dict[int, list[Node]] = {}
    for n in shown:
        layers.setdefault(depth[n], []).append(n)
    children: dict[Node, list[Node]] = {n: [] for n in shown}
    for n in shown:
        for i in n.inputs:
            if i in shown_set:
                children[i].append(n)
    pos = {n: float(k) for layer in layers.values() for k, n in enumerate(layer)}
    for sweep in range(sweeps):
        order = sorted(layers) if sweep % 2 == 0 else sorted(layers, reverse=True)
        for d in order:

            def key(n: Node) -> float:
                near = [i for i in n.inputs if i in shown_set] if sweep % 2 == 0 else children[n]
                return sum(pos[i] for i in near) / len(near) if near else pos[n]

            layers[d].sort(key=key)
            for k, n in enumerate(layers[d]):
                pos[n] = float(k)
    width = max(len(layer) for layer in layers.values())
    return {n: (pos[n] - (len(layers[depth[n]]) - 1) / 2 + (width - 1) / 2, depth[n]) for n in shown}


def draw_graph(
    graph: Graph,
    ax: matplotlib.axes.Axes | None = None,
    show_constants: bool = False,
    title: str | None = None,
    max_nodes: int = 400,
) -> matplotlib.figure.Figure:
    """Return a figure of `graph`, top (inputs) to bottom (outputs)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    if len(graph.nodes) > max_nodes:
        raise ValueError(f"graph {graph.name!r} has {len(graph.nodes)} nodes; draw at most {max_nodes} (max_nodes=)")
    layout = layered_layout(graph, show_constants)
    n_layers = max(layer for _, layer in layout.values()) + 1
    width = max(x for x, _ in layout.values()) + 1
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.0, 2.2 * width), min(60.0, max(3.0, 0.9 * n_layers))))
    else:
        fig = ax.figure
    for node, (x, layer) in layout.items():
        for i in node.inputs:
            if i in layout:
                xi, li = layout[i]
                ax.annotate(
                    "",
                    xy=(x, -layer + 0.25),
                    xytext=(xi, -li - 0.25),
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=0.8, shrinkA=0, shrinkB=0),
                )
    outputs = set(graph.outputs)
    for node, (x, layer) in layout.items():
        box = FancyBboxPatch(
            (x - 0.45, -layer - 0.25),
            0.9,
            0.5,
            boxstyle="round,pad=0.02",
            facecolor=node_color(node),
            edgecolor="#c0392b" if node in outputs else "#333333",
            lw=1.0,
        )
        ax.add_patch(box)
        ax.text(x, -layer, node_label(node), ha="center", va="center", fontsize=7)
    ax.set_xlim(-0.6, width - 0.4)
    ax.set_ylim(-n_layers + 0.4, 0.6)
    ax.axis("off")
    ax.set_title(title or f"graph {graph.name}: {len(graph.ops)} ops")
    return fig
