"""Token generation timed: mlc_lab.llm (fp32 and int8 weights) vs PyTorch eager and torch.compile.

    python benchmarks/llm.py                         # LLaMA (GQA), 1 thread and all threads
    python benchmarks/llm.py --families llama gpt2 --new-tokens 64
    python benchmarks/llm.py --no-inductor           # skip torch.compile (minutes to compile)

For every thread count a child process runs with that count pinned for every runtime (TVM's pool
reads TVM_NUM_THREADS once, at start), so one run measures both. Models are random-weight configs
(`mlc_lab.llm.examples.example_model`), nothing downloaded, drawn with transformers' own default
initializer (`initializer_range=0.02`, `--init`). The tests' wider 0.1 (so that float rounding never
decides a greedy tie) makes every layer amplify what reaches it: int8's error in the next-token logits
is then ~3x as large relative to the largest logit, a property of that random model, not of int8.

Measured per contender, medians over `--rounds` runs of one greedy generation:
- prefill ms: the prompt's forward pass (eager / torch.compile: `model(ids, use_cache=True)`; ours:
  the compiled prefill, `lm.stats.prefill_ms`);
- decode tokens/s: new tokens after the first, per second of the rest of the generation
  (eager / torch.compile: `model.generate` minus its prefill; ours: `lm.stats`).
Before timing, every contender's tokens are checked against eager's (int8: the fraction of prompts of
a fixed set whose next token equals fp32's is reported as "agree").
"""

from __future__ import annotations

import os
import sys

if "--child" in sys.argv:  # before NumPy/torch/TVM load their thread pools
    _threads = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
        os.environ[_var] = _threads

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

#: The benchmark's model sizes (larger than the tests' so that arithmetic, not Python, can dominate).
SIZES = {"hidden": 256, "layers": 4, "heads": 8, "kv_heads": 4, "vocab": 2048}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", nargs="*", default=["llama"], choices=["llama", "gpt2"])
    p.add_argument("--threads", default="1,all", help="comma-separated thread counts ('all' = every core)")
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--max-seq-len", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--agreement-prompts", type=int, default=256, help="prompts for int8's next-token agreement")
    p.add_argument("--init", type=float, default=0.02, help="std of the random weights (transformers' default: 0.02)")
    p.add_argument("--no-inductor", action="store_true", help="skip torch.compile")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _median_ms(fn, rounds: int) -> float:
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def time_torch(model, ids, new_tokens: int, rounds: int) -> dict:
    """Prefill ms and decode tokens/s of `model.generate` (eager, or with a compiled forward)."""
    import torch

    with torch.no_grad():
        tokens = model.generate(ids, max_new_tokens=new_tokens, do_sample=False)
        prefill_ms = _median_ms(lambda: model(ids, use_cache=True), rounds)
        total_ms = _median_ms(lambda: model.generate(ids, max_new_tokens=new_tokens, do_sample=False), rounds)
    decode_s = max(total_ms - prefill_ms, 1e-9) / 1e3
    return {"prefill_ms": prefill_ms, "decode_tps": (new_tokens - 1) / decode_s, "tokens": tokens}


def time_ours(lm, ids, new_tokens: int, rounds: int) -> dict:
    tokens = lm.generate(ids, max_new_tokens=new_tokens)
    stats = []
    for _ in range(rounds):
        lm.generate(ids, max_new_tokens=new_tokens)
        stats.append(lm.stats)
    return {
        "prefill_ms": statistics.median(s.prefill_ms for s in stats),
        "decode_tps": statistics.median(s.decode_tokens_per_s for s in stats),
        "tokens": tokens,
    }


def next_token_agreement(lm, model, prompts) -> tuple[float, float]:
    """(fraction of prompts whose greedy next token from `lm` equals the fp32 model's, median over prompts
    of the largest next-token logit error relative to the largest logit)."""
    import numpy as np
    import torch

    same, errors = 0, []
    for ids in prompts:
        with torch.no_grad():
            want = model(ids).logits[0, -1].numpy()
        got = lm.next_token_logits(ids)
        same += int(got.argmax() == want.argmax())
        errors.append(float(np.abs(got - want).max() / np.abs(want).max()))
    return same / len(prompts), statistics.median(errors)


