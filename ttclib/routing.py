"""Difficulty-aware model selection (paper 000, section 5, equations 1a and 1b).

An oracle evaluator that knows each query's difficulty level sends it to the configuration
(model, strategy) that reaches the best accuracy at that level for the least energy:

    E_o = Σ_i n_i · e_{m_i}                         (1a)

A realistic evaluator predicts the level correctly with probability p; the queries it gets wrong
go to the fallback, the largest and most accurate configuration m_D:

    E_r = Σ_i p_i · N · e_{m_i} + q · N · e_{m_D}    (1b),   p_i = p · n_i / N,  q = 1 − p

Both are compared with always using the fallback, E_max = N · e_{m_D}. Accuracy is carried along
the same way (a misrouted query gets the fallback's accuracy at its level).

>>> import pandas as pd
>>> results = pd.DataFrame({
...     "model": ["s", "s", "l", "l"] * 2, "strategy": "base",
...     "difficulty": ["easy"] * 4 + ["hard"] * 4,
...     "correct": [1, 1, 1, 1, 0, 0, 1, 1], "energy_j": [1, 1, 4, 4, 1, 1, 4, 4]})
>>> r = route_by_difficulty(results, fallback={"model": "l", "strategy": "base"})
>>> r.oracle_energy_j, r.max_energy_j, r.realistic(0.5)
(10.0, 16.0, (13.0, 1.0))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CONFIG = ["model", "strategy"]


@dataclass(frozen=True)
class Routing:
    table: pd.DataFrame       # per level: n, chosen config, its accuracy and energy/query, the fallback's
    oracle_energy_j: float    # E_o (1a), joules for all N queries
    max_energy_j: float       # E_max = N · e_{m_D}
    oracle_accuracy: float    # accuracy with every query routed to its level's choice
    max_accuracy: float       # accuracy of the fallback alone
    fallback: dict = field(default_factory=dict)   # the fallback configuration m_D: model, strategy

    @property
    def n(self) -> int:
        return int(self.table.n.sum())

    def realistic(self, p: float) -> tuple[float, float]:
        """(E_r in joules, accuracy) for an evaluator that predicts the level with probability ``p``."""
        if not 0 <= p <= 1:
            raise ValueError(f"prediction accuracy p must be in [0, 1], got {p}")
        return (p * self.oracle_energy_j + (1 - p) * self.max_energy_j,
                p * self.oracle_accuracy + (1 - p) * self.max_accuracy)

    def per_query(self, results: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """Each query's accuracy (mean over repetitions) under the oracle's choice for its level and
        under the fallback, aligned by query: the paired observations of the accuracy change."""
        r = results.dropna(subset=["difficulty"]).assign(correct=lambda d: d.correct.astype(float))
        choice = self.table.set_index("difficulty")[CONFIG]
        picked = r[(r[CONFIG] == choice.reindex(r.difficulty).set_axis(r.index)).all(axis=1)]
        fb = r[(r[CONFIG] == pd.Series(self.fallback)).all(axis=1)]
        both = pd.concat([picked.groupby("query_id").correct.mean(), fb.groupby("query_id").correct.mean()],
                         axis=1, keys=["oracle", "fallback"]).dropna()
        return both.oracle, both.fallback

    def savings(self, p: float = 1.0) -> float:
        """Fraction of E_max saved by routing with prediction accuracy ``p``."""
        return 1 - self.realistic(p)[0] / self.max_energy_j

    def by_prediction_accuracy(self, ps=(0.0, 0.5, 0.8, 1.0)) -> pd.DataFrame:
        """E_r, accuracy and the share of E_max saved for each prediction accuracy in ``ps``."""
        return pd.DataFrame([{"p": p, "energy_j": self.realistic(p)[0], "accuracy": self.realistic(p)[1],
                              "saved_vs_fallback": self.savings(p)} for p in ps])


def route_by_difficulty(results: pd.DataFrame, fallback: dict, *, tolerance: float = 0.0) -> Routing:
    """Pick, per difficulty level, the cheapest configuration within ``tolerance`` of the level's best accuracy.

    ``results`` has one row per query and configuration (``Study.results``): model, strategy,
    difficulty, correct, energy_j (per query, all samples). ``fallback`` names the configuration
    used when the level is unknown or mispredicted, e.g. ``{"model": "qwen2.5-32b", "strategy": "base"}``.
    """
    missing = {"difficulty", "correct", "energy_j", *CONFIG} - set(results.columns)
    if missing:
        raise ValueError(f"results lack column(s) {sorted(missing)}")
    r = results.dropna(subset=["difficulty"])
    per = (r.assign(correct=r.correct.astype(float))
            .groupby(["difficulty", *CONFIG], observed=True, sort=False)
            .agg(n=("query_id", "nunique") if "query_id" in r else ("correct", "size"),
                 accuracy=("correct", "mean"), energy_j=("energy_j", "mean"))
            .reset_index())
    is_fallback = (per[list(fallback)] == pd.Series(fallback)).all(axis=1)
    if not is_fallback.any():
        raise ValueError(f"fallback {fallback} is not among the configurations {per[CONFIG].drop_duplicates().values.tolist()}")
    if "benchmark" in r:      # levels easiest first, as the benchmark defines them
        from .metrics import difficulty_levels
        rank = {lv: i for i, lv in enumerate(difficulty_levels(r))}
        per = per.sort_values("difficulty", key=lambda d: d.map(rank), kind="stable")
    rows = []
    for level, g in per.groupby("difficulty", sort=False):
        fb = g[is_fallback[g.index]]
        if fb.empty:
            raise ValueError(f"fallback {fallback} has no results at level {level!r}")
        fb = fb.iloc[0]
        good = g[g.accuracy >= g.accuracy.max() - tolerance]
        best = good.sort_values(["energy_j", "accuracy"], ascending=[True, False]).iloc[0]
        rows.append({"difficulty": level, "n": int(fb.n), "model": best.model, "strategy": best.strategy,
                     "accuracy": best.accuracy, "energy_per_query_j": best.energy_j,
                     "fallback_accuracy": fb.accuracy, "fallback_energy_per_query_j": fb.energy_j})
    table = pd.DataFrame(rows)
    n = table.n.sum()
    return Routing(table,
                   oracle_energy_j=float((table.n * table.energy_per_query_j).sum()),
                   max_energy_j=float((table.n * table.fallback_energy_per_query_j).sum()),
                   oracle_accuracy=float((table.n * table.accuracy).sum() / n),
                   max_accuracy=float((table.n * table.fallback_accuracy).sum() / n), fallback=dict(fallback))


def most_accurate(results: pd.DataFrame) -> dict:
    """The configuration with the best overall accuracy — the paper's fallback m_D. Ties go to the
    one spending less energy per query: a costlier fallback at the same accuracy would only inflate
    what routing appears to save.

    >>> res = pd.DataFrame({"model": ["s", "l", "l"], "strategy": ["base", "base", "mv"],
    ...                     "correct": [1, 1, 1], "energy_j": [1, 4, 9]})
    >>> most_accurate(res)
    {'model': 's', 'strategy': 'base'}
    """
    per = (results.assign(correct=results.correct.astype(float)).groupby(CONFIG)
           .agg(accuracy=("correct", "mean"), energy_j=("energy_j", "mean")).reset_index())
    best = per.sort_values(["accuracy", "energy_j"], ascending=[False, True]).iloc[0]
    return {k: best[k] for k in CONFIG}


def bootstrap(results: pd.DataFrame, fallback: dict, *, tolerance: float = 0.0, n_boot: int = 2000,
              seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Intervals for the oracle router (eq. 1a) that include the choice of configurations: queries
    are resampled within each level (jointly for every configuration: they answer the same
    problems) and each level's configuration is chosen again in every replicate. Returns one row per
    quantity — ``saved`` (share of E_max, p = 1), ``accuracy_change`` (oracle − fallback accuracy) —
    with its observed value and ``level`` percentile interval; E_r (1b) is linear in p, so its saving
    is p times the oracle's.

    >>> res = pd.DataFrame({"model": ["s", "l"] * 8, "strategy": "base", "difficulty": ["easy"] * 8 + ["hard"] * 8,
    ...                     "query_id": [f"q{i // 2}" for i in range(16)], "energy_j": [1.0, 4.0] * 8,
    ...                     "correct": [1, 1] * 4 + [0, 1] * 4})
    >>> b = bootstrap(res, {"model": "l", "strategy": "base"}).set_index("quantity")
    >>> b.loc["saved", ["value", "lo", "hi"]].tolist(), b.loc["accuracy_change", ["value", "lo", "hi"]].tolist()
    ([0.375, 0.375, 0.375], [0.0, 0.0, 0.0])
    """
    from .verdicts import bootstrap_means, interval

    r = results.dropna(subset=["difficulty"]).assign(correct=lambda d: d.correct.astype(float))
    key = tuple(fallback[c] for c in CONFIG)
    levels = list(dict.fromkeys(r.difficulty))
    oracle_e = oracle_a = max_e = max_a = 0.0
    for i, lv in enumerate(levels):
        g = r[r.difficulty == lv]
        acc = g.pivot_table(index="query_id", columns=CONFIG, values="correct", aggfunc="mean")
        energy = g.pivot_table(index="query_id", columns=CONFIG, values="energy_j", aggfunc="mean")
        a = bootstrap_means(acc, n_boot, seed + i).to_numpy()
        e = bootstrap_means(energy[acc.columns], n_boot, seed + i).to_numpy()
        good = a >= np.nanmax(a, axis=1, keepdims=True) - tolerance - 1e-12
        pick = np.nanargmin(np.where(good, e, np.inf), axis=1)
        rows = np.arange(len(a))
        fb = list(acc.columns).index(key)
        n = len(acc)
        oracle_e, oracle_a = oracle_e + n * e[rows, pick], oracle_a + n * a[rows, pick]
        max_e, max_a = max_e + n * e[:, fb], max_a + n * a[:, fb]
    n_all = r.query_id.nunique() if "query_id" in r else len(r)
    out = {"saved": 1 - oracle_e / max_e, "accuracy_change": (oracle_a - max_a) / n_all}
    return pd.DataFrame([{"quantity": q, "value": float(v[0]), **dict(zip(("lo", "hi"), interval(v[1:], level)))}
                         for q, v in out.items()])
