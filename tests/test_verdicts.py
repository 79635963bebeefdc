"""Verdicts decided by intervals: known-answer data for each outcome, a coverage simulation, and the
paper's own pairing (RT on the R1 distills against Base on Qwen2.5-Instruct) on a synthesised run store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ttclib import metrics, report, routing, verdicts
from ttclib.params import load_params

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = ("held here", "did not hold here", "was inconclusive at this sample size here", "could not be tested here")


def outcome_of(text: str) -> str:
    """The verdict phrase of a report sentence (the last one, when a text has several)."""
    found = [(text.rfind(o), o) for o in OUTCOME if o in text]
    assert found, f"no verdict in: {text}"
    return max(found)[1].removesuffix(" here")


def assert_points_inside(text: str) -> None:
    """Every "<x> % (95 % CI <a> %–<b> %)" and "<x>× (95 % CI <a>–<b>)" in a sentence has a ≤ x ≤ b: a
    point and its interval computed from different quantities once printed −0.9 % (CI −1.8 % to −1.6 %)."""
    import re

    num = r"([+-]?\d+(?:\.\d+)?)"
    found = re.findall(num + r"\s*(?:%|×)?\s*\(95 % CI " + num + r"\s*(?:%|×)?–" + num, text)
    assert found, text
    for x, lo, hi in found:
        assert float(lo) <= float(x) <= float(hi), (x, lo, hi, text)


# --- the interval rules ---------------------------------------------------------------------


def test_paired_difference_ci_covers_at_small_n():
    # two configurations answering the same 20 queries, correlated outcomes; true difference +0.15
    rng = np.random.default_rng(1)
    n, sims, covered = 20, 2000, 0
    for _ in range(sims):
        hard = rng.random(n)
        x = (hard < 0.45).astype(float)
        y = (hard < 0.60).astype(float)  # y solves x's queries and 15 % more
        flip = rng.random(n) < 0.1  # some noise in both directions
        y[flip] = 1 - y[flip]
        true = 0.60 * 0.9 + 0.40 * 0.1 - 0.45
        _, lo, hi = verdicts.paired_difference_ci(x, y)
        covered += lo <= true <= hi
    assert covered / sims >= 0.93


def test_bootstrap_means_resamples_queries_jointly():
    t = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 4.0, 6.0, 8.0]})
    boot = verdicts.bootstrap_means(t, n_boot=200, seed=3)
    assert boot.iloc[0].tolist() == [2.5, 5.0]  # row 0: observed
    assert np.allclose(boot.b, 2 * boot.a)  # same rows drawn for both columns


# --- overview --------------------------------------------------------------------------------


def _overview_results(correct: dict, energy: dict, n: int) -> pd.DataFrame:
    """Three configurations on n queries, one repetition; ``correct[c]``: how many of the first queries
    configuration c gets right; ``energy[c]``: its joules per query (±10 % by query)."""
    rows = []
    for (model, strategy), k in correct.items():
        for q in range(n):
            rows.append(
                dict(
                    model=model,
                    strategy=strategy,
                    benchmark="b",
                    category="math",
                    repetition=0,
                    query_id=f"q{q}",
                    correct=q < k,
                    energy_j=energy[(model, strategy)] * (0.9 + 0.2 * (q % 5) / 4),
                    completion_tokens=10,
                )
            )
    return pd.DataFrame(rows)


OV_RUNS = pd.DataFrame(
    {
        "model": ["s", "l", "s"],
        "parameters": [1, 2, 1],
        "strategy": ["base", "base", "cot"],
        "hardware": "A100",
        "meter": "nvml",
        "meter_method": "energy_counter",
    }
)
CONFIGS = [("s", "base"), ("l", "base"), ("s", "cot")]


@pytest.mark.parametrize(
    "correct, energy, n, expected",
    [
        # TTC +63 points for 2× the energy; scaling +7 points for 2×: TTC wins in every resample
        ((6, 8, 25), (36.0, 72.0, 72.0), 30, "held"),
        # scaling +67 points for 1.1× the energy; TTC +23 points for 10×: scaling wins in every resample
        ((5, 25, 12), (36.0, 40.0, 360.0), 30, "did not hold"),
        # TTC worse than the small Base: its gain's CI lies below 0
        ((20, 22, 2), (36.0, 72.0, 72.0), 30, "did not hold"),
        # five queries, one more right: nothing distinguishable
        ((1, 1, 2), (36.0, 72.0, 72.0), 5, "was inconclusive at this sample size"),
    ],
)
def test_overview_verdict_from_query_resampling(correct, energy, n, expected):
    res = _overview_results(dict(zip(CONFIGS, correct, strict=True)), dict(zip(CONFIGS, energy, strict=True)), n)
    text = report.overview(res, OV_RUNS, "cot", n_boot=1000)
    assert outcome_of(text) == expected, text
    assert "95 % CI" in text and "meter: nvml (energy_counter)" in text


# --- normalized energy -------------------------------------------------------------------------


def _norm(ratio, lo, hi, strategy="mv", base_tokens=20.0):
    return pd.DataFrame(
        {
            "benchmark": "b",
            "base_model": "m",
            "model": "m",
            "category": "math",
            "strategy": [strategy],
            "energy_ratio": [ratio],
            "energy_ratio_lo": [lo],
            "energy_ratio_hi": [hi],
            "ci_over": "repetitions",
            "base_output_tokens": [base_tokens],
            "output_token_ratio": [4.0],
            "input_token_ratio": [5.0],
        }
    )


RUNS = pd.DataFrame({"hardware": ["cpu"], "meter": ["nvml"], "meter_method": ["energy_counter"]})


@pytest.mark.parametrize(
    "frame, expected",
    [
        (_norm(3.0, 2.6, 3.4), "held"),
        (_norm(6.0, 5.5, 6.5), "did not hold"),  # MV above its 5 samples with confidence
        (_norm(6.0, 5.5, 6.5, base_tokens=1.0), "held"),  # one-token answers: the full multiple is expected
        (_norm(4.6, 3.9, 5.4), "was inconclusive at this sample size"),  # CI straddles 5×
        (_norm(1.1, 0.8, 1.5), "was inconclusive at this sample size"),  # not shown to cost more
        (_norm(0.8, 0.7, 0.9, strategy="rt"), "did not hold"),
    ],
)
def test_normalized_energy_verdict_follows_the_ratio_ci(frame, expected):
    text = report.normalized_energy(frame, metrics.category_averages(frame), RUNS, samples=5)
    assert outcome_of(text) == expected, text


# --- power --------------------------------------------------------------------------------------


def _power(changes: dict, spread: float, reps: int = 5):
    """Per-repetition mean power of base and other strategies with the given true change (%)."""
    rng = np.random.default_rng(0)
    runs, rep_rows, summary = [], [], []
    for strategy, change in {"base": 0.0, **changes}.items():
        run_id = f"r-{strategy}"
        p = 200 * (1 + change / 100) * (1 + spread * rng.standard_normal(reps))
        rep_rows += [dict(run_id=run_id, repetition=i, mean_power_w=v) for i, v in enumerate(p)]
        summary.append(dict(run_id=run_id, mean_power_w=p.mean(), std_power_w=5.0, samples=100.0))
        runs.append(
            dict(
                run_id=run_id,
                model="m",
                strategy=strategy,
                parameters=1,
                meter="nvml",
                meter_method="energy_counter",
                hardware="A100",
            )
        )
    return pd.DataFrame(summary), pd.DataFrame(runs), pd.DataFrame(rep_rows)


@pytest.mark.parametrize(
    "changes, spread, expected",
    [
        ({"mv": 5.0, "rt": -3.0}, 0.005, "held"),
        ({"mv": 30.0}, 0.005, "did not hold"),
        ({"mv": 8.0}, 0.05, "was inconclusive at this sample size"),
    ],
)
def test_power_verdict_is_an_equivalence_test(changes, spread, expected):
    summary, runs, reps = _power(changes, spread)
    trace_means = summary.assign(mean_power_w=summary.mean_power_w * [1.0, 1.03, 0.97][: len(summary)])
    text = report.power(trace_means, runs, reps, margin_pct=10)  # the traces' means differ a little
    assert outcome_of(text) == expected, text
    assert_points_inside(text)
    estimate = runs.assign(meter="estimate")
    assert outcome_of(report.power(summary, estimate, reps)) == "could not be tested"


# --- length sweep and early exit -------------------------------------------------------------------


def _sweep(n=40, reps=3, cut_energy=0.6, cut_loses=0, seed=0):
    """RT at 100/200/400 tokens: correct answers ≤ 90 tokens, incorrect ones run to the limit; the cut
    point (100) uses ``cut_energy`` of the longest run's energy and loses ``cut_loses`` queries."""
    rng = np.random.default_rng(seed)
    rows = []
    for length in (100, 200, 400):
        for rep in range(reps):
            for q in range(n):
                right = q % 2 == 0 and not (length == 100 and q < 2 * cut_loses)
                tokens = 40 + q if q % 2 == 0 else length
                e = (
                    (cut_energy if length == 100 else 0.8 if length == 200 else 1.0)
                    * 10
                    * (1 + 0.02 * rng.standard_normal())
                )
                rows.append(
                    dict(
                        model="m",
                        strategy="rt",
                        benchmark="b",
                        max_new_tokens=length,
                        repetition=rep,
                        query_id=f"q{q}",
                        samples=1,
                        correct=right,
                        completion_tokens=min(tokens, length),
                        energy_j=e,
                    )
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "kw, expected",
    [
        (dict(), "held"),
        (dict(cut_energy=1.05), "did not hold"),  # the cut costs more: nothing saved
        (dict(cut_loses=10), "did not hold"),  # 10 of 20 correct answers lost
        (dict(n=8, cut_loses=1), "was inconclusive at this sample size"),  # 8 queries cannot show "no loss"
    ],
)
def test_length_sweep_verdict_reads_the_measured_sweep_point(kw, expected):
    res = _sweep(**kw)
    exits = metrics.early_exit_at_sweep(res)
    row = exits.iloc[0]
    assert row.cut_tokens == 100 and row.max_tokens == 400  # whisker of correct lengths ≤ 100
    text = report.length_sweep(metrics.at_longest(res), exits, RUNS)
    assert outcome_of(text) == expected, text


