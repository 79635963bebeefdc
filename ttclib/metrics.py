"""From run directories to tidy tables: per query (after voting) and per run.

>>> from ttclib import metrics
>>> metrics.pareto_mask([1, 2, 3], [0.5, 0.4, 0.9]).tolist()
[True, False, True]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd

from . import aggregators, rundir

J_PER_WH = 3600.0
SPEC_COLUMNS = [
    "model",
    "strategy",
    "benchmark",
    "max_new_tokens",
    "batch_size",
    "backend",
    "device",
    "input_tokens",
    "ignore_eos",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "scoring",
]
LATER_FIELDS = {
    "input_tokens": None,
    "ignore_eos": False,  # spec fields some stored runs lack: their value there
    "sm_clock_mhz": None,
    "mem_clock_mhz": None,
    "scoring": "generate",
}


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

    def trace(self, run_id: str) -> pd.DataFrame:
        """One run's power trace."""
        return self.power[self.power.run_id == run_id]


class StoredRuns(RunSet):
    """A :class:`RunSet` read from run directories (:func:`load_runs`) whose ``power`` traces are read
    when first used: only the power analyses need them, and at the paper's size (a 10 Hz sample per GPU
    over hundreds of hours) they outweigh everything else. :func:`power_summary` and
    :func:`ttclib.plots.power_by_strategy` given the RunSet itself read one trace at a time."""

    def __init__(self, runs: pd.DataFrame, queries: pd.DataFrame, dirs: list[tuple[Path, dict]]):
        self.runs, self.queries, self._dirs = runs, queries, dirs  # dirs: (run directory, its labels)

    @cached_property
    def power(self) -> pd.DataFrame:
        power = list(self.traces())
        return pd.concat(power, ignore_index=True) if power else pd.DataFrame()

    def traces(self, run_id: str | None = None) -> Iterator[pd.DataFrame]:
        """Each run's (or run ``run_id``'s) non-empty power trace with its run_id, model and strategy."""
        for d, labels in self._dirs:
            if run_id is None or labels["run_id"] == run_id:
                p = rundir.read_power(d)
                if len(p):
                    yield p.assign(**labels)

    def trace(self, run_id: str) -> pd.DataFrame:
        if "power" in self.__dict__:
            return super().trace(run_id)
        return next(self.traces(run_id), pd.DataFrame(columns=["run_id", "t", "power_w"]))


def load_runs(dirs: Iterable[str | Path], text: bool = False) -> RunSet:
    """The runs in ``dirs`` as tables. Each generation's ``text`` is left out unless asked for: no
    analysis reads it (answers are extracted when a run is graded), and at the paper's size it is
    most of the memory (about 4 characters per output token: gigabytes for reasoning runs). The
    power traces are read when first used (:class:`StoredRuns`)."""
    infos, queries, traces = [], [], []
    for d in map(Path, dirs):
        info = rundir.read_info(d)
        spec = info["spec"]
        infos.append(info)
        q = rundir.read_queries(d, None if text else _columns_but(d / rundir.QUERIES_PARQUET, "text"))
        window_s = {w["segment"]: w["time_s"] for w in info["windows"]}
        queries.append(q.assign(**_spec_columns(spec), window_s=q.segment.map(window_s)))
        traces.append((d, {"run_id": info["run_id"], "model": spec["model"], "strategy": spec["strategy"]}))
    queries = pd.concat(queries, ignore_index=True) if queries else pd.DataFrame()
    data = StoredRuns(pd.DataFrame(), queries, traces)
    results = data.results  # voted once for all runs; each run's row takes its own rows
    per_run = dict(iter(results.groupby("run_id", sort=False))) if len(results) else {}
    cut_off = (
        (queries.finish_reason == "length").groupby(queries.run_id, sort=False).mean()
        if len(queries) and "finish_reason" in queries
        else pd.Series(dtype=float)
    )
    data.runs = pd.DataFrame(
        [_run_row(i, per_run.get(i["run_id"], results.iloc[:0]), cut_off.get(i["run_id"], np.nan)) for i in infos]
    )
    return data


def _spec_columns(spec: dict) -> dict:
    return {k: spec[k] if k in spec else LATER_FIELDS[k] for k in SPEC_COLUMNS}


def _columns_but(parquet: Path, *left_out: str) -> list[str] | None:
    """The columns of ``parquet`` but ``left_out``; None (all) when its schema does not read, so that
    the checked read reports the damage."""
    import pyarrow.parquet as pq

    try:
        return [c for c in pq.read_schema(parquet).names if c not in left_out]
    except Exception:  # noqa: BLE001 - pyarrow raises many kinds; rundir names the damage
        return None


def _run_row(info: dict, res: pd.DataFrame, cut_off: float) -> dict:
    """One run's row: ``res`` its :func:`query_results`, ``cut_off`` the share of its generations
    (every sample counted) that the token budget ended rather than the model."""
    spec = info["spec"]
    n_queries = len(res)
    return {
        "run_id": info["run_id"],
        **_spec_columns(spec),
        "parameters": info["backend"].get("parameters"),
        "meter": info["meter_name"],
        "meter_method": info["meter"].get("method"),
        "repetitions": spec["repetitions"],
        "samples": info["strategy"]["samples"],
        "n_queries": n_queries,
        "accuracy": _mean(res.correct),
        "energy_j": info["energy_j"],
        "net_energy_j": info["net_energy_j"],
        "energy_per_query_j": info["energy_j"] / n_queries if n_queries else np.nan,
        "net_energy_per_query_j": info["net_energy_j"] / n_queries if n_queries else np.nan,
        "completion_tokens_per_query": res.completion_tokens.mean() if n_queries else np.nan,
        "cut_off": cut_off,
        "energy_per_token_j": info["energy_j"] / max(info["completion_tokens"], 1),
        "energy_per_processed_token_j": energy_per_processed_token(
            info["energy_j"], res.prompt_tokens.sum(), res.completion_tokens.sum()
        )
        if n_queries
        else np.nan,
        "measured_s": info["measured_s"],
        "mean_power_w": info["energy_j"] / info["measured_s"] if info["measured_s"] else np.nan,
        "idle_power_w": info["meter"].get("idle_power_w"),
        "hardware": _hardware_label(info["hardware"]),
        "budget": spec.get("budget"),
        "model_kind": info["backend"].get("model_kind"),
        "model_description": info["backend"].get("description"),
        "model_upstream": info["backend"].get("upstream"),
        "dtype": info["backend"].get("dtype", spec.get("dtype")),
        "threads": info["backend"].get("threads"),
        "measured_devices": _measured_devices(info),
        "power_source": _power_source(info),
        **_clock_columns(info.get("clocks")),
        # windows shorter than ten counter update periods (the counter's quantum is then a large error)
        "short_windows": (info.get("flags") or {}).get("short_window", 0),
    }


