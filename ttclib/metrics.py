"""From run directories to tidy tables: per query (after voting) and per run.

>>> from ttclib import metrics
>>> metrics.pareto_mask([1, 2, 3], [0.5, 0.4, 0.9]).tolist()
[True, False, True]
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from math import comb
from functools import cached_property
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from . import strategies

J_PER_WH = 3600.0
SPEC_COLUMNS = ["model", "strategy", "benchmark", "max_new_tokens", "batch_size", "backend", "device"]


@dataclass
class RunSet:
    """Loaded runs: ``runs`` (one row per run), ``queries`` (one row per query × sample), ``power``."""

    runs: pd.DataFrame
    queries: pd.DataFrame
    power: pd.DataFrame

    @cached_property
    def results(self) -> pd.DataFrame:
        """One row per (run, repetition, query) after the strategy's aggregation (majority vote)."""
        return query_results(self.queries)


def load_runs(dirs: Iterable[str | Path]) -> RunSet:
    infos, queries, power = [], [], []
    for d in map(Path, dirs):
        info = json.loads((d / "run.json").read_text())
        spec = info["spec"]
        infos.append(info)
        q = pd.read_parquet(d / "queries.parquet")
        queries.append(q.assign(**{k: spec[k] for k in SPEC_COLUMNS}))
        p = pd.read_parquet(d / "power.parquet")
        if len(p):
            power.append(p.assign(run_id=info["run_id"], model=spec["model"], strategy=spec["strategy"]))
    queries = pd.concat(queries, ignore_index=True) if queries else pd.DataFrame()
    power = pd.concat(power, ignore_index=True) if power else pd.DataFrame()
    runs = pd.DataFrame([_run_row(i, queries[queries.run_id == i["run_id"]]) for i in infos])
    return RunSet(runs, queries, power)


def _run_row(info: dict, q: pd.DataFrame) -> dict:
    spec = info["spec"]
    res = query_results(q)
    n_queries = len(res)
    return {
        "run_id": info["run_id"], **{k: spec[k] for k in SPEC_COLUMNS},
        "parameters": info["backend"].get("parameters"),
        "meter": info["meter_name"], "meter_method": info["meter"].get("method"),
        "repetitions": spec["repetitions"], "samples": info["strategy"]["samples"],
        "n_queries": n_queries,
        "accuracy": _mean(res.correct),
        "energy_j": info["energy_j"], "net_energy_j": info["net_energy_j"],
        "energy_per_query_j": info["energy_j"] / n_queries if n_queries else np.nan,
        "net_energy_per_query_j": info["net_energy_j"] / n_queries if n_queries else np.nan,
        "completion_tokens_per_query": res.completion_tokens.mean() if n_queries else np.nan,
        "energy_per_token_j": info["energy_j"] / max(info["completion_tokens"], 1),
        "measured_s": info["measured_s"],
        "mean_power_w": info["energy_j"] / info["measured_s"] if info["measured_s"] else np.nan,
        "idle_power_w": info["meter"].get("idle_power_w"),
        "hardware": _hardware_label(info["hardware"]),
    }


def _mean(values: pd.Series) -> float:
    """Mean of a nullable column as a float; NaN when nothing is scored."""
    m = values.mean() if len(values) else np.nan
    return np.nan if pd.isna(m) else float(m)


def meter_label(runs: pd.DataFrame) -> str:
    """e.g. 'meter: estimate (cpu_time_x_tdp)' — shown with every energy figure and number."""
    pairs = sorted({f"{m} ({meth})" for m, meth in zip(runs.meter, runs.meter_method)})
    return "meter: " + ", ".join(pairs)


def _hardware_label(hw: dict) -> str:
    if hw.get("gpus"):
        names = {g["name"] for g in hw["gpus"]}
        return f"{len(hw['gpus'])}× {', '.join(sorted(names))}"
    return f"{hw.get('cpu')} ({hw.get('cpu_count')} cores)"


