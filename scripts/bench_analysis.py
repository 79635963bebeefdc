#!/usr/bin/env python
"""Time every section notebook's analysis on a paper-sized synthetic run store (issue 17, item 5).

1. Builds a store of synthetic runs for the paper profile of every notebook's params file
   (params/paper.yaml: the default grid, 144 runs, used by 00/01/02/04; ``length_sweep``, 160 runs,
   used by 03; ``batch``, 36 runs, used by 05; runs shared between grids are built once), each with
   its plan's run id, 10 repetitions, and written through :func:`ttclib.rundir.seal`, so its files
   are exactly what ``run_grid(..., runs_dir=store)`` loads.

   Size: ``--queries`` is the number of query records (rows of queries.parquet: query × sample ×
   repetition) of the paper's grid (params/paper.yaml ``default``; the notebooks 00, 01, 02 and 04
   load all of it). Every benchmark gets ``per_level`` problems per difficulty level (benchmarks
   without levels: one group): ``per_level = round(queries / Σ_runs levels × samples ×
   repetitions)``. For 1,000,000: 32 levels over the 12 benchmarks, 28 records per problem and
   repetition (Base 1 + MV 5 + RT 1, four sizes), 10 repetitions: per_level 112, 1,003,520 records.
   The length-sweep and batch grids use the same problems, so the store holds more (about 1.8 million
   records in 320 runs, 122 million power samples, 8 GB on disk, built in 4-5 minutes on 2
   cores; by default in a temporary folder, deleted afterwards).

   Content, seeded (``--seed``) per (model, strategy, benchmark), so the length sweep's and batch
   grid's runs of one configuration draw the same answers and only the cut and the timing differ:

   - output tokens per sample: lognormal around the paper's mean for the run
     (:func:`ttclib.gpu_hours.paper_tokens`: Base/MV ≈ 200, multiple choice 1, RT 7845, RT on
     LiveCodeBench 6588), longer at harder levels, longer for wrong reasoning answers; cut at the
     run's ``max_new_tokens`` (finish_reason ``length``; a cut answer is lost and incorrect; a cut
     reasoning answer is ``truncated``); text of 4 characters per token;
   - correctness: logistic in the benchmark's base rate, log model size, the strategy (RT gains on
     math and code) and the difficulty level, per problem, greedy Base the same in every
     repetition; MV votes over 5 samples whose wrong answers fall in 3 classes (``answer_class``
     numbered by first appearance, as the runner grades them);
   - times: each sample takes its prefill plus tokens × decode step of the run's model on an A100
     80GB (:mod:`ttclib.gpu_hours`' roofline, the run's batch and tensor parallelism), the run's
     ``batch_size`` slots busy back to back, repetitions one after another;
   - power: per GPU, idle plus a load-dependent draw rising with model size and the number of
     running requests, sampled every 0.1 s (the NVML counter's period) with noise and a
     cumulative energy counter; energy windows close every ``batch_size`` completions (at least
     10 counter periods) and at the end of each repetition, as the runner checkpoints;
   - per-query energy: the runner's own attribution (:func:`ttclib.runner._attribute`) of the
     windows over the requests' intervals.

2. Runs every notebook (or ``--notebooks 00 03``) in a fresh child process: its code cells in
   order, the parameters cell followed by an injected one (``params_file``, ``profile = "paper"``,
   ``runs_dir`` = the store, and the profile's ``notebook:`` parameters, as make reproduce sets
   them), matplotlib on Agg, figures into a temporary folder. ``load s`` is the time inside
   ``ttclib.run_grid`` (finding, checking and loading the runs), ``analysis s`` the rest; peak RSS
   is the child's high-water resident set (``VmHWM``, which starts afresh at exec: ``ru_maxrss`` of
   a child counts the parent's pages at fork, the store builder's gigabytes). Targets: < 60 s and
   < 4 GB per notebook.
   Exit status 1 when a notebook misses one (or fails).

    python scripts/bench_analysis.py                        # 1,000,000 records, every notebook
    python scripts/bench_analysis.py --queries 20000 --notebooks 00 05
    python scripts/bench_analysis.py --store /tmp/store --keep   # keep the store (reused when it exists)

Figures are upper bounds on a shared machine. The store is synthetic: its numbers are not
measurements, and every run.json says so (``"synthetic": true``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttclib import aggregators, benchmarks, energy, gpu_hours, load_params, rundir  # noqa: E402
from ttclib.runner import _attribute  # noqa: E402 - the runner's own per-query attribution
from ttclib.spec import SPEC_VERSION, RunSpec  # noqa: E402

PROFILE = "paper"
TARGET_S, TARGET_GB = 60.0, 4.0
PAPER_GRID = ("paper.yaml", "default")  # what --queries sizes
GPU = gpu_hours.GPUS["a100-80gb"]  # the paper's GPU
ROOFLINE = gpu_hours.Roofline(GPU)
INTERVAL_S = 0.1  # NVML counter update period: the sampler's interval
IDLE_W = 62.0  # per A100, idle with a model loaded
CHARS_PER_TOKEN = 4
MIN_WINDOW_S = 10 * INTERVAL_S  # the runner's shortest checkpoint window
T0 = 1.75e9  # unix time of the first synthetic run

# Base accuracy (logit) per benchmark, prompt tokens, and how much reasoning helps per category.
BENCH_LOGIT = {
    "aime24": -3.0,
    "aime25": -3.2,
    "gpqa_diamond": -0.6,
    "math500": 0.4,
    "humaneval": 0.9,
    "livecodebench": -1.2,
    "mbpp": 0.7,
    "codeforces": -2.6,
    "hellaswag": 1.0,
    "mmlu": 0.8,
    "gsm8k": 1.4,
    "commonsenseqa": 1.1,
}
PROMPT_TOKENS = {
    "aime24": 150,
    "aime25": 150,
    "gpqa_diamond": 260,
    "math500": 120,
    "humaneval": 180,
    "livecodebench": 450,
    "mbpp": 130,
    "codeforces": 600,
    "hellaswag": 150,
    "mmlu": 130,
    "gsm8k": 110,
    "commonsenseqa": 70,
}
STRATEGY_LOGIT = {
    ("rt", "math"): 1.6,
    ("rt", "code"): 1.2,
    ("rt", "common_sense"): 0.1,
    ("mv", "math"): 0.3,
    ("mv", "code"): 0.2,
    ("mv", "common_sense"): 0.1,
}
MMLU_SUBSETS = ("STEM", "Humanities", "Social Sciences", "Other")
WORDS = (
    "the so we need to compute first then check that value is wait let me verify again answer "
    "equals therefore step sum over each term gives because if not case which means result"
).split()


# --- the grids ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Notebook:
    key: str  # "00"
    path: Path
    params: Path
    plan: object  # ttclib.params.Plan of the paper profile


def notebooks(keys: list[str] | None = None) -> list[Notebook]:
    """The section notebooks (``keys``: their number prefixes) with their params file's paper plan."""
    found = []
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if keys and nb.name[:2] not in keys:
            continue
        params = ROOT / "params" / f"{nb.stem}.yaml"
        found.append(Notebook(nb.name[:2], nb, params, load_params(params, PROFILE)))
    missing = set(keys or ()) - {n.key for n in found}
    if missing:
        raise SystemExit(f"no notebook numbered {', '.join(sorted(missing))} in {ROOT / 'notebooks'}")
    return found