# --- difficulty and routing ---------------------------------------------------------------------


def _levels(n=20, hard_right=(0, 0, 0)):
    """Configurations s/base (1 J), s/cot (3 J), l/base (5 J); all right on easy; at hard, the given counts."""
    rows = []
    for (model, strategy), e, k_hard in zip(CONFIGS_D, (1.0, 3.0, 5.0), hard_right, strict=True):
        for level, k in (("easy", n), ("hard", k_hard)):
            for q in range(n):
                rows.append(
                    dict(
                        model=model,
                        strategy=strategy,
                        benchmark="arithmetic",
                        difficulty=level,
                        query_id=f"{level}{q}",
                        repetition=0,
                        correct=q < k,
                        energy_j=e * (2 if level == "hard" else 1) * (1 + 0.05 * (q % 3)),
                    )
                )
    return pd.DataFrame(rows)


CONFIGS_D = [("s", "base"), ("s", "cot"), ("l", "base")]


@pytest.mark.parametrize(
    "hard_right, expected",
    [
        ((2, 10, 18), "held"),  # easy → s base saves; hard → l base
        # hard left out (every configuration fails it); on easy all are right, so the fallback is the
        # cheapest and routing saves nothing
        ((0, 0, 0), "did not hold"),
    ],
)
def test_difficulty_verdict_with_routing_intervals(hard_right, expected):
    res = _levels(hard_right=hard_right)
    fb = routing.most_accurate(res)
    routed = routing.route_by_difficulty(res, fb)
    text = report.difficulty(res, routed, RUNS, 0.8, ["easy", "hard"], n_boot=500)
    assert outcome_of(text) == expected, text
    assert f"for {routed.n} queries" in text and routed.n == 40  # queries, not rows × repetitions
    if hard_right == (0, 0, 0):
        assert "At hard no configuration answered any query correctly" in text