def _clock_columns(clocks: dict | None) -> dict:
    """A run's clocks from run.json: the SM clock set (a lock), the median the trace read, and the
    throttle reasons present in at least a tenth of the readings (None where the meter reads no clocks)."""
    clocks = clocks or {}
    locks = clocks.get("locks") or []
    sm = clocks.get("sm_mhz") or {}
    reasons = {k: v for k, v in (clocks.get("throttle_reasons") or {}).items() if v >= 0.1 and k != "GpuIdle"}
    return {
        "sm_clock_set_mhz": locks[0].get("sm_mhz") if locks else None,
        "sm_clock_median_mhz": sm.get("median"),
        "throttle": ", ".join(f"{k} {v:.0%}" for k, v in sorted(reasons.items())) or None,
    }


def _measured_devices(info: dict) -> str | None:
    """What the meter measured, by model: 'NVIDIA H200', '2× NVIDIA A100-SXM4-80GB', 'AMD EPYC'."""
    devices = (info.get("measured_devices") or {}).get("devices") or info["meter"].get("devices") or []
    models = [d.get("model") for d in devices if d.get("model")]
    if not models:
        return None
    return ", ".join(f"{models.count(m)}× {m}" if models.count(m) > 1 else m for m in sorted(set(models)))


def _power_source(info: dict) -> str | None:
    """Where the meter's power samples came from (NVML: ``field_power_instant`` or ``power_usage``)."""
    sources = {d.get("power_source") for d in info["meter"].get("devices") or []} - {None}
    return ", ".join(sorted(sources)) or None


def _mean(values: pd.Series) -> float:
    """Mean of a nullable column as a float; NaN when nothing is scored."""
    m = values.mean() if len(values) else np.nan
    return np.nan if pd.isna(m) else float(m)


def group_key(by, key) -> dict:
    """The ``by`` columns' values of one ``groupby(by)`` group, as a dict (a 1-column key may be a scalar)."""
    by = [by] if isinstance(by, str) else list(by)
    return dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))


def model_sizes(runs: pd.DataFrame) -> pd.Series:
    """model → parameter count (0 where unknown), to order models from the smallest."""
    return runs.groupby("model").parameters.first().fillna(0)


def base_pairs(runs: pd.DataFrame, baseline: str = "base", pairs: dict | None = None) -> dict:
    """model → the ``baseline`` model it is compared with: itself when it runs the baseline, else the
    baseline model closest in parameter count (on a log scale), so that the paper's RT runs on
    DeepSeek-R1-Distill-Qwen-1.5B are compared with Base on Qwen2.5-1.5B-Instruct. ``pairs`` sets
    pairs explicitly and wins over sizes; a model with no baseline model at all maps to itself.

    >>> runs = pd.DataFrame({"model": ["q1.5", "q7", "r1.5", "r7"], "strategy": ["base", "base", "rt", "rt"],
    ...                      "parameters": [1.54e9, 7.6e9, 1.78e9, 7.6e9]})
    >>> base_pairs(runs)
    {'q1.5': 'q1.5', 'q7': 'q7', 'r1.5': 'q1.5', 'r7': 'q7'}
    """
    size = model_sizes(runs)
    base = [m for m in dict.fromkeys(runs[runs.strategy == baseline].model)]
    out = {}
    for model in dict.fromkeys(runs.model):
        if model in base or not base:
            out[model] = model
            continue
        own = size.get(model, 0)
        out[model] = min(base, key=lambda b: abs(np.log(max(size.get(b, 0), 1) / max(own, 1))))
    unknown = sorted(set(pairs or {}) - set(out))
    if unknown:
        raise ValueError(f"pairs name models that are not in the runs: {unknown} (have {sorted(out)})")
    return {**out, **(pairs or {})}


def hardware_label(runs: pd.DataFrame) -> str:
    """The hardware the runs were measured on, e.g. 'AMD EPYC (2 cores)'."""
    return ", ".join(sorted(set(runs.hardware)))


def meter_label(runs: pd.DataFrame) -> str:
    """e.g. 'meter: estimate (cpu_time_x_tdp)' — shown with every energy figure and number."""
    pairs = sorted({f"{m} ({meth})" for m, meth in zip(runs.meter, runs.meter_method, strict=True)})
    return "meter: " + ", ".join(pairs)


# NVML's power readings (run.json meter.devices[].power_source), in words
POWER_SOURCES = {
    "field_power_instant": "instant power field",
    "power_usage": "power usage, a 1 s average on Ampere and newer",
}


def power_source_label(runs: pd.DataFrame) -> str | None:
    """Where the runs' sampled power came from, in words (None where the meter names no source).

    >>> power_source_label(pd.DataFrame({"power_source": ["field_power_instant", None]}))
    'instant power field'
    """
    if "power_source" not in runs:
        return None
    sources = sorted({s for v in runs.power_source.dropna() for s in str(v).split(", ")})
    return ", ".join(POWER_SOURCES.get(s, s) for s in sources) or None


