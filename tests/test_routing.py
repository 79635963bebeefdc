"""Equations 1a/1b (difficulty-aware routing) and the early-exit estimates, on hand-computed cases."""
from __future__ import annotations

import pandas as pd
import pytest

from ttclib import metrics
from ttclib.routing import route_by_difficulty


def _results():
    """Three levels, two queries each; small model s (base), s with RT, large model l (base)."""
    rows = []
    table = {  # (model, strategy): {level: (correct of the two queries, energy per query J)}
        ("s", "base"): {"easy": ([1, 1], 1.0), "medium": ([1, 0], 1.0), "hard": ([0, 0], 1.0)},
        ("s", "rt"): {"easy": ([1, 1], 3.0), "medium": ([1, 1], 3.0), "hard": ([1, 0], 3.0)},
        ("l", "base"): {"easy": ([1, 1], 5.0), "medium": ([1, 1], 5.0), "hard": ([1, 1], 5.0)},
    }
    for (model, strategy), levels in table.items():
        for level, (correct, e) in levels.items():
            for i, c in enumerate(correct):
                rows.append(dict(model=model, strategy=strategy, difficulty=level, query_id=f"{level}/{i}",
                                 correct=bool(c), energy_j=e))
    return pd.DataFrame(rows)


def test_oracle_and_realistic_router_energies_by_hand():
    r = route_by_difficulty(_results(), fallback={"model": "l", "strategy": "base"})
    chosen = r.table.set_index("difficulty")[["model", "strategy"]].apply(tuple, axis=1).to_dict()
    # easy: s/base reaches 100 % at 1 J; medium: s/rt reaches 100 % at 3 J; hard: only l reaches 100 %
    assert chosen == {"easy": ("s", "base"), "medium": ("s", "rt"), "hard": ("l", "base")}
    assert r.oracle_energy_j == 2 * 1.0 + 2 * 3.0 + 2 * 5.0 == 18.0            # (1a)
    assert r.max_energy_j == 6 * 5.0 and r.oracle_accuracy == 1.0 == r.max_accuracy
    # (1b) with p = 0.75: p_i = 0.75 · n_i / N, q = 0.25 → 0.75 · 18 + 0.25 · 30
    assert r.realistic(0.75) == (pytest.approx(21.0), pytest.approx(1.0))
    assert r.savings(1.0) == pytest.approx(0.4) and r.savings(0.0) == 0.0
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        r.realistic(1.2)
    curve = r.by_prediction_accuracy([0.0, 0.75, 1.0])
    assert curve.energy_j.tolist() == pytest.approx([30.0, 21.0, 18.0])
    assert curve.saved_vs_fallback.tolist() == pytest.approx([0.0, 0.3, 0.4])
    assert r.fallback == {"model": "l", "strategy": "base"}


def test_tolerance_trades_accuracy_for_energy():
    r = route_by_difficulty(_results(), fallback={"model": "l", "strategy": "base"}, tolerance=0.5)
    chosen = r.table.set_index("difficulty").model.to_dict()
    assert chosen == {"easy": "s", "medium": "s", "hard": "s"}                  # within 50 points: the cheapest
    assert r.oracle_energy_j == 2 * 1.0 + 2 * 1.0 + 2 * 3.0
    assert r.oracle_accuracy == pytest.approx((2 + 1 + 1) / 6)


def test_router_input_errors():
    with pytest.raises(ValueError, match="not among the configurations"):
        route_by_difficulty(_results(), fallback={"model": "xl", "strategy": "base"})
    with pytest.raises(ValueError, match="lack column"):
        route_by_difficulty(_results().drop(columns="energy_j"), fallback={"model": "l", "strategy": "base"})


def test_length_cut_is_the_upper_whisker_of_correct_answers():
    tokens = [100, 110, 120, 130, 140, 150, 160, 170, 5000]     # one outlier
    q1, q3 = 120, 160
    assert metrics.length_cut(tokens) == q3 + 1.5 * (q3 - q1)
    assert metrics.length_cut([10, 20, 30]) == 30               # never beyond the longest correct answer


def test_early_exit_estimate_from_lengths():
    q = pd.DataFrame({"completion_tokens": [100, 200, 300, 400, 2000, 4000],
                      "correct": [True, True, True, False, False, True], "energy_j": [1, 2, 3, 4, 20, 40.0]})
    r = metrics.early_exit(q, cut=1000)
    assert r["answers_cut"] == 2 and r["energy_saved_j"] == pytest.approx(20 * 0.5 + 40 * 0.75)
    assert r["accuracy_before"] == pytest.approx(4 / 6) and r["accuracy_lost"] == pytest.approx(1 / 6)