def store_specs(plans) -> list[RunSpec]:
    """Every run of ``plans`` once, in plan order."""
    return list({s.run_id: s for p in plans for s in p.specs}.values())


def levels_of(benchmark: str) -> list[str | None]:
    return list(benchmarks.get(benchmark).levels) or [None]


def samples_of(spec: RunSpec) -> int:
    return spec.resolved_strategy.samples


def per_level_for(queries: int, plan) -> int:
    """Problems per level so that ``plan``'s runs hold about ``queries`` records."""
    per_problem = sum(len(levels_of(s.benchmark)) * samples_of(s) * s.repetitions for s in plan.specs)
    return max(1, round(queries / per_problem))


# --- synthetic content -------------------------------------------------------------------------


def _rng(seed: int, *key) -> np.random.Generator:
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])


_CORPUS: dict[int, str] = {}


def corpus(seed: int) -> str:
    """1 MB of word salad: texts, programs and wrong answers are slices of it."""
    if seed not in _CORPUS:
        words = np.array(WORDS)[_rng(seed, "corpus").integers(0, len(WORDS), 200_000)]
        _CORPUS[seed] = " ".join(words)
    return _CORPUS[seed]


def problems(benchmark: str, per_level: int, seed: int) -> pd.DataFrame:
    """``per_level`` problems per level of ``benchmark``: id, level, subset, gold, prompt tokens and
    a latent difficulty (logit offset)."""
    bench, rng = benchmarks.get(benchmark), _rng(seed, "problems", benchmark)
    levels = levels_of(benchmark)
    n = per_level * len(levels)
    level_idx = np.repeat(np.arange(len(levels)), per_level)
    if bench.score.__name__ == "score_choice":
        gold = np.array(list("ABCDE" if benchmark == "commonsenseqa" else "ABCD"))[rng.integers(0, 4, n)].tolist()
    elif bench.category == "code":
        text, offs = corpus(seed), rng.integers(0, 900_000, n)
        gold = [
            f"def solve(x):\n    return {text[o : o + int(k)]!r}"
            for o, k in zip(offs, rng.integers(80, 400, n), strict=True)
        ]
    else:
        gold = [str(v) for v in rng.integers(0, 1000, n)]
    subset = (
        np.array(MMLU_SUBSETS)[rng.integers(0, len(MMLU_SUBSETS), n)].tolist() if benchmark == "mmlu" else [None] * n
    )
    centred = level_idx - (len(levels) - 1) / 2
    return pd.DataFrame(
        {
            "query_id": [f"{benchmark}/{i}" for i in range(n)],
            "difficulty": [levels[i] for i in level_idx],
            "level": centred,
            "subset": subset,
            "gold": gold,
            "prompt_tokens": np.maximum(8, rng.lognormal(np.log(PROMPT_TOKENS[benchmark]), 0.35, n)).astype(int) + 50,
            "logit": BENCH_LOGIT[benchmark] - 0.7 * centred + rng.normal(0, 1.0, n),
        }
    )


