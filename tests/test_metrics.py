from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ttclib import metrics, report


def test_pareto_mask():
    e = [1, 2, 3, 4, 2]
    a = [0.1, 0.5, 0.4, 0.9, 0.5]
    assert metrics.pareto_mask(e, a).tolist() == [True, True, False, True, False]


def _queries():
    rows = []
    for qid, answers, gold in [
        ("q1", ["1", "1", "2"], "1"),
        ("q2", ["3", "4", "4"], "3"),
        ("q3", [None, "5", "6"], "6"),
    ]:
        for s, a in enumerate(answers):
            rows.append(
                dict(
                    run_id="r",
                    repetition=0,
                    query_id=qid,
                    sample=s,
                    answer=a,
                    gold=gold,
                    correct=a == gold,
                    completion_tokens=10,
                    prompt_tokens=5,
                    energy_j=2.0,
                    net_energy_j=1.5,
                    finish_reason="stop",
                    category="math",
                    difficulty="easy",
                )
            )
    return pd.DataFrame(rows)


def test_query_results_vote_over_samples():
    r = metrics.query_results(_queries()).set_index("query_id")
    assert r.answer.tolist() == ["1", "4", "5"]
    assert r.correct.tolist() == [True, False, False]
    assert r.energy_j.tolist() == [6.0, 6.0, 6.0] and r.completion_tokens.tolist() == [30, 30, 30]
    assert r.sample_accuracy.round(3).tolist() == [0.667, 0.333, 0.333]


def test_energy_per_processed_token_counts_each_samples_prefill():
    """Wilhelm et al. [001]'s eq. 1 per query: three samples of 5 prompt + 10 output tokens at 2 J each are
    6 J over 45 processed tokens (the prompt prefilled once per sample), not over 30 or 35."""
    r = metrics.query_results(_queries())
    assert r.energy_per_processed_token_j.tolist() == pytest.approx([6.0 / 45] * 3)
    assert r.energy_per_output_token_j.tolist() == pytest.approx([6.0 / 30] * 3)


def _runs():
    return pd.DataFrame(
        [
            dict(
                model="s",
                parameters=1,
                strategy="base",
                accuracy=0.20,
                energy_per_query_j=36.0,
                meter="nvml",
                meter_method="energy_counter",
                hardware="A100",
            ),
            dict(
                model="l",
                parameters=2,
                strategy="base",
                accuracy=0.25,
                energy_per_query_j=72.0,
                meter="nvml",
                meter_method="energy_counter",
                hardware="A100",
            ),
            dict(
                model="s",
                parameters=1,
                strategy="cot",
                accuracy=0.50,
                energy_per_query_j=72.0,
                meter="nvml",
                meter_method="energy_counter",
                hardware="A100",
            ),
        ]
    )


def test_gain_per_wh():
    g = metrics.gain_per_wh(_runs(), {"model": "s", "strategy": "base"}, {"model": "l", "strategy": "base"})
    assert g["accuracy_gain_pct"] == pytest.approx(5.0)
    assert g["energy_delta_wh"] == pytest.approx(0.01)
    assert g["gain_per_wh"] == pytest.approx(500.0) and g["energy_ratio"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="selects 0 runs"):
        metrics.gain_per_wh(_runs(), {"model": "x"}, {"model": "l"})


def _category_results(acc: dict, energy: dict, n: int = 30) -> pd.DataFrame:
    """Per category, configurations (model, strategy) with ``acc[cat][config]`` queries right of n."""
    rows = []
    for cat, configs in acc.items():
        for config, k in configs.items():
            for q in range(n):
                rows.append(
                    dict(
                        model=config[0],
                        strategy=config[1],
                        category=cat,
                        benchmark=cat,
                        repetition=0,
                        query_id=f"q{q}",
                        correct=q < k,
                        energy_j=energy[cat][config],
                        completion_tokens=10,
                    )
                )
    return pd.DataFrame(rows)


