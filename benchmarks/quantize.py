"""Issue-17 item 4: int8 weights (QuantizeWeights) — accuracy on small HF LMs, weight bytes, decode-GEMV speed.

    python benchmarks/quantize.py                       # GPT-2 and LLaMA tiny configs, GEMV 2048 and 4096
    python benchmarks/quantize.py --sizes 1024 --prompts 16 --rounds 5

1. Accuracy: each model (random weights, the tiny configs of `mlc_lab.interop.model_suites`) imported once,
   run on the interpreter before and after `QuantizeWeights`, over a fixed set of random prompts: the
   max and mean |logit difference| (and the largest logit, for scale) and how often the next token
   (argmax at the last position) agrees. Weight bytes: every constant, before and after.
2. Speed: a decode-shaped GEMV, x[1, K] @ W[N, K]^T, compiled by our TVM backend as dense (float32
   weights) and as matmul_dequant (int8 weights, dequantized in the inner loop), timed side by side
   (interleaved medians, 1 thread), with the registry's compulsory bytes of each kernel.
"""

from __future__ import annotations

from mlc_lab.bench import pin_threads

pin_threads(1)

import argparse  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mlc_lab.api import import_model  # noqa: E402
from mlc_lab.bench import compare_words, interleaved_medians  # noqa: E402
from mlc_lab.codegen.tvm import build  # noqa: E402
from mlc_lab.interop.model_suites import SEQ, VOCAB, hf_configs, hf_module  # noqa: E402
from mlc_lab.ir import Graph, GraphBuilder, interpret  # noqa: E402
from mlc_lab.ir.ops import node_cost  # noqa: E402
from mlc_lab.passes import FoldConstants  # noqa: E402
from mlc_lab.passes.quantize import QuantizeWeights  # noqa: E402


def constant_bytes(graph: Graph) -> int:
    return sum(n.type.nbytes for n in graph.nodes if n.op == "constant")


def accuracy(name: str, prompts: int) -> None:
    build_model, _ = hf_configs()[name]
    torch.manual_seed(0)
    model = hf_module(build_model(), ("input_ids",))
    gen = torch.Generator().manual_seed(1)
    ids = [torch.randint(0, VOCAB, (1, SEQ), generator=gen) for _ in range(prompts)]
    graph = FoldConstants().apply(import_model(model, (ids[0],)))
    quantized = QuantizeWeights().apply(graph)
    diffs, peaks, agree = [], [], 0
    for prompt in ids:
        (ref,), (got,) = interpret(graph, prompt.numpy()), interpret(quantized, prompt.numpy())
        diffs.append(np.abs(got - ref))
        peaks.append(float(np.abs(ref).max()))
        agree += int(ref[0, -1].argmax() == got[0, -1].argmax())
    diff = np.concatenate([d.ravel() for d in diffs])
    print(
        f"{name:6s} logits: max |diff| {diff.max():.3g}, mean {diff.mean():.3g} (max |logit| {max(peaks):.3g}); "
        f"next token agrees on {agree}/{prompts} prompts; weights {constant_bytes(graph) / 2**20:.2f} MiB -> "
        f"{constant_bytes(quantized) / 2**20:.2f} MiB"
    )


def gemv_graph(size: int, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"gemv_{size}")
    x = b.input("x", (1, size))
    w = b.constant((rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32), "w")
    return b.build(b.dense(x, w))


def speed(size: int, rounds: int, calls: int) -> None:
    fp32 = gemv_graph(size)
    int8 = QuantizeWeights().apply(fp32)
    x = np.random.default_rng(1).standard_normal((1, size)).astype(np.float32)
    compiled = {"fp32": build(fp32), "int8": build(int8)}
    ref, got = interpret(fp32, x)[0], compiled["int8"](x)[0]
    assert np.abs(compiled["fp32"](x)[0] - ref).max() <= 1e-4 * np.abs(ref).max()
    times = interleaved_medians({k: (lambda c=c: c(x)) for k, c in compiled.items()}, rounds, calls)
    (kernel_fp32,), (kernel_int8,) = ([n for n in g.ops if n.op != "constant"] for g in (fp32, int8))
    print(
        f"GEMV {size}x{size}: fp32 {times['fp32'] * 1e3:.3f} ms ({node_cost(kernel_fp32).bytes / 2**20:.2f} MiB), "
        f"int8 {times['int8'] * 1e3:.3f} ms ({node_cost(kernel_int8).bytes / 2**20:.2f} MiB), "
        f"ratio {times['int8'] / times['fp32']:.2f}, max |int8 - fp32| {np.abs(got - ref).max():.2g} "
        f"(max |y| {np.abs(ref).max():.2g})"
    )
    print(f"    {compare_words(times['int8'], times['fp32'], 'the int8 GEMV', 'the fp32 GEMV')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gpt2", "llama"])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    for name in args.models:
        accuracy(name, args.prompts)
    for size in args.sizes:
        speed(size, args.rounds, args.calls)


if __name__ == "__main__":
    main()
