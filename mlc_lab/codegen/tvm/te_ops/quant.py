"""matmul_dequant on TVM: int8 weights widened inside the product's inner loop, the scale applied once per output.

    out[..., n] = scales[n] * sum_k x[..., k] * float(w_q[n, k])     (transpose_b; else w_q[k, n])

The weight is read as int8 and converted in registers: no float32 copy of it exists, so a decode
step (one row of x) moves a quarter of the float32 kernel's weight bytes. The scale is a per-column
epilogue, which the lowering places inside the reduction's loop (`lower.attach_epilogue`); the
default schedule vectorises the reduction like dense's.
"""

from __future__ import annotations

from tvm import te

from mlc_lab.codegen.tvm.te_ops.registry import compute, te_op
from mlc_lab.ir.types import TensorType


@te_op("matmul_dequant")
def matmul_dequant(
    x: te.Tensor, w: te.Tensor, scales: te.Tensor, *, transpose_b: bool, out: TensorType, name: str
) -> te.Tensor:
    depth = int(x.shape[-1])
    k = te.reduce_axis((0, depth), "k")

    def weight(n, kk):
        return (w[n, kk] if transpose_b else w[kk, n]).astype("float32")

    total = compute(
        out.shape, lambda *i: te.sum(x[*i[:-1], k] * weight(i[-1], k), axis=k), name=f"{name}_acc"
    )
    return compute(out.shape, lambda *i: total[*i] * scales[i[-1]], name=name)
