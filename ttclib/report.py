"""Computed sentences that compare a result with the paper's claim — never hand-typed numbers."""
from __future__ import annotations

import pandas as pd
from scipy import stats

from . import metrics

# Paper 000, section 4.1 (math, A100, Qwen2.5): Base 1.5B -> 7B gained 4.8 points at about the
# same energy; RT on 1.5B gained 34.3 points at similar energy (7.5x the gain of scaling).
PAPER_OVERVIEW = {"scaling_gain_pct": 4.8, "ttc_gain_pct": 34.3}


def _where(runs: pd.DataFrame) -> str:
    """'<hardware> (meter: <name> (<method>))': every sentence says what measured it."""
    return f"{metrics.hardware_label(runs)} ({metrics.meter_label(runs)})"


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


def _describe(g: dict) -> str:
    slope = f"{g['gain_per_wh']:.0f} points/Wh" if g["gain_per_wh"] == g["gain_per_wh"] else \
        ("accuracy gained with less energy" if g["accuracy_gain_pct"] > 0 else "no gain for less energy")
    return (f"{g['accuracy_gain_pct']:+.1f} points for {g['energy_ratio']:.2f}× the energy per query "
            f"({slope})")


def overview(points: pd.DataFrame, runs: pd.DataFrame, ttc: str | None = None, small: str | None = None,
             large: str | None = None, ttc_model: str | None = None) -> str:
    """Scaling the model (Base ``small`` → Base ``large``) vs spending test-time compute (``ttc`` on
    ``ttc_model``), per task category of ``points`` (:func:`metrics.operating_points` by category,
    model, strategy; or by model, strategy).

    ``small``/``large`` default to the Base models with the fewest and most parameters, ``ttc_model``
    to the ``ttc`` model closest in size to ``small`` (the paper's RT runs use the R1 distill of the
    same size as the Base model).
    """
    ttc = ttc_strategy(points, ttc)
    size = metrics.model_sizes(runs)
    base = sorted(points[points.strategy == "base"].model.unique(), key=lambda m: size.get(m, 0))
    small, large = small or base[0], large or base[-1]
    ttc_model = ttc_model or min(points[points.strategy == ttc].model.unique(),
                                 key=lambda m: abs(size.get(m, 0) - size.get(small, 0)))
    groups = points.groupby("category", sort=False) if "category" in points else [(None, points)]
    parts, verdicts = [], {}
    for cat, pts in groups:
        frm = {"model": small, "strategy": "base"}
        scale = metrics.gain_per_wh(pts, frm, {"model": large, "strategy": "base"})
        spend = metrics.gain_per_wh(pts, frm, {"model": ttc_model, "strategy": ttc})
        parts.append(f"{cat + ': ' if cat else ''}scaling Base {small} → {large} gave {_describe(scale)}; "
                     f"{ttc.upper()} on {ttc_model} gave {_describe(spend)}")
        verdicts[cat] = _verdict(scale, spend)
    text = (f"On {_where(runs)}: " + "; ".join(parts) + ". "
            f"Paper (math, A100): scaling 1.5B→7B +{PAPER_OVERVIEW['scaling_gain_pct']} points at similar energy, "
            f"RT on 1.5B +{PAPER_OVERVIEW['ttc_gain_pct']} points. ")
    if len(set(verdicts.values())) == 1:
        return text + next(iter(verdicts.values()))
    return text + " ".join(f"On {cat}: {v}" for cat, v in verdicts.items())


def _verdict(scale: dict, spend: dict) -> str:
    claim = "The claim that test-time compute buys more accuracy per unit energy than scaling the model"
    if spend["accuracy_gain_pct"] <= 0 and scale["accuracy_gain_pct"] <= 0:
        return f"{claim} could not be tested here: neither scaling nor test-time compute improved accuracy."
    if spend["accuracy_gain_pct"] <= 0:
        return f"{claim} did not hold here: test-time compute did not improve accuracy."
    held = scale["accuracy_gain_pct"] <= 0 or _efficiency(spend) > _efficiency(scale)
    return f"{claim} {'held' if held else 'did not hold'} here."


def _efficiency(g: dict) -> float:
    """Order gains: any gain at lower energy beats any slope; otherwise compare points per Wh."""
    if g["energy_delta_wh"] <= 0:
        return float("inf") if g["accuracy_gain_pct"] > 0 else float("-inf")
    return g["gain_per_wh"]