def _hardware_label(hw: dict) -> str:
    if hw.get("gpus"):
        names = {g["name"] for g in hw["gpus"]}
        return f"{len(hw['gpus'])}× {', '.join(sorted(names))}"
    return f"{hw.get('cpu')} ({hw.get('cpu_count')} cores)"


def query_results(queries: pd.DataFrame) -> pd.DataFrame:
    """Each query's samples as one row: the answer the strategy's aggregator chose (graded with the run),
    summed tokens and energy."""
    if queries.empty:
        return pd.DataFrame(
            columns=["run_id", "repetition", "query_id", "answer", "correct", "completion_tokens", "energy_j"]
        )
    keys = ["run_id", "repetition", "query_id"]
    extra = [
        c for c in SPEC_COLUMNS + ["benchmark", "category", "difficulty", "subset", "gold"] if c in queries.columns
    ]
    extra = list(dict.fromkeys(extra))
    q = queries.sort_values(keys + ["sample"])
    if "truncated" not in q.columns:
        q = q.assign(truncated=False)
    if "reasoning_tokens" not in q.columns:
        q = q.assign(reasoning_tokens=0)
    sample = ~_follow_ups(q)  # not a request the aggregator made
    q = q.assign(is_sample=sample, length_stopped=(q.finish_reason == "length").where(sample))
    groups = q.groupby(keys, sort=False)
    agg = groups.agg(
        completion_tokens=("completion_tokens", "sum"),
        prompt_tokens=("prompt_tokens", "sum"),
        reasoning_tokens=("reasoning_tokens", "sum"),
        energy_j=("energy_j", "sum"),
        net_energy_j=("net_energy_j", "sum"),
        samples=("is_sample", "sum"),
        length_stopped=("length_stopped", "mean"),
        truncated=("truncated", "mean"),
        sample_accuracy=("correct", "mean"),
        **({"score": ("score", "mean")} if "score" in q.columns else {}),  # samples' mean (ROUGE-L, 0/1)
        **{c: (c, "first") for c in extra},
    ).reset_index()
    agg["answer"], agg["correct"] = _chosen_answers(q, groups.ngroup().to_numpy(), groups.ngroups)
    agg["energy_per_processed_token_j"] = energy_per_processed_token(
        agg.energy_j, agg.prompt_tokens, agg.completion_tokens
    )
    agg["energy_per_output_token_j"] = (agg.energy_j / agg.completion_tokens).where(agg.completion_tokens > 0)
    return agg


def energy_per_processed_token(energy_j, input_tokens, output_tokens):
    """Energy per processed token (Wilhelm et al. [001], eq. 1): E / (input + output tokens), the prompt counted
    once per sample that prefilled it. NaN where no token was processed.

    >>> energy_per_processed_token(100.0, 40, 10)      # 100 J over 40 input + 10 output tokens
    2.0
    >>> energy_per_processed_token(pd.Series([6.0, 1.0]), pd.Series([2, 0]), pd.Series([1, 0])).tolist()
    [2.0, nan]
    """
    processed = input_tokens + output_tokens
    if np.ndim(processed) == 0:
        return energy_j / processed if processed > 0 else np.nan
    return (energy_j / processed).where(processed > 0)


def _follow_ups(q: pd.DataFrame) -> np.ndarray:
    """Rows of requests an aggregator made about a query's samples (absent in older runs: none)."""
    if "follow_up" not in q.columns:
        return np.zeros(len(q), dtype=bool)
    return q["follow_up"].fillna(False).to_numpy(bool)


def _chosen_answers(q: pd.DataFrame, group: np.ndarray, n: int) -> tuple[list, pd.arrays.BooleanArray]:
    """Every query's answer and whether it is correct, for all ``n`` groups at once (``group``: each row's
    group): the sample the strategy's aggregator chose (``chosen``, set when the run was graded). Runs graded
    before that column existed all voted, so theirs is :func:`aggregators.majority_rows`. No chosen sample:
    no answer, incorrect (NA where nothing is scored, MT-Bench)."""
    given = q["chosen"] if "chosen" in q.columns else pd.Series(pd.NA, index=q.index)
    graded = given.notna().to_numpy()
    chosen = given.fillna(False).to_numpy(bool)
    if not graded.all():
        chosen = np.where(graded, chosen, aggregators.majority_rows(q, group))
    rows = np.flatnonzero(chosen)
    won, at = np.unique(group[rows], return_index=True)
    first = rows[at]
    answers = np.full(n, None, dtype=object)
    answers[won] = [a if isinstance(a, str) else None for a in q.answer.to_numpy(object)[first]]
    unscored = q.correct.isna().groupby(group).all().to_numpy(bool)
    correct = np.full(n, False, dtype=object)
    correct[unscored] = None
    correct[won] = [None if pd.isna(c) else bool(c) for c in q.correct.to_numpy(object)[first]]
    return list(answers), pd.array(list(correct), dtype="boolean")


def _classes(g: pd.DataFrame) -> list[int | None]:
    """One query's vote classes: as graded, or exact strings for runs graded before classes existed."""
    if "answer_class" in g.columns:
        return [None if pd.isna(c) else int(c) for c in g.answer_class]
    return aggregators.answer_classes([a if isinstance(a, str) else None for a in g.answer])


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
    queries = queries[~_follow_ups(queries)]
    rows = []
    for key, g in queries.sort_values(keys + ["sample"]).groupby(keys, sort=False):
        correct = g.correct.fillna(False).astype(bool).tolist()
        classes = _classes(g)
        right = {c for c, ok in zip(classes, correct, strict=True) if ok and c is not None}
        n = len(g)
        rows.append(
            dict(
                zip(keys, key, strict=True),
                n=n,
                c=sum(correct),
                **{
                    f"pass@{k}": pass_at_k(n, sum(correct), k) if n >= k else np.nan,
                    f"maj@{k}": maj_at_k(classes, right, k) if n >= k else np.nan,
                },
            )
        )
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
    return {
        "from": frm,
        "to": to,
        "accuracy_gain_pct": d_acc,
        "energy_delta_wh": d_wh,
        "energy_ratio": b.energy_per_query_j / a.energy_per_query_j,
        "gain_per_wh": d_acc / d_wh if d_wh > 0 else np.nan,
    }


