from __future__ import annotations

import pandas as pd
import pytest

from ttclib import metrics, report


def test_pareto_mask():
    e = [1, 2, 3, 4, 2]
    a = [0.1, 0.5, 0.4, 0.9, 0.5]
    assert metrics.pareto_mask(e, a).tolist() == [True, True, False, True, False]


def _queries():
    rows = []
    for qid, answers, gold in [("q1", ["1", "1", "2"], "1"), ("q2", ["3", "4", "4"], "3"), ("q3", [None, "5", "6"], "6")]:
        for s, a in enumerate(answers):
            rows.append(dict(run_id="r", repetition=0, query_id=qid, sample=s, answer=a, gold=gold,
                             correct=a == gold, completion_tokens=10, prompt_tokens=5, energy_j=2.0,
                             net_energy_j=1.5, finish_reason="stop", category="math", difficulty="easy"))
    return pd.DataFrame(rows)


def test_query_results_vote_over_samples():
    r = metrics.query_results(_queries()).set_index("query_id")
    assert r.answer.tolist() == ["1", "4", "5"]
    assert r.correct.tolist() == [True, False, False]
    assert r.energy_j.tolist() == [6.0, 6.0, 6.0] and r.completion_tokens.tolist() == [30, 30, 30]
    assert r.sample_accuracy.round(3).tolist() == [0.667, 0.333, 0.333]


def _runs():
    return pd.DataFrame([
        dict(model="s", parameters=1, strategy="base", accuracy=0.20, energy_per_query_j=36.0, meter="nvml", meter_method="energy_counter", hardware="A100"),
        dict(model="l", parameters=2, strategy="base", accuracy=0.25, energy_per_query_j=72.0, meter="nvml", meter_method="energy_counter", hardware="A100"),
        dict(model="s", parameters=1, strategy="cot", accuracy=0.50, energy_per_query_j=72.0, meter="nvml", meter_method="energy_counter", hardware="A100"),
    ])


def test_gain_per_wh():
    g = metrics.gain_per_wh(_runs(), {"model": "s", "strategy": "base"}, {"model": "l", "strategy": "base"})
    assert g["accuracy_gain_pct"] == pytest.approx(5.0)
    assert g["energy_delta_wh"] == pytest.approx(0.01)
    assert g["gain_per_wh"] == pytest.approx(500.0) and g["energy_ratio"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="selects 0 runs"):
        metrics.gain_per_wh(_runs(), {"model": "x"}, {"model": "l"})


def test_overview_sentence_is_computed():
    text = report.overview(_runs(), "cot")
    assert "+5.0 points for 2.00× the energy per query (500 points/Wh)" in text
    assert "+30.0 points" in text and "held here" in text and "meter: nvml (energy_counter)" in text
    worse = _runs().assign(accuracy=[0.2, 0.6, 0.3])
    assert "did not hold here." in report.overview(worse, "cot")
    useless = _runs().assign(accuracy=[0.4, 0.2, 0.1])
    assert "could not be tested here" in report.overview(useless, "cot")
    no_ttc_gain = _runs().assign(accuracy=[0.4, 0.5, 0.1])
    assert "did not hold here: test-time compute did not improve" in report.overview(no_ttc_gain, "cot")


def test_power_summary_sums_devices_and_throughput_counts_queries():
    p = pd.DataFrame({"run_id": ["a"] * 6 + ["b"] * 2, "t": [0, 0, 1, 1, 2, 2, 0, 1],
                      "device": [0, 1] * 3 + [0, 0], "power_w": [100, 100, 150, 150, 200, 200, 30, 50.0]})
    s = metrics.power_summary(p).set_index("run_id")
    assert s.loc["a", "mean_power_w"] == 300 and s.loc["a", "std_power_w"] == pytest.approx(100)
    assert s.loc["b", "mean_power_w"] == 40 and s.loc["b", "samples"] == 2
    runs = pd.DataFrame({"n_queries": [48, 10], "repetitions": [1, 3], "measured_s": [24.0, 60.0]})
    assert metrics.throughput(runs).tolist() == [2.0, 0.5]
