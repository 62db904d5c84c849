"""fused_attention on the CPU: FlashAttention's online softmax as one TensorIR kernel.

The unfused graph writes the [Sq, Skv] scores, reads them back for the softmax's max, sum and
division, and once more for the second product: four passes over a matrix that outgrows the caches
long before q, k and v do. Here each task (a batch x head row and a block of `BQ` queries; the tasks
run on the thread pool) keeps its queries, a running row max `m`, a running sum `l` and an output
accumulator `acc` in local buffers and streams K/V through in blocks of `BK` keys:

    s    = (q * scale) @ k_blk^T + mask          # BQ x BK, in registers/L1 (k_blk packed transposed)
    m'   = max(m, rowmax(s));  p = exp(s - m')
    l    = l * exp(m - m') + rowsum(p)
    acc  = acc * exp(m - m') + p @ v_blk
    out  = acc / l                               # after the last block

Both products are register-tiled (`RT` query rows x a whole vector row of keys, or of the head
dimension, accumulated in registers across the inner loop); the exponentials use a vectorisable
polynomial (`fast_exp`: LLVM's exp is a scalar libm call per lane). With `causal=True` the key loop
stops at the last block a query block can see. A fully masked row keeps m = -inf; the shift then uses
0 so exp(-inf) = 0 stays exact, and the row ends as 0 / 0 = NaN, as the unfused softmax gives.
"""

from __future__ import annotations

import math

import tvm
from tvm import tirx
from tvm.script import tirx as T

from mlc_lab.codegen.tvm.native.registry import native
from mlc_lab.codegen.tvm.te_ops.registry import UnsupportedOpError
from mlc_lab.ir.graph import Node

#: Query rows per task, rows per register tile, keys per block, fp32 lanes of one AVX-512 register.
BQ, RT, BK, LANES = 64, 4, 64, 16

_LOG2E = 1.4426950408889634
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4  # ln 2 in two parts (Cody-Waite): r stays exact
#: Below this exp(x) is under float32's normal range: flushed to 0 (as TVM's own fast_exp does).
_EXP_MIN = -87.0


def _f32(value: float) -> tirx.Expr:
    return tirx.const(value, "float32")


def fast_exp(x: tirx.Expr) -> tirx.Expr:
    """exp(x) for float32 as range reduction and a degree-6 polynomial (relative error ~2e-7).

    2^n by building the exponent bits; exp(-inf) and x < -87 give 0, NaN stays NaN.
    """
    clamped = tirx.max(x, _f32(_EXP_MIN))
    n = tirx.floor(clamped * _f32(_LOG2E) + _f32(0.5))
    r = clamped - n * _f32(_LN2_HI) - n * _f32(_LN2_LO)
    poly = _f32(1 / 720)
    for c in (1 / 120, 1 / 24, 1 / 6, 0.5, 1.0, 1.0):
        poly = poly * r + _f32(c)
    two_n = tirx.reinterpret("float32", (n.astype("int32") + tirx.const(127, "int32")) << tirx.const(23, "int32"))
    y = tirx.Select(x < _f32(_EXP_MIN), _f32(0.0), poly * two_n)
    return tirx.Select(x != x, x, y)


def _blocks(n: int, block: int) -> int:
    return (n + block - 1) // block


def tile_sizes(q_len: int, k_len: int) -> tuple[int, int, int]:
    """(BQ, RT, BK) for these lengths: small queries (decode: one) get small tiles, not padded ones."""
    rt = min(RT, q_len)
    bq = min(BQ, _blocks(q_len, rt) * rt)
    bk = min(BK, _blocks(k_len, LANES) * LANES)
    return bq, rt, bk


@native("fused_attention")
def attention_kernel(node: Node) -> tvm.tirx.PrimFunc:
    """The PrimFunc for one fused_attention node (parameters: q, k, v[, mask], out)."""
    q, k, v = node.inputs[:3]
    if node.dtype != "float32":
        raise UnsupportedOpError(f"node %{node.name}: the TVM fused_attention kernel is float32 only, got {node.dtype}")
    mask = node.inputs[3] if len(node.inputs) == 4 else None
    return attention_func(
        q.shape[:-2], q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1],
        float(node.attrs["scale"]), bool(node.attrs["causal"]), None if mask is None else mask.shape,
        k.shape[:-2], v.shape[:-2],
    )  # fmt: skip


def _mask_index(batch, q_len, k_len, mask_shape):
    """flat index into the mask (NumPy broadcasting) of (flat batch b, query i, key j)."""
    full = (*batch, q_len, k_len)
    shape = (1,) * (len(full) - len(mask_shape)) + tuple(mask_shape)
    rows, cols = shape[-2:]
    row_step = cols if rows > 1 else 0
    col_step = 1 if cols > 1 else 0
    batch_of, batches = _batch_map(batch, shape[:-2])

    def index(b, i, j):
        return batch_of(b) * (rows * cols) + i * row_step + j * col_step

    return index, batches * rows * cols