def _one(runs: pd.DataFrame, sel: dict) -> pd.Series:
    mask = np.ones(len(runs), bool)
    for k, v in sel.items():
        mask &= (runs[k] == v).to_numpy()
    hits = runs[mask]
    if len(hits) != 1:
        raise ValueError(f"{sel} selects {len(hits)} runs, expected 1")
    return hits.iloc[0]


# --- length-wise early exit (Jin et al. [000], section 5) -------------------------------------------


def length_cut(correct_tokens, whisker: float = 1.5) -> float:
    """Output length that keeps the correct answers, outliers excluded: the upper whisker
    Q3 + ``whisker`` · IQR of the correct answers' output tokens (as a box plot draws it)."""
    t = np.asarray(correct_tokens, float)
    if not len(t):
        raise ValueError("no correct answers: nothing to keep")
    q1, q3 = np.percentile(t, [25, 75])
    return float(min(t.max(), q3 + whisker * (q3 - q1)))


def answer_lengths(results: pd.DataFrame, by=("model", "strategy")) -> pd.DataFrame:
    """Output tokens per query and outcome: the mean over a query's correct (or incorrect) answers
    across repetitions, with how many answers that is. A repeated greedy answer is no new evidence,
    so comparing correct and incorrect lengths counts each query at most once per outcome.

    >>> res = pd.DataFrame({"model": "m", "strategy": "cot", "query_id": list("aaabbb"),
    ...                     "correct": [True, True, False, False, False, False],
    ...                     "completion_tokens": [10, 20, 90, 50, 50, 50]})
    >>> answer_lengths(res)[["query_id", "correct", "completion_tokens", "answers"]].values.tolist()
    [['a', False, 90.0, 1], ['a', True, 15.0, 2], ['b', False, 50.0, 3]]
    """
    keys = [*by, "query_id", "correct"]
    df = results.dropna(subset=["correct"]).astype({"correct": bool})
    return (
        df.groupby(keys)
        .agg(completion_tokens=("completion_tokens", "mean"), answers=("completion_tokens", "size"))
        .reset_index()
        .astype({"completion_tokens": float})
    )