def parameters(model: str) -> int:
    return gpu_hours.model_parameters(model) or 1_500_000_000


def outcomes(spec: RunSpec, probs: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One row per (repetition, query, sample), in the runner's request order: whether the sample is
    right, the tokens it would generate without a cut, and its answer class before any cut. Drawn from
    (model, strategy, benchmark) only, so runs that differ in max_new_tokens or batch size agree."""
    bench = benchmarks.get(spec.benchmark)
    st = spec.resolved_strategy
    rng = _rng(seed, "outcomes", spec.model, spec.strategy, spec.benchmark)
    n_q, k, reps = len(probs), st.samples, spec.repetitions
    n = n_q * k * reps
    rep = np.repeat(np.arange(reps), n_q * k)
    q = np.tile(np.repeat(np.arange(n_q), k), reps)
    sample = np.tile(np.arange(k), n_q * reps)
    logit = (
        probs.logit.to_numpy()[q]
        + 0.6 * np.log2(parameters(spec.model) / 1.5e9)
        + STRATEGY_LOGIT.get((spec.strategy, bench.category), 0.0)
        - (0.4 if k > 1 else 0.0)
    )

    def per_sample(draw):  # greedy decoding answers alike in every repetition
        return draw(n_q)[q] if st.temperature == 0 else draw(n)

    right = per_sample(rng.random) < 1 / (1 + np.exp(-logit))
    mean = (gpu_hours.paper_tokens(spec) or gpu_hours.PAPER_TOKENS["base"]).per_query
    level = probs.level.to_numpy()[q]
    scale = np.exp(0.25 * level) * np.where(st.reasoning & ~right, 1.4, 0.85 if st.reasoning else 1.0)
    sigma = 0.7 if st.reasoning else 0.5
    z = per_sample(rng.standard_normal)
    tokens = np.maximum(1, np.round(mean * scale * np.exp(sigma * z - sigma**2 / 2))).astype(np.int64)
    wrong_class = per_sample(lambda size: rng.choice(3, size, p=[0.5, 0.3, 0.2])) + 1  # wrong answers: 3 kinds
    return pd.DataFrame(
        {
            "repetition": rep,
            "q": q,
            "sample": sample,
            "right": right,
            "tokens": tokens,
            "answer_kind": np.where(right, 0, wrong_class),
        }
    )


def answer_classes(rep: np.ndarray, q: np.ndarray, kind: pd.array) -> pd.array:
    """Classes numbered by first appearance within each (repetition, query); none for no answer."""
    df = pd.DataFrame({"rep": rep, "q": q, "kind": kind, "i": np.arange(len(rep))})
    given = df.dropna(subset=["kind"])
    seen = given.assign(seen=given.groupby(["rep", "q", "kind"]).i.transform("min"))
    cls = seen.groupby(["rep", "q"]).seen.rank(method="dense").astype(int) - 1
    out = pd.array([pd.NA] * len(rep), dtype="Int64")
    out[given.i.to_numpy()] = cls.to_numpy()
    return out


# --- one run -------------------------------------------------------------------------------------


def schedule(durations: np.ndarray, reps: np.ndarray, slots: int, start: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each request: within a repetition, ``slots`` requests run at once, each slot
    taking the next request when its last ends; a repetition starts when the previous one ended."""
    t_start, t_end = np.empty_like(durations), np.empty_like(durations)
    for r in np.unique(reps):
        idx = np.flatnonzero(reps == r)
        d = durations[idx]
        rows = math.ceil(len(d) / slots)
        grid = np.zeros(rows * slots)
        grid[: len(d)] = d
        done = np.cumsum(grid.reshape(rows, slots), axis=0) + start
        begin = np.vstack([np.full((1, slots), start), done[:-1]])  # a slot's next request starts exactly
        t_start[idx], t_end[idx] = begin.ravel()[: len(d)], done.ravel()[: len(d)]  # when its last one ends
        start = float(t_end[idx].max())
    return t_start, t_end


def segments(t_end: np.ndarray, reps: np.ndarray, batch: int, start: float) -> tuple[np.ndarray, list[tuple]]:
    """Each request's checkpoint segment and the windows (start, end): a segment closes at the
    completion that brings it to ``batch`` completions once it spans MIN_WINDOW_S, and at the end of
    each repetition; windows tile the run's time."""
    order = np.lexsort((t_end, reps))
    seg = np.empty(len(t_end), np.int64)
    windows, opened, count, k = [], start, 0, 0
    ends, rs = t_end[order], reps[order]
    for j, i in enumerate(order):
        seg[i] = k
        count += 1
        last_of_rep = j + 1 == len(order) or rs[j + 1] != rs[j]
        if last_of_rep or (count >= batch and ends[j] - opened >= MIN_WINDOW_S):
            windows.append((opened, float(ends[j])))
            opened, count, k = float(ends[j]), 0, k + 1
    return seg, windows


def power_trace(
    t_start: np.ndarray,
    t_end: np.ndarray,
    devices: int,
    running: int,
    model_w: float,
    start: float,
    end: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Every device's samples at the counter's interval: idle plus a draw growing with the share of
    the batch running, noise, and the cumulative energy counter."""
    t = start + INTERVAL_S * np.arange(int((end - start) / INTERVAL_S) + 2)
    active = np.searchsorted(np.sort(t_start), t, "right") - np.searchsorted(np.sort(t_end), t, "right")
    load = np.sqrt(np.clip(active / max(running, 1), 0, 1))
    frames, ts = [], t + rng.normal(0, 0.002, len(t))  # one sweep reads every device at one time
    for d in range(devices):
        p = np.clip(IDLE_W + (model_w - IDLE_W) * load + rng.normal(0, 6.0, len(t)), 0.5 * IDLE_W, GPU.tdp_w)
        e = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(ts))])
        frames.append(
            pd.DataFrame(
                {
                    "t": ts,
                    "device": f"gpu{d}",
                    "power_w": p,
                    "energy_j": e,
                    "sm_clock_mhz": np.where(active > 0, 1410.0, 210.0),
                    "mem_clock_mhz": 1593.0,
                    "temp_c": np.round(35 + 30 * load + rng.normal(0, 0.5, len(t))),
                    "util_pct": np.round(100 * load),
                    "mem_util_pct": np.round(60 * load),
                    "throttle_reasons": 0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sort_values(["t", "device"], ignore_index=True)


def window_dicts(trace: pd.DataFrame, bounds: list[tuple], idle_w: float) -> list[dict]:
    """The runner's windows: energy per device from the cumulative counter between the bounds."""
    out = []
    starts, ends = np.array([a for a, _ in bounds]), np.array([b for _, b in bounds])
    per_device = {}
    for dev, g in trace.groupby("device", sort=True):
        t, e = g.t.to_numpy(), g.energy_j.to_numpy()
        per_device[dev] = np.interp(ends, t, e) - np.interp(starts, t, e)
    for i, (a, b) in enumerate(bounds):
        m = energy.Measurement(
            "nvml",
            "energy_counter",
            a,
            b - a,
            {d: float(v[i]) for d, v in per_device.items()},
            idle_w,
            {d: "energy_counter" for d in per_device},
        )
        out.append({"segment": i, **m.to_dict()})
    return out


def build_run(spec: RunSpec, probs: pd.DataFrame, seed: int, start: float) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """queries, power and run.json of one synthetic run starting at ``start``."""
    bench, st = benchmarks.get(spec.benchmark), spec.resolved_strategy
    o = outcomes(spec, probs, seed)
    rng = _rng(seed, "timing", spec.run_id)
    n = len(o)
    cut = o.tokens.to_numpy() > spec.max_new_tokens
    tokens = np.minimum(o.tokens.to_numpy(), spec.max_new_tokens)
    right = o.right.to_numpy() & ~cut
    q = o.q.to_numpy()
    p = probs.iloc[q]
    gold = p.gold.to_numpy(object)
    kind = pd.array(np.where(cut, -1, o.answer_kind.to_numpy()), dtype="Int64")
    kind[cut] = pd.NA
    answer = np.where(cut, None, np.where(right, gold, [f"{g}~{k}" for g, k in zip(gold, o.answer_kind, strict=True)]))

    # time: prefill + tokens x decode step of this model, batch and tensor parallelism on an A100
    arch, tp = gpu_hours.architecture(spec.model), spec.server.tp_size
    prompt = p.prompt_tokens.to_numpy()
    context = prompt.mean() + tokens.mean() / 2
    slots = max(
        1,
        min(
            spec.batch_size,
            n // spec.repetitions,
            gpu_hours.kv_capacity(arch, ROOFLINE, dtype_bytes=2, context_tokens=context, tp=tp),
        ),
    )
    step = gpu_hours.decode_step_s(arch, ROOFLINE, dtype_bytes=2, batch=slots, context_tokens=context, tp=tp)
    dur = (
        prompt * 2 * arch.parameters / tp / (GPU.peak_tflops * 1e12 * gpu_hours.COMPUTE_EFFICIENCY)
        + tokens * step * rng.uniform(0.97, 1.03, n)
        + 0.004
    )
    reps = o.repetition.to_numpy()
    t_start, t_end = schedule(dur, reps, slots, start)
    seg, bounds = segments(t_end, reps, spec.batch_size, start)
    model_w = min(GPU.tdp_w * 0.95, 170 + 55 * np.log2(arch.parameters / tp / 1e9))
    trace = power_trace(t_start, t_end, tp, slots, model_w, start, bounds[-1][1], rng)
    trace["segment"] = np.clip(
        np.searchsorted([a for a, _ in bounds], trace.t.to_numpy(), "right") - 1, 0, len(bounds) - 1
    )
    windows = window_dicts(trace, bounds, IDLE_W * tp)

    text = corpus(seed)
    offs = rng.integers(0, len(text) - 1, n)
    texts = [_text(text, o_, k * CHARS_PER_TOKEN) for o_, k in zip(offs, tokens, strict=True)]
    queries = pd.DataFrame(
        {
            "run_id": spec.run_id,
            "repetition": reps,
            "query_id": p.query_id.to_numpy(object),
            "sample": o["sample"].to_numpy(),
            "benchmark": spec.benchmark,
            "category": bench.category,
            "difficulty": p.difficulty.to_numpy(object),
            "subset": p.subset.to_numpy(object),
            "prompt_tokens": prompt.astype(np.int64),
            "completion_tokens": tokens.astype(np.int64),
            "reasoning_tokens": (np.where(cut, tokens, np.round(0.9 * tokens)) if st.reasoning else 0 * tokens).astype(
                np.int64
            ),
            "cached_tokens": 0,
            "finish_reason": np.where(cut, "length", "stop").astype(object),
            "text": texts,
            "truncated": cut & st.reasoning,
            "answer": pd.array(answer, dtype=object),
            "answer_class": answer_classes(reps, q, kind),
            "gold": gold,
            "correct": pd.array(right, dtype="boolean"),
            "score": pd.array(right.astype(float), dtype="Float64"),
            "t_start": t_start,
            "t_end": t_end,
            "segment": seg,
            "energy_j": np.nan,
            "net_energy_j": np.nan,
            "meter": "nvml",
        },
        columns=rundir.QUERY_COLUMNS,
    )
    queries = queries.sort_values(["repetition", "query_id", "sample"], ignore_index=True)  # as the runner grades
    group = queries.groupby(["repetition", "query_id"], sort=False).ngroup().to_numpy()
    queries["chosen"] = aggregators.majority_rows(queries, group)  # what majority (and first, one sample) choose
    power = trace.drop_duplicates(["t", "device"]).sort_values("t", ignore_index=True)
    queries, attribution = _attribute(queries, power, windows, spec.batch_size)
    return queries, power, _info(spec, queries, windows, attribution, arch.parameters, start, bounds[-1][1])


def _text(corpus_text: str, offset: int, chars: int) -> str:
    reps = corpus_text[offset : offset + chars]
    while len(reps) < chars:
        reps += " " + corpus_text[: chars - len(reps) - 1]
    return reps


def _info(
    spec: RunSpec, queries: pd.DataFrame, windows: list[dict], attribution: dict, params: int, start: float, end: float
) -> dict:
    """run.json as the runner writes it (:meth:`ttclib.runner._Execution._finish`) for an SGLang run
    metered by NVML on A100s, marked synthetic."""
    bench, tp = benchmarks.get(spec.benchmark), spec.server.tp_size
    devices = [
        {
            "name": f"gpu{d}",
            "index": d,
            "nvml_index": d,
            "model": "NVIDIA A100-SXM4-80GB",
            "uuid": f"GPU-synthetic-{d}",
            "mig_uuid": None,
            "power_limit_w": GPU.tdp_w,
            "method": "energy_counter",
            "power_source": "field_power_instant",
            "power_averaged": False,
        }
        for d in range(tp)
    ]
    scope = f"device cuda -> CUDA GPU{'s' * (tp > 1)} {', '.join(map(str, range(tp)))}"
    meter = {
        "meter": "nvml",
        "method": "energy_counter",
        "devices": devices,
        "sample_interval_s": INTERVAL_S,
        "counter_update_period_s": INTERVAL_S,
        "idle_power_w": IDLE_W * tp,
        "idle": {"power_w": IDLE_W * tp, "std_w": 0.5, "span_s": spec.idle_s, "settled": True},
        "read_errors": {"count": 0, "last": []},
        "scope": scope,
        "sample_interval_source": "counter update period",
    }
    return {
        "run_id": spec.run_id,
        "synthetic": True,
        "spec": spec.model_dump(),
        "spec_version": SPEC_VERSION,
        "strategy": dataclasses.asdict(spec.resolved_strategy),
        "benchmark": {
            "name": bench.name,
            "category": bench.category,
            "metric": bench.metric,
            "description": bench.description,
            "data": {"kind": "synthetic", "where": Path(__file__).name},
            "difficulty": bench.difficulty_note or ("from the data" if bench.levels else None),
        },
        "meter": meter,
        "meter_name": "nvml",
        "measured_devices": {
            "meter": "nvml",
            "scope": scope,
            "devices": [
                {
                    k: d[k]
                    for k in (
                        "name",
                        "index",
                        "nvml_index",
                        "model",
                        "uuid",
                        "mig_uuid",
                        "power_source",
                        "power_averaged",
                    )
                }
                for d in devices
            ],
            "counter_update_period_s": INTERVAL_S,
        },
        "energy_j": sum(w["total_j"] for w in windows),
        "net_energy_j": sum(w["net_j"] for w in windows),
        "measured_s": sum(w["time_s"] for w in windows),
        **attribution,
        "windows": windows,
        "n_queries": int(queries.query_id.nunique()),
        "n_completions": len(queries),
        "completion_tokens": int(queries.completion_tokens.sum()),
        "backend": {
            "backend": "sglang",
            "model": spec.model,
            "model_kind": "hub",
            "mode": "launch",
            "device": "cuda",
            "dtype": spec.dtype,
            "batch_size": spec.batch_size,
            "load_s": 42.0,
            "parameters": params,
            "server": {"tp_size": tp, "max_running_requests": spec.batch_size},
        },
        "hardware": {
            "hostname": "synthetic",
            "platform": "Linux",
            "cpu": "AMD EPYC 7763",
            "cpu_count": 128,
            "memory_gib": 1007.0,
            "gpus": [
                {"index": d, "name": "NVIDIA A100-SXM4-80GB", "memory_gib": 80.0, "power_limit_w": GPU.tdp_w}
                for d in range(2)
            ],
            "python": "3.11",
        },
        "software": {"ttc-energy": "synthetic"},
        "started": start - spec.idle_s - 42.0,
        "finished": end,
        "resumed": False,
    }


def seal(spec: RunSpec, store: Path, queries: pd.DataFrame, power: pd.DataFrame, info: dict) -> None:
    partial, final = rundir.partial_dir(spec, store), rundir.run_dir(spec, store)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    rundir.write_json(partial / rundir.SPEC_JSON, spec.model_dump())
    rundir.seal(partial, final, queries, power, info)


# --- the store -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Store:
    path: Path
    per_level: int
    runs: int
    records: int
    power_rows: int
    build_s: float
    bytes: int


def build_store(
    store: Path, queries: int, seed: int = 0, keys: list[str] | None = None, progress: bool = True
) -> Store:
    """Write every paper-profile run of the notebooks ``keys`` (default all) into ``store``, sized so the
    paper grid holds about ``queries`` records; a run already sealed there is kept (same sizes and
    seed: same content)."""
    t0 = time.time()
    nbs = notebooks(keys)
    grid = load_params(ROOT / "params" / PAPER_GRID[0], PAPER_GRID[1])
    per_level = per_level_for(queries, grid)
    specs = store_specs([n.plan for n in nbs])
    meta = store / "bench_analysis.json"
    want = {"per_level": per_level, "seed": seed}
    if meta.exists() and json.loads(meta.read_text()) != want:
        raise SystemExit(
            f"{store} was built with {json.loads(meta.read_text())}, not {want}: delete it or pick another --store"
        )
    store.mkdir(parents=True, exist_ok=True)
    rundir.write_json(meta, want)
    probs = {b: problems(b, per_level, seed) for b in dict.fromkeys(s.benchmark for s in specs)}
    start, n_records, n_power = T0, 0, 0
    for i, spec in enumerate(specs):
        final = rundir.run_dir(spec, store)
        if (final / rundir.RUN_JSON).exists():
            info = rundir.read_info(final)
            n_records += info["n_completions"]
            start = info["finished"] + 60.0
            continue
        t = time.time()
        q, p, info = build_run(spec, probs[spec.benchmark], seed, start)
        seal(spec, store, q, p, info)
        n_records, n_power, start = n_records + len(q), n_power + len(p), info["finished"] + 60.0
        if progress:
            print(
                f"  store {i + 1}/{len(specs)} {spec.run_id} {spec.model.split('/')[-1]} {spec.strategy} "
                f"{spec.benchmark} max {spec.max_new_tokens} batch {spec.batch_size}: {len(q):,} records, "
                f"{len(p):,} power samples, {time.time() - t:.1f} s",
                flush=True,
            )
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    return Store(store, per_level, len(specs), n_records, n_power, time.time() - t0, size)


def build_apart(store: Path, queries: int, seed: int, keys: list[str] | None) -> Store:
    """:func:`build_store` in a process of its own: this one stays small while the notebooks run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "store.json"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--build",
                "--store",
                str(store),
                "--queries",
                str(queries),
                "--seed",
                str(seed),
                "--out",
                str(out),
                *(["--notebooks", *keys] if keys else []),
            ],
            check=True,
            cwd=ROOT,
        )
        built = json.loads(out.read_text())
    return Store(**{**built, "path": Path(built["path"])})


# --- executing a notebook ------------------------------------------------------------------------


def code_cells(path: Path) -> list[tuple[list[str], str]]:
    nb = json.loads(path.read_text())
    return [
        (c.get("metadata", {}).get("tags", []), "".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"
    ]


def child(nb_key: str, store: Path, out: Path) -> None:
    """Run notebook ``nb_key``'s code cells on ``store`` (in this process) and write the timings to ``out``."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["TTC_PROGRESS"] = "0"
    from IPython.display import display

    import ttclib

    nb = notebooks([nb_key])[0]
    figures = Path(tempfile.mkdtemp(prefix="bench-figures-"))
    timing = {}
    run_grid = ttclib.run_grid

    def timed_run_grid(*args, **kw):
        t = time.perf_counter()
        study = run_grid(*args, **kw)
        study.plan = dataclasses.replace(study.plan, figures_dir=figures)  # keep outputs/ untouched
        timing.update(load_s=time.perf_counter() - t, runs=len(study.runs), queries=len(study.queries))
        return study

    ttclib.run_grid = timed_run_grid
    params = {"params_file": str(nb.params), "profile": PROFILE, "runs_dir": str(store), **nb.plan.notebook}
    env = {"__name__": "__main__", "display": display}
    os.chdir(nb.path.parent)
    t0 = time.perf_counter()
    try:
        for tags, src in code_cells(nb.path):
            _run_cell(src, env)
            if "parameters" in tags:
                env.update(params)
    finally:
        shutil.rmtree(figures, ignore_errors=True)
    out.write_text(json.dumps({**timing, "total_s": time.perf_counter() - t0, "peak_gb": peak_rss_gb()}))


def peak_rss_gb() -> float | None:
    """This process's peak resident set since it started its program (Linux ``VmHWM``), GB."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 / 1e9 for line in status.splitlines() if line.startswith("VmHWM:")), None)


def _run_cell(src: str, env: dict) -> None:
    """Execute a cell as Jupyter does: its last expression is displayed, unless a ``;`` ends the cell."""
    tree = ast.parse(src)
    shown = tree.body and isinstance(tree.body[-1], ast.Expr) and not src.rstrip().endswith(";")
    last = tree.body.pop() if shown else None
    exec(compile(tree, "<cell>", "exec"), env)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), env)
        if value is not None:
            env["display"](value)


@dataclasses.dataclass
class Row:
    notebook: str
    runs: int = 0
    queries: int = 0
    load_s: float = float("nan")
    analysis_s: float = float("nan")
    total_s: float = float("nan")
    peak_gb: float = float("nan")
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.total_s < TARGET_S and self.peak_gb < TARGET_GB

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{self.notebook:<26} {self.runs:>5} {self.queries:>10,} {self.load_s:>7.1f} {self.analysis_s:>10.1f} "
            f"{self.total_s:>7.1f} {self.peak_gb:>8.2f}  {verdict}" + (f"  ({self.error})" if self.error else "")
        )


HEADER = (
    f"{'notebook':<26} {'runs':>5} {'queries':>10} {'load s':>7} {'analysis s':>10} {'total s':>7} "
    f"{'peak GB':>8}  vs < {TARGET_S:g} s, < {TARGET_GB:g} GB"
)


def parse_row(line: str) -> dict:
    """A table line back into its fields (for tests and scripts that read the output)."""
    f = line.split()
    return {
        "notebook": f[0],
        "runs": int(f[1]),
        "queries": int(f[2].replace(",", "")),
        "load_s": float(f[3]),
        "analysis_s": float(f[4]),
        "total_s": float(f[5]),
        "peak_gb": float(f[6]),
        "verdict": f[7],
    }


def run_notebook(nb: Notebook, store: Path, log: Path | None = None) -> Row:
    """Execute ``nb`` on ``store`` in a fresh Python process; its time split and its peak RSS."""
    row = Row(nb.path.stem)
    with tempfile.TemporaryDirectory() as tmp:
        out, log = Path(tmp) / "timing.json", log or Path(tmp) / "output.log"
        with open(log, "w") as sink:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", nb.key, "--store", str(store), "--out", str(out)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - t0
        row.peak_gb = usage.ru_maxrss * 1024 / 1e9  # Linux: KiB; an upper bound (see peak_rss_gb)
        if proc.returncode != 0 or not out.exists():
            tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
            row.error, row.total_s = f"exit {proc.returncode}: {tail[0][:500]}", wall
            return row
        t = json.loads(out.read_text())
    row.runs, row.queries = t.get("runs", 0), t.get("queries", 0)
    row.load_s, row.total_s = t.get("load_s", float("nan")), wall
    row.peak_gb = t.get("peak_gb") or row.peak_gb
    row.analysis_s = t["total_s"] - row.load_s
    return row


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--queries",
        type=int,
        default=1_000_000,
        help="query records (query x sample x repetition) of the paper grid (default 1,000,000)",
    )
    ap.add_argument(
        "--store",
        type=Path,
        help="where to build the store (default: a temporary folder, deleted "
        "after unless --keep); an existing store of the same size is reused",
    )
    ap.add_argument("--keep", action="store_true", help="keep the store")
    ap.add_argument("--notebooks", nargs="+", metavar="NN", help="notebook numbers to time (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic store (default 0)")
    ap.add_argument("--log-dir", type=Path, help="keep each notebook's printed output here (NN.log)")
    ap.add_argument("--child", metavar="NN", help=argparse.SUPPRESS)
    ap.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.store, args.out)
        return 0
    if args.build:
        built = build_store(args.store, args.queries, args.seed, args.notebooks)
        args.out.write_text(json.dumps(dataclasses.asdict(built), default=str))
        return 0
    store = args.store or Path(tempfile.mkdtemp(prefix="ttc-bench-store-"))
    keep = args.keep or (args.store is not None and args.store.exists())
    try:
        print(f"building the synthetic store in {store} ({args.queries:,} records in the paper grid)", flush=True)
        s = build_apart(store, args.queries, args.seed, args.notebooks)
        print(
            f"store: {s.runs} runs, {s.records:,} query records, per_level {s.per_level}, "
            f"{s.bytes / 1e9:.2f} GB on disk, built in {s.build_s:.0f} s",
            flush=True,
        )
        rows = []
        for nb in notebooks(args.notebooks):
            print(f"  running {nb.path.name} on the store ...", flush=True)
            log = args.log_dir / f"{nb.key}.log" if args.log_dir else None
            if log:
                log.parent.mkdir(parents=True, exist_ok=True)
            rows.append(run_notebook(nb, store, log))
            print(f"  {rows[-1].line()}", flush=True)
        print("\n" + HEADER)
        for r in rows:
            print(r.line())
        return 0 if all(r.passed for r in rows) else 1
    finally:
        if not keep:
            shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
