#!/usr/bin/env python
"""ttclib's SGLang client against SGLang's own benchmark client, on the same server and requests.

Launches one SGLang server (or attaches to ``--url``), renders ``--requests`` benchmark prompts,
and alternates, ``--repeats`` times (ABBA order):

* ttclib: ``SGLangBackend.generate`` (all requests submitted at once to the native ``/generate``);
* SGLang: ``python -m sglang.benchmark.serving`` (the successor of ``bench_serving``) with the
  same prompts as a custom dataset, ``--request-rate inf``, non-streaming, fixed output length.

Both generate exactly ``--max-new-tokens`` per request (ignore_eos). Prints output tokens/s of
each and the ratio of medians. ``--transformers`` also measures the in-process transformers
backend on the same requests (how the CPU default backend was chosen); ``--offline`` also runs
``sglang.benchmark.offline_throughput`` (in-process engine, no HTTP) with the same server args.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ttclib import benchmarks, models, strategies
from ttclib.server import ServerOptions, engine_args, engine_env, sglang_python
from ttclib.serving import Request, SamplingParams, SGLangBackend, TransformersBackend, render_prompt, resolve_device


def ttclib_run(backend, requests) -> float:
    t0 = time.perf_counter()
    out = backend.generate(requests)
    return sum(c.completion_tokens for c in out) / (time.perf_counter() - t0)


def sglang_run(backend, dataset: Path, args, workdir: Path, i: int) -> float:
    out = workdir / f"serving-{i}.jsonl"
    src = models.serving_source(args.model)
    cmd = [
        sglang_python(),
        "-m",
        "sglang.benchmark.serving",
        "--backend",
        "sglang",
        "--base-url",
        backend.server.url,
        "--dataset-name",
        "custom",
        "--dataset-path",
        str(dataset),
        "--num-prompts",
        str(args.requests),
        "--sharegpt-output-len",
        str(args.max_new_tokens),
        "--request-rate",
        "inf",
        "--disable-stream",
        "--disable-tqdm",
        "--output-file",
        str(out),
        "--model",
        src.model_path,
        "--tokenizer",
        str(models.tokenizer_directory(args.model)),
        "--warmup-requests",
        "0",
        "--temperature",
        "0",
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return json.loads(out.read_text().strip().splitlines()[-1])["output_throughput"]


def offline_run(args, prompts: list[str], workdir: Path, device: str) -> float:
    out, dataset = workdir / "offline.jsonl", workdir / "requests.sharegpt.json"  # it reads no custom JSONL
    dataset.write_text(json.dumps([{"conversations": [{"value": p}, {"value": "-"}]} for p in prompts]))
    engine = engine_args(
        models.serving_source(args.model).model_path,
        device=device,
        dtype=args.dtype,
        max_running_requests=args.batch_size,
        options=ServerOptions(),
    )
    cmd = [
        sglang_python(),
        "-m",
        "sglang.benchmark.offline_throughput",
        *engine,
        "--dataset-name",
        "sharegpt",
        "--dataset-path",
        str(dataset),
        "--num-prompts",
        str(args.requests),
        "--sharegpt-output-len",
        str(args.max_new_tokens),
        "--result-filename",
        str(out),
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=engine_env(device))
    return json.loads(out.read_text().strip().splitlines()[-1])["output_throughput"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--batch-size", type=int, default=16, help="server max_running_requests")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on GPU")
    ap.add_argument("--url", default=None, help="attach to a running server instead of launching one")
    ap.add_argument("--transformers", action="store_true", help="also measure the transformers backend")
    ap.add_argument("--offline", action="store_true", help="also run sglang.benchmark.offline_throughput")
    args = ap.parse_args()
    if sglang_python() is None:
        sys.exit("SGLang is not installed: run `make sglang-env` and set TTC_SGLANG_PYTHON, or pip install sglang")
    device = resolve_device(args.device)
    args.dtype = args.dtype or ("float32" if device == "cpu" else "bfloat16")

    workdir = Path(tempfile.mkdtemp(prefix="bench-sglang-"))
    backend = SGLangBackend(
        args.model,
        device=device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        options=ServerOptions(url=args.url),
        log_path=workdir / "server.log",
    )
    try:
        bench, strat = benchmarks.get("arithmetic"), strategies.get("cot")
        problems = bench.load(per_level=-(-args.requests // 3), seed=1)[: args.requests]
        prompts = [
            render_prompt(backend.tokenizer, strat.messages(p, bench.answer_format), backend.chat) for p in problems
        ]
        sp = SamplingParams(max_new_tokens=args.max_new_tokens, ignore_eos=True)
        requests = [Request(str(i), p, sp) for i, p in enumerate(prompts)]
        dataset = workdir / "requests.jsonl"
        dataset.write_text(
            "".join(json.dumps({"conversations": [{"content": p}, {"content": "-"}]}) + "\n" for p in prompts)
        )
        print(
            f"model {args.model} on {device} ({args.dtype}), SGLang {backend.info.get('version')}, "
            f"max_running_requests {backend.info.get('max_running_requests')}, {len(requests)} requests x "
            f"{args.max_new_tokens} output tokens, {args.repeats} alternating repeats",
            flush=True,
        )
        ttclib_run(backend, requests[: args.batch_size])  # warm-up
        ours, theirs = [], []
        for i in range(args.repeats):
            # ABBA order: a drift in machine speed does not favour whichever client goes first.
            if i % 2 == 0:
                ours.append(ttclib_run(backend, requests))
                theirs.append(sglang_run(backend, dataset, args, workdir, i))
            else:
                theirs.append(sglang_run(backend, dataset, args, workdir, i))
                ours.append(ttclib_run(backend, requests))
            print(
                f"  repeat {i + 1}: ttclib {ours[-1]:8.1f} tok/s   sglang.benchmark.serving {theirs[-1]:8.1f} tok/s"
                f"   ({'ttclib' if i % 2 == 0 else 'sglang'} first)",
                flush=True,
            )
        a, b = statistics.median(ours), statistics.median(theirs)
        pairs = sorted(x / y for x, y in zip(ours, theirs, strict=True))
        print(
            f"median: ttclib {a:.1f} tok/s, sglang.benchmark.serving {b:.1f} tok/s, ratio {a / b:.3f}; "
            f"per-pair ratios {pairs[0]:.3f}..{pairs[-1]:.3f}, median {statistics.median(pairs):.3f}"
        )
    finally:
        backend.close()
    if args.offline:
        print(
            "sglang.benchmark.offline_throughput (in-process engine): "
            f"{offline_run(args, prompts, workdir, device):.1f} tok/s"
        )
    if args.transformers:
        tb = TransformersBackend(args.model, device=device, dtype=args.dtype, batch_size=args.batch_size)
        ttclib_run(tb, requests[: args.batch_size])
        runs = [ttclib_run(tb, requests) for _ in range(args.repeats)]
        print(
            f"transformers backend (in-process, batch {args.batch_size}): median {statistics.median(runs):.1f} tok/s "
            f"({', '.join(f'{r:.1f}' for r in runs)}); SGLang/transformers {a / statistics.median(runs):.2f}x"
        )


if __name__ == "__main__":
    main()