# Paper 000, section 4 (Figure 7, 32B on A100): throughput grows with batch size for Base and for
# RT on MATH500; RT on LiveCodeBench (~6,588 output tokens per query) saturates near batch 128.
PAPER_BATCH = {"saturation_batch": 128, "long_output_tokens": 6588}


def batch_throughput(runs: pd.DataFrame, curves: dict, short: str = "base", long: str | None = None) -> str:
    """Does throughput grow with batch size, and do long outputs saturate first?"""
    long = ttc_strategy(runs, long)
    def gain(strategy):
        pts = runs[runs.strategy == strategy].sort_values("batch_size")
        first, last = pts.iloc[0], pts.iloc[-1]
        return last.queries_per_s / first.queries_per_s, int(first.batch_size), int(last.batch_size)

    (g_s, b0, b1), (g_l, _, _) = gain(short), gain(long)
    sat_s, sat_l = (getattr(curves[s], "ceiling", float("nan")) for s in (short, long))
    lo, hi = getattr(curves[long], "saturation_ci", (float("nan"), float("nan")))
    tokens = runs.groupby("strategy").completion_tokens_per_query.mean()
    where = _where(runs)
    text = (f"On {where}: from batch {b0} to {b1}, throughput grew {g_s:.1f}× for {short} "
            f"({tokens[short]:.0f} output tokens/query) and {g_l:.1f}× for {long} ({tokens[long]:.0f} tokens/query). ")
    if sat_l == sat_l:
        text += (f"The fitted {curves[long].form} curve puts {long}'s saturation ({curves[long].saturation:.0%} "
                 f"of its ceiling) at batch "
                 f"{sat_l:.3g} (95 % CI {lo:.3g}–{hi:.3g})")
        text += f", {short}'s at {sat_s:.3g}. " if sat_s == sat_s else f"; {short} shows no ceiling. "
    elif sat_s == sat_s:
        text += (f"{short}'s fitted {curves[short].form} curve reaches {curves[short].saturation:.0%} of its "
                 f"ceiling at batch {sat_s:.3g}; "
                 f"{long} shows no ceiling in the measured range ({curves[long].form} fits best). ")
    else:
        text += (f"Neither curve shows a ceiling within twice the largest batch measured ({short}: "
                 f"{curves[short].form} fits best, {long}: {curves[long].form}). ")
    text += (f"Paper (32B, A100): throughput grows with batch size, and RT on LiveCodeBench "
             f"(~{PAPER_BATCH['long_output_tokens']} tokens/query) saturates near batch {PAPER_BATCH['saturation_batch']}. ")
    grows = g_s > 1 and g_l > 1
    earlier = sat_l == sat_l and (sat_s != sat_s or sat_l < sat_s)
    claim = "The claim that larger batches raise throughput, with long outputs saturating first,"
    if not grows:
        return text + f"{claim} did not hold here: throughput did not grow with batch size."
    if earlier:
        return text + f"{claim} held here."
    return text + (f"{claim} held only in part here: larger batches raised throughput, but the long outputs "
                   f"did not saturate first.")


# Paper 000, section 4 (Figure 3, A100): MV draws about 5 % more power than Base on average
# (larger effective batches); RT draws slightly less (decode- and memory-bandwidth-bound).
PAPER_POWER = {"mv_vs_base_pct": 5.0}


