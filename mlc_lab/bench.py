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


# -- wording a comparison from the numbers just measured --------------------------------------------------------
#: Ratios within this fraction of 1 are worded "about as fast": run-to-run noise on a shared machine.
TIE_TOLERANCE = 0.05
VERDICTS = ("faster", "about as fast", "slower")


class ClaimContradicted(AssertionError):
    """A chapter expected one verdict, and the numbers measured on this machine say another."""


class Claim(str):
    """The worded comparison (a str, ready to print) that also carries the numbers it was worded from."""

    a: str
    b: str
    ratio: float  #: a's time / b's time
    verdict: str  #: one of VERDICTS, for a against b

    def __new__(cls, text: str, a: str, b: str, ratio: float, verdict: str) -> Claim:
        claim = super().__new__(cls, text)
        claim.a, claim.b, claim.ratio, claim.verdict = a, b, ratio, verdict
        return claim


def _verdict(ratio: float, tie: float) -> str:
    if ratio < 1 - tie:
        return "faster"
    if ratio > 1 + tie:
        return "slower"
    return "about as fast"


def compare_words(
    a_seconds: float,
    b_seconds: float,
    a: str = "A",
    b: str = "B",
    *,
    tie: float = TIE_TOLERANCE,
    expect: str | None = None,
) -> Claim:
    """Word "a against b" from two measured times: "TVM takes 0.41x the time of eager (faster)".

    Every speed claim in the book's prose goes through here, so a sentence can never say "faster"
    where the numbers printed next to it say slower. `expect` (one of VERDICTS) states what the text
    around it assumes: if this machine's numbers contradict it, `ClaimContradicted` says so with them.
    """
    for label, seconds in ((a, a_seconds), (b, b_seconds)):
        number = isinstance(seconds, int | float | np.floating) and not isinstance(seconds, bool)
        if not (number and np.isfinite(seconds) and seconds > 0):
            raise ValueError(f"compare_words: the time of {label!r} must be finite seconds > 0, not {seconds!r}")
    if expect is not None and expect not in VERDICTS:
        raise ValueError(f"compare_words: expect={expect!r} is not a verdict; one of {', '.join(VERDICTS)}")
    ratio = float(a_seconds) / float(b_seconds)
    verdict = _verdict(ratio, tie)
    assert (verdict == "faster") == (ratio < 1 - tie) and (verdict == "slower") == (ratio > 1 + tie)
    if expect is not None and verdict != expect:
        raise ClaimContradicted(
            f"expected {a} to be {expect} against {b}, but on this machine {a} takes {ratio:.2f}x the time of {b} "
            f"({a_seconds * 1e3:.3g} ms vs {b_seconds * 1e3:.3g} ms)"
        )
    return Claim(f"{a} takes {ratio:.2f}\u00d7 the time of {b} ({verdict})", a, b, ratio, verdict)
