#!/usr/bin/env python
"""Batched vs one-request-at-a-time generation throughput of the transformers backend.

Prints output tokens/s for batch size B (default 16) and for the same requests sent one at a
time, on the same loaded model, with fixed output lengths (ignore_eos) so both generate exactly
the same number of tokens; then once more with natural stopping (EOS) for reference.
"""
from __future__ import annotations

import argparse
import time

from ttclib import benchmarks, strategies
from ttclib.serving import Request, SamplingParams, TransformersBackend, render_prompt


def tokens_per_s(backend, requests, batch_size):
    backend.batch_size = batch_size
    t0 = time.perf_counter()
    out = backend.generate(requests)
    dt = time.perf_counter() - t0
    return sum(c.completion_tokens for c in out) / dt, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()

    backend = TransformersBackend(args.model, batch_size=args.batch_size)
    bench, strat = benchmarks.get("arithmetic"), strategies.get("cot")
    problems = bench.load(per_level=-(-args.requests // 3), seed=1)[: args.requests]
    prompts = [render_prompt(backend.tokenizer, strat.messages(p, bench.answer_format), backend.chat) for p in problems]
    backend.generate([Request("warmup", prompts[0], SamplingParams(max_new_tokens=4))])
    print(f"model {args.model}, {backend.threads} threads, {len(prompts)} requests, "
          f"max_new_tokens {args.max_new_tokens}")
    for label, ignore_eos in (("fixed length", True), ("natural stop", False)):
        reqs = [Request(str(i), p, SamplingParams(max_new_tokens=args.max_new_tokens, ignore_eos=ignore_eos))
                for i, p in enumerate(prompts)]
        batched, tb = tokens_per_s(backend, reqs, args.batch_size)
        single, ts = tokens_per_s(backend, reqs, 1)
        print(f"  {label:12s}  batch {args.batch_size}: {batched:7.1f} tok/s ({tb:5.1f} s)   "
              f"one at a time: {single:6.1f} tok/s ({ts:5.1f} s)   ratio {batched / single:.2f}x")


if __name__ == "__main__":
    main()
