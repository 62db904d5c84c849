"""Issue-18 targets: our GPU kernels vs cuBLAS/cuDNN and torch.compile, with the GPU model's prediction.

    python benchmarks/gpu.py                    # matmul 1024/2048/4096, a 3x3 conv, ResNet-18 (zoo size)
    python benchmarks/gpu.py --gpu H100 --sizes 512 1024 --resnet-width 64 --image-size 224

Every workload is compiled for CUDA (`mlc_lab.codegen.tvm.gpu`) and its generated-code facts printed
(kernels, grid, threads, shared memory, registers and where they were read). Then:
- with a CUDA GPU (detected at run time): our time (TVM's time_evaluator), PyTorch eager (cuBLAS/cuDNN,
  TF32 off so all sides compute in fp32) and torch.compile (Triton/Inductor), each next to the model's
  prediction for that GPU; our outputs are checked against NumPy/PyTorch on the CPU first. The
  PyTorch columns need a CUDA build of torch: with the CPU build they say so and are skipped.
- without one: the model's predictions for --gpu (default A100) and the facts, and it says no GPU was found.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from mlc_lab.codegen.tvm.gpu import build_gpu, cuda_device_present
from mlc_lab.ir import Graph, GraphBuilder
from mlc_lab.sim.gpu_model import GPUS


def matmul_graph(n: int) -> Graph:
    b = GraphBuilder(f"matmul_{n}")
    return b.build(b.matmul(b.input("a", (n, n)), b.input("b", (n, n))))


def conv_graph(batch: int, channels: int, size: int) -> tuple[Graph, np.ndarray]:
    w = np.random.default_rng(1).standard_normal((channels, channels, 3, 3)).astype(np.float32) * 0.05
    b = GraphBuilder(f"conv3x3_{batch}x{channels}x{size}")
    y = b.conv2d(b.input("x", (batch, channels, size, size)), b.constant(w, "w"), padding=(1, 1, 1, 1))
    return b.build(y), w


def gpu_name(requested: str | None) -> str:
    """The model's GPU: --gpu, else the present GPU if the model knows it, else A100."""
    if requested:
        return requested
    if cuda_device_present():
        import tvm

        name = str(tvm.cuda(0).device_name)
        for key in GPUS:
            if key in name:
                return key
        print(f"  (GPU {name!r} is not one the model knows; predicting for A100)")
    return "A100"


def torch_cuda():
    """torch if it can use CUDA here, else None (the CPU build of torch, or no GPU)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 on both sides: cuBLAS would otherwise use TF32
    torch.backends.cudnn.allow_tf32 = False
    return torch


def torch_seconds(torch, fn, repeat: int) -> float:
    """Median seconds of fn() on the GPU, timed with CUDA events after warm-up."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def print_facts(compiled) -> None:
    registers, source = compiled.registers
    for k in compiled.kernel_facts():
        print(
            f"    {k.name:<42} grid {str(k.grid):<14} block {str(k.block):<12} shared {k.shared_bytes:>6} B"
            f"  registers {registers.get(k.name, '?'):>3} ({source})"
        )