def test_overview_per_category_with_a_reasoning_model_of_the_same_size():
    # the paper's pairing: Base on the Instruct models, RT on the R1 distill of the same size
    runs = pd.DataFrame(
        {
            "model": ["q1.5", "q7", "r1.5", "r7"],
            "parameters": [1.5, 7, 1.5, 7],
            "strategy": ["base", "base", "rt", "rt"],
            "hardware": "A100",
            "meter": "nvml",
            "meter_method": "energy_counter",
        }
    )
    c = [("q1.5", "base"), ("q7", "base"), ("r1.5", "rt")]
    res = _category_results(
        {"math": dict(zip(c, [6, 8, 18], strict=True)), "code": dict(zip(c, [6, 24, 9], strict=True))},
        {
            "math": dict(zip(c, [36.0, 72.0, 108.0], strict=True)),
            "code": dict(zip(c, [36.0, 30.0, 108.0], strict=True)),
        },
    )
    text = report.overview(res, runs, "rt", n_boot=500)
    assert "math: scaling Base q1.5 → q7 gave +6.7 points" in text and "RT on r1.5 gave +40.0 points" in text
    assert "code: scaling Base q1.5 → q7 gave +60.0 points" in text and "for 0.83× the energy" in text
    assert "(accuracy gained at no extra energy)" in text
    claim = "The claim that test-time compute buys more accuracy per unit energy than scaling the model"
    assert f"On math: {claim} held here" in text and f"On code: {claim} did not hold here" in text


def test_power_summary_sums_devices():
    p = pd.DataFrame(
        {
            "run_id": ["a"] * 6 + ["b"] * 2,
            "t": [0, 0, 1, 1, 2, 2, 0, 1],
            "device": [0, 1] * 3 + [0, 0],
            "power_w": [100, 100, 150, 150, 200, 200, 30, 50.0],
        }
    )
    s = metrics.power_summary(p).set_index("run_id")
    assert s.loc["a", "mean_power_w"] == 300 and s.loc["a", "std_power_w"] == pytest.approx(100)
    assert s.loc["b", "mean_power_w"] == 40 and s.loc["b", "samples"] == 2


