"""Difficulty-aware model selection (paper 000, section 5, equations 1a and 1b).

An oracle evaluator that knows each query's difficulty level sends it to the configuration
(model, strategy) that reaches the best accuracy at that level for the least energy:

    E_o = Σ_i n_i · e_{m_i}                         (1a)

A realistic evaluator predicts the level correctly with probability p; the queries it gets wrong
go to the fallback, the largest and most accurate configuration m_D:

    E_r = Σ_i p_i · N · e_{m_i} + q · N · e_{m_D}    (1b),   p_i = p · n_i / N,  q = 1 − p

Both are compared with always using the fallback, E_max = N · e_{m_D}. Accuracy is carried along
the same way (a misrouted query gets the fallback's accuracy at its level).

The groups need not be difficulty levels: :func:`route` routes on any query attribute, e.g. the MMLU
category (paper 001, section 5 and Figure 5), and lets a performance and an energy estimator make the
choice; :func:`split_halves` and :func:`estimated_accuracy` give an estimator fitted on other queries.

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
    table: pd.DataFrame       # per group: n, chosen config, its accuracy and energy/query (measured; estimated too
                              # when estimates chose it), the fallback's
    oracle_energy_j: float    # E_o (1a), joules for all N queries
    max_energy_j: float       # E_max = N · e_{m_D}
    oracle_accuracy: float    # accuracy with every query routed to its group's choice
    max_accuracy: float       # accuracy of the fallback alone
    fallback: dict = field(default_factory=dict)   # the fallback configuration m_D: model, strategy
    by: str = "difficulty"    # the query attribute routed on: the table's group column

    @property
    def n(self) -> int:
        return int(self.table.n.sum())

    def realistic(self, p: float) -> tuple[float, float]:
        """(E_r in joules, accuracy) for an evaluator that predicts the group with probability ``p``."""
        if not 0 <= p <= 1:
            raise ValueError(f"prediction accuracy p must be in [0, 1], got {p}")
        return (p * self.oracle_energy_j + (1 - p) * self.max_energy_j,
                p * self.oracle_accuracy + (1 - p) * self.max_accuracy)

    def per_query(self, results: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """Each query's accuracy (mean over repetitions) under the oracle's choice for its group and
        under the fallback, aligned by query: the paired observations of the accuracy change."""
        r = results.dropna(subset=[self.by]).assign(correct=lambda d: d.correct.astype(float))
        choice = self.table.set_index(self.by)[CONFIG]
        picked = r[(r[CONFIG] == choice.reindex(r[self.by]).set_axis(r.index)).all(axis=1)]
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


# accuracies this close count as equal: 0.40 − 0.05 must reach 0.35 despite floating point
_TIE = 1e-12


def _per_config(results: pd.DataFrame, by: str) -> pd.DataFrame:
    """Measured n (queries), accuracy and energy per query for each group of ``by`` and configuration,
    groups in first-seen order (difficulty levels easiest first)."""
    missing = {by, "correct", "energy_j", *CONFIG} - set(results.columns)
    if missing:
        raise ValueError(f"results lack column(s) {sorted(missing)}")
    r = results.dropna(subset=[by])
    per = (r.assign(correct=r.correct.astype(float))
            .groupby([by, *CONFIG], observed=True, sort=False)
            .agg(n=("query_id", "nunique") if "query_id" in r else ("correct", "size"),
                 accuracy=("correct", "mean"), energy_j=("energy_j", "mean"))
            .reset_index())
    if by == "difficulty" and "benchmark" in r:      # levels easiest first, as the benchmark defines them
        from .metrics import difficulty_levels
        rank = {lv: i for i, lv in enumerate(difficulty_levels(r))}
        per = per.sort_values(by, key=lambda d: d.map(rank), kind="stable")
    return per


def _estimate(keys: pd.DataFrame, estimates: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """An estimator's ``column`` for each (group, model, strategy) row of ``keys``; a missing or
    repeated estimate is an error, not a silent fallback to the measurement."""
    names = list(keys.columns)
    missing = {*names, column} - set(estimates.columns)
    if missing:
        raise ValueError(f"{what} estimates lack column(s) {sorted(missing)}")
    est = estimates.dropna(subset=[column]).astype({c: object for c in names})
    repeated = est.duplicated(names, keep=False)
    if repeated.any():
        raise ValueError(f"{what} estimates repeat {est.loc[repeated, names].drop_duplicates().values.tolist()}")
    values = est.set_index(names)[column].reindex(pd.MultiIndex.from_frame(keys.astype(object)))
    absent = keys[values.isna().to_numpy()]
    if len(absent):
        raise ValueError(f"no {what} estimate for " + "; ".join(
            f"{names[0]} {g!r}, configuration {m} {s}" for g, m, s in absent.itertuples(index=False)))
    return values.to_numpy(float)


def route(results: pd.DataFrame, fallback: dict, *, by: str = "difficulty", tolerance: float = 0.0,
          energy: pd.DataFrame | None = None, accuracy: pd.DataFrame | None = None) -> Routing:
    """Pick, per group of the query attribute ``by``, the cheapest configuration within ``tolerance``
    of the group's best accuracy — by difficulty level (paper 000) or by MMLU category, ``by="subset"``
    (paper 001, section 5).

    ``results`` has one row per query and configuration (``Study.results``): model, strategy, ``by``,
    correct, energy_j (per query, all samples). ``fallback`` names the configuration used when the
    group is unknown or mispredicted, e.g. ``{"model": "qwen2.5-32b", "strategy": "base"}``.

    ``energy`` and ``accuracy`` are optional estimators' outputs (paper 001, Figure 5), one row per
    group and configuration: columns [``by``, model, strategy, energy_j] and [``by``, model, strategy,
    accuracy]. Given, they make the choice in place of the measurements; what the router then spends
    and scores (oracle and max energy and accuracy, the table's ``accuracy`` and ``energy_per_query_j``)
    stays measured, so a wrong estimate shows as a worse router. Groups keep first-seen order, except
    difficulty levels, easiest first.

    >>> res = pd.DataFrame({"model": ["1b", "8b"] * 4, "strategy": "base",
    ...                     "subset": ["Math"] * 4 + ["Humanities"] * 4, "query_id": [f"q{i // 2}" for i in range(8)],
    ...                     "correct": [0, 1, 0, 1, 1, 1, 1, 1], "energy_j": [1.0, 2.0] * 4})
    >>> r = route(res, {"model": "8b", "strategy": "base"}, by="subset")
    >>> r.table[["subset", "model"]].values.tolist(), r.oracle_energy_j, r.max_energy_j
    ([['Math', '8b'], ['Humanities', '1b']], 6.0, 8.0)
    >>> est = pd.DataFrame({"subset": ["Math", "Math", "Humanities", "Humanities"], "model": ["1b", "8b"] * 2,
    ...                     "strategy": "base", "energy_j": [1.0, 2.0, 3.0, 2.5]})
    >>> r = route(res, {"model": "8b", "strategy": "base"}, by="subset", energy=est)
    >>> r.table.model.tolist(), r.oracle_energy_j      # chosen by the estimate, paid at the measured cost
    (['8b', '8b'], 8.0)
    """
    per = _per_config(results, by)
    is_fallback = (per[list(fallback)] == pd.Series(fallback)).all(axis=1)
    if not is_fallback.any():
        raise ValueError(f"fallback {fallback} is not among the configurations {per[CONFIG].drop_duplicates().values.tolist()}")
    keys = per[[by, *CONFIG]]
    per["choice_accuracy"] = per.accuracy if accuracy is None else _estimate(keys, accuracy, "accuracy", "accuracy")
    per["choice_energy_j"] = per.energy_j if energy is None else _estimate(keys, energy, "energy_j", "energy")
    rows = []
    for group, g in per.groupby(by, sort=False, observed=True):
        fb = g[is_fallback[g.index]]
        if fb.empty:
            raise ValueError(f"fallback {fallback} has no results at {by} {group!r}")
        fb = fb.iloc[0]
        good = g[g.choice_accuracy >= g.choice_accuracy.max() - tolerance - _TIE]
        best = good.sort_values(["choice_energy_j", "choice_accuracy"], ascending=[True, False]).iloc[0]
        rows.append({by: group, "n": int(fb.n), "model": best.model, "strategy": best.strategy,
                     "accuracy": best.accuracy,
                     **({} if accuracy is None else {"estimated_accuracy": best.choice_accuracy}),
                     "energy_per_query_j": best.energy_j,
                     **({} if energy is None else {"estimated_energy_per_query_j": best.choice_energy_j}),
                     "fallback_accuracy": fb.accuracy, "fallback_energy_per_query_j": fb.energy_j})
    table = pd.DataFrame(rows)
    n = table.n.sum()
    return Routing(table,
                   oracle_energy_j=float((table.n * table.energy_per_query_j).sum()),
                   max_energy_j=float((table.n * table.fallback_energy_per_query_j).sum()),
                   oracle_accuracy=float((table.n * table.accuracy).sum() / n),
                   max_accuracy=float((table.n * table.fallback_accuracy).sum() / n), fallback=dict(fallback), by=by)


def route_by_difficulty(results: pd.DataFrame, fallback: dict, *, tolerance: float = 0.0) -> Routing:
    """Pick, per difficulty level, the cheapest configuration within ``tolerance`` of the level's best
    accuracy (paper 000, equation 1a): :func:`route` with ``by="difficulty"``."""
    return route(results, fallback, by="difficulty", tolerance=tolerance)


def split_halves(results: pd.DataFrame, by: str = "difficulty", seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): the queries of each group of ``by`` dealt at random into two halves (train gets
    the odd one out), every configuration's and repetition's rows of a query in the same half, so that
    a performance estimator fitted on train is judged on queries it has not seen. Rows without a
    group are in neither.

    >>> res = pd.DataFrame({"query_id": ["a", "a", "b", "b", "c"], "subset": ["Math"] * 4 + ["Law"],
    ...                     "model": ["s", "l"] * 2 + ["s"]})
    >>> train, test = split_halves(res, by="subset")
    >>> sorted(train.query_id.unique()), sorted(test.query_id.unique()) in (['a'], ['b'])
    (['a', 'c'], True)
    """
    pairs = results[[by, "query_id"]].dropna().drop_duplicates()
    rng = np.random.default_rng(seed)
    train = []
    groups = dict(list(pairs.groupby(by, sort=False, observed=True)))
    for group in sorted(groups, key=str):                          # sorted: independent of row order
        ids = rng.permutation(np.sort(groups[group].query_id.to_numpy()))
        train += [(group, q) for q in ids[: (len(ids) + 1) // 2]]
    key = pd.MultiIndex.from_frame(results[[by, "query_id"]])
    in_train = key.isin(train)
    return results[in_train], results[~in_train & results[by].notna().to_numpy()]


def estimated_accuracy(train: pd.DataFrame, by: str = "difficulty") -> pd.DataFrame:
    """A performance estimator from held-out queries: each group's and configuration's accuracy on
    ``train``, columns [``by``, model, strategy, accuracy], as :func:`route`'s ``accuracy=`` takes it.

    >>> train = pd.DataFrame({"subset": ["Math"] * 4, "model": ["s", "s", "l", "l"], "strategy": "base",
    ...                       "correct": [0, 1, 1, 1], "energy_j": 1.0})
    >>> estimated_accuracy(train, "subset").accuracy.tolist()
    [0.5, 1.0]
    """
    return _per_config(train, by)[[by, *CONFIG, "accuracy"]].reset_index(drop=True)


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


def bootstrap(results: pd.DataFrame, fallback: dict, *, by: str = "difficulty", tolerance: float = 0.0,
              n_boot: int = 2000, seed: int = 0, level: float = 0.95, energy: pd.DataFrame | None = None,
              accuracy: pd.DataFrame | None = None) -> pd.DataFrame:
    """Intervals for the oracle router (eq. 1a) that include the choice of configurations: queries
    are resampled within each group of ``by`` (jointly for every configuration: they answer the same
    problems) and each group's configuration is chosen again in every replicate — from the
    resampled measurements, or from ``energy`` / ``accuracy`` estimates (as in :func:`route`), which
    are given and so not resampled. Returns one row per quantity — ``saved`` (share of E_max, p = 1),
    ``accuracy_change`` (oracle − fallback accuracy) — with its observed value and ``level``
    percentile interval; E_r (1b) is linear in p, so its saving is p times the oracle's.

    >>> res = pd.DataFrame({"model": ["s", "l"] * 8, "strategy": "base", "difficulty": ["easy"] * 8 + ["hard"] * 8,
    ...                     "query_id": [f"q{i // 2}" for i in range(16)], "energy_j": [1.0, 4.0] * 8,
    ...                     "correct": [1, 1] * 4 + [0, 1] * 4})
    >>> b = bootstrap(res, {"model": "l", "strategy": "base"}).set_index("quantity")
    >>> b.loc["saved", ["value", "lo", "hi"]].tolist(), b.loc["accuracy_change", ["value", "lo", "hi"]].tolist()
    ([0.375, 0.375, 0.375], [0.0, 0.0, 0.0])
    """
    from .verdicts import bootstrap_means, interval

    r = results.dropna(subset=[by]).assign(correct=lambda d: d.correct.astype(float))
    key = tuple(fallback[c] for c in CONFIG)
    groups = list(dict.fromkeys(r[by]))
    oracle_e = oracle_a = max_e = max_a = 0.0
    for i, group in enumerate(groups):
        g = r[r[by] == group]
        acc = g.pivot_table(index="query_id", columns=CONFIG, values="correct", aggfunc="mean")
        measured_e = g.pivot_table(index="query_id", columns=CONFIG, values="energy_j", aggfunc="mean")
        a = bootstrap_means(acc, n_boot, seed + i).to_numpy()
        e = bootstrap_means(measured_e[acc.columns], n_boot, seed + i).to_numpy()
        keys = pd.DataFrame([(group, *c) for c in acc.columns], columns=[by, *CONFIG])
        choice_a = a if accuracy is None else _estimate(keys, accuracy, "accuracy", "accuracy")[None, :]
        choice_e = e if energy is None else _estimate(keys, energy, "energy_j", "energy")[None, :]
        good = choice_a >= np.nanmax(choice_a, axis=1, keepdims=True) - tolerance - _TIE
        pick = np.nanargmin(np.where(good, choice_e, np.inf), axis=1)
        rows = np.arange(len(a))
        pick = np.broadcast_to(pick, rows.shape)
        fb = list(acc.columns).index(key)
        n = len(acc)
        oracle_e, oracle_a = oracle_e + n * e[rows, pick], oracle_a + n * a[rows, pick]
        max_e, max_a = max_e + n * e[:, fb], max_a + n * a[:, fb]
    n_all = r.query_id.nunique() if "query_id" in r else len(r)
    out = {"saved": 1 - oracle_e / max_e, "accuracy_change": (oracle_a - max_a) / n_all}
    return pd.DataFrame([{"quantity": q, "value": float(v[0]), **dict(zip(("lo", "hi"), interval(v[1:], level)))}
                         for q, v in out.items()])
