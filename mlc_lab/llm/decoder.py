"""The decoder written in our IR: a prefill graph (a prompt of n tokens) and a decode graph (one token).

Both read the same weights (graph constants) and share one K/V cache layout,
[layers, batch, kv_heads, max_seq_len, head_dim] (`cache_type`). Attention over the cache in decode
is masked, not sliced: the decode graph always reads all `max_seq_len` rows and masks the rows past
the current position. That keeps decode one static-shape graph (every kernel compiled once, for
every position) at the price of reading the whole cache each step; for the small caches here the
masked rows cost less than re-dispatching a kernel per length would.

Grouped-query attention needs no copy of the K/V heads: the query heads are arranged
[batch, kv_heads, group, tokens, head_dim] and the matmul broadcasts each K/V head over its group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.types import Dim, TensorType
from mlc_lab.llm.spec import DecoderSpec, DecoderWeights, LayerWeights

#: Added to masked attention scores (transformers uses the dtype's minimum; any value whose exp is 0 does).
MASKED_SCORE = -1e30


def cache_type(spec: DecoderSpec, max_seq_len: int, batch: int = 1) -> TensorType:
    """The K (or V) cache of all layers: [layers, batch, kv_heads, max_seq_len, head_dim] float32."""
    return TensorType((spec.num_layers, batch, spec.num_kv_heads, max_seq_len, spec.head_dim), "float32")


@dataclass
class _Writer:
    """Writes one decoder's nodes into a builder (the weights become constants as they are used)."""

    b: GraphBuilder
    spec: DecoderSpec
    w: DecoderWeights
    max_seq_len: int

    def const(self, array: np.ndarray | float, name: str) -> Node:
        return self.b.constant(np.asarray(array, dtype=np.float32), name=name)

    def linear(self, x: Node, weight: tuple[np.ndarray, np.ndarray | None], name: str) -> Node:
        w, bias = weight
        y = self.b.dense(x, self.const(w, f"{name}_w"), name=name)
        return self.b.add(y, self.const(bias, f"{name}_b"), name=f"{name}_bias") if bias is not None else y

    def norm(self, x: Node, weight: tuple[np.ndarray, np.ndarray | None], name: str) -> Node:
        gamma, beta = weight
        b = self.b
        if self.spec.norm == "layer":
            g, beta_ = self.const(gamma, f"{name}_g"), self.const(beta, f"{name}_b")
            return b.layer_norm(x, g, beta_, eps=self.spec.norm_eps, name=name)
        # RMSNorm as transformers computes it: x * rsqrt(mean(x^2) + eps), then * weight
        var = b.mean(b.mul(x, x), axes=(-1,), keepdims=True, name=f"{name}_var")
        scaled = b.mul(x, b.rsqrt(b.add(var, self.const(self.spec.norm_eps, f"{name}_eps"))))
        return b.mul(scaled, self.const(gamma, f"{name}_g"), name=name)

    def mlp(self, x: Node, layer: LayerWeights, name: str) -> Node:
        b = self.b
        if self.spec.mlp == "gated_silu":
            gate = b.silu(self.linear(x, layer.mlp["gate"], f"{name}_gate"))
            up = self.linear(x, layer.mlp["up"], f"{name}_up")
            return self.linear(b.mul(gate, up), layer.mlp["down"], f"{name}_down")
        hidden = b.gelu(self.linear(x, layer.mlp["fc"], f"{name}_fc"), approximate="tanh")
        return self.linear(hidden, layer.mlp["proj"], f"{name}_proj")

    def rope_tables(self) -> tuple[Node, Node]:
        """cos and sin of every position up to max_seq_len, [max_seq_len, head_dim], as transformers builds them."""
        pos = np.arange(self.max_seq_len, dtype=np.float32)
        freqs = np.outer(pos, self.w.rope_inv_freq.astype(np.float32)).astype(np.float32)
        emb = np.concatenate([freqs, freqs], axis=-1)
        scale = np.float32(self.w.rope_scaling)
        return self.const(np.cos(emb) * scale, "rope_cos"), self.const(np.sin(emb) * scale, "rope_sin")

    def rope(self, x: Node, cos: Node, sin: Node, name: str) -> Node:
        """x [1, n, heads, head_dim] rotated: x * cos + rotate_half(x) * sin, cos/sin [1, n, 1, head_dim]."""
        b, half = self.b, self.spec.head_dim // 2
        x1 = b.slice(x, axes=(-1,), starts=(0,), ends=(half,))
        x2 = b.slice(x, axes=(-1,), starts=(half,), ends=(self.spec.head_dim,))
        rotated = b.concat(b.neg(x2), x1, axis=-1)
        return b.add(b.mul(x, cos), b.mul(rotated, sin), name=name)

    def attention(self, q: Node, keys: Node, values: Node, mask: Node, n, name: str) -> Node:
        """q [1, kv, group, n, d] against keys/values [1, kv, T, d]; mask (bool) broadcasts to [n, T]."""
        b, s = self.b, self.spec
        t = keys.shape[2]
        k_t = b.reshape(b.transpose(keys, perm=(0, 1, 3, 2)), shape=(1, s.num_kv_heads, 1, s.head_dim, t))
        scores = b.mul(b.matmul(q, k_t), self.const(s.head_dim**-0.5, "scale"), name=f"{name}_scores")
        scores = b.where(mask, scores, self.const(MASKED_SCORE, "masked"))
        probs = b.softmax(scores, axis=-1, name=f"{name}_probs")
        out = b.matmul(probs, b.reshape(values, shape=(1, s.num_kv_heads, 1, t, s.head_dim)))  # [1, kv, g, n, d]
        out = b.transpose(out, perm=(0, 3, 1, 2, 4))
        return b.reshape(out, shape=(1, n, s.num_heads * s.head_dim), name=f"{name}_out")

    def qkv(self, x: Node, layer: LayerWeights, cos, sin, n, name: str) -> tuple[Node, Node, Node]:
        """q as [1, kv, group, n, d]; k and v as [1, kv, n, d] (positions applied)."""
        b, s = self.b, self.spec
        q = b.reshape(self.linear(x, layer.q, f"{name}_q"), shape=(1, n, s.num_heads, s.head_dim))
        k = b.reshape(self.linear(x, layer.k, f"{name}_k"), shape=(1, n, s.num_kv_heads, s.head_dim))
        v = b.reshape(self.linear(x, layer.v, f"{name}_v"), shape=(1, n, s.num_kv_heads, s.head_dim))
        if s.positions == "rope":
            q, k = self.rope(q, cos, sin, f"{name}_qr"), self.rope(k, cos, sin, f"{name}_kr")
        q = b.transpose(b.reshape(q, shape=(1, n, s.num_kv_heads, s.group, s.head_dim)), perm=(0, 2, 3, 1, 4))
        return q, b.transpose(k, perm=(0, 2, 1, 3)), b.transpose(v, perm=(0, 2, 1, 3))

    def embed(self, ids: Node, positions: Node, n) -> tuple[Node, Node | None, Node | None]:
        """Token (+ learned position) embeddings [1, n, hidden], and rope's cos/sin [1, n, 1, d] if it has rope."""
        b, s = self.b, self.spec
        x = b.take(self.const(self.w.embed, "embed"), ids, axis=0, name="tokens")
        if s.positions == "learned":
            pos = b.take(self.const(self.w.positions, "position_table"), positions, axis=0)
            return b.add(x, b.reshape(pos, shape=(1, n, s.hidden)), name="embedded"), None, None
        cos_table, sin_table = self.rope_tables()
        shape = (1, n, 1, s.head_dim)
        cos = b.reshape(b.take(cos_table, positions, axis=0), shape=shape, name="cos")
        sin = b.reshape(b.take(sin_table, positions, axis=0), shape=shape, name="sin")
        return x, cos, sin

    def block(self, x: Node, i: int, attend) -> Node:
        layer = self.w.layers[i]
        h = self.norm(x, layer.norm1, f"l{i}_norm1")
        x = self.b.add(x, self.linear(attend(h, layer, f"l{i}_attn"), layer.o, f"l{i}_o"), name=f"l{i}_res1")
        h = self.norm(x, layer.norm2, f"l{i}_norm2")
        return self.b.add(x, self.mlp(h, layer, f"l{i}_mlp"), name=f"l{i}_res2")

    def layer_index(self, layer: LayerWeights) -> int:
        return next(i for i, x in enumerate(self.w.layers) if x is layer)

    def logits(self, h: Node) -> Node:
        h = self.norm(h, self.w.final_norm, "final_norm")
        return self.b.dense(h, self.const(self.w.lm_head, "lm_head"), name="logits")

    def stack(self, layer_values: list[Node], name: str) -> Node:
        """Per-layer [1, kv, T, d] tensors as one [layers, 1, kv, T, d] tensor."""
        b = self.b
        parts = [b.reshape(v, shape=(1, *v.shape)) for v in layer_values]
        if len(parts) == 1:
            return b.reshape(parts[0], shape=parts[0].shape, name=name)
        return b.concat(*parts, axis=0, name=name)


