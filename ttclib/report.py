"""Computed sentences that compare a result with the paper's claim — never hand-typed numbers."""

from __future__ import annotations

import itertools
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from . import metrics, verdicts

# Jin et al. [000], section 4.1 (math, A100, Qwen2.5): Base 1.5B -> 7B gained 4.8 points at about the
# same energy; RT on 1.5B gained 34.3 points at similar energy (7.5x the gain of scaling).
PAPER_OVERVIEW = {"scaling_gain_pct": 4.8, "ttc_gain_pct": 34.3}


def _where(runs: pd.DataFrame) -> str:
    """'<hardware> (meter: <name> (<method>))': every sentence says what measured it."""
    return f"{metrics.hardware_label(runs)} ({metrics.meter_label(runs)})"


def _ci(lo: float, hi: float, fmt: str = ".2f", unit: str = "") -> str:
    """' (95 % CI a–b)', or '' when the interval is not defined."""
    return f" (95 % CI {lo:{fmt}}{unit}–{hi:{fmt}}{unit})" if lo == lo and hi == hi else ""


def models_ran(runs: pd.DataFrame) -> str:
    """Which models produced these runs, where their weights came from, and how they differ from
    the paper's (Qwen2.5-Instruct and the DeepSeek-R1 distills on GPUs).

    >>> runs = pd.DataFrame({"model": ["qwen2.5-coder-1.5b-instruct"], "model_kind": ["embedded"],
    ...     "model_description": ["Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, dequantised"],
    ...     "model_upstream": ["Qwen/Qwen2.5-Coder-1.5B-Instruct"], "dtype": ["bfloat16"], "threads": [2]})
    >>> print(models_ran(runs))  # doctest: +NORMALIZE_WHITESPACE
    Models that ran here: qwen2.5-coder-1.5b-instruct (Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, dequantised;
    bfloat16, 2 threads). These are the Coder variants of the paper's Qwen2.5 family, not the paper's
    Qwen2.5-Instruct models, run from quantised GGUF weights, dequantised: accuracies differ from the paper's.
    """
    cols = [c for c in ("model_description", "model_upstream", "dtype", "threads") if c in runs]
    rows = runs.drop_duplicates("model").set_index("model")[cols]
    parts = []
    for model, r in rows.iterrows():
        ran = [str(r["dtype"])] if isinstance(r.get("dtype"), str) else []
        ran += [f"{int(r['threads'])} threads"] if pd.notna(r.get("threads")) else []
        said = ([r["model_description"]] if isinstance(r.get("model_description"), str) else []) + (
            [", ".join(ran)] if ran else []
        )
        parts.append(f"{model} ({'; '.join(said)})" if said else model)
    text = f"Models that ran here: {', '.join(parts)}."
    upstream = [u for u in rows.get("model_upstream", pd.Series(dtype=object)) if isinstance(u, str)]
    if any("Coder" in u for u in upstream):
        text += (
            " These are the Coder variants of the paper's Qwen2.5 family, not the paper's Qwen2.5-Instruct "
            "models, run from quantised GGUF weights, dequantised"
            + (" (the 0.5B from an AWQ checkpoint)" if any("AWQ" in u for u in upstream) else "")
            + ": accuracies differ from the paper's."
        )
    return text


def ttc_strategy(df: pd.DataFrame, ttc: str | None = None) -> str:
    """``ttc``, or the long-output strategy present in ``df``: ``rt`` (a reasoning model) before ``cot``.

    >>> ttc_strategy(pd.DataFrame({"strategy": ["base", "mv", "rt"]}))
    'rt'
    """
    if ttc:
        return ttc
    for s in ("rt", "cot"):
        if s in set(df.strategy):
            return s
    raise ValueError(f"no test-time-compute strategy (rt or cot) among {sorted(set(df.strategy))}")


# --- overview (Figure 1) -----------------------------------------------------------------------


def _efficiency(d_acc, d_wh) -> np.ndarray:
    """Order gains (arrays over bootstrap replicates): any gain at no extra energy beats any slope,
    no gain at no extra energy is worst; otherwise points per Wh."""
    d_acc, d_wh = np.asarray(d_acc, float), np.asarray(d_wh, float)
    with np.errstate(all="ignore"):
        slope = d_acc / d_wh
    return np.where(d_wh > 0, slope, np.where(d_acc > 0, np.inf, -np.inf))


def _gain(acc, energy, frm, to, per_query: pd.DataFrame) -> dict:
    """Accuracy gain (points) and energy change of ``to`` over ``frm`` per bootstrap replicate (row 0:
    observed); the gain's interval is the bootstrap's widened to the paired score interval."""
    d_acc = 100 * (acc[to] - acc[frm]).to_numpy()
    d_wh = (energy[to] - energy[frm]).to_numpy() / metrics.J_PER_WH
    ratio = (energy[to] / energy[frm]).to_numpy()
    _, p_lo, p_hi = verdicts.paired_difference_ci(per_query[frm], per_query[to])
    lo, hi = verdicts.widest(verdicts.interval(d_acc[1:]), (100 * p_lo, 100 * p_hi))
    return {"d_acc": d_acc, "d_wh": d_wh, "ratio": ratio, "eff": _efficiency(d_acc, d_wh), "lo": lo, "hi": hi}


def _describe(g: dict) -> str:
    eff = g["eff"][0]
    slope = (
        f"{eff:.0f} points/Wh"
        if np.isfinite(eff)
        else "accuracy gained at no extra energy"
        if eff > 0
        else "no gain at no extra energy"
    )
    return (
        f"{g['d_acc'][0]:+.1f} points{_ci(g['lo'], g['hi'], '+.1f')} for {g['ratio'][0]:.2f}× the energy "
        f"per query ({slope})"
    )


