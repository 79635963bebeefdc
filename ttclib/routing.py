"""Difficulty-aware model selection (Jin et al. [000], section 5, equations 1a and 1b).

An oracle evaluator that knows each query's difficulty level sends it to the configuration
(model, strategy) that reaches the best accuracy at that level for the least energy:

    E_o = Σ_i n_i · e_{m_i}                         (1a)

A realistic evaluator predicts the level correctly with probability p; the queries it gets wrong
go to the fallback, the largest and most accurate configuration m_D:

    E_r = Σ_i p_i · N · e_{m_i} + q · N · e_{m_D}    (1b),   p_i = p · n_i / N,  q = 1 − p

Both are compared with always using the fallback, E_max = N · e_{m_D}. Accuracy is carried along
the same way (a misrouted query gets the fallback's accuracy at its level).

The groups need not be difficulty levels: :func:`route` routes on any query attribute, e.g. the MMLU
category (Wilhelm et al. [001], section 5 and Figure 5), and lets a performance and an energy estimator make the
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
from typing import cast

import numpy as np
import pandas as pd

CONFIG = ["model", "strategy"]


@dataclass(frozen=True)
class Routing:
    table: pd.DataFrame  # per group: n, chosen config, its accuracy and energy/query (measured; estimated too
    # when estimates chose it), the fallback's
    oracle_energy_j: float  # E_o (1a), joules for all N queries
    max_energy_j: float  # E_max = N · e_{m_D}
    oracle_accuracy: float  # accuracy with every query routed to its group's choice
    max_accuracy: float  # accuracy of the fallback alone
    fallback: dict = field(default_factory=dict)  # the fallback configuration m_D: model, strategy
    by: str = "difficulty"  # the query attribute routed on: the table's group column

    @property
    def n(self) -> int:
        return int(self.table.n.sum())

    def realistic(self, p: float) -> tuple[float, float]:
        """(E_r in joules, accuracy) for an evaluator that predicts the group with probability ``p``."""
        if not 0 <= p <= 1:
            raise ValueError(f"prediction accuracy p must be in [0, 1], got {p}")
        return (
            p * self.oracle_energy_j + (1 - p) * self.max_energy_j,
            p * self.oracle_accuracy + (1 - p) * self.max_accuracy,
        )

    def per_query(self, results: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """Each query's accuracy (mean over repetitions) under the oracle's choice for its group and
        under the fallback, aligned by query: the paired observations of the accuracy change."""
        r = results.dropna(subset=[self.by]).assign(correct=lambda d: d.correct.astype(float))
        config = list(self.fallback)
        choice = self.table.set_index(self.by)[config]
        picked = r[(r[config] == choice.reindex(r[self.by]).set_axis(r.index)).all(axis=1)]
        fb = r[(r[config] == pd.Series(self.fallback)).all(axis=1)]
        both = pd.concat(
            [picked.groupby("query_id").correct.mean(), fb.groupby("query_id").correct.mean()],
            axis=1,
            keys=["oracle", "fallback"],
        ).dropna()
        return both.oracle, both.fallback

    def savings(self, p: float = 1.0) -> float:
        """Fraction of E_max saved by routing with prediction accuracy ``p``."""
        return 1 - self.realistic(p)[0] / self.max_energy_j

    def by_prediction_accuracy(self, ps=(0.0, 0.5, 0.8, 1.0)) -> pd.DataFrame:
        """E_r, accuracy and the share of E_max saved for each prediction accuracy in ``ps``."""
        return pd.DataFrame(
            [
                {
                    "p": p,
                    "energy_j": self.realistic(p)[0],
                    "accuracy": self.realistic(p)[1],
                    "saved_vs_fallback": self.savings(p),
                }
                for p in ps
            ]
        )


# accuracies this close count as equal: 0.40 − 0.05 must reach 0.35 despite floating point
_TIE = 1e-12


def _per_config(results: pd.DataFrame, by: str, config=CONFIG) -> pd.DataFrame:
    """Measured n (queries), accuracy and energy per query for each group of ``by`` and configuration
    (the ``config`` columns), groups in first-seen order (difficulty levels easiest first)."""
    missing = {by, "correct", "energy_j", *config} - set(results.columns)
    if missing:
        raise ValueError(f"results lack column(s) {sorted(missing)}")
    r = results.dropna(subset=[by])
    per = (
        r.assign(correct=r.correct.astype(float))
        .groupby([by, *config], observed=True, sort=False)
        .agg(
            n=("query_id", "nunique") if "query_id" in r else ("correct", "size"),
            accuracy=("correct", "mean"),
            energy_j=("energy_j", "mean"),
        )
        .reset_index()
    )
    if by == "difficulty" and "benchmark" in r:  # levels easiest first, as the benchmark defines them
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
        raise ValueError(
            f"no {what} estimate for "
            + "; ".join(
                f"{names[0]} {g!r}, configuration {' '.join(map(str, c))}" for g, *c in absent.itertuples(index=False)
            )
        )
    return values.to_numpy(float)


def route(
    results: pd.DataFrame,
    fallback: dict,
    *,
    by: str = "difficulty",
    tolerance: float = 0.0,
    energy: pd.DataFrame | None = None,
    accuracy: pd.DataFrame | None = None,
) -> Routing:
    """Pick, per group of the query attribute ``by``, the cheapest configuration within ``tolerance``
    of the group's best accuracy — by difficulty level (Jin et al. [000]) or by MMLU category, ``by="subset"``
    (Wilhelm et al. [001], section 5).

    ``results`` has one row per query and configuration (``Study.results``): model, strategy, ``by``,
    correct, energy_j (per query, all samples). ``fallback`` names the configuration used when the
    group is unknown or mispredicted, e.g. ``{"model": "qwen2.5-32b", "strategy": "base"}``; its keys are
    the columns that make a configuration (add ``"clock"`` to route over SM clocks too, Maliakel et al. [002]).

    ``energy`` and ``accuracy`` are optional estimators' outputs (Wilhelm et al. [001], Figure 5), one row per
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
    config = list(fallback)
    per = _per_config(results, by, config)
    is_fallback = (per[config] == pd.Series(fallback)).all(axis=1)
    if not is_fallback.any():
        raise ValueError(
            f"fallback {fallback} is not among the configurations {per[config].drop_duplicates().values.tolist()}"
        )
    keys = per[[by, *config]]
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
        rows.append(
            {
                by: group,
                "n": int(fb.n),
                **{c: best[c] for c in config},
                "accuracy": best.accuracy,
                **({} if accuracy is None else {"estimated_accuracy": best.choice_accuracy}),
                "energy_per_query_j": best.energy_j,
                **({} if energy is None else {"estimated_energy_per_query_j": best.choice_energy_j}),
                "fallback_accuracy": fb.accuracy,
                "fallback_energy_per_query_j": fb.energy_j,
            }
        )
    table = pd.DataFrame(rows)
    n = table.n.sum()
    return Routing(
        table,
        oracle_energy_j=float((table.n * table.energy_per_query_j).sum()),
        max_energy_j=float((table.n * table.fallback_energy_per_query_j).sum()),
        oracle_accuracy=float((table.n * table.accuracy).sum() / n),
        max_accuracy=float((table.n * table.fallback_accuracy).sum() / n),
        fallback=dict(fallback),
        by=by,
    )