def query_results(queries: pd.DataFrame) -> pd.DataFrame:
    """Aggregate samples of each query: majority-voted answer, summed tokens and energy."""
    if queries.empty:
        return pd.DataFrame(columns=["run_id", "repetition", "query_id", "answer", "correct",
                                     "completion_tokens", "energy_j"])
    keys = ["run_id", "repetition", "query_id"]
    extra = [c for c in SPEC_COLUMNS + ["benchmark", "category", "difficulty", "subset", "gold"] if c in queries.columns]
    extra = list(dict.fromkeys(extra))
    q = queries.sort_values(keys + ["sample"])
    if "truncated" not in q.columns:
        q = q.assign(truncated=False)
    if "reasoning_tokens" not in q.columns:
        q = q.assign(reasoning_tokens=0)
    agg = q.groupby(keys, sort=False).agg(
        completion_tokens=("completion_tokens", "sum"), prompt_tokens=("prompt_tokens", "sum"),
        reasoning_tokens=("reasoning_tokens", "sum"),
        energy_j=("energy_j", "sum"), net_energy_j=("net_energy_j", "sum"),
        samples=("sample", "size"), length_stopped=("finish_reason", lambda s: (s == "length").mean()),
        truncated=("truncated", "mean"), sample_accuracy=("correct", "mean"),
        **{c: (c, "first") for c in extra},
    ).reset_index()
    voted = [_vote(g) for _, g in q.groupby(keys, sort=False)]
    agg["answer"] = [a for a, _ in voted]
    agg["correct"] = pd.array([c for _, c in voted], dtype="boolean")   # NA where nothing is scored (MT-Bench)
    return agg


def _vote(g: pd.DataFrame) -> tuple[str | None, bool | None]:
    """Majority answer of one query's samples (over equivalence classes) and whether it is correct."""
    answers = [a if isinstance(a, str) else None for a in g.answer]
    classes = _classes(g)
    win = strategies.winning_class(classes)
    if win is None:
        return None, (None if g.correct.isna().all() else False)
    first = classes.index(win)
    correct = g.correct.iloc[first]
    return answers[first], (None if pd.isna(correct) else bool(correct))


def _classes(g: pd.DataFrame) -> list[int | None]:
    """One query's vote classes: as graded, or exact strings for runs graded before classes existed."""
    if "answer_class" in g.columns:
        return [None if pd.isna(c) else int(c) for c in g.answer_class]
    return strategies.answer_classes([a if isinstance(a, str) else None for a in g.answer])


# --- unbiased estimators from n >= k samples ------------------------------------------------

def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct (Chen et al. 2021).

    >>> round(pass_at_k(5, 1, 1), 6), pass_at_k(5, 1, 5), pass_at_k(5, 0, 3)
    (0.2, 1.0, 0.0)
    """
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, have {n}")
    return 1.0 if n - c < k else 1.0 - comb(n - c, k) / comb(n, k)


def maj_at_k(classes: list[int | None], correct_classes: set[int], k: int) -> float:
    """Probability that a majority vote over k of the n samples (drawn without replacement) is correct.

    ``classes`` gives each sample's answer class (None: no answer, never a vote); ties between the
    top classes count as a uniformly random pick among them. Exact: for each correct class j and
    vote count t, the other classes are counted with a generating polynomial in (subset size,
    number of classes tied at t).

    >>> maj_at_k([0, 0, 1], {0}, 1)            # one sample: the chance it is class 0
    0.6666666666666666
    >>> round(maj_at_k([0, 0, 1], {0}, 2), 4)  # {0,0} wins; {0,1} ties → half
    0.6667
    """
    n = len(classes)
    if k > n:
        raise ValueError(f"maj@{k} needs at least {k} samples, have {n}")
    counts: dict[int, int] = {}
    for c in classes:
        if c is not None:
            counts[c] = counts.get(c, 0) + 1
    none = n - sum(counts.values())
    total = 0.0
    for j in correct_classes & counts.keys():
        others = [m for c, m in counts.items() if c != j]
        for t in range(1, min(k, counts[j]) + 1):
            # poly[size][ties]: ways to pick `size` samples from the other classes (and the
            # unanswered ones) with every class below t votes except `ties` classes at exactly t
            poly = [[0] * (len(others) + 1) for _ in range(k - t + 1)]
            for s in range(min(none, k - t) + 1):
                poly[s][0] = comb(none, s)
            for m in others:
                nxt = [[0] * (len(others) + 1) for _ in range(k - t + 1)]
                for size, row in enumerate(poly):
                    for ties, ways in enumerate(row):
                        if not ways:
                            continue
                        for s in range(min(m, t, k - t - size) + 1):
                            nxt[size + s][ties + (s == t)] += ways * comb(m, s)
                poly = nxt
            ways_j = comb(counts[j], t)
            total += ways_j * sum(w / (ties + 1) for ties, w in enumerate(poly[k - t]))
    return total / comb(n, k)


def sample_metrics(queries: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per (run, repetition, query): samples n, correct c, unbiased pass@k and maj@k (n >= k)."""
    keys = ["run_id", "repetition", "query_id"]
    rows = []
    for key, g in queries.sort_values(keys + ["sample"]).groupby(keys, sort=False):
        correct = g.correct.fillna(False).astype(bool).tolist()
        classes = _classes(g)
        right = {c for c, ok in zip(classes, correct) if ok and c is not None}
        n = len(g)
        rows.append(dict(zip(keys, key), n=n, c=sum(correct),
                         **{f"pass@{k}": pass_at_k(n, sum(correct), k) if n >= k else np.nan,
                            f"maj@{k}": maj_at_k(classes, right, k) if n >= k else np.nan}))
    return pd.DataFrame(rows)