def test_throughput_per_repetition_with_ci_across_them():
    # run a: 4 queries in batches of 2, three repetitions of 2 s, 4 s and 2 s (two windows each);
    # run b: one repetition, one window of 8 s for 4 queries
    rows = [
        dict(run_id="a", repetition=r, query_id=q, segment=2 * r + q // 2, window_s=w / 2)
        for r, w in enumerate([2.0, 4.0, 2.0])
        for q in range(4)
    ]
    rows += [dict(run_id="b", repetition=0, query_id=q, segment=0, window_s=8.0) for q in range(4)]
    q = pd.DataFrame(rows)
    reps = metrics.throughput_by_repetition(q)
    assert reps.queries_per_s.tolist() == [2.0, 1.0, 2.0, 0.5]
    runs = pd.DataFrame({"run_id": ["a", "b"], "batch_size": [2, 4]})
    p = metrics.throughput_points(metrics.throughput_by_repetition(q, runs)).set_index("run_id")
    assert p.loc["a", "queries_per_s"] == pytest.approx(5 / 3) and p.loc["a", "ci_over"] == "3 repetitions"
    half = 4.302653 * np.std([2.0, 1.0, 2.0], ddof=1) / 3**0.5  # t(0.975, 2)·s/√3
    assert p.loc["a", "queries_per_s_hi"] - 5 / 3 == pytest.approx(half, abs=1e-4)
    assert p.loc["b", "queries_per_s"] == 0.5 and np.isnan(p.loc["b", "queries_per_s_lo"])
    assert p.loc["b", "ci_over"] == "1 repetition" and p.loc["b", "batch_size"] == 4


# --- operating points, normalized energy and the section sentences (constructed data) ----------


def _results(reps=3, energies=None):
    """Two configurations on three queries; energy per query of `mv` is 4.5× `base`'s in every repetition."""
    rows = []
    for strategy, scale, tokens in (("base", 1.0, 10), ("mv", 4.5, 50)):
        for rep in range(reps):
            for i, qid in enumerate("abc"):
                rows.append(
                    dict(
                        model="m",
                        strategy=strategy,
                        benchmark="b",
                        category="math",
                        repetition=rep,
                        query_id=qid,
                        difficulty=["easy", "medium", "hard"][i],
                        correct=(i + rep) % 2 == 0,
                        energy_j=scale * (1 + i + 0.1 * rep),
                        completion_tokens=tokens * (1 + i),
                        prompt_tokens=20 if strategy == "base" else 100,
                    )
                )
    return pd.DataFrame(rows)


def test_operating_points_ci_across_repetitions_or_queries():
    p = metrics.operating_points(_results()).set_index("strategy")
    # base: repetition means of energy are 2.0, 2.1, 2.2 → mean 2.1, t(0.975, 2)·0.1/√3 = 0.2484
    assert p.loc["base", "energy_per_query_j"] == pytest.approx(2.1)
    assert p.loc["base", "energy_per_query_j_hi"] - 2.1 == pytest.approx(0.24841, abs=1e-4)
    assert p.loc["base", "ci_over"] == "3 repetitions" and p.loc["base", "queries"] == 3
    assert p.loc["base", "accuracy"] == pytest.approx((2 + 1 + 2) / 9)
    # accuracy: Wilson score interval over the 3 queries (accuracies 2/3, 1/3, 2/3), whatever the repetitions
    z, n, acc = 1.959964, 3, 5 / 9
    centre = (acc + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * (acc * (1 - acc) / n + z**2 / (4 * n**2)) ** 0.5 / (1 + z**2 / n)
    assert (p.loc["base", "accuracy_lo"], p.loc["base", "accuracy_hi"]) == pytest.approx(
        (centre - half, centre + half), abs=1e-5
    )
    one = metrics.operating_points(_results(reps=1)).set_index("strategy")
    assert one.loc["base", "ci_over"] == "3 queries"  # per-query energies 1, 2, 3
    assert one.loc["base", "energy_per_query_j_lo"] == pytest.approx(2 - 4.302653 / 3**0.5, abs=1e-4)


def test_normalized_energy_ratio_tokens_and_category_average():
    n = metrics.normalized_energy(_results())
    assert len(n) == 1
    row = n.iloc[0]
    assert row.strategy == "mv" and row.energy_ratio == pytest.approx(4.5)
    assert row.energy_ratio_lo < 4.5 < row.energy_ratio_hi and row.ci_over == "repetitions"
    assert row.output_token_ratio == pytest.approx(5.0) and row.input_token_ratio == pytest.approx(5.0)
    avg = metrics.category_averages(n)
    assert avg.energy_ratio.tolist() == pytest.approx([4.5]) and avg.benchmarks.tolist() == [1]
    assert metrics.normalized_energy(_results()[lambda d: d.strategy == "mv"]).empty  # no base: nothing to normalise


def _norm_runs():
    return pd.DataFrame({"hardware": ["cpu"], "meter": ["estimate"], "meter_method": ["cpu_time_x_tdp"]})


def test_normalized_energy_sentence():
    n = metrics.normalized_energy(_results())
    text = report.normalized_energy(n, metrics.category_averages(n), _norm_runs(), samples=5)
    assert "MV used 4.50× Base energy on math (95 % CI" in text and "paper MV: 2.63×" in text
    assert "with 5.00× its output tokens" in text


def test_length_sweep_sentence_and_secondary_estimate_by_configuration():
    res = pd.DataFrame(
        {
            "model": "m",
            "strategy": "cot",
            "max_new_tokens": 100,
            "query_id": list("abcdefgh"),
            "completion_tokens": [20, 25, 25, 30, 90, 95, 95, 100],
            "correct": [True] * 4 + [False] * 4,
            "energy_j": [1.0, 1.2, 1.2, 1.5, 4.5, 4.8, 4.8, 5.0],
            "repetition": 0,
            "samples": 1,
        }
    )
    short = res.assign(
        max_new_tokens=50, completion_tokens=res.completion_tokens.clip(upper=50), energy_j=res.energy_j.clip(upper=2.5)
    )
    exits = metrics.early_exit_at_sweep(pd.concat([short, res]))
    assert exits.iloc[0].cut_tokens == 50 and exits.iloc[0].whisker_tokens == pytest.approx(30)
    text = report.length_sweep(res, exits, _norm_runs())
    assert (
        "correct answers 25 tokens (median over 4 queries), incorrect 95 (over 4; one-sided Mann–Whitney p = 0.014)"
    ) in text
    assert "the cut is the sweep point at 50 of 100 tokens" in text and "changed accuracy by +0.0 points" in text
    # three repetitions of the same greedy answers are the same evidence for the length comparison
    assert "p = 0.014" in report.length_sweep(pd.concat([res] * 3), exits, _norm_runs())
    nothing_right = res.assign(correct=False)
    assert "0 queries answered correctly and 8 incorrectly" in report.length_sweep(nothing_right, exits, _norm_runs())
    by = metrics.early_exit_by(pd.concat([res, nothing_right.assign(model="n")]))
    assert by.set_index("model").cut_tokens.isna().tolist() == [False, True]


def test_difficulty_sentence_routes_and_reports_savings():
    from ttclib import routing

    res = pd.DataFrame(
        {
            "model": ["s", "s", "l", "l"] * 2,
            "strategy": "base",
            "difficulty": ["easy"] * 4 + ["hard"] * 4,
            "correct": [1, 1, 1, 1, 0, 0, 1, 1],
            "energy_j": [1, 1, 4, 4, 1, 1, 4, 4],
            "repetition": 0,
            "query_id": list("abab") + list("cdcd"),
            "completion_tokens": 5,
        }
    )
    r = routing.route_by_difficulty(res, routing.most_accurate(res))
    text = report.difficulty(res, r, _norm_runs(), 0.5, ["easy", "hard"], n_boot=200)
    assert "easy → s base; hard → l base" in text and "10 J for 4 queries" in text and "(38 % saved)" in text
    assert "was inconclusive at this sample size here" in text  # two queries per level decide nothing


def test_at_longest_keeps_each_configurations_longest_runs():
    df = pd.DataFrame({"model": ["a", "a", "b"], "strategy": "cot", "max_new_tokens": [8, 16, 4]})
    assert metrics.at_longest(df).max_new_tokens.tolist() == [16, 4]


def test_difficulty_levels_in_benchmark_order_and_table_by_level():
    res = pd.DataFrame({"benchmark": "arithmetic", "difficulty": ["hard", "easy", "medium", "easy"]})
    assert metrics.difficulty_levels(res) == ["easy", "medium", "hard"]
    points = pd.DataFrame(
        {
            "model": "m",
            "strategy": "base",
            "difficulty": ["hard", "easy"],
            "accuracy": [0.1, 0.9],
            "energy_per_query_j": [3.0, 1.0],
            "completion_tokens_per_query": 5.0,
        }
    )
    wide = metrics.by_level(points, ["easy", "medium", "hard"])
    assert list(wide.columns)[:2] == [("accuracy", "easy"), ("accuracy", "hard")]
    assert wide.loc[("m", "base"), ("energy_per_query_j", "hard")] == 3.0


def _batch(short_qps, long_qps, reps=3, noise=0.01):
    """Per-repetition throughput (3 repetitions, 1 % noise) and the per-run means, as the notebook has them."""
    rng = np.random.default_rng(0)
    b = [1, 2, 4, 8, 16, 32, 64]
    rows = [
        dict(
            run_id=f"{s}{x}",
            repetition=r,
            strategy=s,
            batch_size=x,
            completion_tokens_per_query=t,
            queries_per_s=q * (1 + noise * rng.standard_normal()),
            hardware="A100",
            meter="nvml",
            meter_method="energy_counter",
        )
        for s, qps, t in (("base", short_qps, 16), ("cot", long_qps, 64))
        for x, q in zip(b, qps(np.array(b, float)), strict=True)
        for r in range(reps)
    ]
    reps_ = pd.DataFrame(rows)
    points = reps_.groupby(
        ["run_id", "strategy", "batch_size", "completion_tokens_per_query", "hardware", "meter", "meter_method"],
        as_index=False,
    ).queries_per_s.mean()
    return points, reps_


def test_batch_throughput_sentence_names_which_curve_saturates():
    from ttclib import fits

    points, reps = _batch(lambda x: 10 * x / (4 + x), lambda x: 0.05 * x)
    text = report.batch_throughput(points, fits.throughput_curves(reps), repetitions=reps)
    assert "base's fitted curve reaches 90% of its ceiling at batch 3" in text  # 9 k = 36
    assert "cot shows no ceiling in the measured range" in text
    assert "throughput grew" in text and "× (95 % CI" in text
    assert text.endswith(
        "did not hold here: growth shown for both strategies; long outputs saturating first contradicted."
    )
    points, reps = _batch(lambda x: 10 * x / (64 + x), lambda x: 2 * x / (4 + x))
    text = report.batch_throughput(points, fits.throughput_curves(reps), repetitions=reps)
    assert "cot's fitted curve reaches 90% of its ceiling at batch 3" in text and "base shows no ceiling" in text
    assert "held here: growth shown for both strategies; long outputs saturating first shown." in text
    points, reps = _batch(lambda x: 0.1 * x, lambda x: 0.05 * x)
    text = report.batch_throughput(points, fits.throughput_curves(reps), repetitions=reps)
    assert "was inconclusive at this sample size here" in text  # no ceiling in the measured range: undecided
