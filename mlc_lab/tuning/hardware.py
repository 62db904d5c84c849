"""A model of this machine for the roofline: attainable FLOP/s and memory bandwidth, measured.

- Peak compute: the faster of a large fp32 matrix multiply through NumPy's BLAS (OpenBLAS) and a
  register-tiled TVM matmul whose operands sit in the L2 cache (a schedule the tuner found, chapter 5).
  Both are *attainable* peaks, below the data-sheet figure (cores x GHz x FMA units x lanes x 2); on
  some CPUs the BLAS build does not use every vector unit, and the TVM micro-kernel is the faster.
- Bandwidth: a STREAM-style kernel `a[i] = b[i] + 3 * c[i]` over arrays far bigger than the caches,
  compiled with TVM (parallel over the cores, vectorised); bytes moved = 3 arrays.
A kernel with arithmetic intensity I (FLOP per byte of memory traffic) can run no faster than
min(peak, bandwidth * I): that bound is the roofline.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class MachineModel:
    peak_gflops: float
    bandwidth_gbs: float
    threads: int
    cpu: str = ""

    @property
    def ridge_intensity(self) -> float:
        """FLOP/byte where a kernel stops being memory-bound."""
        return self.peak_gflops / self.bandwidth_gbs

    def attainable_gflops(self, intensity: float | np.ndarray) -> float | np.ndarray:
        return np.minimum(self.peak_gflops, self.bandwidth_gbs * np.asarray(intensity))

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MachineModel:
        return cls(**json.loads(Path(path).read_text()))


def _median_seconds(fn, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


#: A register-tiled schedule of a 256^3 fp32 matmul (mlc_lab.tuning's knobs): 8 x 32 output tiles,
#: reduction split 16 x 16, parallel outer loop, vectorised inner loop.
PEAK_MATMUL_CONFIG = {
    "tile_i0": [32, 1, 1, 8],
    "tile_i1": [4, 1, 2, 32],
    "tile_k": [16, 16],
    "order": "ssrsrs",
    "cache_write": False,
    "pack": False,
    "parallel": True,
    "vectorize": True,
    "unroll": 0,
}


def measure_tvm_matmul_gflops() -> float:
    """GFLOP/s of a 256^3 matmul compiled by TVM with `PEAK_MATMUL_CONFIG` (checked against NumPy)."""
    from mlc_lab.tuning.measure import MeasuredCost
    from mlc_lab.tuning.task import matmul_task

    task = matmul_task(256, 256, 256)
    trial = MeasuredCost(task)(PEAK_MATMUL_CONFIG)
    if not trial.ok:
        raise RuntimeError(f"the peak micro-kernel failed: {trial.error}")
    return float(task.flops / trial.cost / 1e9)


def measure_peak_gflops(n: int = 1024, repeat: int = 7, with_tvm: bool = True) -> float:
    """Attainable GFLOP/s: the faster of an n^3 BLAS matmul (median) and the TVM micro-kernel."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    blas = float(2 * n**3 / _median_seconds(lambda: np.matmul(a, b, out=out), repeat) / 1e9)
    return max(blas, measure_tvm_matmul_gflops()) if with_tvm else blas


def measure_bandwidth_gbs(megabytes: int = 256, repeat: int = 5, threads: int | None = None) -> float:
    """Median GB/s of a parallel, vectorised `a = b + 3c` compiled with TVM (three arrays moved)."""
    import tvm
    from tvm import te

    from mlc_lab.codegen.tvm.build import host_target

    n = megabytes * 2**20 // 4
    b_ = te.placeholder((n,), "float32", name="b")
    c_ = te.placeholder((n,), "float32", name="c")
    a_ = te.compute((n,), lambda i: b_[i] + c_[i] * 3.0, name="a")
    sch = tvm.s_tir.Schedule(te.create_prim_func([b_, c_, a_]))
    (i,) = sch.get_loops(sch.get_sblock("a"))
    outer, inner = sch.split(i, factors=[None, 4096])
    _, lanes = sch.split(inner, factors=[None, 16])
    sch.parallel(outer)
    sch.vectorize(lanes)
    kernel = tvm.compile(sch.mod, target=host_target(threads))
    dev = tvm.cpu()
    rng = np.random.default_rng(0)
    b, c = (tvm.runtime.tensor(rng.random(n, dtype=np.float32), dev) for _ in range(2))
    a = tvm.runtime.tensor(np.empty(n, np.float32), dev)
    kernel["main"](b, c, a)
    np.testing.assert_allclose(a.numpy()[:1000], b.numpy()[:1000] + 3 * c.numpy()[:1000], rtol=1e-6)
    seconds = kernel.mod.time_evaluator("main", dev, number=2, repeat=repeat)(b, c, a).median
    return float(3 * 4 * n / seconds / 1e9)


def measure_machine(threads: int | None = None) -> MachineModel:
    import platform

    return MachineModel(
        peak_gflops=measure_peak_gflops(),  # TVM's pool reads TVM_NUM_THREADS; set it for `threads`
        bandwidth_gbs=measure_bandwidth_gbs(threads=threads),
        threads=threads or os.cpu_count() or 1,
        cpu=platform.processor() or platform.machine(),
    )