def early_exit(queries: pd.DataFrame, cut: float | None = None, whisker: float = 1.5) -> dict:
    """What stopping every generation at ``cut`` output tokens would have saved and cost — an
    *estimate* from one run, secondary to the measured :func:`early_exit_at_sweep`.

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
    return {
        "cut_tokens": cut,
        "answers_cut": int(beyond.sum()),
        "answers": len(tokens),
        "energy_saved_j": saved,
        "energy_saved_share": saved / float(energy.sum()) if energy.sum() else np.nan,
        "accuracy_before": float(correct.mean()),
        "accuracy_after": float((correct & ~beyond).mean()),
        "accuracy_lost": float((correct & beyond).mean()),
    }


def early_exit_at_sweep(
    results: pd.DataFrame, whisker: float = 1.5, by=("model", "strategy"), level: float = 0.95
) -> pd.DataFrame:
    """Early exit as the paper does it (§5), per configuration of a measured length sweep: the cut is
    the smallest swept ``max_new_tokens`` at or above the upper whisker (:func:`length_cut`) of the
    correct answers' output tokens at the longest maximum length, and that sweep point's *measured*
    energy per query and accuracy are compared with the longest run's, with ``level`` CIs: the energy
    ratio across repetitions (or paired queries with one), the accuracy change over the same
    queries (:func:`ttclib.verdicts.paired_difference_ci`). Configurations without a correct answer
    get no cut (NaN).

    >>> res = pd.DataFrame({"model": "m", "strategy": "rt", "repetition": 0, "samples": 1,
    ...                     "max_new_tokens": [100] * 4 + [200] * 4 + [400] * 4, "query_id": list("abcd") * 3,
    ...                     "completion_tokens": [60, 90, 100, 100, 60, 90, 200, 200, 60, 90, 300, 400],
    ...                     "correct": [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0],
    ...                     "energy_j": [1.0, 1.5, 1.7, 1.7, 1.0, 1.5, 3.3, 3.3, 1.0, 1.5, 5.0, 6.6]})
    >>> r = early_exit_at_sweep(res).iloc[0]
    >>> r[["whisker_tokens", "cut_tokens", "max_tokens", "accuracy_change"]].astype(float).tolist()
    [90.0, 100.0, 400.0, 0.0]
    >>> round(float(r.energy_saved_share), 3)      # 1.475 J per query at the cut, 3.525 J uncut
    0.582
    """
    from .verdicts import paired_difference_ci

    rows = []
    for key, g in results.groupby(list(by), sort=False):
        g = g.assign(answer_tokens=g.completion_tokens / (g.samples if "samples" in g else 1))
        lengths = sorted(set(g.max_new_tokens))
        longest = g[g.max_new_tokens == lengths[-1]]
        right = answer_lengths(longest.assign(completion_tokens=longest.answer_tokens), by=by)
        right = right[right.correct].completion_tokens
        row = {**group_key(by, key), "max_tokens": float(lengths[-1]), "queries": longest.query_id.nunique()}
        if right.empty:
            rows.append({**row, "whisker_tokens": np.nan, "cut_tokens": np.nan})
            continue
        edge = length_cut(right, whisker)
        cut = next((x for x in lengths if x >= edge), lengths[-1])
        at = g[g.max_new_tokens == cut]
        r, lo, hi, over = _energy_ratio(at, longest, level)
        acc = (
            pd.concat(
                [longest.groupby("query_id").correct.mean(), at.groupby("query_id").correct.mean()],
                axis=1,
                keys=["full", "cut"],
            )
            .dropna()
            .astype(float)
        )
        d, d_lo, d_hi = paired_difference_ci(acc.full, acc.cut, level)
        rows.append(
            {
                **row,
                "whisker_tokens": edge,
                "cut_tokens": float(cut),
                "energy_per_query_j": longest.energy_j.mean(),
                "cut_energy_per_query_j": at.energy_j.mean(),
                "energy_ratio": r,
                "energy_ratio_lo": lo,
                "energy_ratio_hi": hi,
                "energy_saved_share": 1 - r,
                "accuracy": acc.full.mean(),
                "cut_accuracy": acc.cut.mean(),
                "accuracy_change": d,
                "accuracy_change_lo": d_lo,
                "accuracy_change_hi": d_hi,
                "ci_over": over,
            }
        )
    return pd.DataFrame(rows)


def _energy_ratio(num: pd.DataFrame, den: pd.DataFrame, level: float) -> tuple[float, float, float, str]:
    """Energy per query of ``num`` over ``den`` with its CI: across repetitions when both have two or
    more, else across the queries both answered, as pairs."""
    from .fits import ratio_ci

    if min(num.repetition.nunique(), den.repetition.nunique()) > 1:
        return (
            *ratio_ci(num.groupby("repetition").energy_j.mean(), den.groupby("repetition").energy_j.mean(), level),
            "repetitions",
        )
    both = pd.concat(
        [num.groupby("query_id").energy_j.mean(), den.groupby("query_id").energy_j.mean()], axis=1, keys=["n", "d"]
    ).dropna()
    return (*ratio_ci(both.n, both.d, level, paired=True), "queries (paired)")


# --- power and throughput (Jin et al. [000], Figures 3 and 7) ---------------------------------------


def power_summary(power: pd.DataFrame | RunSet, by=("run_id",)) -> pd.DataFrame:
    """Mean ± standard deviation of the sampled power per run (summed over a run's devices at
    each sample time, so a TP=2 run reports both GPUs), with the number of samples. ``power`` may be
    a :class:`RunSet`: runs read by :func:`load_runs` are then summarised one trace at a time (the
    same table, without holding every trace: tens of millions of samples at the paper's size).

    >>> p = pd.DataFrame({"run_id": "r", "t": [0, 0, 1, 1], "device": [0, 1, 0, 1], "power_w": [100, 50, 120, 70.0]})
    >>> power_summary(p)[["mean_power_w", "std_power_w", "samples"]].values.tolist()
    [[170.0, 28.284271247461902, 2.0]]
    """
    by = list(by)
    if isinstance(power, StoredRuns) and "run_id" in by and "power" not in power.__dict__:
        parts = [power_summary(trace, by) for trace in power.traces()]  # runs partition the groups
        if parts:
            return pd.concat(parts, ignore_index=True)
    if isinstance(power, RunSet):
        power = power.power
    total = power.groupby(by + ["t"], sort=False, as_index=False).power_w.sum()
    return (
        total.groupby(by, sort=False)
        .agg(mean_power_w=("power_w", "mean"), std_power_w=("power_w", "std"), samples=("power_w", "size"))
        .reset_index()
        .astype({"samples": float})
    )


def utilisation(data: RunSet) -> pd.DataFrame:
    """Mean ± standard deviation of the sampled utilisation per run (Wilhelm et al. [001], Figure 4) while it
    generated (from its first query's start to its last query's end: no idle baseline, no loading),
    averaged over a run's devices at each sample time. What is utilised depends on the meter: NVML's
    GPU utilisation rate (share of time a kernel ran), or for the CPU ``estimate`` meter the share of
    all logical CPUs the process tree used; the ``meter`` column says which.

    >>> q = pd.DataFrame({"run_id": "r", "t_start": [1.0, 2.0], "t_end": [2.0, 3.0]})
    >>> p = pd.DataFrame({"run_id": "r", "t": [0.5, 1, 2, 3, 3.5], "device": "gpu0", "util_pct": [0, 80, 90, 100, 0.0]})
    >>> runs = pd.DataFrame({"run_id": ["r"], "model": "m", "meter": "nvml"})
    >>> utilisation(RunSet(runs, q, p)).round(1).values.tolist()
    [['r', 'm', 'nvml', 90.0, 10.0, 3]]
    """
    spans = data.queries.groupby("run_id", sort=False).agg(t0=("t_start", "min"), t1=("t_end", "max"))
    rows = []
    for run in data.runs.itertuples():
        trace = data.trace(run.run_id)
        if run.run_id not in spans.index or "util_pct" not in trace:
            continue
        t0, t1 = spans.loc[run.run_id]
        at = trace[(trace.t >= t0) & (trace.t <= t1)].groupby("t").util_pct.mean().dropna()
        rows.append(
            {
                "run_id": run.run_id,
                "model": run.model,
                "meter": run.meter,
                "mean_util_pct": at.mean(),
                "std_util_pct": at.std(),
                "samples": len(at),
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "model", "meter", "mean_util_pct", "std_util_pct", "samples"])


def mean_by(results: pd.DataFrame, column: str, by=("model",), level: float = 0.95) -> pd.DataFrame:
    """Mean of ``column`` per group with its t interval over the rows (queries): e.g. energy per
    processed token per model over the MT-Bench prompts (Wilhelm et al. [001], Figure 1).

    >>> r = pd.DataFrame({"model": ["a", "a", "a", "b", "b"], "x": [1.0, 2, 3, 5, 5]})
    >>> mean_by(r, "x").round(2).values.tolist()
    [['a', 2.0, -0.48, 4.48, 3], ['b', 5.0, 5.0, 5.0, 2]]
    """
    from .fits import mean_ci

    rows = [
        {**group_key(list(by), key), column: m, f"{column}_lo": lo, f"{column}_hi": hi, "n": len(g)}
        for key, g in results.groupby(list(by), sort=False)
        for m, lo, hi in [mean_ci(g[column], level)]
    ]
    return pd.DataFrame(rows)


def prompts_as_they_are(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of Wilhelm et al. [001]'s Figure 1: one output token, the prompts as they are (``input_tokens``
    unset; a table without the column has none set).

    >>> r = pd.DataFrame({"max_new_tokens": [1, 1, 8], "input_tokens": [None, 256, None]})
    >>> prompts_as_they_are(r).index.tolist()
    [0]
    """
    one = results[results.max_new_tokens == 1]
    return one[one.input_tokens.isna()] if "input_tokens" in one else one


BENCHMARK_NAMES = {"mtbench": "MT-Bench"}  # benchmark -> its name in sentences and titles, where not its key


def prompts_label(results: pd.DataFrame) -> str:
    """The prompts ``results`` ran, in words, from their ``benchmark`` column: 'MT-Bench prompts' for
    ``mtbench``, else the benchmark's own name ('arithmetic prompts'); 'prompts' without the column.

    >>> prompts_label(pd.DataFrame({"benchmark": ["mtbench", "mtbench"]}))
    'MT-Bench prompts'
    >>> prompts_label(pd.DataFrame({"benchmark": ["arithmetic", "mmlu"]}))
    'arithmetic and mmlu prompts'
    """
    names = (
        [BENCHMARK_NAMES.get(b, b) for b in dict.fromkeys(results.benchmark.dropna())] if "benchmark" in results else []
    )
    return f"{' and '.join(map(str, names))} prompts" if names else "prompts"


def throughput_by_repetition(queries: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Queries answered per second in each repetition of each run: the repetition's queries (all
    samples of a query count as one) over the measured time of its energy windows (one per
    checkpointed batch; a repetition's windows are contiguous and hold no other repetition).
    With ``runs``, each row also carries its run's columns.

    >>> q = pd.DataFrame({"run_id": "r", "repetition": [0, 0, 0, 1, 1, 1], "query_id": list("abcabc"),
    ...                   "segment": [0, 0, 1, 2, 2, 3], "window_s": [2.0, 2.0, 1.0, 1.0, 1.0, 0.5]})
    >>> throughput_by_repetition(q)[["repetition_s", "queries_per_s"]].values.tolist()
    [[3.0, 1.0], [1.5, 2.0]]
    """
    keys = ["run_id", "repetition"]
    time = queries.drop_duplicates(["run_id", "segment"]).groupby(keys).window_s.sum().rename("repetition_s")
    n = queries.groupby(keys).query_id.nunique().rename("queries")
    out = pd.concat([n, time], axis=1).reset_index()
    out = out.assign(queries_per_s=out.queries / out.repetition_s)
    return out if runs is None else out.merge(runs, on="run_id")


def power_by_repetition(queries: pd.DataFrame) -> pd.DataFrame:
    """Mean power of each repetition of each run: its attributed energy (all queries and samples)
    over the measured time of its windows — one observation per repetition, for intervals across them.

    >>> q = pd.DataFrame({"run_id": "r", "repetition": [0, 0, 1, 1], "query_id": list("abab"),
    ...                   "segment": [0, 0, 1, 1], "window_s": [2.0, 2.0, 4.0, 4.0],
    ...                   "energy_j": [100.0, 100, 150, 150]})
    >>> power_by_repetition(q)[["repetition", "mean_power_w"]].values.tolist()
    [[0.0, 100.0], [1.0, 75.0]]
    """
    reps = throughput_by_repetition(queries)
    energy = queries.groupby(["run_id", "repetition"]).energy_j.sum().rename("energy_j").reset_index()
    out = reps.merge(energy, on=["run_id", "repetition"])
    return out.assign(mean_power_w=out.energy_j / out.repetition_s)[
        ["run_id", "repetition", "energy_j", "repetition_s", "mean_power_w"]
    ]


_PER_REPETITION = ["repetition", "queries", "repetition_s", "queries_per_s"]


def first_repetition(repetitions: pd.DataFrame) -> pd.DataFrame:
    """Per run of :func:`throughput_by_repetition`: the measured time of its first repetition against
    the median of its later ones (``slowdown`` = first / later; NaN for a single repetition). A
    slowdown well above 1 is a warm-up the run's own warm-up request did not cover.

    >>> r = pd.DataFrame({"run_id": "r", "repetition": [0, 1, 2], "repetition_s": [9.0, 3.0, 3.0]})
    >>> first_repetition(r)[["first_s", "later_s", "slowdown"]].values.tolist()
    [[9.0, 3.0, 3.0]]
    """
    rows = []
    for run_id, g in repetitions.sort_values("repetition").groupby("run_id", sort=False):
        first, later = g.repetition_s.iloc[0], g.repetition_s.iloc[1:]
        rest = float(later.median()) if len(later) else np.nan
        rows.append({"run_id": run_id, "first_s": float(first), "later_s": rest, "slowdown": float(first) / rest})
    return pd.DataFrame(rows, columns=["run_id", "first_s", "later_s", "slowdown"])


def energy_by_repetition(results: pd.DataFrame, by=("model", "strategy", "max_new_tokens")) -> pd.DataFrame:
    """Energy and output tokens per query in each repetition of each configuration (the observations
    behind :func:`operating_points`' intervals across repetitions).

    >>> res = pd.DataFrame({"model": "m", "strategy": "cot", "max_new_tokens": 8, "repetition": [0, 0, 1, 1],
    ...                     "energy_j": [4.0, 6.0, 2.0, 2.0], "completion_tokens": 8})
    >>> energy_by_repetition(res)[["repetition", "energy_per_query_j"]].values.tolist()
    [[0.0, 5.0], [1.0, 2.0]]
    """
    keys = [*by, "repetition"]
    return (
        results.groupby(keys, sort=False)
        .agg(
            energy_per_query_j=("energy_j", "mean"),
            completion_tokens_per_query=("completion_tokens", "mean"),
            queries=("energy_j", "size"),
        )
        .reset_index()
    )


def throughput_points(repetitions: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per run of :func:`throughput_by_repetition` (its run columns kept): mean queries per
    second with a ``level`` Student t interval across the repetitions (NaN bounds for a single one;
    ``ci_over`` says how many)."""
    from .fits import mean_ci

    rows = []
    for _, g in repetitions.groupby("run_id", sort=False):
        m, lo, hi = mean_ci(g.queries_per_s, level)
        rows.append(
            {
                **g.iloc[0].drop(_PER_REPETITION).to_dict(),
                "queries_per_s": m,
                "queries_per_s_lo": lo,
                "queries_per_s_hi": hi,
                "ci_over": f"{len(g)} repetition{'s' * (len(g) > 1)}",
            }
        )
    return pd.DataFrame(rows)


# --- operating points with confidence intervals (every figure's error bars) -------------------


def operating_points(results: pd.DataFrame, by=("model", "strategy"), level: float = 0.95) -> pd.DataFrame:
    """One row per configuration: accuracy, energy per query and output tokens per query, each with
    a ``level`` confidence interval (``*_lo``/``*_hi``).

    Energy and token intervals are across repetitions when the configuration has two or more (each
    repetition's mean over its queries is one observation, as in the paper's ten runs); with a single
    repetition they are across queries instead, and ``ci_over`` says which. Accuracy intervals are
    always Wilson intervals across queries (each query's accuracy averaged over repetitions): a
    greedy strategy gives the same answers in every repetition, so only the choice of problems
    bounds its accuracy.

    >>> res = pd.DataFrame({"model": "m", "strategy": "base", "repetition": [0, 0, 1, 1, 2, 2],
    ...                     "query_id": list("ababab"), "correct": [1, 0, 1, 1, 1, 0],
    ...                     "energy_j": [1.0, 3.0, 2.0, 4.0, 1.5, 2.5], "completion_tokens": 10})
    >>> p = operating_points(res).iloc[0]
    >>> p[["energy_per_query_j", "accuracy"]].astype(float).round(3).tolist(), p.ci_over
    ([2.333, 0.667], '3 repetitions')
    >>> bool(p.energy_per_query_j_lo < 2 < p.energy_per_query_j_hi)
    True
    """
    from .fits import mean_ci, proportion_ci

    by = list(by)
    df = results.assign(correct=results.correct.astype(float))
    rows = []
    for key, g in df.groupby(by, sort=False):
        reps = g.repetition.nunique()
        per = g.groupby("repetition") if reps > 1 else g.groupby("query_id")
        row = dict(
            group_key(by, key),
            queries=g.query_id.nunique(),
            repetitions=reps,
            ci_over=f"{reps} repetitions" if reps > 1 else f"{g.query_id.nunique()} queries",
        )
        for name, col, over, ci in (
            ("accuracy", "correct", g.groupby("query_id"), proportion_ci),
            ("energy_per_query_j", "energy_j", per, mean_ci),
            ("completion_tokens_per_query", "completion_tokens", per, mean_ci),
        ):
            m, lo, hi = ci(over[col].mean(), level)
            row.update({name: m, f"{name}_lo": lo, f"{name}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def normalized_energy(
    results: pd.DataFrame, baseline: str = "base", by=("benchmark",), level: float = 0.95, pairs: dict | None = None
) -> pd.DataFrame:
    """Energy per query of every strategy relative to ``baseline`` on its paired baseline model (paper
    000, Figure 2), per ``by`` group and pair, with a ``level`` CI of the ratio and the output- and
    input-token multipliers behind it.

    ``pairs`` maps each model to the baseline model it is compared with (:func:`base_pairs`; by
    default every model with itself): the paper runs Base and MV on Qwen2.5-Instruct and RT on the
    R1 distill of the same size. The CI is across repetitions when both sides have two or more
    (the repetition means are independent samples: :func:`fits.ratio_ci`); with one repetition it is
    across the queries both answered, resampled as pairs (``paired=True``).

    >>> res = pd.DataFrame({"benchmark": "b", "category": "math", "model": "m",
    ...                     "strategy": ["base"] * 4 + ["mv"] * 4, "repetition": [0, 1, 2, 3] * 2,
    ...                     "query_id": "q", "energy_j": [1.0, 1.1, 0.9, 1.0, 4.0, 4.2, 3.8, 4.0],
    ...                     "completion_tokens": [10] * 4 + [50] * 4, "prompt_tokens": [20] * 4 + [100] * 4})
    >>> r = normalized_energy(res).iloc[0]
    >>> r.strategy, r[["energy_ratio", "output_token_ratio", "input_token_ratio"]].astype(float).tolist()
    ('mv', [4.0, 5.0, 5.0])
    >>> bool(r.energy_ratio_lo < 4 < r.energy_ratio_hi), r.ci_over
    (True, 'repetitions')
    """
    by = [c for c in by if c != "model"]
    pairs = pairs or {}
    df = results.assign(base_model=results.model.map(lambda m: pairs.get(m, m)))
    rows = []
    for key, g in df.groupby(by + ["base_model"], sort=False):
        base = g[(g.strategy == baseline) & (g.model == g.base_model)]
        if base.empty:
            continue
        for (model, strategy), s in g[g.strategy != baseline].groupby(["model", "strategy"], sort=False):
            r, lo, hi, over = _energy_ratio(s, base, level)
            rows.append(
                {
                    **group_key(by + ["base_model"], key),
                    "model": model,
                    "category": g.category.iloc[0] if "category" in g else None,
                    "strategy": strategy,
                    "energy_ratio": r,
                    "energy_ratio_lo": lo,
                    "energy_ratio_hi": hi,
                    "ci_over": over,
                    "base_output_tokens": base.completion_tokens.mean(),
                    "output_token_ratio": s.completion_tokens.mean() / base.completion_tokens.mean(),
                    "input_token_ratio": (
                        s.prompt_tokens.mean() / base.prompt_tokens.mean() if "prompt_tokens" in s else np.nan
                    ),
                }
            )
    return pd.DataFrame(rows)


def category_averages(normalized: pd.DataFrame) -> pd.DataFrame:
    """The paper's per-category averages of :func:`normalized_energy` (over benchmarks and models)."""
    return (
        normalized.groupby(["category", "strategy"], sort=False)
        .agg(
            energy_ratio=("energy_ratio", "mean"),
            output_token_ratio=("output_token_ratio", "mean"),
            input_token_ratio=("input_token_ratio", "mean"),
            benchmarks=("benchmark", "nunique"),
            points=("energy_ratio", "size"),
        )
        .reset_index()
    )


def at_longest(df: pd.DataFrame, by=("model", "strategy")) -> pd.DataFrame:
    """Rows of each configuration's longest ``max_new_tokens`` (the uncut end of a length sweep).

    >>> df = pd.DataFrame({"model": "m", "strategy": "cot", "max_new_tokens": [8, 16, 16]})
    >>> len(at_longest(df))
    2
    """
    longest = df.groupby(list(by)).max_new_tokens.transform("max")
    return df[df.max_new_tokens == longest]


def early_exit_by(results: pd.DataFrame, by=("model", "strategy"), whisker: float = 1.5) -> pd.DataFrame:
    """:func:`early_exit` per configuration, each cut at its own correct answers' upper whisker;
    configurations without a correct answer have nothing to keep and get no cut (NaN)."""
    rows = []
    for key, g in results.groupby(list(by), sort=False):
        ok = g.correct.fillna(False).astype(bool).any()
        rows.append({**group_key(by, key), **(early_exit(g, whisker=whisker) if ok else {"cut_tokens": np.nan})})
    return pd.DataFrame(rows)


def one_benchmark(results: pd.DataFrame, benchmark: str | None = None) -> tuple[str, pd.DataFrame]:
    """``benchmark`` (default: the one with the most queries) and its rows: levels of different
    benchmarks mean different things, so routing by level stays within one.

    >>> r = pd.DataFrame({"benchmark": ["a", "b", "b"], "query_id": ["q1", "q1", "q2"]})
    >>> name, rows = one_benchmark(r); name, len(rows)
    ('b', 2)
    """
    benchmark = benchmark or results.groupby("benchmark").query_id.nunique().idxmax()
    return benchmark, results[results.benchmark == benchmark]


def difficulty_levels(results: pd.DataFrame) -> list[str]:
    """The difficulty levels present in ``results``, easiest first (the benchmarks' own order).

    >>> difficulty_levels(pd.DataFrame({"benchmark": "arithmetic", "difficulty": ["hard", "easy"]}))
    ['easy', 'hard']
    """
    from . import benchmarks

    order = [lv for b in dict.fromkeys(results.benchmark) for lv in benchmarks.get(b).levels]
    present = set(results.difficulty.dropna())
    return list(dict.fromkeys([lv for lv in order if lv in present] + sorted(present - set(order))))


def by_level(
    points: pd.DataFrame, levels: list[str], values=("accuracy", "energy_per_query_j", "completion_tokens_per_query")
) -> pd.DataFrame:
    """``points`` per (model, strategy) with one column per value and level, levels easiest first."""
    wide = points.pivot_table(index=["model", "strategy"], columns="difficulty", values=list(values), sort=False)
    return wide[[(v, lv) for v in values for lv in levels if (v, lv) in wide]]


PHASE_COLUMNS = ["latency_s", "prefill_s", "decode_s", "energy_j", "prefill_energy_j", "decode_energy_j"]


def timed(queries: pd.DataFrame) -> pd.DataFrame:
    """``queries`` with each one's ``latency_s``, ``prefill_s`` (start to first token) and ``decode_s``
    (NaN phases where a query has no first-token time, as runs stored before it was recorded)."""
    first = queries["t_first_token"] if "t_first_token" in queries else pd.Series(np.nan, index=queries.index)
    return queries.assign(
        t_first_token=first,
        latency_s=queries.t_end - queries.t_start,
        prefill_s=first - queries.t_start,
        decode_s=queries.t_end - first,
    )


def phases(queries: pd.DataFrame, by=("run_id", "repetition")) -> pd.DataFrame:
    """Prefill and decode per query, averaged ``by`` (default: each repetition of each run).

    A query's prefill runs from its start to its first token (``t_first_token``), its decode from
    there to its last token; the energies are its attributed shares of each part
    (:func:`ttclib.energy.attribute_phases`). Columns: the means of :data:`PHASE_COLUMNS` per query,
    ``prefill_time_share`` (prefill seconds over latency seconds, both summed), ``prefill_energy_share``,
    ``edp_js`` (mean energy × mean latency, the paper's energy-delay product) and ``n``. Queries without
    a first-token time (runs stored before it was recorded, engines that do not report it) count in
    ``latency_s`` and ``energy_j`` but not in the phases.

    >>> q = pd.DataFrame({"run_id": ["a", "a"], "repetition": [0, 0], "t_start": [0.0, 0.0],
    ...                   "t_first_token": [1.0, 1.0], "t_end": [3.0, 5.0], "energy_j": [150.0, 350.0],
    ...                   "prefill_energy_j": [50.0, 50.0], "decode_energy_j": [100.0, 300.0]})
    >>> phases(q)[["latency_s", "prefill_s", "decode_s", "prefill_time_share", "edp_js"]].to_dict("records")
    [{'latency_s': 4.0, 'prefill_s': 1.0, 'decode_s': 3.0, 'prefill_time_share': 0.25, 'edp_js': 1000.0}]
    """
    by = list(by)
    q = timed(queries)
    for col in ("prefill_energy_j", "decode_energy_j"):
        if col not in q:
            q[col] = np.nan
    g = q.groupby(by, sort=False, dropna=False)
    out = g[PHASE_COLUMNS].mean()
    timed_ = q[q.t_first_token.notna()].groupby(by, sort=False, dropna=False)
    out["prefill_time_share"] = timed_.prefill_s.sum() / (timed_.prefill_s.sum() + timed_.decode_s.sum())
    out["prefill_energy_share"] = timed_.prefill_energy_j.sum() / timed_.energy_j.sum()
    out["edp_js"] = out.energy_j * out.latency_s
    out["n"] = g.size()
    return out.reset_index()
