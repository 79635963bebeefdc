"""Serving policies side by side (ttclib.policies, Maliakel et al. [002] §VII): known answers on constructed results —
a router that sends easy queries to the small model and hard ones to the large, the lowest clock alone and
both together — the frontier, Table XVII on measurements, and the verdicts they decide."""

from __future__ import annotations

import pandas as pd
import pytest

from ttclib import policies, report

ENERGY = {("s", "2842 MHz"): 1.0, ("s", "180 MHz"): 0.6, ("l", "2842 MHz"): 4.0, ("l", "180 MHz"): 2.4}


def _results(clocks=("2842 MHz", "180 MHz"), n: int = 20) -> pd.DataFrame:
    """2n queries: dataset a is easy (both models right), dataset b hard (only the large model right); a
    lower clock changes the energy, never the answer (greedy decoding)."""
    rows = []
    for i in range(2 * n):
        kind = "easy" if i < n else "hard"
        for (model, clock), e in ENERGY.items():
            if clock in clocks:
                rows.append(
                    {
                        "query_id": f"q{i}",
                        "benchmark": "a" if kind == "easy" else "b",
                        "kind": kind,
                        "pattern": "Always Easy" if kind == "easy" else "Scaling Helps",
                        "model": model,
                        "strategy": "base",
                        "sm_clock_mhz": float(clock.split()[0]),
                        "energy_j": e,
                        "correct": kind == "easy" or model == "l",
                        "subset": kind,
                    }
                )
    return policies.with_clock(pd.DataFrame(rows))


def test_router_lowest_clock_and_both_by_hand():
    """Half the held-out queries easy, half hard: by kind at the full clock pays (1 + 4) / 2 = 2.5 J against
    4 J (37.5 % saved) at no loss; the lowest clock alone 2.4 J (40 %); both (0.6 + 2.4) / 2 = 1.5 J (62.5 %)."""
    r = _results()
    base = policies.baseline(r)
    assert base == {"model": "l", "strategy": "base", "clock": "2842 MHz"}
    t = policies.compare(r, base, {"by kind": "kind"}, fixed={"DVFS only": {**base, "clock": "180 MHz"}}, n_boot=300)
    row = t.set_index("policy")
    assert row.loc["by kind at 2842 MHz", "energy_per_query_j"] == pytest.approx(2.5)
    assert row.loc["by kind at 2842 MHz", "saved_pct"] == pytest.approx(37.5)
    assert row.loc["DVFS only", "saved_pct"] == pytest.approx(40.0)
    assert row.loc["by kind", "saved_pct"] == pytest.approx(62.5) and row.loc["by kind", "quality"] == 1.0
    assert row.loc["always s 180 MHz", "quality"] == 0.5 and row.loc["always s 180 MHz", "d_quality"] == -0.5
    assert row.loc["always s 180 MHz", "d_quality_hi"] < 0 < row.loc["by kind", "saved_lo"]
    assert t.attrs["n_test"] == 20 and t.attrs["n_train"] == 20
    choice = t.attrs["choices"]["by kind"].set_index("kind")
    assert tuple(choice.loc["easy"]) == ("s", "base", "180 MHz") and tuple(choice.loc["hard"]) == (
        "l",
        "base",
        "180 MHz",
    )
    text = report.routing_dvfs(
        t, pd.DataFrame({"hardware": ["GPU"], "meter": ["nvml"], "meter_method": ["counter"]}), {"by kind": "kind"}
    )
    assert "routing by what the text alone predicts saves energy at a quality cost of at most 6.8 points" in text
    assert "(Table XVIII: 88 %) held here" in text  # 62.5 % against 37.5 % and 40 %, no spread
    assert "not tested" not in text


def test_on_a_cpu_the_clock_claims_are_not_tested():
    r = _results(clocks=("2842 MHz",)).assign(clock=policies.UNLOCKED, sm_clock_mhz=float("nan"))
    base = policies.baseline(r)
    t = policies.compare(r, base, {"by pattern": "pattern"}, n_boot=200)
    assert "by pattern at unlocked" not in set(t.policy) and t.set_index("policy").kind["by pattern"] == "oracle"
    text = report.routing_dvfs(
        t, pd.DataFrame({"hardware": ["CPU"], "meter": ["estimate"], "meter_method": ["x"]}), {"by pattern": "pattern"}
    )
    assert text.count("could not be tested here") == 2 and "scaling pattern (an oracle" in text
    assert "37.5 % saved" in text


def test_a_router_chooses_on_the_other_half():
    """Queries whose train half says 'small is as good' but whose test half is wrong under it: the router
    is scored on what it picks for the held-out queries, so its quality loss shows."""
    r = _results(clocks=("2842 MHz",))
    train_ids = set(__import__("ttclib").routing.split_halves(r, by="benchmark")[0].query_id)
    flip = r.query_id.isin({q for q in r.query_id.unique() if q not in train_ids}) & (r.model == "s")
    r.loc[flip, "correct"] = False
    t = policies.compare(r, policies.baseline(r), {"by kind": "kind"}, n_boot=200).set_index("policy")
    assert t.loc["by kind", "quality"] == 0.5 and t.loc["by kind", "d_quality"] == -0.5


def test_unknown_baseline_is_named():
    r = _results()
    with pytest.raises(ValueError, match="baseline .* is not among"):
        policies.compare(r, {"model": "xl", "strategy": "base", "clock": "2842 MHz"}, {})


def test_pareto_and_the_measured_table_xvii():
    t = pd.DataFrame({"energy_per_query_j": [1.0, 2.0, 2.0, 4.0], "quality": [0.5, 0.9, 0.8, 0.9]})
    assert policies.pareto(t).tolist() == [True, True, False, False]
    r = _results(clocks=("2842 MHz",))
    q = r.drop_duplicates("query_id")[["query_id", "pattern"]]
    choice = pd.DataFrame(
        {"pattern": ["Always Easy", "Scaling Helps"], "model": ["s", "l"], "strategy": "base", "clock": "2842 MHz"}
    )
    mix = policies.pattern_mix(q, choice, r, policies.baseline(r)).set_index("group")
    assert mix.saved_pct["Always Easy"] == pytest.approx(75.0) and mix.saved_pct["Scaling Helps"] == 0.0
    assert mix.attrs["saved_pct"] == pytest.approx(37.5)


def test_clock_labels():
    r = policies.with_clock(pd.DataFrame({"sm_clock_mhz": [180.0, float("nan")]}))
    assert r.clock.tolist() == ["180 MHz", "unlocked"]
    assert policies.mhz("unlocked") > policies.mhz("2842 MHz") > policies.mhz("180 MHz")
    assert policies.with_clock(pd.DataFrame({"model": ["m"]})).clock.tolist() == ["unlocked"]


def test_fixed_rows_and_the_pattern_runs():
    """ "DVFS only" exists only where a lower clock was measured; the patterns are read from the base runs at the
    highest clock."""
    r = _results()
    base = policies.baseline(r)
    assert policies.fixed_policies(r, base) == {"baseline": base, "DVFS only": {**base, "clock": "180 MHz"}}
    one = _results(clocks=("2842 MHz",))
    assert list(policies.fixed_policies(one, policies.baseline(one))) == ["baseline"]
    assert set(policies.top_clock(r).clock) == {"2842 MHz"} and len(policies.top_clock(r)) == len(r) // 2