def pareto_mask(energy, accuracy) -> np.ndarray:
    """True for points no other point beats on both lower energy and higher accuracy."""
    e, a = np.asarray(energy, float), np.asarray(accuracy, float)
    order = np.lexsort((-a, e))
    mask = np.zeros(len(e), bool)
    best = -np.inf
    for i in order:
        if a[i] > best:
            mask[i], best = True, a[i]
    return mask


def gain_per_wh(runs: pd.DataFrame, frm: dict, to: dict) -> dict:
    """Accuracy gain (percentage points) per Wh of extra energy per query between two runs.

    ``frm``/``to`` select one row of ``runs`` each, e.g. ``{"model": "a", "strategy": "base"}``.
    """
    a, b = _one(runs, frm), _one(runs, to)
    d_acc = 100 * (b.accuracy - a.accuracy)
    d_wh = (b.energy_per_query_j - a.energy_per_query_j) / J_PER_WH
    return {"from": frm, "to": to, "accuracy_gain_pct": d_acc, "energy_delta_wh": d_wh,
            "energy_ratio": b.energy_per_query_j / a.energy_per_query_j,
            "gain_per_wh": d_acc / d_wh if d_wh > 0 else np.nan}


def _one(runs: pd.DataFrame, sel: dict) -> pd.Series:
    mask = np.ones(len(runs), bool)
    for k, v in sel.items():
        mask &= (runs[k] == v).to_numpy()
    hits = runs[mask]
    if len(hits) != 1:
        raise ValueError(f"{sel} selects {len(hits)} runs, expected 1")
    return hits.iloc[0]


# --- length-wise early exit (paper 000, section 5) -------------------------------------------

def length_cut(correct_tokens, whisker: float = 1.5) -> float:
    """Output length that keeps the correct answers, outliers excluded: the upper whisker
    Q3 + ``whisker`` · IQR of the correct answers' output tokens (as a box plot draws it)."""
    t = np.asarray(correct_tokens, float)
    if not len(t):
        raise ValueError("no correct answers: nothing to keep")
    q1, q3 = np.percentile(t, [25, 75])
    return float(min(t.max(), q3 + whisker * (q3 - q1)))