def test_fallback_ties_go_to_the_cheaper_configuration():
    res = _levels(hard_right=(20, 20, 20))  # every configuration perfect everywhere
    assert routing.most_accurate(res) == {"model": "s", "strategy": "base"}
    routed = routing.route_by_difficulty(res, routing.most_accurate(res))
    assert routed.savings(1.0) == 0  # nothing cheaper to route to


# --- the paper's pairing on a synthesised paper-profile run store -----------------------------------

PARAMETERS = {
    "Qwen/Qwen2.5-1.5B-Instruct": 1.54e9,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": 1.78e9,
    "Qwen/Qwen2.5-7B-Instruct": 7.62e9,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": 7.62e9,
    "Qwen/Qwen2.5-14B-Instruct": 14.8e9,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": 14.8e9,
    "Qwen/Qwen2.5-32B-Instruct": 32.8e9,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": 32.8e9,
}
TRUE_RATIO = {"base": 1.0, "mv": 2.63, "rt": 3.66}
TRUE_POWER = {"base": 300.0, "mv": 315.0, "rt": 291.0}


def _write_run(runs_dir: Path, spec, rng, n_queries=12, reps=3) -> None:
    """A complete run directory as the runner leaves it, with known energy and power."""
    d = runs_dir / spec.run_id
    d.mkdir(parents=True)
    size = PARAMETERS[spec.model] / 1e9
    per_query = 2.0 * size * TRUE_RATIO[spec.strategy]  # J; a bigger model costs more
    rows, windows, t = [], [], 0.0
    for rep in range(reps):
        seconds = n_queries * per_query / TRUE_POWER[spec.strategy]
        windows.append({"segment": rep, "time_s": seconds})
        for q in range(n_queries):
            e = per_query * (0.5 + q / n_queries) * (1 + 0.01 * rng.standard_normal())
            rows.append(
                dict(
                    run_id=spec.run_id,
                    repetition=rep,
                    query_id=f"q{q}",
                    sample=0,
                    benchmark=spec.benchmark,
                    category="math",
                    difficulty="all",
                    prompt_tokens=50,
                    completion_tokens=100,
                    finish_reason="stop",
                    answer="1",
                    gold="1",
                    correct=q % 3 != 0,
                    segment=rep,
                    energy_j=e,
                    net_energy_j=0.8 * e,
                    meter="nvml",
                )
            )
        t += seconds
    q = pd.DataFrame(rows)
    q.to_parquet(d / "queries.parquet", index=False)
    pd.DataFrame(
        {"t": np.arange(10.0), "device": 0, "power_w": TRUE_POWER[spec.strategy] * (1 + 0.01 * rng.standard_normal(10))}
    ).to_parquet(d / "power.parquet", index=False)
    info = {
        "run_id": spec.run_id,
        "spec": spec.model_dump(),
        "windows": windows,
        "meter_name": "nvml",
        "meter": {
            "method": "energy_counter",
            "idle_power_w": 80.0,
            "devices": [{"model": "NVIDIA A100-SXM4-80GB", "power_source": "power_usage"}],
        },
        "backend": {"parameters": PARAMETERS[spec.model], "model_kind": "hub"},
        "strategy": {"samples": spec.resolved_strategy.samples},
        "energy_j": float(q.energy_j.sum()),
        "net_energy_j": float(q.net_energy_j.sum()),
        "completion_tokens": int(q.completion_tokens.sum()),
        "measured_s": t,
        "hardware": {"gpus": [{"name": "NVIDIA A100-SXM4-80GB"}]},
    }
    (d / "run.json").write_text(json.dumps(info))