def report(label: str, compiled, gpu: str, inputs, reference, torch_fns: dict, repeat: int) -> None:
    prediction = compiled.predict(gpu)
    flops = prediction.flops
    print(
        f"\n{label}: {len(compiled.kernels)} kernels, {flops / 1e9:.2f} GFLOP, built in "
        f"{compiled.lower_seconds + compiled.compile_seconds:.1f} s"
    )
    print_facts(compiled)
    rows = [("ours (model)", prediction.time_s)]
    if cuda_device_present():
        outputs = compiled(*inputs)
        err = max(float(np.abs(o - r).max()) for o, r in zip(outputs, reference))
        scale = max(float(np.abs(r).max()) for r in reference)
        assert err <= 1e-3 * max(scale, 1.0), f"{label}: GPU output differs from the reference by {err}"
        rows.append(("ours (measured)", compiled.time(*inputs, repeat=repeat, number=5)))
        for name, fn in torch_fns.items():
            rows.append((name, fn()))
    print(f"    {'':<24}{'ms':>10}{'GFLOP/s':>10}{'vs model':>10}")
    for name, seconds in rows:
        print(f"    {name:<24}{seconds * 1e3:>10.3f}{flops / seconds / 1e9:>10.0f}{seconds / prediction.time_s:>9.2f}x")
    measured = dict(rows)
    for name in ("cuBLAS (torch eager)", "cuDNN (torch eager)", "torch eager"):
        if name in measured and "ours (measured)" in measured:
            print(f"    ours / {name}: {measured[name] / measured['ours (measured)']:.2f}x its speed")
    bound = {k.bound for k in prediction.kernels}
    if "ours (measured)" in measured:
        gap = measured["ours (measured)"] / prediction.time_s
        print(
            f"    measured / model = {gap:.2f}: the model issues every FLOP at the fp32 peak once occupancy allows;"
            " shared-memory bandwidth per FMA, address arithmetic, bank conflicts and clocks below boost are"
            " what it leaves out"
        )
    print(
        f"    model: {prediction.time_s * 1e3:.3f} ms on {gpu} ({', '.join(sorted(bound))}-bound kernels; "
        f"{prediction.launch_s * 1e6:.0f} us of it launch overhead)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", choices=sorted(GPUS), help="the GPU the model predicts for (default: the one here)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096], help="square matmul sizes")
    parser.add_argument("--resnet-width", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    gpu = gpu_name(args.gpu)
    present = cuda_device_present()
    torch = torch_cuda() if present else None
    print(
        f"GPU: {'found' if present else 'no CUDA GPU found: predictions and generated-code facts only'}; "
        f"model for {gpu}"
    )
    if present and torch is None:
        print("  torch here cannot use CUDA (a CPU build of torch): the cuBLAS/cuDNN/torch.compile columns are skipped")
    rng = np.random.default_rng(0)

    for n in args.sizes:
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        fns = {}
        if torch is not None:
            ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
            compiled_mm = torch.compile(torch.matmul)
            fns = {
                "cuBLAS (torch eager)": lambda ta=ta, tb=tb: torch_seconds(torch, lambda: ta @ tb, args.repeat),
                "torch.compile": lambda ta=ta, tb=tb, f=compiled_mm: torch_seconds(
                    torch, lambda: f(ta, tb), args.repeat
                ),
            }
        compiled = build_gpu(matmul_graph(n))
        reference = [a @ b] if present else []
        report(
            f"matmul {n}x{n}x{n} fp32",
            compiled,
            gpu,
            [a, b],
            reference,
            fns,
            args.repeat,
        )

    graph, w = conv_graph(8, 64, 56)
    x = rng.standard_normal(graph.inputs[0].shape).astype(np.float32)
    fns = {}
    if torch is not None:
        import torch.nn.functional as F

        tx, tw = torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda()
        conv = torch.compile(lambda x: F.conv2d(x, tw, padding=1))
        fns = {
            "cuDNN (torch eager)": lambda: torch_seconds(torch, lambda: F.conv2d(tx, tw, padding=1), args.repeat),
            "torch.compile": lambda: torch_seconds(torch, lambda: conv(tx), args.repeat),
        }
    reference = graph(x) if present else []
    report(f"conv2d 3x3 {graph.name}", build_gpu(graph), gpu, [x], reference, fns, args.repeat)

    import mlc_lab
    from mlc_lab import zoo

    model = zoo.load("resnet18", width=args.resnet_width, image_size=args.image_size)
    compiled = mlc_lab.compile(model.module, model.example_inputs, backend="tvm", target="cuda").runner
    inputs = model.numpy_inputs()
    reference = model.torch_outputs() if present else []  # on the CPU, before the module moves to the GPU
    fns = {}
    if torch is not None:
        module = model.module.eval().cuda()
        tin = [t.cuda() for t in model.example_inputs]
        fast = torch.compile(module)
        fns = {
            "torch eager": lambda: _no_grad(torch, lambda: torch_seconds(torch, lambda: module(*tin), args.repeat)),
            "torch.compile": lambda: _no_grad(torch, lambda: torch_seconds(torch, lambda: fast(*tin), args.repeat)),
        }
    report(
        f"ResNet-18 (width {args.resnet_width}, {args.image_size}x{args.image_size}, batch 1)",
        compiled,
        gpu,
        inputs,
        reference,
        fns,
        args.repeat,
    )
    if not present:
        print("\nNo CUDA GPU was found: the times above are the GPU model's predictions, not measurements.")


def _no_grad(torch, fn):
    with torch.no_grad():
        return fn()


if __name__ == "__main__":
    main()