def early_exit(queries: pd.DataFrame, cut: float | None = None, whisker: float = 1.5) -> dict:
    """What stopping every generation at ``cut`` output tokens would have saved and cost.

    Answers longer than the cut lose their answer (counted incorrect) and the energy of their
    tokens beyond it: each answer's attributed energy scaled by the share of its tokens past the
    cut (energy ∝ tokens within an answer — an approximation; a measured length sweep, see
    :func:`early_exit_from_sweep`, needs none). ``cut`` defaults to :func:`length_cut` of the
    correct answers.

    >>> q = pd.DataFrame({"completion_tokens": [100, 200, 300, 1000], "correct": [True, True, False, False],
    ...                   "energy_j": [1.0, 2.0, 3.0, 10.0]})
    >>> r = early_exit(q, cut=250)
    >>> r["energy_saved_j"], r["energy_saved_share"], r["accuracy_lost"]
    (8.0, 0.5, 0.0)
    """
    tokens = queries.completion_tokens.to_numpy(float)
    correct = queries.correct.fillna(False).to_numpy(bool)
    energy = queries.energy_j.to_numpy(float)
    cut = length_cut(tokens[correct], whisker) if cut is None else float(cut)
    beyond = tokens > cut
    saved = float((energy[beyond] * (1 - cut / tokens[beyond])).sum())
    return {"cut_tokens": cut, "answers_cut": int(beyond.sum()), "answers": len(tokens),
            "energy_saved_j": saved, "energy_saved_share": saved / float(energy.sum()) if energy.sum() else np.nan,
            "accuracy_before": float(correct.mean()), "accuracy_after": float((correct & ~beyond).mean()),
            "accuracy_lost": float((correct & beyond).mean())}


def early_exit_from_sweep(runs: pd.DataFrame, tolerance: float = 0.0, by=("model", "strategy")) -> pd.DataFrame:
    """Per configuration of a measured length sweep: the shortest ``max_new_tokens`` whose accuracy
    is within ``tolerance`` of the longest one's, and the energy per query it saves.

    >>> runs = pd.DataFrame({"model": "m", "strategy": "rt", "max_new_tokens": [100, 200, 400],
    ...                      "accuracy": [0.2, 0.5, 0.5], "energy_per_query_j": [1.0, 2.0, 4.0]})
    >>> early_exit_from_sweep(runs)[["cut_tokens", "energy_saved_share", "accuracy_lost"]].values.tolist()
    [[200.0, 0.5, 0.0]]
    """
    rows = []
    for key, g in runs.groupby(list(by), sort=False):
        g = g.sort_values("max_new_tokens")
        full = g.iloc[-1]
        keep = g[g.accuracy >= full.accuracy - tolerance].iloc[0]
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                     "max_tokens": float(full.max_new_tokens), "cut_tokens": float(keep.max_new_tokens),
                     "energy_per_query_j": full.energy_per_query_j, "cut_energy_per_query_j": keep.energy_per_query_j,
                     "energy_saved_share": 1 - keep.energy_per_query_j / full.energy_per_query_j,
                     "accuracy_lost": full.accuracy - keep.accuracy})
    return pd.DataFrame(rows)


# --- power and throughput (paper 000, Figures 3 and 7) ---------------------------------------

def power_summary(power: pd.DataFrame, by=("run_id",)) -> pd.DataFrame:
    """Mean ± standard deviation of the sampled power per run (summed over a run's devices at
    each sample time, so a TP=2 run reports both GPUs), with the number of samples.

    >>> p = pd.DataFrame({"run_id": "r", "t": [0, 0, 1, 1], "device": [0, 1, 0, 1], "power_w": [100, 50, 120, 70.0]})
    >>> power_summary(p)[["mean_power_w", "std_power_w", "samples"]].values.tolist()
    [[170.0, 28.284271247461902, 2.0]]
    """
    by = list(by)
    total = power.groupby(by + ["t"], sort=False, as_index=False).power_w.sum()
    return (total.groupby(by, sort=False)
                 .agg(mean_power_w=("power_w", "mean"), std_power_w=("power_w", "std"), samples=("power_w", "size"))
                 .reset_index().astype({"samples": float}))


def throughput(runs: pd.DataFrame) -> pd.Series:
    """Queries answered per second of measured time (all samples of a query count as one query)."""
    return runs.n_queries * runs.repetitions / runs.measured_s
