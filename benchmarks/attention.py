"""Issue-17 item 3: the fused attention kernel against the unfused TVM kernels, for long sequences.

    python benchmarks/attention.py                      # S = 512, 1024, 2048; causal; 1 thread
    python benchmarks/attention.py --lengths 256 512 --heads 8 --rounds 5 --no-causal
    python benchmarks/attention.py --decode             # one query against S cached keys (padding mask)

One graph per length, `softmax(q @ k^T * scale + causal mask) @ v` (as the torch frontend writes SDPA),
compiled twice by our TVM backend: as imported, with the elementwise fusion of the default preset
(matmul+mul+add, softmax, matmul: three kernels and the [S, S] scores in memory), and after
`FuseAttention` (one kernel, online softmax). Both are checked against each other, then timed
side by side (interleaved medians, 1 thread). The cost model's compulsory bytes (registry
`node_cost`, summed over each graph's kernels) are printed for both. `--decode`: one query row
against S keys with a run-time [1, S] mask (a decoder's step over its KV cache).
"""

from __future__ import annotations

from mlc_lab.bench import pin_threads

pin_threads(1)

import argparse  # noqa: E402
import math  # noqa: E402

import numpy as np  # noqa: E402

from mlc_lab.bench import compare_words, interleaved_medians  # noqa: E402
from mlc_lab.codegen.tvm import build  # noqa: E402
from mlc_lab.ir import Graph, GraphBuilder  # noqa: E402
from mlc_lab.ir.ops import node_cost  # noqa: E402
from mlc_lab.ir.ops.attention import causal_mask  # noqa: E402
from mlc_lab.passes import ElementwiseFusionPass, FuseAttention, PassManager  # noqa: E402


def attention_graph(length: int, heads: int, depth: int, causal: bool, decode: bool = False) -> Graph:
    """SDPA as the torch frontend spells it: transpose, matmul, mul(scale), add(mask), softmax, matmul."""
    b = GraphBuilder(f"attention_{length}")
    q = b.input("q", (1, heads, 1 if decode else length, depth))
    k, v = (b.input(name, (1, heads, length, depth)) for name in "kv")
    scores = b.matmul(q, b.transpose(k, perm=(0, 1, 3, 2)))
    scores = b.mul(scores, b.constant(np.float32(1 / math.sqrt(depth)), "scale"))
    if decode:
        scores = b.add(scores, b.input("mask", (1, 1, 1, length)))
    elif causal:
        scores = b.add(scores, b.constant(causal_mask(length, length)[None, None], "causal_mask"))
    return b.build(b.matmul(b.softmax(scores, axis=-1), v))


def traffic_bytes(graph: Graph) -> int:
    """Compulsory bytes of every kernel (inputs read once, output written once), from the registry."""
    return sum(node_cost(n).bytes for n in graph.ops if n.op != "constant")


def bench(length: int, heads: int, depth: int, causal: bool, rounds: int, calls: int, decode: bool = False) -> float:
    graph = attention_graph(length, heads, depth, causal, decode)
    unfused = ElementwiseFusionPass().apply(graph)
    fused = PassManager([FuseAttention(), ElementwiseFusionPass()]).apply(graph)
    assert [n.op for n in fused.ops if n.op != "constant"] == ["fused_attention"], fused
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(x.shape, dtype=np.float32) for x in graph.inputs]
    compiled = {"unfused": build(unfused), "fused": build(fused)}
    expected, got = (compiled[name](*inputs)[0] for name in ("unfused", "fused"))
    error = float(np.abs(got - expected).max())
    assert error <= 1e-5 * max(1.0, float(np.abs(expected).max())), f"fused differs from unfused by {error}"
    times = interleaved_medians({name: (lambda c=c: c(*inputs)) for name, c in compiled.items()}, rounds, calls)
    ratio = times["fused"] / times["unfused"]
    print(
        f"S={length:5d}  unfused {times['unfused'] * 1e3:8.2f} ms ({traffic_bytes(unfused) / 2**20:7.1f} MiB)   "
        f"fused {times['fused'] * 1e3:8.2f} ms ({traffic_bytes(fused) / 2**20:6.2f} MiB)   "
        f"ratio {ratio:.2f}   max |diff| {error:.1e}"
    )
    print(f"         {compare_words(times['fused'], times['unfused'], 'fused attention', 'the unfused kernels')}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--no-causal", dest="causal", action="store_false")
    parser.add_argument("--decode", action="store_true", help="one query row against S keys (a decode step)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1)
    args = parser.parse_args()
    form = "decode (1 query, masked)" if args.decode else f"causal={args.causal}"
    print(f"attention, batch 1, {args.heads} heads, head dim {args.depth}, {form}, 1 thread")
    print("(MiB: the cost model's compulsory traffic summed over the kernels: the unfused form moves the scores)")
    for length in args.lengths:
        bench(length, args.heads, args.depth, args.causal, args.rounds, args.calls, args.decode)


if __name__ == "__main__":
    main()
