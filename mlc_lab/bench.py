"""Timing that survives a noisy machine: interleaved rounds, medians, pinned threads.

Every comparison in the book (chapters and benchmarks/) measures its contenders in the same process,
round-robin: each round times `calls` calls of every contender, so a burst of load hits all alike;
the reported figure is each contender's median per-call time over the rounds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS")


def pin_threads(n: int = 1) -> None:
    """Give every runtime the same thread count: torch's intra-op pool, the BLAS/OpenMP pools already
    loaded (threadpoolctl reaches into NumPy's OpenBLAS even after import), and, through the
    environment, TVM's pool (read when it first starts) and any library loaded later."""
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass


def per_call_seconds(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def interleaved_medians(fns: dict[str, Callable[[], object]], rounds: int = 15, calls: int = 10) -> dict[str, float]:
    """Median per-call seconds of each function, measured round-robin after one warm-up round."""
    for fn in fns.values():
        per_call_seconds(fn, calls)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(per_call_seconds(fn, calls))
    return {name: float(np.median(s)) for name, s in samples.items()}
