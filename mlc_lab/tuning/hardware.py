"""A model of this machine for the roofline: attainable FLOP/s and memory bandwidth, measured.

- Peak compute: a large fp32 matrix multiply through NumPy's BLAS (OpenBLAS), the fastest
  well-tuned kernel on hand. It measures *attainable* peak, typically 80-90% of the data-sheet figure
  (cores x GHz x FMA units x vector lanes x 2).
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


def measure_peak_gflops(n: int = 1024, repeat: int = 7) -> float:
    """Median GFLOP/s of an n x n x n fp32 matmul through BLAS."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    return float(2 * n**3 / _median_seconds(lambda: np.matmul(a, b, out=out), repeat) / 1e9)


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
        peak_gflops=measure_peak_gflops(),
        bandwidth_gbs=measure_bandwidth_gbs(threads=threads),
        threads=threads or os.cpu_count() or 1,
        cpu=platform.processor() or platform.machine(),
    )