def child(args: argparse.Namespace) -> None:
    import torch

    from mlc_lab.bench import pin_threads
    from mlc_lab.llm import QuantizationUnavailable, compile_causal_lm
    from mlc_lab.llm.examples import example_model

    threads = int(args.threads)
    pin_threads(threads)
    warnings.filterwarnings("ignore")
    g = torch.Generator().manual_seed(0)
    for family in args.families:
        model = example_model(family, **SIZES, max_positions=max(args.max_seq_len, 512), init=args.init)
        vocab = SIZES["vocab"]
        ids = torch.randint(0, vocab, (1, args.prompt_len), generator=g)
        rows = {}
        rows["eager"] = time_torch(model, ids, args.new_tokens, args.rounds)
        if not args.no_inductor:
            compiled = example_model(family, **SIZES, max_positions=max(args.max_seq_len, 512), init=args.init)
            compiled.forward = torch.compile(compiled.forward, dynamic=True)
            rows["torch.compile"] = time_torch(compiled, ids, args.new_tokens, args.rounds)
        prompts = [torch.randint(0, vocab, (1, 8 + k % 24), generator=g) for k in range(args.agreement_prompts)]
        for name, quantize in (("ours fp32", None), ("ours int8", "int8")):
            start = time.perf_counter()
            try:
                lm = compile_causal_lm(model, backend="tvm", max_seq_len=args.max_seq_len, quantize=quantize)
            except QuantizationUnavailable as e:
                rows[name] = {"error": str(e)}
                continue
            compile_s = time.perf_counter() - start
            rows[name] = time_ours(lm, ids, args.new_tokens, args.rounds) | {"compile_s": compile_s}
            if quantize:
                rows[name]["agree"], rows[name]["logit_error"] = next_token_agreement(lm, model, prompts)
        reference = rows["eager"]["tokens"]
        for row in rows.values():
            if "tokens" in row:
                row["equal_to_eager"] = bool(torch.equal(row.pop("tokens"), reference))
        result = {"family": family, "threads": threads, "init": args.init, "rows": rows}
        print("RESULT " + json.dumps(result), flush=True)


def report(result: dict) -> None:
    rows = result["rows"]
    eager = rows["eager"]["decode_tps"]
    print(f"\n{result['family']}, {result['threads']} thread(s): {SIZES}, weights ~ N(0, {result['init']})")
    print(
        f"{'':15} {'prefill ms':>11} {'decode tok/s':>13} {'x eager':>8} {'tokens = eager':>15} {'agree':>7} "
        f"{'logit err':>9}"
    )
    for name, row in rows.items():
        if "error" in row:
            print(f"{name:15} {row['error']}")
            continue
        agree = f"{row['agree']:.1%}" if "agree" in row else ""
        error = f"{row['logit_error']:.2%}" if "logit_error" in row else ""
        print(
            f"{name:15} {row['prefill_ms']:11.2f} {row['decode_tps']:13.0f} {row['decode_tps'] / eager:8.2f} "
            f"{row['equal_to_eager']!s:>15} {agree:>7} {error:>9}"
        )
    print("agree: int8's next token = fp32's over the prompt set; logit err: median of max|error| / max|logit|")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    counts = [str(os.cpu_count() or 1) if t == "all" else t for t in args.threads.split(",")]
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--threads", args.threads)]
    for threads in dict.fromkeys(counts):
        cmd = [sys.executable, __file__, *passthrough, "--child", "--threads", threads]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        results = [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode or not results:
            print(f"{threads} thread(s): the child failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
            continue
        for result in results:
            report(result)


if __name__ == "__main__":
    main()