def test_paper_profile_pairs_rt_with_base_of_its_size(tmp_path):
    plan = load_params(ROOT / "params" / "paper.yaml", "default")
    specs = [s for s in plan.specs if s.benchmark == "math500"]
    assert {s.strategy for s in specs} == {"base", "mv", "rt"} and len(specs) == 12
    rng = np.random.default_rng(0)
    for spec in specs:
        _write_run(tmp_path, spec, rng)
    data = metrics.load_runs(sorted(p for p in tmp_path.iterdir()))
    pairs = metrics.base_pairs(data.runs)
    assert pairs["deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert pairs["deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"] == "Qwen/Qwen2.5-32B-Instruct"

    norm = metrics.normalized_energy(data.results, pairs=pairs)
    assert sorted(norm.strategy.unique()) == ["mv", "rt"] and len(norm) == 8  # 4 sizes × (MV, RT)
    covered = 0
    for row in norm.itertuples():
        true = TRUE_RATIO[row.strategy] * PARAMETERS[row.model] / PARAMETERS[row.base_model]
        assert row.energy_ratio == pytest.approx(true, rel=0.01), row
        covered += row.energy_ratio_lo <= true <= row.energy_ratio_hi
    assert covered >= 6, norm  # 95 % intervals: one or two of eight may miss
    avg = metrics.category_averages(norm).set_index("strategy")
    assert "RT used" in report.normalized_energy(norm, metrics.category_averages(norm), data.runs)
    assert avg.loc["rt", "energy_ratio"] == pytest.approx(
        np.mean([TRUE_RATIO["rt"] * PARAMETERS[m] / PARAMETERS[b] for m, b in pairs.items() if "R1" in m]), rel=0.02
    )

    text = report.power(metrics.power_summary(data.power), data.runs, metrics.power_by_repetition(data.queries))
    assert text.count("RT -") + text.count("RT +") == 4 and "vs Base on Qwen/Qwen2.5-1.5B-Instruct" in text
    assert outcome_of(text) == "held"  # +5 % and -3 % are within ±10 %
    assert_points_inside(text)
