#!/usr/bin/env python
"""Generation throughput of the transformers backend: float32 vs bfloat16, per batch size, per
thread count, on the default profile's models.

For each model and dtype the model is loaded once and warmed up; then the same requests (CoT
prompts of generated arithmetic, fixed output length via ignore_eos, so every cell generates
exactly the same tokens) are sent at each batch size. Output tokens/s are printed side by side
with the bf16/fp32 ratio, then bf16 at 1 thread vs the usable CPUs' count. Numbers on a shared
machine move by tens of percent between executions: read the ratios, measured side by side.

    python scripts/bench_throughput.py                         # the default models (minutes)
    python scripts/bench_throughput.py --models smollm2-135m-instruct --batch-sizes 1,16
"""

from __future__ import annotations

import argparse
import gc
import time

from ttclib import benchmarks, hardware, strategies
from ttclib.serving import Request, SamplingParams, TransformersBackend, render_prompt

DEFAULT_MODELS = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct"


def tokens_per_s(backend, requests, batch_size: int) -> float:
    backend.batch_size = batch_size
    t0 = time.perf_counter()
    out = backend.generate(requests)
    return sum(c.completion_tokens for c in out) / (time.perf_counter() - t0)


def requests_for(backend, n: int, max_new_tokens: int) -> list[Request]:
    bench, strat = benchmarks.get("arithmetic"), strategies.get("cot")
    problems = bench.load(per_level=-(-n // 3), seed=1)[:n]
    prompts = [render_prompt(backend.tokenizer, strat.messages(p, bench.answer_format), backend.chat) for p in problems]
    return [
        Request(str(i), p, SamplingParams(max_new_tokens=max_new_tokens, ignore_eos=True))
        for i, p in enumerate(prompts)
    ]


def measure(
    model: str, dtype: str, batch_sizes: list[int], tokens: int, threads_batch: int = 0
) -> tuple[dict[int, float], float | None]:
    """tokens/s per batch size, and (``threads_batch``) at that batch with 1 thread, on the same loaded model."""
    import torch

    backend = TransformersBackend(model, dtype=dtype, batch_size=max(batch_sizes))
    reqs = requests_for(backend, max(batch_sizes + [threads_batch]), tokens)
    backend.generate([Request("warmup", reqs[0].prompt, SamplingParams(max_new_tokens=4))])
    # Each batch size runs one full batch: cells differ in batch size only.
    out = {b: tokens_per_s(backend, reqs[:b], b) for b in batch_sizes}
    one = None
    if threads_batch:
        torch.set_num_threads(1)
        try:
            one = tokens_per_s(backend, reqs[:threads_batch], threads_batch)
        finally:
            torch.set_num_threads(backend.threads)
    del backend
    gc.collect()
    return out, one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names (default: %(default)s)")
    ap.add_argument("--batch-sizes", default="1,8,32", help="comma-separated (default: %(default)s)")
    ap.add_argument(
        "--max-new-tokens", type=int, default=16, help="tokens generated per request (default: %(default)s)"
    )
    ap.add_argument("--threads-batch", type=int, default=8, help="batch size of the thread comparison (0: skip)")
    args = ap.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    cpus = hardware.usable_cpus()
    print(
        f"transformers backend, {cpus} usable CPUs, bf16 instructions: "
        f"{hardware.bf16_support('cpu') or 'none (bf16 is emulated)'}; {args.max_new_tokens} new tokens per request"
    )
    for model in args.models.split(","):
        fp32, _ = measure(model, "float32", sizes, args.max_new_tokens)
        tb = args.threads_batch if cpus > 1 else 0
        bf16, one = measure(
            model, "bfloat16", sizes + ([tb] if tb and tb not in sizes else []), args.max_new_tokens, tb
        )
        print(f"\n{model}  (output tokens/s, {cpus} threads)")
        print(f"  {'batch':>5s}  {'float32':>9s}  {'bfloat16':>9s}  {'bf16/fp32':>9s}  {'bf16 vs batch 1':>15s}")
        for b in sizes:
            print(
                f"  {b:5d}  {fp32[b]:9.1f}  {bf16[b]:9.1f}  {bf16[b] / fp32[b]:8.2f}x"
                f"  {bf16[b] / bf16[sizes[0]]:14.2f}x"
            )
        if one:
            print(
                f"  threads (bf16, batch {tb}): 1 thread {one:.1f} tok/s, {cpus} threads {bf16[tb]:.1f} tok/s "
                f"({bf16[tb] / one:.2f}x)"
            )


if __name__ == "__main__":
    main()