def _batch_map(batch, shape):
    """flat index into a tensor with batch dimensions `shape` (1 where shared) of flat q batch index b."""
    if tuple(shape) == tuple(batch):
        return (lambda b: b), math.prod(shape)
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step if size > 1 else 0)
        step *= size
    strides.reverse()

    def index(b):
        total, rest = 0, b
        for axis in range(len(batch) - 1, -1, -1):
            if strides[axis]:
                total = total + (rest % batch[axis]) * strides[axis]
            rest = rest // batch[axis]
        return total

    return index, math.prod(shape)


def attention_func(
    batch, q_len, k_len, depth, v_depth, scale, causal, mask_shape=None, k_batch=None, v_batch=None
) -> tvm.tirx.PrimFunc:
    """The kernel for these shapes (see the module docstring); `mask_shape` None: no mask input;
    `k_batch`/`v_batch` (default `batch`): k's and v's batch dimensions, 1 where a head is shared."""
    dtype = "float32"
    nb = math.prod(batch)
    k_batch, v_batch = tuple(batch if k_batch is None else k_batch), tuple(batch if v_batch is None else v_batch)
    k_of, nbk = _batch_map(batch, k_batch)
    v_of, _ = _batch_map(batch, v_batch)
    bq, rt, bk = tile_sizes(q_len, k_len)
    nqb, nkb, nl = _blocks(q_len, bq), _blocks(k_len, bk), bk // LANES
    k_pad = nkb * bk
    offset = k_len - q_len  # causal: query i sees keys j <= i + offset
    ninf = -math.inf
    has_mask = mask_shape is not None
    mask_at, mask_size = _mask_index(batch, q_len, k_len, mask_shape) if has_mask else (None, 1)
    shapes = [(*batch, q_len, depth), (*k_batch, k_len, depth), (*v_batch, k_len, v_depth)]
    shapes += [tuple(mask_shape)] if has_mask else []
    out_shape = (*batch, q_len, v_depth)

    def key_blocks(q0):
        return tirx.min(nkb, (q0 + bq - 1 + offset) // bk + 1) if causal else nkb

    def visible(q_row, key):
        ok = key < k_len
        return tirx.all(ok, key <= q_row + offset) if causal else ok

    def masked(Mf, score, b, q_row, key):
        if not has_mask:
            return score
        return score + Mf[mask_at(b, tirx.min(q_row, q_len - 1), tirx.min(key, k_len - 1))]

    @T.macro
    def body(Qf, Kf, Vf, Mf, Of):
        KT = T.decl_buffer((nbk * depth * k_pad,), dtype)  # k transposed once, zero-padded to whole blocks
        for bb in T.parallel(nbk):
            for c, j in T.grid(depth, k_pad):
                KT[(bb * depth + c) * k_pad + j] = T.if_then_else(
                    j < k_len, Kf[(bb * k_len + T.min(j, k_len - 1)) * depth + c], T.float32(0)
                )
        for task in T.parallel(nb * nqb):
            acc = T.decl_buffer((bq, v_depth), dtype, scope="local")
            row_max = T.decl_buffer((bq,), dtype, scope="local")
            row_sum = T.decl_buffer((bq,), dtype, scope="local")
            S = T.decl_buffer((bq, bk), dtype, scope="local")
            QS = T.decl_buffer((bq, depth), dtype, scope="local")
            R = T.decl_buffer((rt, bk), dtype, scope="local")
            A = T.decl_buffer((rt, v_depth), dtype, scope="local")
            lane = T.decl_buffer((LANES,), dtype, scope="local")
            st = T.decl_buffer((4,), dtype, scope="local")  # new max, shift, rescale factor, block sum
            b = task // nqb
            q0 = (task % nqb) * bq
            for i in range(bq):
                row_max[i] = T.float32(ninf)
                row_sum[i] = T.float32(0)
                for c in T.vectorized(v_depth):
                    acc[i, c] = T.float32(0)
            for i, c in T.grid(bq, depth):
                QS[i, c] = T.if_then_else(
                    q0 + i < q_len, Qf[(b * q_len + T.min(q0 + i, q_len - 1)) * depth + c], T.float32(0)
                ) * T.float32(scale)
            for kb in range(key_blocks(q0)):
                k0 = kb * bk
                for i0 in range(bq // rt):
                    for ii in T.unroll(rt):
                        for j in T.vectorized(bk):
                            R[ii, j] = T.float32(0)
                    for c in range(depth):
                        for ii in T.unroll(rt):
                            for j in T.vectorized(bk):
                                R[ii, j] = R[ii, j] + QS[i0 * rt + ii, c] * KT[(k_of(b) * depth + c) * k_pad + k0 + j]
                    for ii in T.unroll(rt):
                        for j in T.vectorized(bk):
                            S[i0 * rt + ii, j] = T.Select(
                                visible(q0 + i0 * rt + ii, k0 + j),
                                masked(Mf, R[ii, j], b, q0 + i0 * rt + ii, k0 + j),
                                T.float32(ninf),
                            )
                for i in range(bq):
                    for lx in T.vectorized(LANES):
                        lane[lx] = S[i, lx]
                    for jc in range(1, nl):
                        for lx in T.vectorized(LANES):
                            lane[lx] = T.max(lane[lx], S[i, jc * LANES + lx])
                    st[0] = row_max[i]
                    for lx in range(LANES):
                        st[0] = T.max(st[0], lane[lx])
                    st[1] = T.Select(st[0] == T.float32(ninf), T.float32(0), st[0])
                    st[2] = fast_exp(row_max[i] - st[1])
                    row_max[i] = st[0]
                    for j in T.vectorized(bk):
                        S[i, j] = fast_exp(S[i, j] - st[1])
                    for lx in T.vectorized(LANES):
                        lane[lx] = S[i, lx]
                    for jc in range(1, nl):
                        for lx in T.vectorized(LANES):
                            lane[lx] = lane[lx] + S[i, jc * LANES + lx]
                    st[3] = T.float32(0)
                    for lx in range(LANES):
                        st[3] = st[3] + lane[lx]
                    row_sum[i] = row_sum[i] * st[2] + st[3]
                    for c in T.vectorized(v_depth):
                        acc[i, c] = acc[i, c] * st[2]
                for i0 in range(bq // rt):
                    for ii in T.unroll(rt):
                        for c in T.vectorized(v_depth):
                            A[ii, c] = acc[i0 * rt + ii, c]
                    for j in range(bk):
                        for ii in T.unroll(rt):
                            for c in T.vectorized(v_depth):
                                A[ii, c] = A[ii, c] + S[i0 * rt + ii, j] * Vf[
                                    (v_of(b) * k_len + T.min(k0 + j, k_len - 1)) * v_depth + c
                                ]
                    for ii in T.unroll(rt):
                        for c in T.vectorized(v_depth):
                            acc[i0 * rt + ii, c] = A[ii, c]
            for i in range(bq):
                if q0 + i < q_len:
                    for c in T.vectorized(v_depth):
                        Of[(b * q_len + q0 + i) * v_depth + c] = acc[i, c] / row_sum[i]

    nb_q, nb_k, nb_v, nb_o = (math.prod(s) for s in (*shapes[:3], out_shape))
    if has_mask:

        @T.prim_func(check_well_formed=False)  # a root sblock (which Relax expects) fails the TIRx-only check
        def with_mask(q: T.handle, k: T.handle, v: T.handle, m: T.handle, o: T.handle):
            T.func_attr({"tir.noalias": True})
            Q = T.match_buffer(q, shapes[0], dtype)
            K = T.match_buffer(k, shapes[1], dtype)
            V = T.match_buffer(v, shapes[2], dtype)
            M = T.match_buffer(m, shapes[-1], dtype)
            Out = T.match_buffer(o, out_shape, dtype)
            with T.sblock("root"):  # TVM's Relax passes expect every PrimFunc to have one
                with T.sblock("attention"):  # one opaque block: the layout-rewrite pass wants one
                    Qf = T.decl_buffer((nb_q,), dtype, data=Q.data)
                    Kf = T.decl_buffer((nb_k,), dtype, data=K.data)
                    Vf = T.decl_buffer((nb_v,), dtype, data=V.data)
                    Mf = T.decl_buffer((mask_size,), dtype, data=M.data)
                    Of = T.decl_buffer((nb_o,), dtype, data=Out.data)
                    body(Qf, Kf, Vf, Mf, Of)

        return with_mask

    @T.prim_func(check_well_formed=False)  # a root sblock (which Relax expects) fails the TIRx-only check
    def without_mask(q: T.handle, k: T.handle, v: T.handle, o: T.handle):
        T.func_attr({"tir.noalias": True})
        Q = T.match_buffer(q, shapes[0], dtype)
        K = T.match_buffer(k, shapes[1], dtype)
        V = T.match_buffer(v, shapes[2], dtype)
        Out = T.match_buffer(o, out_shape, dtype)
        with T.sblock("root"):  # TVM's Relax passes expect every PrimFunc to have one
            with T.sblock("attention"):  # one opaque block: the layout-rewrite pass wants one
                Qf = T.decl_buffer((nb_q,), dtype, data=Q.data)
                Kf = T.decl_buffer((nb_k,), dtype, data=K.data)
                Vf = T.decl_buffer((nb_v,), dtype, data=V.data)
                Of = T.decl_buffer((nb_o,), dtype, data=Out.data)
                body(Qf, Kf, Vf, Qf, Of)  # no mask: `masked` never reads its buffer argument

    return without_mask
