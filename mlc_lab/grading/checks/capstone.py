"""Official checks for exercises/capstone.md: DistilBERT compiled end to end with the reader's own passes.

Two checks. The attention rule runs on graphs drawn here (sites that must fuse and sites that must
not); the whole model is built from a seed drawn here, compiled in the student's process with the
student's pass list, and judged here: its output against PyTorch (computed in this process from the
same seed), what the passes left for the backend, and the eager/compiled time ratio measured on the
grading machine.
"""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.checks.rewrite_cases import rewritten
from mlc_lab.grading.session import Grading, check

#: The speed the capstone asks for: compiled time at most this fraction of PyTorch eager's (1 thread).
#: The reference solution measured 0.04-0.07 on the loaded 2-core build machine: a margin of ~4x for noise.
MAX_TIME_RATIO = 0.25
#: Kernels (non-constant ops) the optimized model may keep: the reference leaves 27 of the imported 67.
MAX_KERNELS = 30
FORBIDS = ("mlc_lab.passes.fuse_attention.FuseAttention", "mlc_lab.passes.presets.default_passes")


def _attention_site(b, rng: np.random.Generator, q, k, v, scale: float, mask, tag: str):
    """matmul(softmax(matmul(q, transpose(k)) * scale + mask), v): what the frontend emits for SDPA."""
    rank = len(k.shape)
    k_t = b.transpose(k, perm=(*range(rank - 2), rank - 1, rank - 2), name=f"{tag}_kt")
    scores = b.matmul(q, k_t, name=f"{tag}_qk")
    scaled = b.mul(scores, b.constant(np.asarray(scale, np.float32), f"{tag}_scale"), name=f"{tag}_scaled")
    masked = b.add(scaled, mask, name=f"{tag}_masked")
    probs = b.softmax(masked, axis=-1, name=f"{tag}_probs")
    return probs, b.matmul(probs, v, name=f"{tag}_out")


def attention_graph(rng: np.random.Generator):
    """Two fusable attention sites in a row and one whose probabilities are read twice (must stay).

    Returns (graph, fusable sites, non-fusable sites)."""
    from mlc_lab.ir import GraphBuilder

    heads, seq, d = int(rng.integers(1, 4)), int(rng.integers(2, 9)), int(rng.choice([4, 8, 16]))
    shape = (1, heads, seq, d)
    b = GraphBuilder("attention_sites")
    q, k, v = (b.input(n, shape) for n in ("q", "k", "v"))
    mask = b.constant((rng.standard_normal((1, 1, seq, seq)) * 2).astype(np.float32), "mask")
    scale = float(np.float32(rng.uniform(0.1, 0.5)))
    _, first = _attention_site(b, rng, q, k, v, scale, mask, "a")
    _, second = _attention_site(b, rng, first, k, v, scale * 2, mask, "b")  # nests: the first output is q
    probs, third = _attention_site(b, rng, second, k, v, scale, mask, "c")
    exposed = b.add(third, b.sum(probs, axes=(-1,), keepdims=True), name="reads_probs")  # probs has a second user
    return b.build(exposed), 2, 1


@check(points=3, forbids=FORBIDS)
def check_attention_rule(g: Grading) -> None:
    """FuseSDPA, a RewritePattern: matmul(softmax(matmul(q, k^T) * c + mask), v) -> fused_attention, only
    where nothing else reads the scores or probabilities."""
    from mlc_lab.ir import interpret

    g.need("FuseSDPA")
    for _ in range(2):
        graph, fusable, kept = attention_graph(g.rng)
        shape = graph.inputs[0].type.shape
        with g.case(f"apply_patterns(<3 attention sites on q, k, v of shape {list(shape)}>, [FuseSDPA()])") as case:
            out = rewritten(g, case, ["FuseSDPA"], graph)
            counts = out.op_counts()
            assert counts.get("fused_attention", 0) == fusable, (
                f"{counts.get('fused_attention', 0)} fused_attention nodes, expected {fusable}: a site whose "
                "probabilities have another reader must keep its softmax (.one_use())"
            )
            assert counts.get("softmax", 0) == kept, f"{counts.get('softmax', 0)} softmax nodes left, expected {kept}"
            q, k, v = (g.rng.standard_normal(shape).astype(np.float32) for _ in range(3))
            for got, want in zip(interpret(out, q, k, v), interpret(graph, q, k, v), strict=True):
                err = float(np.abs(got - want).max())
                assert err < 1e-4, f"the rewritten graph differs from the original by up to {err:.3g} (scale? k^T?)"


@check(points=5, forbids=FORBIDS)
def check_capstone_model(g: Grading) -> None:
    """capstone_passes() -> list of passes: DistilBERT compiled for TVM with them equals PyTorch, its
    attention is fused, few kernels are left, and it runs in at most MAX_TIME_RATIO of eager's time."""
    import torch

    from mlc_lab.interop.distilbert import CONFIG, distilbert, token_ids

    g.need("capstone_passes")
    seed = int(g.rng.integers(0, 2**16))
    ids = token_ids(seed)
    label = f"DistilBERT ({CONFIG['n_layers']} layers, weights seed {seed}) on token ids {ids.tolist()}"
    answer = None
    with g.case(f"{label}: output vs PyTorch") as case:
        answer = g.probe("compile_capstone", "capstone_passes", seed, ids)
        with torch.no_grad():
            want = distilbert(seed)(torch.from_numpy(ids)).numpy()
        got = np.asarray(answer["out"])
        case.got = f"array{got.shape}"
        assert got.shape == want.shape, f"output shape {got.shape}, expected {want.shape}"
        err = float(np.abs(got - want).max())
        assert err < 1e-4, f"the compiled model differs from PyTorch by up to {err:.2e}"
    if answer is None:  # compiling failed: nothing else to judge (the one failed case says why)
        return
    ops = answer["ops"]
    with g.case(f"{label}: attention fused", expected={"fused_attention": CONFIG["n_layers"], "softmax": 0}) as case:
        case.got = repr(ops)
        assert ops.get("fused_attention", 0) == CONFIG["n_layers"] and not ops.get("softmax"), (
            f"{ops.get('fused_attention', 0)} fused_attention and {ops.get('softmax', 0)} softmax nodes after your "
            f"passes; each of the {CONFIG['n_layers']} layers' attention should be one fused_attention (FuseSDPA)"
        )
    with g.case(f"{label}: at most {MAX_KERNELS} kernels") as case:
        kernels = sum(ops.values())
        case.got = f"{kernels} kernels: {ops}"
        assert kernels <= MAX_KERNELS, (
            f"{kernels} kernels left after your passes, at most {MAX_KERNELS} wanted: fuse elementwise chains "
            "into their producers (ElementwiseFusionPass after your rule)"
        )
    with g.case(f"{label}: time <= {MAX_TIME_RATIO} x eager (1 thread, interleaved medians)") as case:
        seconds = answer["seconds"]
        ratio = float(seconds["compiled"]) / float(seconds["eager"])
        case.got = f"{ratio:.3f} x eager ({seconds['compiled'] * 1e3:.3f} ms vs {seconds['eager'] * 1e3:.3f} ms)"
        assert ratio <= MAX_TIME_RATIO, f"compiled/eager time {ratio:.2f}, at most {MAX_TIME_RATIO} wanted"
