"""mlc_lab from PyTorch: `mlc_lab.compile` on every backend, then `torch.compile(..., backend=mlc_lab.torch_backend)`.

For one zoo model (small_cnn by default) this compiles with each backend, checks the output against
PyTorch eager, and times every wall-clock backend against eager and inductor (interleaved medians,
1 thread each). The simulated accelerators report simulated time, printed separately.

Run: python examples/pytorch_integration_example.py [model]
"""

from __future__ import annotations

import os
import sys

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[var] = "1"  # before NumPy/torch/TVM load: each reads its thread count once, at load time

from mlc_lab.bench import pin_threads  # noqa: E402

pin_threads(1)

import torch  # noqa: E402

import mlc_lab  # noqa: E402
from mlc_lab import zoo  # noqa: E402
from mlc_lab.bench import interleaved_medians  # noqa: E402


def main(name: str = "small_cnn") -> None:
    model = zoo.load(name)
    x = model.example_inputs
    with torch.no_grad():
        reference = model.module(*x)
    print(f"{name}: {model.description}\n")

    print("1. mlc_lab.compile(model, inputs, backend=...): torch tensors in, torch tensors out")
    compiled = {}
    for backend in mlc_lab.BACKENDS:
        c = mlc_lab.compile(model.module, x, backend=backend)
        out = c(*x)
        compiled[backend] = c
        sim = f", simulated {c.report.time_s * 1e6:,.1f} us" if c.report is not None else ""
        print(
            f"   {backend:<12} {type(out).__name__}{tuple(out.shape)}  max abs error "
            f"{(out - reference).abs().max().item():.1e}  compiled in {c.compile_seconds:.2f} s{sim}"
        )

    print("\n2. torch.compile(model, backend=mlc_lab.torch_backend): Dynamo captures, mlc_lab compiles (TVM)")
    torch._dynamo.reset()
    ours = torch.compile(model.module, backend=mlc_lab.torch_backend)
    with torch.no_grad():
        print(f"   max abs error vs eager {(ours(*x) - reference).abs().max().item():.1e}")
    torch._dynamo.reset()
    inductor = torch.compile(model.module)
    with torch.no_grad():
        inductor(*x)  # compile now, not inside the timing

    print("\n3. Measured (median per call, interleaved rounds, 1 thread each)")
    fns = {
        "eager": lambda: model.module(*x),
        "inductor": lambda: inductor(*x),
        "torch.compile(mlc_lab)": lambda: ours(*x),
        **{f"mlc_lab {b}": (lambda c=compiled[b]: c(*x)) for b in ("tvm", "mlir", "interpreter")},
    }
    with torch.no_grad():
        times = interleaved_medians(fns, rounds=10, calls=5)
    for label, seconds in times.items():
        print(
            f"   {label:<24} {seconds * 1e3:8.3f} ms   {seconds / times['eager']:6.2f}x eager   "
            f"{seconds / times['inductor']:6.2f}x inductor"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