def overview(
    results: pd.DataFrame,
    runs: pd.DataFrame,
    ttc: str | None = None,
    small: str | None = None,
    large: str | None = None,
    ttc_model: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> str:
    """Scaling the model (Base ``small`` → Base ``large``) vs spending test-time compute (``ttc`` on
    ``ttc_model``), per task category of ``results`` (one row per run, repetition and query).

    ``small``/``large`` default to the Base models with the fewest and most parameters, ``ttc_model``
    to the ``ttc`` model closest in size to ``small`` (the paper's RT runs use the R1 distill of the
    same size as the Base model). Intervals come from resampling the queries, jointly for the three
    configurations (:func:`verdicts.bootstrap_means`, ``n_boot`` times).
    """
    ttc = ttc_strategy(results, ttc)
    size = metrics.model_sizes(runs)
    base = sorted(results[results.strategy == "base"].model.unique(), key=lambda m: size.get(m, 0))
    small, large = small or base[0], large or base[-1]
    ttc_model = ttc_model or min(
        results[results.strategy == ttc].model.unique(), key=lambda m: abs(size.get(m, 0) - size.get(small, 0))
    )
    configs = [(small, "base"), (large, "base"), (ttc_model, ttc)]
    have = set(zip(results.model, results.strategy, strict=True))
    missing = [c for c in configs if c not in have]
    if missing:
        raise ValueError(f"the overview compares {configs}; not measured: {missing}")
    keep = results.set_index(["model", "strategy"]).index.isin(configs)
    groups = results[keep].groupby("category", sort=False) if "category" in results else [(None, results[keep])]
    parts, outcomes = [], {}
    for cat, g in groups:
        tables = verdicts.per_query(g)
        acc = verdicts.bootstrap_means(tables["correct"][configs], n_boot, seed)
        energy = verdicts.bootstrap_means(tables["energy_j"][configs], n_boot, seed)  # same seed: same draws
        scale = _gain(acc, energy, configs[0], configs[1], tables["correct"])
        spend = _gain(acc, energy, configs[0], configs[2], tables["correct"])
        better = float(np.mean(spend["eff"][1:] > scale["eff"][1:]))
        parts.append(
            f"{cat + ': ' if cat else ''}scaling Base {small} → {large} gave {_describe(scale)}; "
            f"{ttc.upper()} on {ttc_model} gave {_describe(spend)}; {ttc.upper()} bought more accuracy "
            f"per Wh in {100 * better:.0f} % of {n_boot} resamples of the {len(tables['correct'])} queries"
        )
        outcomes[cat] = _overview_verdict(spend, better)
    paper = PAPER_OVERVIEW
    text = (
        f"On {_where(runs)}: " + "; ".join(parts) + ". "
        f"Paper (math, A100): scaling 1.5B→7B +{paper['scaling_gain_pct']} points at similar energy, "
        f"RT on 1.5B +{paper['ttc_gain_pct']} points. "
    )
    if len({str(v) for v in outcomes.values()}) == 1:
        return text + str(next(iter(outcomes.values())))
    return text + " ".join(f"On {cat}: {v}" for cat, v in outcomes.items())


def _overview_verdict(spend: dict, better: float) -> verdicts.Verdict:
    claim = "The claim that test-time compute buys more accuracy per unit energy than scaling the model"
    gain = verdicts.above(spend["lo"], spend["hi"], 0)
    if better <= 0.025:
        return verdicts.Verdict(
            claim, "did not hold", f"scaling bought more points per Wh in {100 * (1 - better):.0f} % of resamples"
        )
    if gain == "did not hold":
        return verdicts.Verdict(
            claim, gain, "test-time compute did not raise accuracy (its gain's 95 % CI lies at or below 0)"
        )
    if gain == "held" and better >= 0.975:
        return verdicts.Verdict(claim, "held", f"more points per Wh in {100 * better:.0f} % of resamples")
    why = (
        "test-time compute's accuracy gain is not distinguishable from 0"
        if gain != "held"
        else f"more points per Wh in only {100 * better:.0f} % of resamples (97.5 % needed)"
    )
    return verdicts.Verdict(claim, "inconclusive", why)


# --- batch throughput (Figure 7) ---------------------------------------------------------------

# Jin et al. [000], section 4 (Figure 7, 32B on A100): throughput grows with batch size for Base and for
# RT on MATH500; RT on LiveCodeBench (~6,588 output tokens per query) saturates near batch 128.
PAPER_BATCH = {"saturation_batch": 128, "long_output_tokens": 6588}


def _growth(points: pd.DataFrame, repetitions: pd.DataFrame | None, strategy: str) -> dict:
    """Throughput at the largest batch over the smallest, with its CI across repetitions."""
    from .fits import ratio_ci

    pts = points[points.strategy == strategy].sort_values("batch_size")
    first, last = pts.iloc[0], pts.iloc[-1]
    lo = hi = np.nan
    if repetitions is not None:
        reps = repetitions[repetitions.strategy == strategy]
        a, b = (reps[reps.batch_size == x].queries_per_s for x in (last.batch_size, first.batch_size))
        _, lo, hi = ratio_ci(a, b)
    return {
        "ratio": last.queries_per_s / first.queries_per_s,
        "lo": lo,
        "hi": hi,
        "b0": int(first.batch_size),
        "b1": int(last.batch_size),
    }


def _ceiling(fit) -> tuple[float, float, float]:
    """(saturation batch, lower, upper) when the fit shows a ceiling in the measured range, else NaNs."""
    sat = getattr(fit, "ceiling", np.nan)
    lo, hi = getattr(fit, "saturation_ci", (np.nan, np.nan))
    return (sat, lo, hi) if sat == sat else (np.nan, np.nan, np.nan)


def _saturates_first(long: tuple, short: tuple) -> verdicts.Outcome:
    """Long outputs saturate at a smaller batch than short ones, judged by the saturation CIs."""
    shown_l, shown_s = long[0] == long[0], short[0] == short[0]
    if shown_l and not shown_s:
        return "held"
    if shown_s and not shown_l:
        return "did not hold"
    if not shown_l:
        return "inconclusive"
    if long[2] < short[1]:
        return "held"
    return "did not hold" if long[1] > short[2] else "inconclusive"


def batch_throughput(
    runs: pd.DataFrame,
    curves: dict,
    short: str = "base",
    long: str | None = None,
    repetitions: pd.DataFrame | None = None,
) -> str:
    """Does throughput grow with batch size, and do long outputs saturate first? ``runs``: one row per
    run (:func:`metrics.throughput_points`); ``repetitions`` (:func:`metrics.throughput_by_repetition`
    with run columns) gives the growth its CI across repetitions."""
    long = ttc_strategy(runs, long)
    g_s, g_l = _growth(runs, repetitions, short), _growth(runs, repetitions, long)
    c_s, c_l = _ceiling(curves[short]), _ceiling(curves[long])
    tokens = runs.groupby("strategy").completion_tokens_per_query.mean()
    text = (
        f"On {_where(runs)}: from batch {g_s['b0']} to {g_s['b1']}, throughput grew {g_s['ratio']:.1f}×"
        f"{_ci(g_s['lo'], g_s['hi'], '.1f', '×')} for {short} ({tokens[short]:.0f} output tokens/query) and "
        f"{g_l['ratio']:.1f}×{_ci(g_l['lo'], g_l['hi'], '.1f', '×')} for {long} ({tokens[long]:.0f} tokens/query). "
    )
    for name, c in ((long, c_l), (short, c_s)):
        fit = curves[name]
        if c[0] == c[0]:
            text += (
                f"{name}'s fitted curve reaches {fit.saturation:.0%} of its ceiling at batch {c[0]:.3g} "
                f"(95 % CI {c[1]:.3g}–{c[2]:.3g}, model choice included). "
            )
        else:
            text += f"{name} shows no ceiling in the measured range ({fit.form} fits best). "
    text += (
        f"Paper (32B, A100): throughput grows with batch size, and RT on LiveCodeBench "
        f"(~{PAPER_BATCH['long_output_tokens']} tokens/query) saturates near batch {PAPER_BATCH['saturation_batch']}. "
    )
    grows = verdicts.all_of([verdicts.above(g["lo"], g["hi"], 1) for g in (g_s, g_l)])
    first = _saturates_first(c_l, c_s)
    claim = "The claim that larger batches raise throughput, with long outputs saturating first,"
    why = (
        "growth "
        + ("shown" if grows == "held" else "not shown" if grows == "did not hold" else "not distinguishable from none")
        + " for both strategies; long outputs saturating first "
        + (
            "shown"
            if first == "held"
            else "contradicted"
            if first == "did not hold"
            else "not decided (no ceiling in the measured range, or overlapping intervals)"
        )
    )
    return text + str(verdicts.Verdict(claim, verdicts.all_of([grows, first]), why))


# --- power (Figure 3) ----------------------------------------------------------------------------

# Jin et al. [000], section 4 (Figure 3, A100): MV draws about 5 % more power than Base on average
# (larger effective batches); RT draws slightly less (decode- and memory-bandwidth-bound).
PAPER_POWER = {"mv_vs_base_pct": 5.0}
POWER_MARGIN_PCT = 10.0  # "marginal": within ±10 % of Base (the paper's largest change is about 5 %)


def power(
    summary: pd.DataFrame,
    runs: pd.DataFrame,
    repetitions: pd.DataFrame | None = None,
    pairs: dict | None = None,
    margin_pct: float = POWER_MARGIN_PCT,
) -> str:
    """Mean power of each test-time-compute strategy relative to Base on its paired model
    (:func:`metrics.base_pairs`), and the verdict: held when every change's CI lies within
    ±``margin_pct``. With ``repetitions`` (:func:`metrics.power_by_repetition`) each change is the
    ratio of the repetitions' mean power (energy over measured time) with its CI across them;
    without, the ratio of the sampled traces' means, and no CI."""
    from .fits import ratio_ci

    pairs = pairs or metrics.base_pairs(runs)
    cols = ["run_id", "model", "strategy", "meter"] + (["benchmark"] if "benchmark" in runs else [])
    df = summary.merge(runs[cols], on="run_id")
    parts, outcomes = [], []
    for row in df[df.strategy != "base"].itertuples():
        base = df[(df.strategy == "base") & (df.model == pairs.get(row.model, row.model))]
        if "benchmark" in df:
            base = base[base.benchmark == row.benchmark]
        if base.empty:
            continue
        b = base.iloc[0]
        change, lo, hi = 100 * (row.mean_power_w / b.mean_power_w - 1), np.nan, np.nan
        if repetitions is not None:  # energy over time per repetition: the point and its CI from one quantity
            mine, theirs = (repetitions[repetitions.run_id == r].mean_power_w for r in (row.run_id, b.run_id))
            change, lo, hi = (100 * (v - 1) for v in ratio_ci(mine, theirs))
        vs = f" vs Base on {b.model}" if b.model != row.model else ""
        on = f" ({row.benchmark})" if "benchmark" in df and df.benchmark.nunique() > 1 else ""
        parts.append(f"{row.strategy.upper()} {change:+.1f} %{_ci(lo, hi, '+.1f', ' %')} on {row.model}{on}{vs}")
        outcomes.append(verdicts.within(lo, hi, -margin_pct, margin_pct))
    text = (
        f"On {_where(runs)}, mean power relative to Base: {'; '.join(parts) or 'no strategy paired with Base'}. "
        f"Paper (A100, NVML): TTC changes power only marginally, MV about +{PAPER_POWER['mv_vs_base_pct']:.0f} %, "
        f"RT slightly below Base. "
    )
    claim = f"The claim that test-time compute changes power draw only marginally (within ±{margin_pct:.0f} % of Base)"
    if set(df.meter) == {"estimate"}:
        return text + str(
            verdicts.Verdict(
                claim,
                "not tested",
                "the estimate meter derives power from CPU time, so "
                "these numbers show CPU utilisation, not measured watts",
            )
        )
    outcome = verdicts.all_of(outcomes) if outcomes else "not tested"
    why = {
        "held": "every change's 95 % CI lies inside the margin",
        "did not hold": "a change's 95 % CI lies wholly outside the margin",
        "inconclusive": "a 95 % CI straddles the margin, or there are too few repetitions for one",
        "not tested": "no strategy was measured beside Base",
    }[outcome]
    return text + str(verdicts.Verdict(claim, outcome, why))


# --- normalized energy (Figure 2) --------------------------------------------------------------

# Jin et al. [000], section 4.1 (Figure 2, A100): average energy of MV and RT over Base per task category,
# and RT's average output-token multiplier.
PAPER_NORMALIZED = {
    "mv": {"math": 2.63, "code": 2.01, "common_sense": 4.69},
    "rt": {"math": 3.66, "code": 10.4, "common_sense": 1.08},
}
PAPER_RT_TOKEN_RATIO = 4.4


def normalized_energy(normalized: pd.DataFrame, averages: pd.DataFrame, runs: pd.DataFrame, samples: int = 5) -> str:
    """Each strategy's energy multiplier per category against the paper's, and the verdict on the
    claim that TTC multiplies energy per query, MV by less than its sample count (except when
    answers are a token or two long, where it costs the full multiple) — both decided by the
    ratios' CIs in ``normalized`` (:func:`metrics.normalized_energy`)."""
    parts = []
    for row in averages.itertuples():
        paper_key = "rt" if row.strategy in ("rt", "cot") else row.strategy
        paper = PAPER_NORMALIZED.get(paper_key, {}).get(row.category)
        one = normalized[(normalized.category == row.category) & (normalized.strategy == row.strategy)]
        ci = _ci(one.energy_ratio_lo.iloc[0], one.energy_ratio_hi.iloc[0]) if len(one) == 1 else ""
        ref = f"paper {paper_key.upper()}: {paper}×" if paper else "no paper figure for this category"
        parts.append(
            f"{row.strategy.upper()} used {row.energy_ratio:.2f}× Base energy on {row.category}{ci} with "
            f"{row.output_token_ratio:.2f}× its output tokens ({ref})"
        )
    text = f"On {_where(runs)}: " + "; ".join(parts) + ". "
    ttc = normalized[normalized.strategy != "mv"]
    if len(ttc):
        text += (
            f"Longer reasoning produced {ttc.output_token_ratio.mean():.1f}× Base's output tokens on average "
            f"(paper, RT: {PAPER_RT_TOKEN_RATIO}×). "
        )
    more = verdicts.all_of(verdicts.above(r.energy_ratio_lo, r.energy_ratio_hi, 1) for r in normalized.itertuples())
    mv = normalized[(normalized.strategy == "mv") & (normalized.base_output_tokens > 2)]  # one-token answers: ×samples
    sub = (
        verdicts.all_of(verdicts.below(r.energy_ratio_lo, r.energy_ratio_hi, samples) for r in mv.itertuples())
        if len(mv)
        else "held"
    )
    claim = f"The claim that test-time compute multiplies the energy per query, MV by less than its {samples} samples,"
    reasons = []
    if more != "held":
        reasons.append(
            "not every strategy's energy is above Base's with 95 % confidence"
            if more == "inconclusive"
            else "a strategy used no more energy than Base (95 % CI at or below 1×)"
        )
    if sub != "held":
        worst = mv.loc[mv.energy_ratio.idxmax()]
        reasons.append(
            f"MV cost {worst.energy_ratio:.2f}×{_ci(worst.energy_ratio_lo, worst.energy_ratio_hi)} Base "
            f"({worst.model} on {worst.benchmark}), "
            f"{'not below' if sub == 'inconclusive' else 'above'} {samples}× with 95 % confidence"
        )
    return text + str(verdicts.Verdict(claim, verdicts.all_of([more, sub]), "; ".join(reasons)))


# --- length sweep and early exit (Figures 4 and 5, §5) --------------------------------------------

# Jin et al. [000], sections 4.2 and 5 (Figures 4 and 5, RT on MATH500/LiveCodeBench): correct answers are
# shorter than incorrect ones; cutting generation at 13,108 of 32,768 tokens (the fourth point of
# the sweep, above the ~12,000 tokens correct answers use) saves 14 % energy without accuracy loss.
PAPER_EARLY_EXIT = {"cut_tokens": 13108, "max_tokens": 32768, "saved_pct": 14.0}
MIN_PER_GROUP = 3  # correct and incorrect answers each, before their lengths are compared
ACCURACY_MARGIN = 0.05  # "without accuracy loss": the accuracy change's CI stays above -5 points


def length_sweep(
    results: pd.DataFrame,
    exits: pd.DataFrame,
    runs: pd.DataFrame,
    ttc: str | None = None,
    accuracy_margin: float = ACCURACY_MARGIN,
) -> str:
    """Correct vs incorrect answer lengths at the longest maximum length, and the measured early exit.

    ``results``: per-query results of the longest-length runs; ``exits``: :func:`metrics.early_exit_at_sweep`.
    """
    ttc = ttc_strategy(results, ttc)
    parts: list[str] = []
    shorter: list[verdicts.Outcome] = []
    lengths = metrics.answer_lengths(results[results.strategy == ttc])  # one value per query and outcome
    for (model, strategy), g in lengths.groupby(["model", "strategy"], sort=False):
        right, wrong = g.completion_tokens[g.correct], g.completion_tokens[~g.correct]
        if min(len(right), len(wrong)) < MIN_PER_GROUP:
            parts.append(
                f"{model} {strategy}: {len(right)} queries answered correctly and {len(wrong)} incorrectly, "
                f"too few (< {MIN_PER_GROUP}) to compare their lengths"
            )
            shorter.append("inconclusive")
            continue
        outcome, p = verdicts.mann_whitney(right, wrong)
        parts.append(
            f"{model} {strategy}: correct answers {right.median():.0f} tokens (median over {len(right)} "
            f"queries), incorrect {wrong.median():.0f} (over {len(wrong)}; one-sided Mann–Whitney "
            f"p = {p:.2g})"
        )
        shorter.append(outcome)
    text = f"On {_where(runs)}: " + "; ".join(parts) + ". "
    cuts: list[verdicts.Outcome] = []
    for row in exits[exits.strategy == ttc].itertuples():
        if row.cut_tokens != row.cut_tokens:
            text += f"For {row.model} {row.strategy}, no answer was correct, so there is no length to cut at. "
            cuts.append("inconclusive")
            continue
        if row.cut_tokens >= row.max_tokens:
            text += (
                f"For {row.model} {row.strategy}, the correct answers' upper whisker ({row.whisker_tokens:.0f} "
                f"tokens) lies above every shorter sweep point: no cut below {row.max_tokens:.0f} tokens keeps them. "
            )
            cuts.append("did not hold")
            continue
        saves = verdicts.below(row.energy_ratio_lo, row.energy_ratio_hi, 1)
        keeps = verdicts.at_least(row.accuracy_change_lo, row.accuracy_change_hi, accuracy_margin)
        text += (
            f"For {row.model} {row.strategy}, the correct answers' upper whisker is {row.whisker_tokens:.0f} tokens, "
            f"so the cut is the sweep point at {row.cut_tokens:.0f} of {row.max_tokens:.0f} tokens: measured, it used "
            f"{row.energy_ratio:.2f}×{_ci(row.energy_ratio_lo, row.energy_ratio_hi)} the longest run's energy per "
            f"query ({100 * row.energy_saved_share:+.0f} % saved) and changed accuracy by "
            f"{100 * row.accuracy_change:+.1f} points"
            f"{_ci(100 * row.accuracy_change_lo, 100 * row.accuracy_change_hi, '+.1f')}"
            f" over {row.queries} queries. "
        )
        cuts.append(verdicts.all_of([saves, keeps]))
    paper = PAPER_EARLY_EXIT
    text += (
        f"Paper (RT): correct answers are shorter than incorrect ones; a cut at {paper['cut_tokens']} of "
        f"{paper['max_tokens']} tokens saved {paper['saved_pct']:.0f} % with no accuracy loss. "
    )
    claim = (
        f"The claim that correct answers are shorter, so a length cut saves energy without losing accuracy "
        f"(more than {100 * accuracy_margin:.0f} points),"
    )
    a, b = verdicts.all_of(shorter), verdicts.all_of(cuts)
    why = f"correct answers shorter: {a}; the cut saving energy at no accuracy loss: {b}"
    return text + str(verdicts.Verdict(claim, verdicts.all_of([a, b]), why))


# --- difficulty and routing (Figure 6, eq. 1a/1b) -------------------------------------------------

# Jin et al. [000], section 5 (equation 1a): an oracle router used 1.75 kWh where always using the largest
# model used 2.03 kWh (LiveCodeBench) and 2.20 kWh (MATH500).
PAPER_ROUTING: dict[str, Any] = {"oracle_kwh": 1.75, "max_kwh": {"livecodebench": 2.03, "math500": 2.20}}


def _harder_costs_more(results: pd.DataFrame, levels: list[str]) -> tuple[list[verdicts.Outcome], list[str]]:
    """Per configuration: energy per query at the hardest level over the easiest, with its CI
    (different queries: independent samples)."""
    from .fits import ratio_ci

    outcomes, parts = [], []
    for (model, strategy), g in results.groupby(["model", "strategy"], sort=False):
        per = g.groupby(["difficulty", "query_id"]).energy_j.mean()
        present = [lv for lv in levels if lv in per.index.get_level_values(0)]
        if len(present) < 2:
            continue
        r, lo, hi = ratio_ci(per[present[-1]], per[present[0]])
        outcomes.append(verdicts.above(lo, hi, 1))
        parts.append(f"{model} {strategy} {r:.2f}×{_ci(lo, hi)}")
    return outcomes, parts


def difficulty(
    results: pd.DataFrame,
    routed,
    runs: pd.DataFrame,
    p: float,
    levels: list[str],
    tolerance: float = 0.0,
    n_boot: int = 2000,
) -> str:
    """Energy per query across difficulty levels, and what routing by difficulty saves (eq. 1a/1b),
    with intervals from resampling queries within levels (:func:`routing.bootstrap`)."""
    from . import routing

    grows, ratios = _harder_costs_more(results, levels)
    t = routed.table
    picks = "; ".join(f"{r.difficulty} → {r.model} {r.strategy}" for r in t.itertuples())
    e_r, acc_r = routed.realistic(p)
    bench = f", {', '.join(results.benchmark.unique())}" if "benchmark" in results else ""
    text = (
        f"On {_where(runs)}{bench}: the hardest level cost more energy per query than the easiest with 95 % "
        f"confidence for {grows.count('held')} of {len(grows)} configurations (hardest / easiest: "
        f"{', '.join(ratios)}). The oracle router (eq. 1a) picks {picks}: {routed.oracle_energy_j:.0f} J for "
        f"{routed.n} queries at {100 * routed.oracle_accuracy:.1f} % accuracy, against {routed.max_energy_j:.0f} J "
        f"at {100 * routed.max_accuracy:.1f} % always using the fallback "
        f"{' '.join(map(str, routed.fallback.values()))} ({100 * routed.savings(1.0):.0f} % saved); a router that "
        f"predicts the level with p = {p} (eq. 1b) uses {e_r:.0f} J ({100 * routed.savings(p):.0f} % saved) at "
        f"{100 * acc_r:.1f} %. "
    )
    # levels where no configuration answered anything correctly say nothing about trading accuracy
    # for energy: routing there only picks the cheapest way to fail
    best = results.assign(correct=results.correct.astype(float)).groupby("difficulty").correct.max()
    blind = [lv for lv in levels if lv in best.index and best[lv] == 0]
    informative = results[~results.difficulty.isin(blind)]
    claim = (
        "The claim that routing queries by difficulty to cheaper configurations saves energy against "
        "always using the most accurate (the fallback), at no accuracy loss,"
    )
    if blind:
        text += (
            f"At {', '.join(blind)} no configuration answered any query correctly, so those levels are left out "
            f"of the verdict (routing there only picks the cheapest way to fail). "
        )
    paper = PAPER_ROUTING
    saved = ", ".join(f"{100 * (1 - paper['oracle_kwh'] / v):.0f} % on {k}" for k, v in paper["max_kwh"].items())
    text += f"Paper (RT, A100): the oracle saved {saved}. "
    if informative.empty:
        return text + str(verdicts.Verdict(claim, "not tested", "no configuration answered any query correctly"))
    b = routing.bootstrap(informative, routed.fallback, tolerance=tolerance, n_boot=n_boot).set_index("quantity")
    s, a = b.loc["saved"], b.loc["accuracy_change"]
    oracle, fallback = routed.per_query(informative)
    _, p_lo, p_hi = verdicts.paired_difference_ci(fallback, oracle)
    a_lo, a_hi = verdicts.widest((a.lo, a.hi), (p_lo, p_hi))
    saves = verdicts.above(s.lo, s.hi, 0)
    keeps = verdicts.at_least(a_lo, a_hi, ACCURACY_MARGIN)
    scope = f" over {', '.join(lv for lv in levels if lv not in blind)}" if blind else ""
    why = (
        f"the oracle saved {100 * s.value:.0f} %{_ci(100 * s.lo, 100 * s.hi, '.0f', ' %')}{scope} "
        "and changed accuracy by "
        f"{100 * a.value:+.1f} points{_ci(100 * a_lo, 100 * a_hi, '+.1f')} (the configuration per level chosen "
        f"again in each of {n_boot} resamples of the queries; accuracy also by a paired score interval)"
    )
    grow = verdicts.all_of(grows) if grows else "inconclusive"
    return (
        text
        + str(verdicts.Verdict(claim, verdicts.all_of([saves, keeps]), why))
        + (f" (Harder queries costing more energy, per configuration: {grow}.)")
    )


# --- GPU reference runs (ttclib.reference): what they show, never a verdict -------------------
# These describe hardware-only runs (random weights, fixed output lengths) measured beside the
# section's own; they state numbers and the paper's for context, and decide no claim.

WARMUP_SLOWDOWN = 1.5  # a first repetition this much slower than the later ones is called a warm-up


def _gpu_where(runs: pd.DataFrame) -> str:
    """'GPU reference on NVIDIA H200 (meter: nvml (energy_counter); power: NVML instant power field)'."""
    devices = sorted(set(runs.measured_devices.dropna())) if "measured_devices" in runs else []
    source = metrics.power_source_label(runs)
    return (
        f"GPU reference on {', '.join(devices) or metrics.hardware_label(runs)} ({metrics.meter_label(runs)}"
        f"{'; power: ' + source if source else ''}; hardware only, not a verdict)"
    )


def _warmup(
    first: pd.DataFrame,
    runs: pd.DataFrame,
    effect: str = "which lowers those runs' mean throughput and raises their mean energy per query",
) -> str:
    """Which runs' first repetition was a warm-up, and what it does to their means."""
    f = first.merge(runs[["run_id", "strategy", "max_new_tokens", "batch_size", "repetitions"]], on="run_id")
    slow = f[f.slowdown >= WARMUP_SLOWDOWN].sort_values("slowdown", ascending=False)
    if slow.empty:
        return (
            f"No run's first repetition took {WARMUP_SLOWDOWN}× its later ones' time or more "
            f"(at most {f.slowdown.max():.2f}×). "
        )
    which = "; ".join(
        f"{r.strategy} {r.max_new_tokens} tokens at batch {r.batch_size}: {r.slowdown:.1f}×" for r in slow.itertuples()
    )
    reps = ", ".join(map(str, sorted(set(f.repetitions))))
    return (
        f"Warm-up: in {len(slow)} of {len(f)} runs the first repetition took {WARMUP_SLOWDOWN}× the later ones' "
        f"time or more ({which}), {effect}; "
        f"with {reps} repetitions per run the 95 % CIs are wide. "
    )


def gpu_power(summary: pd.DataFrame, runs: pd.DataFrame, first: pd.DataFrame) -> str:
    """Mean power of each strategy shape on the GPU, relative to Base where there is one."""
    df = summary.drop(columns="samples").merge(
        runs[["run_id", "strategy", "max_new_tokens", "samples", "batch_size", "idle_power_w"]], on="run_id"
    )
    order = ["base", "mv", "cot", "rt"]
    df = df.assign(_o=[order.index(s) if s in order else len(order) for s in df.strategy]).sort_values("_o")
    base = df[df.strategy == "base"].mean_power_w
    parts = []
    for r in df.itertuples():
        samples = int(r.samples) if r.samples == r.samples and r.samples else 1
        shape = f"{samples} × {r.max_new_tokens}" if samples > 1 else f"{r.max_new_tokens}"
        change = (
            f", {100 * (r.mean_power_w / base.iloc[0] - 1):+.1f} % vs base"
            if len(base) == 1 and r.strategy != "base"
            else ""
        )
        parts.append(
            f"{r.strategy.upper()} ({shape} output tokens) {r.mean_power_w:.0f} W ± {r.std_power_w:.0f}{change}"
        )
    batches = ", ".join(map(str, sorted(set(df.batch_size))))
    return (
        f"{_gpu_where(runs)}: at batch {batches}, mean sampled power was "
        + "; ".join(parts)
        + f", against an idle baseline of {df.idle_power_w.mean():.0f} W. "
        + _warmup(first, runs, "so those runs' mean power mixes the warm-up with the steady state")
        + f"For context, the paper (A100, SGLang, real models): MV about +{PAPER_POWER['mv_vs_base_pct']:.0f} % "
        f"over Base, RT slightly below."
    )


def gpu_length(
    table: pd.DataFrame, curves: dict, runs: pd.DataFrame, first: pd.DataFrame, repetitions: pd.DataFrame | None = None
) -> str:
    """How energy per query grows with the maximum output length on the GPU, and the fitted form;
    with ``repetitions`` (:func:`metrics.energy_by_repetition`), also over the later repetitions alone."""
    from . import fits

    parts = []
    for (model, strategy), g in table.groupby(["model", "strategy"], sort=False):
        g = g.sort_values("max_new_tokens")
        lo, hi = g.iloc[0], g.iloc[-1]
        text = (
            f"{strategy} with fixed output lengths: energy per query rose "
            f"{hi.energy_per_query_j / lo.energy_per_query_j:.1f}× from {lo.energy_per_query_j:.1f} J at "
            f"{lo.max_new_tokens} tokens to {hi.energy_per_query_j:.0f} J at {hi.max_new_tokens} "
            f"({hi.max_new_tokens / lo.max_new_tokens:.0f}× the length"
        )
        if repetitions is not None:
            r = repetitions[(repetitions.model == model) & (repetitions.strategy == strategy)]
            r = r[r.repetition > r.repetition.min()].groupby("max_new_tokens").energy_per_query_j.mean()
            if lo.max_new_tokens in r and hi.max_new_tokens in r:
                a, b = r[lo.max_new_tokens], r[hi.max_new_tokens]
                text += f"; {b / a:.1f}× over the later repetitions alone: {a:.1f} → {b:.0f} J"
        text += f"), and energy per output token from {lo.energy_per_token_j:.2f} J to {hi.energy_per_token_j:.2f} J"
        fit = curves.get((model, strategy))
        if fit is not None and not isinstance(fit, fits.Unfitted):
            text += f"; {fit.form} fits best by BIC ({fit.formula}, J and tokens; R² = {fit.r2:.3f}, n = {fit.n})"
        elif fit is not None:
            text += f"; no fit ({fit.reason})"
        parts.append(text)
    return f"{_gpu_where(runs)}: " + "; ".join(parts) + ". " + _warmup(first, runs).rstrip()


def gpu_throughput(
    table: pd.DataFrame, curves: dict, runs: pd.DataFrame, first: pd.DataFrame, repetitions: pd.DataFrame
) -> str:
    """How throughput and energy per token change with batch size on the GPU, and whether a ceiling shows."""
    later = repetitions.merge(first[["run_id"]], on="run_id")
    later = later[later.repetition > later.groupby("run_id").repetition.transform("min")]
    parts = []
    for strategy, g in table.groupby("strategy", sort=False):
        g = g.sort_values("batch_size")
        lo, hi = g.iloc[0], g.iloc[-1]
        text = (
            f"{strategy} with {lo.completion_tokens_per_query:.0f} output tokens per query: throughput rose "
            f"{hi.queries_per_s / lo.queries_per_s:.0f}× from {lo.queries_per_s:.2f} queries/s at batch "
            f"{lo.batch_size} to {hi.queries_per_s:.1f} at batch {hi.batch_size}"
        )
        warm = later[later.strategy == strategy].groupby("batch_size").queries_per_s.mean()
        if lo.batch_size in warm and hi.batch_size in warm:
            text += (
                f" ({warm[hi.batch_size] / warm[lo.batch_size]:.0f}× over the later repetitions alone: "
                f"{warm[lo.batch_size]:.2f} → {warm[hi.batch_size]:.1f})"
            )
        text += (
            f", and energy per output token fell from {lo.energy_per_token_j:.2f} J to "
            f"{hi.energy_per_token_j:.3f} J ({lo.energy_per_token_j / hi.energy_per_token_j:.0f}× less)"
        )
        fit = curves.get(strategy)
        sat = getattr(fit, "ceiling", float("nan"))
        if fit is not None and sat == sat:
            c_lo, c_hi = fit.saturation_ci
            text += (
                f"; the fitted {fit.form} curve reaches {fit.saturation:.0%} of its ceiling at batch {sat:.3g} "
                f"(95 % CI {c_lo:.3g}–{c_hi:.3g})"
            )
        elif fit is not None and hasattr(fit, "candidates"):
            c = fit.candidates.set_index("form")
            saturating = c.loc[[f for f in ("michaelis_menten", "exp_saturation") if f in c.index]]
            saturating = saturating[saturating.converged]
            if fit.form in ("michaelis_menten", "exp_saturation"):
                c_lo, c_hi = fit.saturation_ci
                text += (
                    f"; the fitted {fit.form} curve's {fit.saturation:.0%} point (batch {fit.saturation_batch:.3g}, "
                    f"95 % CI {c_lo:.3g}–{c_hi:.3g}, form re-chosen in {fit.n_boot} refits) is not pinned within "
                    f"batch {fit.ceiling_within * fit.x_max:g}: no ceiling in the measured range"
                )
            elif len(saturating):
                text += (
                    f"; the saturating forms fit no better than the {fit.form} form (ΔBIC "
                    f"{saturating.delta_bic.min():.1f} by BIC): the runs show no ceiling within batch "
                    f"{hi.batch_size}"
                )
            else:
                text += f"; {fit.form} fits best and no saturating form converged"
        parts.append(text)
    return (
        f"{_gpu_where(runs)}: "
        + "; ".join(parts)
        + ". "
        + _warmup(first, runs)
        + f"For context, the paper (32B, A100, SGLang): throughput grows with batch size, and RT on "
        f"LiveCodeBench saturates near batch {PAPER_BATCH['saturation_batch']}."
    )


# --- Wilhelm et al. [001]: operating curves (Figures 1-4) ------------------------------------------------

NONLINEAR_DBIC = 10.0  # "clearly nonlinear": the linear form loses by more than this in BIC (very strong evidence)


def _nonlinear(fit) -> tuple[verdicts.Outcome, str]:
    """Whether one curve is nonlinear: held when a nonlinear form wins and the linear one loses by
    more than NONLINEAR_DBIC, did not hold when the linear one beats every nonlinear form by that much."""
    if getattr(fit, "form", "none") == "none":
        return "inconclusive", "no fit"
    c = fit.candidates.set_index("form")
    if fit.form != "linear":
        margin = float(c.delta_bic.get("linear", np.nan))
        return ("held" if margin > NONLINEAR_DBIC else "inconclusive"), f"{fit.form}, ΔBIC {margin:.1f} to linear"
    rivals = c[(c.index != "linear") & c.converged].delta_bic
    margin = float(rivals.min()) if len(rivals) else np.nan
    return (
        "did not hold" if margin > NONLINEAR_DBIC else "inconclusive"
    ), f"linear, ΔBIC {margin:.1f} to the best nonlinear form"


def _models_differ(fig1: pd.DataFrame) -> tuple[list[str], verdicts.Outcome]:
    """Models ranked by energy per processed token; each neighbour's paired ratio over the same prompts."""
    from .fits import ratio_ci

    per = fig1.pivot_table(index="query_id", columns="model", values="energy_per_processed_token_j").dropna()
    order = per.mean().sort_values().index.tolist()
    parts, outcomes = [], []
    for cheap, dear in itertools.pairwise(order):
        r, lo, hi = ratio_ci(per[dear], per[cheap], paired=True)
        parts.append(f"{dear} / {cheap} {r:.2f}×{_ci(lo, hi, '.2f', '×')}")
        outcomes.append(verdicts.above(lo, hi, 1.0))
    return parts, verdicts.all_of(outcomes) if outcomes else "not tested"


def _per_token_ranks(per_token: pd.DataFrame) -> str:
    """'model 0.012 J (95 % CI ...), ...': energy per processed token per model, lowest first."""
    return ", ".join(
        f"{r.model} {r.energy_per_processed_token_j:.3g} J"
        f"{_ci(r.energy_per_processed_token_j_lo, r.energy_per_processed_token_j_hi, '.3g', ' J')}"
        for r in per_token.sort_values("energy_per_processed_token_j").itertuples()
    )


def operating_curves(
    fig1: pd.DataFrame, per_token: pd.DataFrame, estimator, util: pd.DataFrame, runs: pd.DataFrame
) -> str:
    """Wilhelm et al. [001]'s claims of §4.1-4.2, one computed verdict each: models differ in energy per token
    for the same input (Figure 1: each neighbour in the ranking apart by a paired CI over the same
    prompts); energy is nonlinear in input tokens (Figure 2) and in output tokens (Figure 3), decided
    by BIC (:data:`NONLINEAR_DBIC`); the lowest-utilisation model spends the most per token (Figure 4,
    GPU meters only)."""
    ranks = _per_token_ranks(per_token)
    parts, differ = _models_differ(fig1)
    out = [
        f"On {_where(runs)}, energy per processed token over the {fig1.query_id.nunique()} "
        f"{metrics.prompts_label(fig1)} (one output token, batch 1): {ranks}. "
        + str(
            verdicts.Verdict(
                "The claim that models differ in energy per token for the same input",
                differ,
                "neighbours in that ranking, paired over the same prompts: " + "; ".join(parts)
                if parts
                else "only one model ran",
            )
        )
    ]
    for side, fig in (("input", 2), ("output", 3)):
        found = {m: _nonlinear(getattr(c, side)) for m, c in estimator.curves.items()}
        forms = {getattr(c, side).form for c in estimator.curves.values()}
        shape = (
            f"; the same form wins for every model ({forms.pop()}), with different coefficients"
            if len(forms) == 1 and len(found) > 1
            else ""
        )
        out.append(
            str(
                verdicts.Verdict(
                    f"The claim that energy per query is nonlinear in {side} tokens (Figure {fig}; linear beaten by "
                    f"ΔBIC > {NONLINEAR_DBIC:g})",
                    verdicts.all_of(o for o, _ in found.values()),
                    "; ".join(f"{m}: {why}" for m, (_, why) in found.items()) + shape,
                )
            )
        )
    claim = "The claim that the model with the lowest utilisation spends the most energy per token (Figure 4)"
    if set(util.meter) != {"nvml"}:
        out.append(
            str(
                verdicts.Verdict(
                    claim, "not tested", "this meter reports CPU utilisation of the process tree, not GPU utilisation"
                )
            )
        )
    else:
        u = util.groupby("model").mean_util_pct.mean()
        low = u.idxmin()
        pt = per_token.set_index("model")
        others = pt.drop(index=low)
        outcome = (
            verdicts.all_of(
                verdicts.above(pt.energy_per_processed_token_j_lo[low], np.inf, hi)
                for hi in others.energy_per_processed_token_j_hi
            )
            if len(others)
            else "not tested"
        )
        out.append(str(verdicts.Verdict(claim, outcome, f"lowest mean utilisation: {low} ({u[low]:.0f} %)")))
    return "\n\n".join(out)


_LINEAR_LOSES = {  # _nonlinear's outcome -> what it says of the linear form, in a GPU reference's words
    "held": f"linear loses by ΔBIC > {NONLINEAR_DBIC:g}: nonlinear",
    "did not hold": f"linear beats every nonlinear form by ΔBIC > {NONLINEAR_DBIC:g}: linear",
    "inconclusive": f"margin within ΔBIC {NONLINEAR_DBIC:g}: not clearly nonlinear",
}


def gpu_curves(fig1: pd.DataFrame, per_token: pd.DataFrame, estimator, util: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Wilhelm et al. [001]'s operating curves on GPU reference runs (hardware only, no claim decided): energy
    per processed token per model over the Figure 1 prompts (``fig1``: one output token, prompts as they
    are; ``per_token`` its :func:`metrics.mean_by`), the form BIC selects for energy per query vs input and
    vs output tokens per model (``estimator``'s curves) and whether the linear form loses by more than
    :data:`NONLINEAR_DBIC` (:func:`_nonlinear`), and the mean utilisation per model (``util``,
    :func:`metrics.utilisation`)."""
    ranks = _per_token_ranks(per_token)
    parts = [
        f"at batch 1, energy per processed token over the {fig1.query_id.nunique()} {metrics.prompts_label(fig1)} "
        f"(one output token) was {ranks}"
    ]
    for side in ("input", "output"):
        fixed = (
            "one output token"
            if side == "input"
            else " and ".join(f"{v:g}" for v in sorted({c.input_at for c in estimator.curves.values()}))
            + " input tokens"
        )
        forms = []
        for model, curve in estimator.curves.items():
            outcome, why = _nonlinear(getattr(curve, side))
            forms.append(f"{model} {why} ({_LINEAR_LOSES[outcome]})" if why != "no fit" else f"{model}: no fit")
        parts.append(f"energy per query vs {side} tokens ({fixed}), form by BIC: " + "; ".join(forms))
    if len(util):
        what = "GPU utilisation (NVML)" if set(util.meter) == {"nvml"} else "utilisation"
        u = util.groupby("model", sort=False).mean_util_pct.mean()
        parts.append(f"mean {what} while generating: " + ", ".join(f"{m} {v:.0f} %" for m, v in u.items()))
    else:
        parts.append("the power traces hold no utilisation")
    return (
        f"{_gpu_where(runs)}: "
        + "; ".join(parts)
        + ". For context, the paper (an L40S, real 7B models, MT-Bench prompts): energy per query nonlinear in "
        "input and in output tokens, and the model with the lowest GPU utilisation spending the most per token."
    )


# --- Wilhelm et al. [001]: MMLU trade-off (Table 1) and the category router (§5) --------------------------

PAPER_TRADEOFF = {
    "cot_energy_x": (120, 150),
    "large_energy_pct": (35, 65),
    "large_accuracy_pct": (47, 350),
    "mv_energy_pct": (72, 177),
    "mv_accuracy_pct": (0, 19),
}
PAPER_ROUTES = {
    "Humanities": "small",
    "Natural Sciences": "small",
    "Economics": "small",
    "Math": "large",
    "Engineering": "large",
    "Computer Science": "large",
}


def _row(overall: pd.DataFrame, model: str, strategy: str) -> pd.Series | None:
    hit = overall[(overall.model == model) & (overall.strategy == strategy)]
    return hit.iloc[0] if len(hit) else None


def _cut_off(runs: pd.DataFrame, model: str, strategy: str) -> str:
    """'; N % of its answers cut at the token budget (B tokens)' for that configuration's runs."""
    mine = runs[(runs.model == model) & (runs.strategy == strategy)] if "cut_off" in runs else runs.iloc[:0]
    if mine.empty or not np.isfinite(mine.cut_off).any():
        return ""
    return (
        f"; {mine.cut_off.mean():.0%} of its answers were cut at the token budget "
        f"({', '.join(map(str, sorted(mine.max_new_tokens.unique())))} tokens)"
    )


def _pct(r: pd.Series, col: str) -> str:
    return f"{r[col]:+.0f} %{_ci(r[col + '_lo'], r[col + '_hi'], '+.0f', ' %')}"


def mmlu_tradeoff(
    tab: pd.DataFrame,
    small: str,
    large: str,
    runs: pd.DataFrame,
    mv_prices: pd.DataFrame | None = None,
    by: str = "subset",
) -> str:
    """Wilhelm et al. [001]'s Table 1 claims on this package's data, from the ``All`` rows of
    :func:`ttclib.tradeoff.table` (changes against ``small`` answering directly, paired-bootstrap CIs):
    CoT costs 120-150× the baseline's energy; the larger model gains accuracy for +35-65 % energy;
    MV costs +72-177 % energy. ``mv_prices`` (the energy estimator's MV price with and without a
    shared prefill) say which reading of the paper's MV energies these runs support."""
    from .tradeoff import overall

    o = overall(tab, by)
    out = []
    cot = _row(o, small, "cot")
    if cot is not None:
        x, lo, hi = (1 + cot[c] / 100 for c in ("d_energy_pct", "d_energy_pct_lo", "d_energy_pct_hi"))
        a, b = PAPER_TRADEOFF["cot_energy_x"]
        out.append(
            str(
                verdicts.Verdict(
                    f"The claim that CoT costs {a}-{b}× the energy of a direct answer (small model)",
                    verdicts.within(lo, hi, a, b),
                    f"{x:.0f}×{_ci(lo, hi, '.0f', '×')} here, accuracy {_pct(cot, 'd_accuracy_pct')}, with "
                    f"{cot.n} queries{_cut_off(runs, small, 'cot')}",
                )
            )
        )
    big = _row(o, large, "base")
    if big is not None:
        a, b = PAPER_TRADEOFF["large_energy_pct"]
        outcome = verdicts.all_of(
            [
                verdicts.above(big.d_accuracy_pct_lo, big.d_accuracy_pct_hi, 0),
                verdicts.within(big.d_energy_pct_lo, big.d_energy_pct_hi, a, b),
            ]
        )
        out.append(
            str(
                verdicts.Verdict(
                    f"The claim that the larger model is more accurate for +{a}-{b} % energy",
                    outcome,
                    f"{large}: accuracy {_pct(big, 'd_accuracy_pct')}, energy {_pct(big, 'd_energy_pct')}",
                )
            )
        )
    mv = _row(o, small, "mv")
    if mv is not None:
        a, b = PAPER_TRADEOFF["mv_energy_pct"]
        why = f"accuracy {_pct(mv, 'd_accuracy_pct')}, energy {_pct(mv, 'd_energy_pct')}"
        if mv_prices is not None and len(mv_prices):
            p = mv_prices.set_index(["samples", "prefill"]).change_pct
            ways = "; ".join(
                f"{k} samples: {p[(k, 'own')]:+.0f} % with a prefill per sample, {p[(k, 'shared')]:+.0f} % "
                f"with one shared prefill"
                for k in dict.fromkeys(mv_prices.samples)
            )
            why += (
                f"; the operating curves price MV against one direct answer at {ways}. The paper's "
                f"+{a}-{b} % with 16 samples lies far below a prefill per sample, so its samples shared one"
            )
        out.append(
            str(
                verdicts.Verdict(
                    f"The claim that majority vote costs +{a}-{b} % energy",
                    verdicts.within(mv.d_energy_pct_lo, mv.d_energy_pct_hi, a, b),
                    why,
                )
            )
        )
    return f"On {_where(runs)}, against {small} answering directly:\n\n" + "\n\n".join(out)


def category_router(router, small: str, large: str, runs: pd.DataFrame) -> str:
    """The category router of §5 (:class:`ttclib.tradeoff.Router`) scored on held-out queries: where
    each category went, against the paper's assignment, and the energy saved against always using the
    large model (bootstrap CI over the held-out queries)."""
    routed, saved = router.routing, router.saved
    t = routed.table
    named = {(small, "base"): "small", (large, "base"): "large"}
    went = {r[routed.by]: named.get((r.model, r.strategy), f"{r.model} {r.strategy}") for _, r in t.iterrows()}
    agree = [c for c, to in PAPER_ROUTES.items() if went.get(c) == to]
    compared = [c for c in PAPER_ROUTES if c in went]
    s = saved.set_index("quantity")
    sv, acc = s.loc["saved"], s.loc["accuracy_change"]
    routes = "; ".join(f"{c} → {to}" for c, to in went.items())
    c = router.compared.set_index("policy")
    versus = "; ".join(
        f"{name}: {r.energy_per_query_j:.3g} J, {100 * r.accuracy:.0f} %"
        for name, r in c.iterrows()
        if name == "router" or name in (f"always {small} base", f"always {large} base")
    )
    text = (
        f"On {_where(runs)}, the router (accuracy estimated on half of the queries, energy from the operating "
        f"curves, scored on the other half) sent {routes}. It agrees with the paper's assignment in "
        f"{len(agree)} of {len(compared)} categories the paper names. Per query on the held-out half: {versus}. "
    )
    return text + str(
        verdicts.Verdict(
            f"The claim that routing by category saves energy against always using the large model ({large})",
            verdicts.above(sv.lo, sv.hi, 0.0),
            f"saved {100 * sv.value:.0f} %{_ci(100 * sv.lo, 100 * sv.hi, '.0f', ' %')} of its energy, accuracy "
            f"{100 * acc.value:+.1f} points{_ci(100 * acc.lo, 100 * acc.hi, '+.1f', ' points')}",
        )
    )


# --- Maliakel et al. [002]: DVFS and phases (Section VI) ------------------------------------------------------


class _PaperPhases(TypedDict):
    decode_share_b1_pct: tuple[float, float]
    energy_saved_pct: tuple[float, float]
    latency_delta_pct: tuple[float, float]
    edp_mhz_b1: int
    baseline_mhz: int


PAPER_PHASES: _PaperPhases = {
    "decode_share_b1_pct": (86.2, 90.6),
    "energy_saved_pct": (39.9, 44.2),
    "latency_delta_pct": (-0.1, 5.6),
    "edp_mhz_b1": 960,
    "baseline_mhz": 2842,
}  # Table XI's B=1 rows and XII; prefill shares: dvfs


def _pct3(v: tuple[float, float, float]) -> str:
    return f"{100 * v[0]:.1f} %{_ci(100 * v[1], 100 * v[2], '.1f', ' %')}"


def _x3(v: tuple[float, float, float]) -> str:
    return f"{v[0]:.2f}×{_ci(v[1], v[2], '.2f', '×')}"


def dvfs_phases(data: metrics.RunSet, runs: pd.DataFrame, tables: dict | None = None) -> str:
    """Maliakel et al. [002]'s Section VI claims, one computed verdict each: decode is most of the time at batch 1
    (Table XI: 86-91 %); prefill's share grows with batch size (Table XI, B = 1 → 8); short outputs
    spend a larger share in prefill than long ones (§VI-E); at the lowest clock energy falls more than
    latency rises (Table XI) and the EDP optimum (Table XII) — the last two only where runs lock
    clocks. Long outputs are each model's generating runs with the largest ``max_new_tokens``, short
    ones its log-likelihood runs and shorter generations; generating runs with one new token are the
    subtraction twins and are left out. ``tables``: :func:`ttclib.dvfs.frequency_tables` of ``data``, when
    computed already."""
    from . import dvfs

    try:
        tables = tables or dvfs.frequency_tables(data)
    except dvfs.NoSweep as e:
        tables = {"sweep": dvfs.sweep(data), "no_sweep": e}
    table = tables["sweep"]
    gen = dvfs.generating(table)
    q = data.queries
    out, decode, grows, short = [f"On {_where(runs)}:"], [], [], []
    decode_why, grows_why, short_why = [], [], []
    for model, g in gen.groupby("model", sort=False):
        writes = g[g.scoring.ne("loglikelihood")]
        longest = writes.max_new_tokens.max() if len(writes) else np.nan
        long_runs, short_runs = (
            writes[writes.max_new_tokens == longest],
            g[~g.index.isin(writes[writes.max_new_tokens == longest].index)],
        )
        b1 = long_runs[long_runs.batch_size == long_runs.batch_size.min()]
        for r in b1.itertuples():
            decode.append(verdicts.above(r.decode_share_lo, r.decode_share_hi, 0.5))
            decode_why.append(
                f"{model} (B={r.batch_size}, {r.workload}): "
                f"{_pct3((r.decode_share, r.decode_share_lo, r.decode_share_hi))}"
            )
        for _bench, lg in long_runs.groupby("benchmark", sort=False):
            small, big = lg.nsmallest(1, "batch_size").iloc[0], lg.nlargest(1, "batch_size").iloc[0]
            if small.batch_size != big.batch_size:
                ratio = dvfs.share_ratio(q[q.run_id == big.run_id], q[q.run_id == small.run_id])
                grows.append(verdicts.above(ratio[1], ratio[2], 1.0))
                grows_why.append(
                    f"{model}: prefill share {100 * (1 - small.decode_share):.1f} % at B={small.batch_size} → "
                    f"{100 * (1 - big.decode_share):.1f} % at B={big.batch_size}, {_x3(ratio)}"
                )
        for r in short_runs.itertuples():
            lr = long_runs[long_runs.batch_size == r.batch_size]
            if lr.empty:
                continue
            ratio = dvfs.share_ratio(q[q.run_id == r.run_id], q[q.run_id == lr.run_id.iloc[0]])
            short.append(verdicts.above(ratio[1], ratio[2], 1.0))
            short_why.append(
                f"{model} B={r.batch_size}: {r.workload} {100 * (1 - r.decode_share):.1f} % vs "
                f"{lr.workload.iloc[0]} {100 * (1 - lr.decode_share.iloc[0]):.1f} % in prefill, {_x3(ratio)}"
            )
    lo, hi = PAPER_PHASES["decode_share_b1_pct"]
    out.append(
        str(
            verdicts.Verdict(
                f"The claim that decode is most of the inference time at batch 1 (Table XI: "
                f"{lo}–{hi} % with ≤ 100 new tokens)",
                verdicts.all_of(decode),
                "; ".join(decode_why) or "no generating run",
            )
        )
    )
    out.append(
        str(
            verdicts.Verdict(
                "The claim that prefill's share of time grows with batch size (Table XI: "
                "10.9 → 23.0 % from B=1 to B=8)",
                verdicts.all_of(grows),
                "; ".join(grows_why) or "one batch size only",
            )
        )
    )
    (lo_s, hi_s), (lo_l, hi_l) = dvfs.PAPER_PREFILL_SHARE_PCT["short"], dvfs.PAPER_PREFILL_SHARE_PCT["long"]
    out.append(
        str(
            verdicts.Verdict(
                f"The claim that short outputs spend a larger share of time in prefill "
                f"(§VI-E: {lo_s}–{hi_s} % vs {lo_l}–{hi_l} %)",
                verdicts.all_of(short),
                "; ".join(short_why) or "one output length only",
            )
        )
    )
    out.extend(_frequency_verdicts(data, tables))
    return "\n\n".join(out)


def _frequency_verdicts(data: metrics.RunSet, tables: dict) -> list[str]:
    saved_claim = (
        f"The claim that at the lowest clock energy falls by more than latency rises (Table XI: "
        f"{PAPER_PHASES['energy_saved_pct'][0]}–{PAPER_PHASES['energy_saved_pct'][1]} % saved for "
        f"{PAPER_PHASES['latency_delta_pct'][0]:+} to {PAPER_PHASES['latency_delta_pct'][1]:+} % latency)"
    )
    edp_claim = (
        f"The claim that the EDP-optimal clock lies well below the maximum (Table XII: "
        f"{PAPER_PHASES['edp_mhz_b1']} of {PAPER_PHASES['baseline_mhz']} MHz at B=1)"
    )
    if "no_sweep" in tables:
        e = tables["no_sweep"]
        why = f"{e}; this hardware has no SM clock to lock" if (data.runs.meter != "nvml").all() else str(e)
        return [
            str(verdicts.Verdict(saved_claim, "not tested", why)),
            str(verdicts.Verdict(edp_claim, "not tested", why)),
        ]
    sav, edp = tables["savings"], tables["edp"]
    outcomes: list[verdicts.Outcome] = []
    parts: list[str] = []
    for r in sav.itertuples():
        outcomes.append(
            verdicts.above(r.energy_saved_lo - r.latency_delta_hi, r.energy_saved_hi - r.latency_delta_lo, 0)
            if r.energy_saved_lo == r.energy_saved_lo
            else "inconclusive"
        )
        parts.append(
            f"{r.model} B={r.batch_size}: "
            f"{r.energy_saved_pct:.1f} %{_ci(r.energy_saved_lo, r.energy_saved_hi, '.1f', ' %')} "
            f"saved, latency {r.latency_delta_pct:+.1f} %{_ci(r.latency_delta_lo, r.latency_delta_hi, '+.1f', ' %')} "
            f"({r.low_mhz:g} vs {r.base_mhz:g} MHz)"
        )
    out = [str(verdicts.Verdict(saved_claim, verdicts.all_of(outcomes), "; ".join(parts) or "no pair of clocks"))]
    e_out: list[verdicts.Outcome] = []
    e_parts: list[str] = []
    for r in edp.itertuples():
        below = r.frequency_mhz < r.base_mhz
        e_out.append(
            "held" if below and r.share >= 0.95 else "did not hold" if not below and r.share >= 0.95 else "inconclusive"
        )
        e_parts.append(
            f"{r.model} B={r.batch_size}: {r.frequency_mhz:g} MHz of {r.base_mhz:g} ({r.share:.0%} of "
            f"bootstrap resamples; repetitions: {', '.join(f'{f:g}' for f in r.by_repetition)})"
        )
    out.append(str(verdicts.Verdict(edp_claim, verdicts.all_of(e_out), "; ".join(e_parts) or "no sweep")))
    return out


def clock_lock(facts: pd.DataFrame) -> str:
    """What ``make gpu-check`` measured when it locked the SM clock under load (``reference.clock_facts``):
    per clock, the clock NVML read and the power, and whether the highest one was reached."""
    a = facts.attrs
    parts = [
        f"{r.locked_mhz:g} MHz → read {r.min_sm_clock_mhz:g}–{r.max_sm_clock_mhz:g} MHz (mean "
        f"{r.mean_sm_clock_mhz:.0f}) at {r.counter_mean_power_w:.0f} W"
        for r in facts.itertuples()
    ]
    top = facts.iloc[facts.locked_mhz.argmax()]
    short = top.mean_sm_clock_mhz < 0.95 * top.locked_mhz
    tail = (
        f" At the highest clock the GPU ran {100 * (1 - top.mean_sm_clock_mhz / top.locked_mhz):.0f} % below the "
        f"lock: a full clock is not always reached under load — the kind of throttling that would make a lower "
        f"clock look faster, as Maliakel et al. [002]'s Table XII does at 960 MHz; runs record the clock read and the "
        f"throttle reasons (run.json `clocks`)."
        if short
        else " Every locked clock was reached."
    )
    return (
        f"make gpu-check locked the SM clock of an {a.get('gpu')} (driver {a.get('driver')}) under a load "
        f"({a.get('load')}; {a.get('path')}): "
        + "; ".join(parts)
        + f"; reset: {a.get('reset')}, clock after reset {a.get('sm_clock_after_reset_mhz')} MHz."
        + tail
    )


# --- Maliakel et al. [002], §V and §VII: difficulty from text, routing with DVFS -------------------------------


class _PaperDifficulty(TypedDict):
    length_r: float
    entity_r: tuple[float, float]
    causal_r: tuple[float, float]
    features_pct: float
    length_pct: float
    gap: tuple[float, float]
    unmoved_pct: float


PAPER_DIFFICULTY: _PaperDifficulty = {
    "length_r": 0.002,
    "entity_r": (-0.32, -0.20),
    "causal_r": (-0.18, -0.13),
    "features_pct": 68.6,
    "length_pct": 51.1,
    "gap": (0.188, 0.304),
    "unmoved_pct": 44.5 + 32.6,
}
LENGTH_R_NEAR_ZERO = 0.10  # the paper's own bar for a weak feature (§V-E2, |r| < 0.10)


def _r(row) -> str:
    return f"r = {row.r:+.2f}{_ci(row.lo, row.hi, '+.2f')}" if row.r == row.r else "r undefined (a constant)"


def difficulty_features(w, ablation: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Maliakel et al. [002]'s §V claims on a :class:`ttclib.features.Workload`, one computed verdict each: length
    does not predict quality; entity density and the causal question score correlate negatively with
    quality at every model size; the features classify difficulty better than the length rule (Table VI,
    paired over the same queries); the rule's easy queries score higher under every model (Table X); most
    queries gain nothing from a larger model (Table IX)."""
    from . import features as ft

    q, per, p = w.queries, w.quality, PAPER_DIFFICULTY
    models = f"{len(w.models)} models ({', '.join(w.models)}), {len(q)} queries of {', '.join(q.dataset.unique())}"
    out = [f"On {metrics.hardware_label(runs)}, {models} (quality only: no energy in these claims):"]
    length = ft.correlations(q, "quality", ["input_tokens"]).iloc[0]
    out.append(
        str(
            verdicts.Verdict(
                f"The claim that input length does not predict quality (§V-D1: r = {p['length_r']}; |r| < "
                f"{LENGTH_R_NEAR_ZERO} here)",
                verdicts.within(length.lo, length.hi, -LENGTH_R_NEAR_ZERO, LENGTH_R_NEAR_ZERO),
                _r(length),
            )
        )
    )
    by_model = ft.correlations_by_model(per, w.models)
    for feature, name, (lo, hi) in (
        ("entity_density", "entity density", p["entity_r"]),
        ("causal_question_score", "the causal question score", p["causal_r"]),
    ):
        rows = by_model[by_model.feature == feature]
        outcome = verdicts.all_of(verdicts.below(r.lo, r.hi, 0.0) for r in rows.itertuples())
        why = "; ".join(f"{r.model}: {_r(r)}" for r in rows.itertuples())
        if q[feature].nunique() < 2:
            why = f"every query has the same {name} ({q[feature].iloc[0]:.2f}): nothing to correlate"
        out.append(
            str(
                verdicts.Verdict(
                    f"The claim that {name} correlates negatively with quality at every model "
                    f"size (Table VIII: {lo:+.2f} to {hi:+.2f})",
                    outcome,
                    why,
                )
            )
        )
    rule, feats = f"length > {ft.LENGTH_CUT} tokens", "features only (no length)"
    acc = ablation.set_index("features").accuracy
    # beating the length rule is not enough where the labels are unbalanced: the classifier must also
    # beat calling every query the more common label
    diffs = {other: ft.ablation_difference(ablation, other, feats) for other in (rule, "majority class")}
    out.append(
        str(
            verdicts.Verdict(
                "The claim that the text features classify difficulty better than length "
                f"(Table VI: {p['features_pct']} % "
                f"vs {p['length_pct']} %)",
                verdicts.all_of(verdicts.above(d[1], d[2], 0.0) for d in diffs.values()),
                f"features {100 * acc[feats]:.1f} %; "
                + "; ".join(
                    f"vs {other} {100 * acc[other]:.1f} %: "
                    f"{100 * d[0]:+.1f} points{_ci(100 * d[1], 100 * d[2], '+.1f')}"
                    for other, d in diffs.items()
                ),
            )
        )
    )
    gaps = ft.rule_gap(per, "quality").set_index("model").loc[list(w.models)].reset_index()
    lo, hi = p["gap"]
    out.append(
        str(
            verdicts.Verdict(
                "The claim that the rule's easy queries (entity density < 0.20, causal score < 0.05) "
                "score higher than its "
                f"hard ones under every model (Table X: +{lo} to +{hi})",
                verdicts.all_of(verdicts.above(g.lo, g.hi, 0.0) for g in gaps.itertuples()),
                "; ".join(
                    f"{g.model}: {g.gap:+.3f}{_ci(g.lo, g.hi, '+.3f')} ({g.n_easy} easy, {g.n_hard} hard)"
                    for g in gaps.itertuples()
                ),
            )
        )
    )
    from .fits import proportion_ci

    unmoved = proportion_ci(q.pattern.isin(["Always Easy", "Always Hard"]).astype(float))
    out.append(
        str(
            verdicts.Verdict(
                f"The claim that most queries gain nothing from a larger model (Table IX: Always Easy + Always Hard = "
                f"{p['unmoved_pct']:.1f} %)",
                verdicts.above(unmoved[1], unmoved[2], 0.5),
                f"{_pct3(unmoved)} of {len(q)} queries over {len(w.models)} sizes ("
                + ", ".join(f"{k} {100 * v:.1f} %" for k, v in q.pattern.value_counts(normalize=True).items())
                + "); were each model right at its own accuracy "
                + f"({', '.join(f'{100 * a:.0f} %' for a in _accuracies(w))}) "
                f"whatever the query, {100 * ft.unmoved_by_chance(w.quality, w.models):.1f} % would be",
            )
        )
    )
    return "\n\n".join(out)


def _accuracies(w) -> list[float]:
    return [float(w.quality[w.quality.model == m].correct.mean()) for m in w.models]


PAPER_ROUTING_002 = {"routing_saved_pct": 80, "quality_cost": 0.068, "dvfs_saved_pct": 44, "combined_saved_pct": 88}


def routing_dvfs(table: pd.DataFrame, runs: pd.DataFrame, routers: dict[str, str]) -> str:
    """Maliakel et al. [002]'s §VII claims on :func:`ttclib.policies.compare`'s table: routing by scaling pattern saves
    energy against the largest model at full clock, at a quality cost of at most 6.8 points (Table XVIII);
    a router that reads only the text does too; the lowest clock alone saves energy at no quality cost and
    routing with it saves more than either (only where runs lock clocks). ``routers``: the table's router
    names -> predictor column, as given to ``compare``."""
    p = PAPER_ROUTING_002
    t = table.set_index("policy")
    base = table.attrs.get("baseline", {})
    clock = base.get("clock")
    clocked = any(n.endswith(f" at {clock}") for n in t.index)

    def routing_only(name: str):
        return t.loc[f"{name} at {clock}"] if clocked else t.loc[name]

    out = [
        f"On {_where(runs)}, against always {base.get('model')} ({base.get('strategy')}, clock {clock}); scored on "
        f"the held-out half ({int(table.n.iloc[0])} queries):"
    ]

    def saved_and_cost(r) -> tuple[verdicts.Outcome, str]:
        outcome = verdicts.all_of(
            [
                verdicts.above(r.saved_lo, r.saved_hi, 0.0),
                verdicts.above(r.d_quality_lo, r.d_quality_hi, -p["quality_cost"]),
            ]
        )
        return outcome, (
            f"{r.saved_pct:.1f} % saved{_ci(r.saved_lo, r.saved_hi, '.1f', ' %')}, quality "
            f"{100 * r.d_quality:+.1f} points{_ci(100 * r.d_quality_lo, 100 * r.d_quality_hi, '+.1f')}"
        )

    oracles = [n for n, by in routers.items() if t.loc[n, "kind"] == "oracle"]
    realistic = [n for n in routers if n not in oracles]
    for names, claim in (
        (oracles, "routing each query by its scaling pattern (an oracle: known after every model answered)"),
        (realistic, "routing by what the text alone predicts"),
    ):
        if not names:
            continue
        parts = [saved_and_cost(routing_only(n)) for n in names]
        out.append(
            str(
                verdicts.Verdict(
                    f"The claim that {claim} saves energy at a quality cost of at most "
                    f"{100 * p['quality_cost']:.1f} points "
                    f"(Table XVIII: {p['routing_saved_pct']} % saved, 83.8 → 77.0 %)",
                    verdicts.all_of(o for o, _ in parts),
                    "; ".join(f"{n}: {why}" for n, (_, why) in zip(names, parts, strict=True)),
                )
            )
        )
    dvfs = t[t.index == "DVFS only"]
    if not clocked or dvfs.empty:
        why = "no run locks the SM clock here" + (" (a CPU)" if "cuda" not in set(runs.get("device", [])) else "")
        for claim in (
            f"the lowest SM clock alone saves energy at no quality cost (Table XVIII: {p['dvfs_saved_pct']} %)",
            f"routing at the lowest clock saves more than either alone (Table XVIII: {p['combined_saved_pct']} %)",
        ):
            out.append(
                str(
                    verdicts.Verdict(
                        f"The claim that {claim}", "not tested", why + "; the `paper` profile measures it on a GPU"
                    )
                )
            )
        return "\n\n".join(out)
    d = dvfs.iloc[0]
    out.append(
        str(
            verdicts.Verdict(
                "The claim that the lowest SM clock alone saves energy at no quality cost "
                f"(Table XVIII: {p['dvfs_saved_pct']} %)",
                verdicts.all_of(
                    [
                        verdicts.above(d.saved_lo, d.saved_hi, 0.0),
                        verdicts.within(d.d_quality_lo, d.d_quality_hi, -0.01, 0.01),
                    ]
                ),
                saved_and_cost(d)[1],
            )
        )
    )
    outcomes: list[verdicts.Outcome] = []
    whys: list[str] = []
    for n in routers:
        c, r = t.loc[n], routing_only(n)
        best_alone = max(r.saved_hi, d.saved_hi)
        outcomes.append(
            "held"
            if c.saved_lo > best_alone
            else "did not hold"
            if c.saved_hi < max(r.saved_pct, d.saved_pct)
            else "inconclusive"
        )
        whys.append(
            f"{n}: {c.saved_pct:.1f} %{_ci(c.saved_lo, c.saved_hi, '.1f', ' %')} vs routing alone "
            f"{r.saved_pct:.1f} %, DVFS alone {d.saved_pct:.1f} %"
        )
    out.append(
        str(
            verdicts.Verdict(
                f"The claim that routing at the lowest clock saves more than either alone "
                f"(Table XVIII: {p['combined_saved_pct']} %)",
                verdicts.all_of(outcomes),
                "; ".join(whys),
            )
        )
    )
    return "\n\n".join(out)