def power(summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Mean power of each test-time-compute strategy relative to Base, per model, and the verdict."""
    df = summary.merge(runs[["run_id", "model", "strategy", "meter"]], on="run_id")
    base = df[df.strategy == "base"].set_index("model").mean_power_w
    parts, changes = [], []
    for row in df[df.strategy != "base"].itertuples():
        if row.model in base.index:
            change = 100 * (row.mean_power_w / base[row.model] - 1)
            parts.append(f"{row.strategy.upper()} {change:+.1f} % on {row.model}")
            changes.append(change)
    where = _where(runs)
    text = (f"On {where}, mean power relative to Base: {'; '.join(parts)}. "
            f"Paper (A100, NVML): TTC changes power only marginally, MV about +{PAPER_POWER['mv_vs_base_pct']:.0f} %, "
            f"RT slightly below Base. ")
    claim = "The claim that test-time compute changes power draw only marginally"
    if set(df.meter) == {"estimate"}:
        return text + (f"{claim} could not be tested here: the estimate meter derives power from CPU time, so "
                       f"these numbers show CPU utilisation, not measured watts.")
    marginal = all(abs(c) <= 15 for c in changes)
    return text + f"{claim} {'held' if marginal else 'did not hold'} here (within ±15 % of Base)."


def _ci(lo: float, hi: float) -> str:
    return f" (95 % CI {lo:.2f}–{hi:.2f})" if lo == lo and hi == hi else ""


# Paper 000, section 4.1 (Figure 2, A100): average energy of MV and RT over Base per task category,
# and RT's average output-token multiplier.
PAPER_NORMALIZED = {"mv": {"math": 2.63, "code": 2.01, "common_sense": 4.69},
                    "rt": {"math": 3.66, "code": 10.4, "common_sense": 1.08}}
PAPER_RT_TOKEN_RATIO = 4.4


def normalized_energy(normalized: pd.DataFrame, averages: pd.DataFrame, runs: pd.DataFrame, samples: int = 5) -> str:
    """Each strategy's energy multiplier per category against the paper's, and the verdict on the
    claim that TTC multiplies energy per query, MV by less than its sample count (except when
    answers are a token or two long, where it costs the full multiple)."""
    parts = []
    for row in averages.itertuples():
        paper_key = "rt" if row.strategy in ("rt", "cot") else row.strategy
        paper = PAPER_NORMALIZED.get(paper_key, {}).get(row.category)
        one = normalized[(normalized.category == row.category) & (normalized.strategy == row.strategy)]
        ci = _ci(one.energy_ratio_lo.iloc[0], one.energy_ratio_hi.iloc[0]) if len(one) == 1 else ""
        label = row.strategy.upper()
        ref = f"paper {paper_key.upper()}: {paper}×" if paper else "no paper figure for this category"
        parts.append(f"{label} used {row.energy_ratio:.2f}× Base energy on {row.category}{ci} with "
                     f"{row.output_token_ratio:.2f}× its output tokens ({ref})")
    text = f"On {_where(runs)}: " + "; ".join(parts) + ". "
    ttc = normalized[normalized.strategy != "mv"]
    if len(ttc):
        text += (f"Longer reasoning produced {ttc.output_token_ratio.mean():.1f}× Base's output tokens on average "
                 f"(paper, RT: {PAPER_RT_TOKEN_RATIO}×). ")
    more = (normalized.energy_ratio_lo.fillna(normalized.energy_ratio) > 1).all()
    mv = normalized[normalized.strategy == "mv"]
    one_token = mv.base_output_tokens <= 2    # one-token answers: the paper finds the full multiple there
    sub_linear = ((mv.energy_ratio < samples) | one_token).all()
    claim = (f"The claim that test-time compute multiplies the energy per query, MV by less than its "
             f"{samples} samples,")
    if more and sub_linear:
        return text + f"{claim} held here."
    if more:
        worst = mv.loc[mv.energy_ratio.idxmax()]
        return text + (f"{claim} held only in part here: MV cost up to {worst.energy_ratio:.2f}× Base "
                       f"({worst.model} on {worst.benchmark}), not less than {samples}×.")
    return text + f"{claim} did not hold here: not every strategy's energy was above Base's with 95 % confidence."


# Paper 000, sections 4.2 and 5 (Figures 4 and 5, RT on MATH500/LiveCodeBench): correct answers are
# shorter than incorrect ones; cutting generation at 13,108 of 32,768 tokens (the fourth point of
# the sweep, above the ~12,000 tokens correct answers use) saves 14 % energy without accuracy loss.
PAPER_EARLY_EXIT = {"cut_tokens": 13108, "max_tokens": 32768, "saved_pct": 14.0}
MIN_PER_GROUP = 3   # correct and incorrect answers each, before their lengths are compared


def length_sweep(results: pd.DataFrame, sweep: pd.DataFrame, runs: pd.DataFrame, ttc: str | None = None) -> str:
    """Correct vs incorrect answer lengths at the longest maximum length, and the measured early exit.

    ``results``: per-query results of the longest-length runs; ``sweep``: :func:`metrics.early_exit_from_sweep`.
    """
    ttc = ttc_strategy(results, ttc)
    parts, shorter = [], []
    lengths = metrics.answer_lengths(results[results.strategy == ttc])   # one value per query and outcome
    for (model, strategy), g in lengths.groupby(["model", "strategy"], sort=False):
        right, wrong = g.completion_tokens[g.correct], g.completion_tokens[~g.correct]
        if min(len(right), len(wrong)) < MIN_PER_GROUP:
            parts.append(f"{model} {strategy}: {len(right)} queries answered correctly and {len(wrong)} incorrectly, "
                         f"too few (< {MIN_PER_GROUP}) to compare their lengths")
            continue
        p = stats.mannwhitneyu(right, wrong, alternative="less").pvalue
        parts.append(f"{model} {strategy}: correct answers {right.median():.0f} tokens (median over {len(right)} "
                     f"queries), incorrect {wrong.median():.0f} (over {len(wrong)}; one-sided Mann–Whitney "
                     f"p = {p:.2g})")
        shorter.append(p < 0.05)
    text = f"On {_where(runs)}: " + "; ".join(parts) + ". "
    exits = sweep[sweep.strategy == ttc]
    for row in exits.itertuples():
        share = row.energy_saved_share
        effect = (f"saves {100 * share:.0f} % of its energy per query" if share >= 0 else
                  f"yet used {100 * -share:.0f} % more energy per query (measurement noise between runs)")
        lost = 100 * row.accuracy_lost
        accuracy = f"lost {lost:.1f} points" if lost >= 0 else f"gained {-lost:.1f} points"
        text += (f"For {row.model} {row.strategy}, stopping at {row.cut_tokens:.0f} of {row.max_tokens:.0f} tokens "
                 f"keeps the longest run's accuracy ({accuracy}) and {effect}. ")
    p = PAPER_EARLY_EXIT
    text += (f"Paper (RT): correct answers are shorter than incorrect ones; a cut at {p['cut_tokens']} of "
             f"{p['max_tokens']} tokens saved {p['saved_pct']:.0f} % with no accuracy loss. ")
    claim = "The claim that correct answers are shorter, so a length cut saves energy without losing accuracy,"
    if not shorter:
        return text + (f"{claim} could not be tested here: no configuration had {MIN_PER_GROUP} or more correct "
                       f"and incorrect answers each.")
    saves = len(exits) > 0 and (exits.energy_saved_share > 0).any()
    if all(shorter) and saves:
        return text + f"{claim} held here."
    if any(shorter) or saves:
        return text + f"{claim} held only in part here."
    return text + f"{claim} did not hold here."


# Paper 000, section 5 (equation 1a): an oracle router used 1.75 kWh where always using the largest
# model used 2.03 kWh (LiveCodeBench) and 2.20 kWh (MATH500).
PAPER_ROUTING = {"oracle_kwh": 1.75, "max_kwh": {"livecodebench": 2.03, "math500": 2.20}}


def difficulty(points: pd.DataFrame, routing, runs: pd.DataFrame, p: float, levels: list[str]) -> str:
    """Energy per query across difficulty levels, and what routing by difficulty saves (eq. 1a/1b)."""
    grows = []
    for _, g in points.groupby(["model", "strategy"], sort=False):
        e = g.set_index("difficulty").reindex(levels).energy_per_query_j.dropna()
        grows.append(bool(len(e) > 1 and e.iloc[-1] > e.iloc[0]))
    t = routing.table
    picks = "; ".join(f"{r.difficulty} → {r.model} {r.strategy}" for r in t.itertuples())
    e_r, acc_r = routing.realistic(p)
    text = (f"On {_where(runs)}: the hardest level cost more energy per query than the easiest for "
            f"{sum(grows)} of {len(grows)} configurations. The oracle router (eq. 1a) picks {picks}: "
            f"{routing.oracle_energy_j:.0f} J for {routing.n} queries at {100 * routing.oracle_accuracy:.1f} % accuracy, "
            f"against {routing.max_energy_j:.0f} J at {100 * routing.max_accuracy:.1f} % always using the fallback "
            f"{' '.join(map(str, routing.fallback.values()))} ({100 * routing.savings(1.0):.0f} % saved); a router that predicts the level with p = {p} (eq. 1b) "
            f"uses {e_r:.0f} J ({100 * routing.savings(p):.0f} % saved) at {100 * acc_r:.1f} %. ")
    paper = PAPER_ROUTING
    saved = ", ".join(f"{100 * (1 - paper['oracle_kwh'] / v):.0f} % on {k}" for k, v in paper["max_kwh"].items())
    text += f"Paper (RT, A100): the oracle saved {saved}. "
    claim = ("The claim that routing queries by difficulty to cheaper configurations saves energy against "
             "always using the most accurate (the fallback), at no accuracy loss,")
    if routing.savings(1.0) > 0 and routing.oracle_accuracy >= routing.max_accuracy:
        return text + f"{claim} held here."
    return text + f"{claim} did not hold here: {'no cheaper configuration matched the fallback' if routing.savings(1.0) <= 0 else 'routing lost accuracy'}."


# --- GPU reference runs (ttclib.reference): what they show, never a verdict -------------------
# These describe hardware-only runs (random weights, fixed output lengths) measured beside the
# section's own; they state numbers and the paper's for context, and decide no claim.

WARMUP_SLOWDOWN = 1.5   # a first repetition this much slower than the later ones is called a warm-up


def _gpu_where(runs: pd.DataFrame) -> str:
    """'GPU reference on NVIDIA H200 (meter: nvml (energy_counter); power: NVML instant power field)'."""
    devices = sorted(set(runs.measured_devices.dropna())) if "measured_devices" in runs else []
    source = metrics.power_source_label(runs)
    return (f"GPU reference on {', '.join(devices) or metrics.hardware_label(runs)} ({metrics.meter_label(runs)}"
            f"{'; power: ' + source if source else ''}; hardware only, not a verdict)")


def _warmup(first: pd.DataFrame, runs: pd.DataFrame,
            effect: str = "which lowers those runs' mean throughput and raises their mean energy per query") -> str:
    """Which runs' first repetition was a warm-up, and what it does to their means."""
    f = first.merge(runs[["run_id", "strategy", "max_new_tokens", "batch_size", "repetitions"]], on="run_id")
    slow = f[f.slowdown >= WARMUP_SLOWDOWN].sort_values("slowdown", ascending=False)
    if slow.empty:
        return (f"No run's first repetition took {WARMUP_SLOWDOWN}× its later ones' time or more "
                f"(at most {f.slowdown.max():.2f}×). ")
    which = "; ".join(f"{r.strategy} {r.max_new_tokens} tokens at batch {r.batch_size}: {r.slowdown:.1f}×"
                      for r in slow.itertuples())
    reps = ", ".join(map(str, sorted(set(f.repetitions))))
    return (f"Warm-up: in {len(slow)} of {len(f)} runs the first repetition took {WARMUP_SLOWDOWN}× the later ones' "
            f"time or more ({which}), {effect}; "
            f"with {reps} repetitions per run the 95 % CIs are wide. ")


def gpu_power(summary: pd.DataFrame, runs: pd.DataFrame, first: pd.DataFrame) -> str:
    """Mean power of each strategy shape on the GPU, relative to Base where there is one."""
    df = summary.drop(columns="samples").merge(
        runs[["run_id", "strategy", "max_new_tokens", "samples", "batch_size", "idle_power_w"]], on="run_id")
    order = ["base", "mv", "cot", "rt"]
    df = df.assign(_o=[order.index(s) if s in order else len(order) for s in df.strategy]).sort_values("_o")
    base = df[df.strategy == "base"].mean_power_w
    parts = []
    for r in df.itertuples():
        samples = int(r.samples) if r.samples == r.samples and r.samples else 1
        shape = f"{samples} × {r.max_new_tokens}" if samples > 1 else f"{r.max_new_tokens}"
        change = (f", {100 * (r.mean_power_w / base.iloc[0] - 1):+.1f} % vs base"
                  if len(base) == 1 and r.strategy != "base" else "")
        parts.append(f"{r.strategy.upper()} ({shape} output tokens) {r.mean_power_w:.0f} W ± "
                     f"{r.std_power_w:.0f}{change}")
    batches = ", ".join(map(str, sorted(set(df.batch_size))))
    return (f"{_gpu_where(runs)}: at batch {batches}, mean sampled power was " + "; ".join(parts)
            + f", against an idle baseline of {df.idle_power_w.mean():.0f} W. "
            + _warmup(first, runs, "so those runs' mean power mixes the warm-up with the steady state")
            + f"For context, the paper (A100, SGLang, real models): MV about +{PAPER_POWER['mv_vs_base_pct']:.0f} % "
              f"over Base, RT slightly below.")


def gpu_length(table: pd.DataFrame, curves: dict, runs: pd.DataFrame, first: pd.DataFrame,
               repetitions: pd.DataFrame | None = None) -> str:
    """How energy per query grows with the maximum output length on the GPU, and the fitted form;
    with ``repetitions`` (:func:`metrics.energy_by_repetition`), also over the later repetitions alone."""
    from . import fits

    parts = []
    for (model, strategy), g in table.groupby(["model", "strategy"], sort=False):
        g = g.sort_values("max_new_tokens")
        lo, hi = g.iloc[0], g.iloc[-1]
        text = (f"{strategy} with fixed output lengths: energy per query rose "
                f"{hi.energy_per_query_j / lo.energy_per_query_j:.1f}× from {lo.energy_per_query_j:.1f} J at "
                f"{lo.max_new_tokens} tokens to {hi.energy_per_query_j:.0f} J at {hi.max_new_tokens} "
                f"({hi.max_new_tokens / lo.max_new_tokens:.0f}× the length")
        if repetitions is not None:
            r = repetitions[(repetitions.model == model) & (repetitions.strategy == strategy)]
            r = r[r.repetition > r.repetition.min()].groupby("max_new_tokens").energy_per_query_j.mean()
            if lo.max_new_tokens in r and hi.max_new_tokens in r:
                a, b = r[lo.max_new_tokens], r[hi.max_new_tokens]
                text += f"; {b / a:.1f}× over the later repetitions alone: {a:.1f} → {b:.0f} J"
        text += (f"), and energy per output token from {lo.energy_per_token_j:.2f} J to "
                 f"{hi.energy_per_token_j:.2f} J")
        fit = curves.get((model, strategy))
        if fit is not None and not isinstance(fit, fits.Unfitted):
            text += f"; {fit.form} fits best by BIC ({fit.formula}, J and tokens; R² = {fit.r2:.3f}, n = {fit.n})"
        elif fit is not None:
            text += f"; no fit ({fit.reason})"
        parts.append(text)
    return f"{_gpu_where(runs)}: " + "; ".join(parts) + ". " + _warmup(first, runs).rstrip()


def gpu_throughput(table: pd.DataFrame, curves: dict, runs: pd.DataFrame, first: pd.DataFrame,
                   repetitions: pd.DataFrame) -> str:
    """How throughput and energy per token change with batch size on the GPU, and whether a ceiling shows."""
    later = repetitions.merge(first[["run_id"]], on="run_id")
    later = later[later.repetition > later.groupby("run_id").repetition.transform("min")]
    parts = []
    for strategy, g in table.groupby("strategy", sort=False):
        g = g.sort_values("batch_size")
        lo, hi = g.iloc[0], g.iloc[-1]
        text = (f"{strategy} with {lo.completion_tokens_per_query:.0f} output tokens per query: throughput rose "
                f"{hi.queries_per_s / lo.queries_per_s:.0f}× from {lo.queries_per_s:.2f} queries/s at batch "
                f"{lo.batch_size} to {hi.queries_per_s:.1f} at batch {hi.batch_size}")
        warm = later[later.strategy == strategy].groupby("batch_size").queries_per_s.mean()
        if lo.batch_size in warm and hi.batch_size in warm:
            text += (f" ({warm[hi.batch_size] / warm[lo.batch_size]:.0f}× over the later repetitions alone: "
                     f"{warm[lo.batch_size]:.2f} → {warm[hi.batch_size]:.1f})")
        text += (f", and energy per output token fell from {lo.energy_per_token_j:.2f} J to "
                 f"{hi.energy_per_token_j:.3f} J ({lo.energy_per_token_j / hi.energy_per_token_j:.0f}× less)")
        fit = curves.get(strategy)
        sat = getattr(fit, "ceiling", float("nan"))
        if sat == sat:
            c_lo, c_hi = fit.saturation_ci
            text += (f"; the fitted {fit.form} curve reaches {fit.saturation:.0%} of its ceiling at batch {sat:.3g} "
                     f"(95 % CI {c_lo:.3g}–{c_hi:.3g})")
        elif fit is not None and hasattr(fit, "candidates"):
            c = fit.candidates.set_index("form")
            saturating = c.loc[[f for f in ("michaelis_menten", "exp_saturation") if f in c.index]]
            saturating = saturating[saturating.converged]
            if fit.form in ("michaelis_menten", "exp_saturation"):
                text += (f"; the fitted {fit.form} ceiling lies beyond twice the largest batch: "
                         f"no ceiling within batch {hi.batch_size}")
            elif len(saturating):
                text += (f"; the saturating forms fit no better than the {fit.form} form (ΔBIC "
                         f"{saturating.delta_bic.min():.1f} by BIC): the runs show no ceiling within batch "
                         f"{hi.batch_size}")
            else:
                text += f"; {fit.form} fits best and no saturating form converged"
        parts.append(text)
    return (f"{_gpu_where(runs)}: " + "; ".join(parts) + ". " + _warmup(first, runs)
            + f"For context, the paper (32B, A100, SGLang): throughput grows with batch size, and RT on "
              f"LiveCodeBench saturates near batch {PAPER_BATCH['saturation_batch']}.")