def route_by_difficulty(results: pd.DataFrame, fallback: dict, *, tolerance: float = 0.0) -> Routing:
    """Pick, per difficulty level, the cheapest configuration within ``tolerance`` of the level's best
    accuracy (Jin et al. [000], equation 1a): :func:`route` with ``by="difficulty"``."""
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
    for group in sorted(groups, key=str):  # sorted: independent of row order
        ids = rng.permutation(np.sort(groups[group].query_id.to_numpy()))
        train += [(group, q) for q in ids[: (len(ids) + 1) // 2]]
    key = pd.MultiIndex.from_frame(results[[by, "query_id"]])
    in_train = key.isin(train)
    return results[in_train], results[~in_train & results[by].notna().to_numpy()]


def estimated_accuracy(train: pd.DataFrame, by: str = "difficulty", config=CONFIG) -> pd.DataFrame:
    """A performance estimator from held-out queries: each group's and configuration's accuracy on
    ``train``, columns [``by``, model, strategy, accuracy], as :func:`route`'s ``accuracy=`` takes it.

    >>> train = pd.DataFrame({"subset": ["Math"] * 4, "model": ["s", "s", "l", "l"], "strategy": "base",
    ...                       "correct": [0, 1, 1, 1], "energy_j": 1.0})
    >>> estimated_accuracy(train, "subset").accuracy.tolist()
    [0.5, 1.0]
    """
    return _per_config(train, by, config)[[by, *config, "accuracy"]].reset_index(drop=True)


def most_accurate(results: pd.DataFrame) -> dict:
    """The configuration with the best overall accuracy — the paper's fallback m_D. Ties go to the
    one spending less energy per query: a costlier fallback at the same accuracy would only inflate
    what routing appears to save.

    >>> res = pd.DataFrame({"model": ["s", "l", "l"], "strategy": ["base", "base", "mv"],
    ...                     "correct": [1, 1, 1], "energy_j": [1, 4, 9]})
    >>> most_accurate(res)
    {'model': 's', 'strategy': 'base'}
    """
    per = (
        results.assign(correct=results.correct.astype(float))
        .groupby(CONFIG)
        .agg(accuracy=("correct", "mean"), energy_j=("energy_j", "mean"))
        .reset_index()
    )
    best = per.sort_values(["accuracy", "energy_j"], ascending=[False, True]).iloc[0]
    return {k: best[k] for k in CONFIG}


def bootstrap(
    results: pd.DataFrame,
    fallback: dict,
    *,
    by: str = "difficulty",
    tolerance: float = 0.0,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    energy: pd.DataFrame | None = None,
    accuracy: pd.DataFrame | None = None,
) -> pd.DataFrame:
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
    config = list(fallback)
    key = tuple(fallback[c] for c in config)
    groups = list(dict.fromkeys(r[by]))
    oracle_e = oracle_a = max_e = max_a = 0.0
    for i, group in enumerate(groups):
        g = r[r[by] == group]
        acc = g.pivot_table(index="query_id", columns=config, values="correct", aggfunc="mean")
        measured_e = g.pivot_table(index="query_id", columns=config, values="energy_j", aggfunc="mean")
        a = bootstrap_means(acc, n_boot, seed + i).to_numpy()
        e = bootstrap_means(measured_e[acc.columns], n_boot, seed + i).to_numpy()
        keys = pd.DataFrame(
            [(group, *(c if isinstance(c, tuple) else (c,))) for c in acc.columns], columns=[by, *config]
        )
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
    # arrays over the replicates (the sums start at 0.0 and add one array per group)
    out = {
        "saved": cast(np.ndarray, 1 - oracle_e / max_e),
        "accuracy_change": cast(np.ndarray, (oracle_a - max_a) / n_all),
    }
    return pd.DataFrame(
        [
            {"quantity": q, "value": float(v[0]), **dict(zip(("lo", "hi"), interval(v[1:], level), strict=True))}
            for q, v in out.items()
        ]
    )


# --- Maliakel et al. [002], §VII: routing by scaling pattern combined with DVFS ------------------------------


def mix_savings(shares: dict, assigned: dict, energy: dict, baseline) -> pd.DataFrame:
    """Energy of a routed mix against one baseline configuration (Maliakel et al. [002]'s Table XVII from Table XVI):
    each group (a scaling pattern, a difficulty label) with its share of the queries goes to the
    configuration ``assigned[group]`` — any hashable, e.g. ``("3B", 180)`` for (model, SM clock) — whose
    energy per query is ``energy[config]``. Per group: its energy and saving against ``energy[baseline]``;
    ``attrs["saved_pct"]`` is the saving of the whole mix, Σ share × energy against the baseline (the
    share-weighted mean of the groups' savings when the shares sum to 1).

    >>> t = mix_savings({"easy": 0.5, "hard": 0.5}, {"easy": "small", "hard": "large"},
    ...                 {"small": 2.0, "large": 10.0}, baseline="large")
    >>> t.saved_pct.tolist(), t.attrs["saved_pct"]
    ([80.0, 0.0], 40.0)
    """
    base = energy[baseline]
    rows = [
        {
            "group": g,
            "share": s,
            "config": assigned[g],
            "energy_j": energy[assigned[g]],
            "saved_pct": 100 * (1 - energy[assigned[g]] / base),
        }
        for g, s in shares.items()
    ]
    out = pd.DataFrame(rows)
    total = sum(shares.values())
    out.attrs["saved_pct"] = float(100 * (1 - (out.share * out.energy_j).sum() / total / base))
    out.attrs["baseline"] = baseline
    return out


# Table XVI: energy per query (J) at 2842 and at 180 MHz, batch 1, per model.
PAPER_002_TABLE_XVI = {
    "1B": (2.92, 1.69),
    "3B": (4.19, 2.52),
    "8B": (6.24, 3.61),
    "14B": (8.32, 4.91),
    "32B": (20.97, 11.74),
}
# Table XVII: each scaling pattern's share, the model it goes to (at 180 MHz) and the printed saving (%).
PAPER_002_TABLE_XVII = {
    "Always Easy": (0.445, "3B", 88),
    "Scaling Helps": (0.155, "14B", 77),
    "Always Hard": (0.326, "3B", 88),
    "Inconsistent": (0.074, "8B", 83),
}
PAPER_002_TABLE_XVII_TOTAL = 87
# Table XVIII: strategy -> (model, clock MHz, energy J, quality %, printed saving %).
PAPER_002_TABLE_XVIII = {
    "Baseline": ("32B", 2842, 20.97, 83.8, None),
    "DVFS only": ("32B", 180, 11.74, 83.8, 44),
    "Routing only": ("3B", 2842, 4.19, 77.0, 80),
    "Combined": ("3B", 180, 2.52, 77.0, 88),
}


def paper_002_table_xvii() -> pd.DataFrame:
    """Table XVII recomputed from Table XVI's energies: each pattern's model at 180 MHz against the 32B
    model at 2842 MHz, and the weighted total (``attrs["saved_pct"]``)."""
    energy = {(m, 2842): e[0] for m, e in PAPER_002_TABLE_XVI.items()} | {
        (m, 180): e[1] for m, e in PAPER_002_TABLE_XVI.items()
    }
    t = mix_savings(
        {p: v[0] for p, v in PAPER_002_TABLE_XVII.items()},
        {p: (v[1], 180) for p, v in PAPER_002_TABLE_XVII.items()},
        energy,
        baseline=("32B", 2842),
    )
    return t.assign(printed_pct=[v[2] for v in PAPER_002_TABLE_XVII.values()])


def paper_002_inconsistencies() -> list[str]:
    """What Maliakel et al. [002]'s §VII prints that its own Table XVI does not give."""
    t = paper_002_table_xvii()
    out = []
    printed_rows = float((t.share * t.printed_pct).sum() / t.share.sum())
    if abs(t.attrs["saved_pct"] - PAPER_002_TABLE_XVII_TOTAL) > 0.5:
        out.append(
            f"Table XVII: the share-weighted average of its printed rows is {printed_rows:.1f} % (of Table XVI's "
            f"energies {t.attrs['saved_pct']:.1f} %), printed {PAPER_002_TABLE_XVII_TOTAL} % (and the "
            "abstract's 'up to 87 %' with it)"
        )
    for r in t[(t.saved_pct - t.printed_pct).abs() > 0.5].itertuples():
        out.append(
            f"Table XVII, {r.group}: {r.config[0]} at 180 MHz saves {r.saved_pct:.1f} % by Table XVI, "
            f"printed {r.printed_pct} %"
        )
    base = PAPER_002_TABLE_XVIII["Baseline"][2]
    for name, (_model, _mhz, e, _quality, printed) in PAPER_002_TABLE_XVIII.items():
        if printed is not None and abs(100 * (1 - e / base) - printed) > 0.5:
            out.append(
                f"Table XVIII, {name}: {e} J against {base} J is {100 * (1 - e / base):.1f} % saved, "
                f"printed {printed} %"
            )
    combined = PAPER_002_TABLE_XVIII["Combined"]
    out.append(
        f"Table XVIII's 'Combined' sends every query to the {combined[0]} model at {combined[1]} MHz "
        f"({100 * (1 - combined[2] / base):.0f} % saved at its {combined[3]} % quality), not Table XVII's "
        f"routed mix ({t.attrs['saved_pct']:.1f} %, with 15.5 % of queries on the 14B model): the two "
        "'combined' figures are different strategies"
    )
    return out
