"""Official checks for exercises/11_llm.md (compiling a language model).

The online-softmax update is folded over random blocks here and compared with softmax(S) V; the
quantizer is judged by the error bounds a symmetric per-channel int8 scheme guarantees; the
bytes-per-token prediction is compared with the registry's cost model on the matrix products of
one decode step, built here as graph nodes (no model, no compile).
"""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.session import Grading, check, close
from mlc_lab.ir import GraphBuilder, node_cost

#: Relative slack for float32 results computed in another order than the reference.
RTOL = 1e-4


def _softmax_v(scores: np.ndarray, values: np.ndarray) -> np.ndarray:
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ values


@check(points=3)
def check_online_softmax(g: Grading) -> None:
    """online_softmax_update(m, l, acc, s, v) folded over key blocks equals softmax(S) V."""
    update = g.need("online_softmax_update")
    for rows, keys, depth, block in ((1, 8, 4, 4), (3, 24, 8, 8), (4, 40, 16, 16), (2, 30, 8, 7)):
        scale = float(g.rng.uniform(1, 8))  # large scores: a missing max subtraction overflows
        scores = (g.rng.standard_normal((rows, keys)) * scale * 10).astype(np.float32)
        values = g.rng.standard_normal((keys, depth)).astype(np.float32)
        with g.case(f"{rows} queries, {keys} keys of depth {depth} in blocks of {block}") as case:
            m = np.full(rows, -np.inf, np.float32)
            l = np.zeros(rows, np.float32)  # noqa: E741 - the running sum's name in the chapter
            acc = np.zeros((rows, depth), np.float32)
            for start in range(0, keys, block):
                stop = min(start + block, keys)
                result = update(m, l, acc, scores[:, start:stop], values[start:stop])
                assert isinstance(result, (tuple, list)) and len(result) == 3, "return (m, l, acc)"
                m, l, acc = (np.asarray(x, dtype=np.float64) for x in result)  # noqa: E741
                assert m.shape == (rows,) and l.shape == (rows,) and acc.shape == (rows, depth), (
                    f"shapes m {m.shape}, l {l.shape}, acc {acc.shape}: expected ({rows},), ({rows},), "
                    f"({rows}, {depth})"
                )
            out = acc / l[:, None]
            case.got = f"acc / l = {out.ravel()[:4]}..."
            want = _softmax_v(scores.astype(np.float64), values.astype(np.float64))
            assert np.all(np.isfinite(out)), "acc / l is not finite: subtract the running maximum before exp"
            assert np.allclose(m, scores.max(axis=1), rtol=1e-6), "m is not the running maximum of the scores"
            err = float(np.abs(out - want).max())
            assert err < 1e-4, f"acc / l differs from softmax(S) V by {err:.3g}"


def _quantize_cases(g: Grading) -> list[np.ndarray]:
    spread = np.exp(g.rng.uniform(-3, 1, size=(12, 1)))  # channels of very different ranges
    return [
        g.rng.standard_normal((8, 16)).astype(np.float32),
        (g.rng.standard_normal((12, 40)) * spread).astype(np.float32),
        np.concatenate([np.zeros((1, 8)), g.rng.uniform(-1, 1, (3, 8))]).astype(np.float32),
    ]


@check(points=2, forbids=("mlc_lab.ir.ops.quant.quantize_per_channel",))
def check_quantize(g: Grading) -> None:
    """quantize(w) -> (int8 q, float32 scales per row): no wasted range, error within half a step."""
    quantize = g.need("quantize")
    for w in _quantize_cases(g):
        with g.case(f"quantize(w) on a {w.shape[0]}x{w.shape[1]} weight") as case:
            q, scales = quantize(w)
            q, scales = np.asarray(q), np.asarray(scales, dtype=np.float64)
            case.got = f"q {q.dtype}{list(q.shape)}, scales {scales.ravel()[:4]}"
            assert q.dtype == np.int8 and q.shape == w.shape, f"q must be int8 of shape {list(w.shape)}"
            assert scales.shape == (w.shape[0],), f"one scale per output row: shape ({w.shape[0]},)"
            assert np.all(scales > 0), "every scale must be positive (an all-zero row needs one too)"
            assert int(np.abs(q.astype(np.int32)).max()) <= 127, "use the symmetric range -127..127"
            peak = np.abs(w).max(axis=1)
            used = peak > 0
            assert np.all(scales[used] <= peak[used] / 127 * (1 + 1e-5)), (
                "a scale is larger than its row's max|w| / 127: that row wastes int8 levels (a per-tensor scale?)"
            )
            err = np.abs(q * scales[:, None] - w)
            worst = float((err / scales[:, None]).max())
            assert worst <= 0.5 + 1e-3, f"q * scale misses w by {worst:.2f} steps; rounding to nearest gives <= 0.5"


def _decode_matmul_bytes(c: dict) -> int:
    """Bytes read by one decode step's matrix products, by the cost model: every weight GEMV and
    the two attention products over the whole cache (activations included: they are tiny)."""
    hidden, d, kv, heads, t = c["hidden"], c["head_dim"], c["kv_heads"], c["heads"], c["max_seq_len"]
    b = GraphBuilder("decode_matmuls")
    x = b.input("x", (1, 1, hidden))
    h = b.input("h", (1, 1, c["intermediate"]))
    shapes = [(heads * d, hidden), (kv * d, hidden), (kv * d, hidden), (hidden, heads * d)]
    shapes += [(c["intermediate"], hidden)] * 2
    total = 0
    for i, shape in enumerate(shapes):
        total += node_cost(b.dense(x, b.input(f"w{i}", shape))).bytes_read
    total += node_cost(b.dense(h, b.input("down", (hidden, c["intermediate"])))).bytes_read
    q = b.input("q", (1, kv, heads // kv, 1, d))
    k_t = b.input("k_t", (1, kv, 1, d, t))
    probs = b.input("p", (1, kv, heads // kv, 1, t))
    v = b.input("v", (1, kv, 1, t, d))
    total += node_cost(b.matmul(q, k_t)).bytes_read + node_cost(b.matmul(probs, v)).bytes_read
    total *= c["layers"]
    return total + node_cost(b.dense(x, b.input("lm_head", (c["vocab"], hidden)))).bytes_read


@check(points=2)
def check_decode_bytes(g: Grading) -> None:
    """decode_bytes_per_token(config): weights + K/V cache read per decoded token, vs the cost model."""
    predict = g.need("decode_bytes_per_token")
    configs = [
        dict(layers=2, hidden=512, intermediate=1024, vocab=4096, heads=8, kv_heads=8, head_dim=64, max_seq_len=512),
        dict(layers=4, hidden=1024, intermediate=2816, vocab=8000, heads=16, kv_heads=4, head_dim=64,
             max_seq_len=2048),  # fmt: skip
    ]
    for _ in range(2):
        heads = int(g.rng.choice([8, 16]))
        configs.append(dict(
            layers=int(g.rng.integers(1, 9)), hidden=64 * heads, intermediate=int(g.rng.integers(8, 30)) * 128,
            vocab=int(g.rng.integers(4, 33)) * 1000, heads=heads, kv_heads=heads // int(g.rng.choice([1, 2, 4])),
            head_dim=64, max_seq_len=int(g.rng.integers(2, 17)) * 256,
        ))  # fmt: skip
    for c in configs:
        g.compare(
            f"decode_bytes_per_token({c})",
            lambda c=c: float(predict(dict(c))),
            float(_decode_matmul_bytes(c)),
            same=close(rtol=0.01),
        )
