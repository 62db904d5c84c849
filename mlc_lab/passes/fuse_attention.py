"""FuseAttention: find scaled dot-product attention and make it one `fused_attention` node.

What the frontends emit for an attention layer (torch SDPA, with or without causal/attention masks,
HF GPT-2, LLaMA (grouped-query heads already repeated), BERT; the ONNX importer's MatMul/Softmax):

    s = matmul(q, transpose(k))          # k^T: the last two axes swapped (or a reshape of that which
                                         # only regroups batch axes, or any [.., D, Skv] value)
    s = mul(s, c) | mul(c, s) | div(s, c)  # c: a one-element constant (the scale; absent: scale 1)
    s = where(visible, s, fill)          # optional masked_fill form, fill a constant <= -1e30
    s = add(s, m1) [ add(., m2) ]        # additive masks, either operand order
    p = softmax(s, axis=-1)
    p = where(blocked, 0, p)             # optional: SDPA's "safe softmax" zeroes fully masked rows
    o = matmul(p, v)

becomes `fused_attention(q, k, v[, mask], scale=, causal=)` (and `where(blocked, 0, o)` for the
safe-softmax form: a row of zero probabilities gives a zero output row, so the `where` moves after
the product unchanged). A constant mask equal to the causal triangle (0 / -inf, or values <= -1e30,
which exp underflows to exactly 0 as well) becomes `causal=True`, so the kernel skips masked blocks
and reads no [Sq, Skv] mask. Two masks left over are added into one.

k and v may keep size-1 batch axes where q has more (grouped-query attention without repeated k/v,
as `mlc_lab.llm`'s decoder writes it). The masked_fill form becomes the additive mask
`where(visible, 0, fill)`: s + fill rounds to fill for any |s| < 1e22, so the scores are the same.

It does not match (and the graph keeps its ops) when: softmax runs over another axis, the scale is
not a one-element constant, a fill is not blocking (> -1e30), an intermediate score/probability
tensor has another user (e.g. `output_attentions=True`), k/v batch axes neither equal q's nor 1, a
length is symbolic (the kernel is built per shape), or the dtype is not float32 (the kernel's).

Where it runs by default: the "default" preset applies it on the TVM CPU backend, which has a native
kernel for the op (never materialising the score matrix), where it was measured faster
(benchmarks/attention.py, 1 thread): causal attention (0.6-0.7x the unfused time at S = 1024, 2048:
the kernel skips the masked blocks); decoding (one query against the cache, `--decode`) measured
about as fast (0.8-1.07x across runs on the loaded machine) with half the bytes moved, and is kept.
For attention over a full [S, S] matrix the fused kernel was slower (1.1-2x), so the preset passes
`skip_dense_prefill=True`. On the other backends the op would only be decomposed back, so the
preset leaves their graphs as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlc_lab.ir import Graph, Node
from mlc_lab.ir.ops.attention import causal_mask
from mlc_lab.passes.base import Pass
from mlc_lab.passes.rewrite import Match, RewritePattern, Rewriter, apply_patterns, const, op, wildcard

#: A mask value at or below this is "blocked": exp(score + value - row max) is exactly 0 in float32.
BLOCKED = -1e30
#: The dtypes the fused op is built for (the TVM kernel's).
DTYPES = frozenset({"float32"})


def _swaps_last_two(node: Node) -> bool:
    rank = node.type.rank
    return tuple(node.attrs["perm"]) == (*range(rank - 2), rank - 1, rank - 2)


def _last_axis(node: Node) -> bool:
    return node.attrs["axis"] % node.type.rank == node.type.rank - 1


def _one_element(node: Node) -> bool:
    return node.type.numel == 1 and node.dtype in DTYPES


def _additive(inner, name: str):
    """inner + mask, in either operand order."""
    return op("add")(inner, wildcard(name)).one_use() | op("add")(wildcard(name), inner).one_use()


def _batch_reshape(node: Node) -> bool:
    """A reshape that keeps the last two axes (it only regroups batch axes: GQA's head groups)."""
    return node.inputs[0].shape[-2:] == node.shape[-2:]


_TRANSPOSED = op("transpose")(wildcard("k")).where(_swaps_last_two)
_KEY_T = (
    _TRANSPOSED.named("k_t")
    | op("reshape")(_TRANSPOSED.named("k_tt")).where(_batch_reshape).named("k_t")
    | wildcard("k_t")
)
_QK = op("matmul")(wildcard("q"), _KEY_T).one_use().named("qk")
_SCALE = const("c").where(_one_element)
_SCALED = (
    op("mul")(_QK, _SCALE).one_use().named("scaled")
    | op("mul")(_SCALE, _QK).one_use().named("scaled")
    | op("div")(_QK, _SCALE).one_use().named("div_scaled")
    | _QK
)
_FILL = const("fill").where(lambda n: n.type.numel == 1 and float(np.asarray(n.value).reshape(())) <= BLOCKED)
_FILLED = op("where")(wildcard("cond"), _SCALED, _FILL).one_use().named("filled") | _SCALED  # masked_fill form
_MASKED = _additive(_additive(_FILLED, "m1"), "m2") | _additive(_FILLED, "m1") | _FILLED
_SOFTMAX = op("softmax")(_MASKED).where(_last_axis).one_use().named("softmax")
_ZERO = const("zero").where(lambda n: n.type.numel == 1 and not np.any(n.value))
_PROBS = op("where")(wildcard("blocked"), _ZERO, _SOFTMAX).one_use().named("safe") | _SOFTMAX
_ATTENTION = op("matmul")(_PROBS, wildcard("v"))


def is_causal_constant(mask: Node, q_len: int, k_len: int) -> bool:
    """A constant mask that blocks exactly the keys `causal=True` blocks, the same for every batch row."""
    if mask.op != "constant" or mask.type.rank < 2 or mask.shape[-2:] != (q_len, k_len):
        return False
    if any(d != 1 for d in mask.shape[:-2]):
        return False
    value = np.asarray(mask.value).reshape(q_len, k_len)
    allowed = causal_mask(q_len, k_len) == 0
    return bool(np.all(value[allowed] == 0) and np.all(value[~allowed] <= BLOCKED))


def _shared(shape, batch) -> bool:
    """k/v batch axes equal to q's, or 1 where one k/v head serves a group of query heads."""
    return len(shape) == len(batch) and all(d in (1, b) for d, b in zip(shape, batch))


def _has_causal_mask(match: Match) -> bool:
    q_len, k_len = match["q"].shape[-2], match["k_t"].shape[-1]
    return any(m in match and is_causal_constant(match[m], q_len, k_len) for m in ("m1", "m2"))


class _FuseAttentionPattern(RewritePattern):
    pattern = _ATTENTION

    def __init__(self, skip_dense_prefill: bool = False) -> None:
        self.skip_dense_prefill = skip_dense_prefill

    def applies(self, match: Match) -> bool:
        q, v, root = match["q"], match["v"], match.root
        k_t = match["k_t"]
        if {q.dtype, v.dtype, k_t.dtype} - DTYPES or min(q.type.rank, v.type.rank, k_t.type.rank) < 2:
            return False
        if not all(isinstance(d, int) for t in (q, k_t, v, root) for d in t.shape):
            return False  # a symbolic length: the kernel is built for static shapes
        batch = q.shape[:-2]
        if not (_shared(k_t.shape[:-2], batch) and _shared(v.shape[:-2], batch)) or root.shape[:-2] != batch:
            return False
        if "safe" in match and match["blocked"].shape[-1:] != (1,):
            return False  # the zeroing must be per query row to move after the product
        if self.skip_dense_prefill and q.shape[-2] > 1 and not _has_causal_mask(match):
            return False
        return all(match[m].dtype in DTYPES for m in ("m1", "m2") if m in match)

    def rewrite(self, match: Match, rw: Rewriter) -> Node:
        root = match.root
        name = root.name
        k_t = match["k_t"]
        if "k_tt" in match:  # reshape(transpose(k)) regrouping batch axes: reshape k itself
            shape = (*k_t.shape[:-2], k_t.shape[-1], k_t.shape[-2])
            k = rw.make("reshape", [rw.value(match["k"])], {"shape": shape}, name=f"{name}_k")
        elif k_t.op == "transpose" and "k" in match and _swaps_last_two(k_t):
            k = rw.value(match["k"])
        else:
            rank = k_t.type.rank
            perm = {"perm": (*range(rank - 2), rank - 1, rank - 2)}
            k = rw.make("transpose", [rw.value(k_t)], perm, name=f"{name}_k")
        scale = 1.0
        if "scaled" in match:
            scale = float(np.asarray(match["c"].value).reshape(()))
        elif "div_scaled" in match:
            scale = float(1 / np.asarray(match["c"].value, dtype=np.float64).reshape(()))
        q_len, k_len = match["q"].shape[-2], k_t.shape[-1]
        masks = [match[m] for m in ("m1", "m2") if m in match]
        causal = False
        for m in masks:
            if not causal and is_causal_constant(m, q_len, k_len):
                masks.remove(m)
                causal = True
                break
        mask_values = [rw.value(m) for m in masks]
        if "filled" in match:  # where(cond, s, fill) = s + where(cond, 0, fill): s + fill rounds to fill
            fill = np.asarray(match["fill"].value).reshape(())
            zero = rw.constant(np.zeros((), fill.dtype), name=f"{name}_keep")
            blocked = rw.constant(fill.copy(), name=f"{name}_fill")
            mask_values.append(rw.make("where", [rw.value(match["cond"]), zero, blocked], name=f"{name}_where_mask"))
        inputs = [rw.value(match["q"]), k, rw.value(match["v"])]
        while len(mask_values) > 1:
            a, b = mask_values.pop(0), mask_values.pop(0)
            mask_values.insert(0, rw.make("add", [a, b], name=f"{name}_mask{len(mask_values)}"))
        inputs += mask_values
        attrs = {"scale": scale, "causal": causal}
        if "safe" not in match:
            return rw.make("fused_attention", inputs, attrs, name=name)
        fused = rw.make("fused_attention", inputs, attrs, name=f"{name}_attention")
        zero = rw.constant(np.array(match["zero"].value), name=f"{name}_zero")  # the matched one is consumed
        return rw.make("where", [rw.value(match["blocked"]), zero, fused], name=name)


@dataclass(frozen=True)
class FuseAttention(Pass):
    """Replace matmul -> scale -> mask -> softmax -> matmul by one `fused_attention` (module docstring).

    skip_dense_prefill: leave sites with several queries and no causal mask unfused (BERT, a prefill
    under a run-time mask). The kernel wins by skipping masked blocks and by streaming k/v for few
    queries; on a full [S, S] matrix the unfused register-tiled products were faster on this CPU
    (benchmarks/attention.py --no-causal: 1.1-2x slower fused at S = 512..2048), so the TVM preset skips them.
    """

    skip_dense_prefill: bool = False

    def run(self, graph: Graph) -> Graph:
        return apply_patterns(graph, [_FuseAttentionPattern(self.skip_dense_prefill)])