def prefill_graph(spec: DecoderSpec, weights: DecoderWeights, max_seq_len: int, n: Dim) -> Graph:
    """(ids [1, n] int64, positions [n] int64, last [1] int64) -> (logits [1, 1, vocab] at token `last`,
    k cache, v cache [layers, 1, kv, max_seq_len, d]).

    `n` is a `SymDim` (one compiled prefill for every prompt length up to its bound) or a static
    length. Causal attention among the n tokens; `last` (= n - 1 for an unpadded prompt) picks the
    token whose next-token logits are returned. The caches come out at their full length, ready for
    decode: row r holds token min(r, last)'s K/V (a `take` from the n rows), and rows past `last`
    are never read before decode overwrites them (it masks rows past its position).
    """
    b = GraphBuilder(f"{spec.model_type}_prefill")
    w = _Writer(b, spec, weights, max_seq_len)
    ids = b.input("ids", (1, n), "int64")
    positions = b.input("positions", (n,), "int64")
    last = b.input("last", (1,), "int64")
    x, cos, sin = w.embed(ids, positions, n)
    causal = b.less_equal(b.reshape(positions, shape=(1, n)), b.reshape(positions, shape=(n, 1)), name="causal")
    ks, vs = [], []

    def attend(h: Node, layer: LayerWeights, name: str) -> Node:
        q, k, v = w.qkv(h, layer, cos, sin, n, name)
        ks.append(k)
        vs.append(v)
        return w.attention(q, k, v, causal, n, name)

    for i in range(spec.num_layers):
        x = w.block(x, i, attend)
    logits = w.logits(b.take(x, last, axis=1, name="last_hidden"))
    rows = b.constant(np.arange(max_seq_len, dtype=np.int64), name="rows")
    source_rows = b.minimum(rows, last, name="source_rows")  # [max_seq_len]: row r reads token min(r, last)

    def full_length(stacked: Node, name: str) -> Node:
        return b.take(stacked, source_rows, axis=3, name=name)

    k_cache = full_length(w.stack(ks, "k_rows"), "k_cache")
    v_cache = full_length(w.stack(vs, "v_rows"), "v_cache")
    return b.build([logits, k_cache, v_cache])


def decode_graph(spec: DecoderSpec, weights: DecoderWeights, max_seq_len: int) -> Graph:
    """(ids [1, 1] int64, position [1] int64, k cache, v cache) -> (logits [1, 1, vocab], new k cache, new v cache).

    Each layer writes the token's K/V row at `position` (`cache_write`: on TVM, into the cache
    argument's own buffer, so the returned caches are the buffers passed in), then attends over
    rows 0..position of its layer (the later rows are masked).
    """
    b = GraphBuilder(f"{spec.model_type}_decode")
    w = _Writer(b, spec, weights, max_seq_len)
    ids = b.input("ids", (1, 1), "int64")
    position = b.input("position", (1,), "int64")
    cache = cache_type(spec, max_seq_len)
    k_cache = b.input("k_cache", cache.shape, cache.dtype)
    v_cache = b.input("v_cache", cache.shape, cache.dtype)
    x, cos, sin = w.embed(ids, position, 1)
    rows = b.constant(np.arange(max_seq_len, dtype=np.int64), name="rows")
    visible = b.less_equal(b.reshape(rows, shape=(1, max_seq_len)), b.reshape(position, shape=(1, 1)), name="visible")
    caches = {"k": k_cache, "v": v_cache}
    layer_shape = cache.shape[1:]

    def write(kind: str, row: Node, i: int) -> Node:
        """The cache with this token's row in layer i; that layer of it, [1, kv, max_seq_len, d]."""
        caches[kind] = b.cache_write(caches[kind], row, position, layer=i, name=f"l{i}_{kind}_cache")
        return b.reshape(b.slice(caches[kind], axes=(0,), starts=(i,), ends=(i + 1,)), shape=layer_shape)

    def attend(h: Node, layer: LayerWeights, name: str) -> Node:
        i = w.layer_index(layer)
        q, k, v = w.qkv(h, layer, cos, sin, 1, name)
        return w.attention(q, write("k", k, i), write("v", v, i), visible, 1, name)

    for i in range(spec.num_layers):
        x = w.block(x, i, attend)
    return b.build([w.logits(x), caches["k"], caches["v"]])
