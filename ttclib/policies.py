"""Energy and quality of serving policies, side by side (Maliakel et al. [002], §VII: Tables XV-XVIII, Figure 7).

A *policy* gives every query a configuration — model, strategy and SM clock (the ``clock`` column,
:func:`with_clock`). A fixed policy always uses one (the baseline: the largest model at its full clock;
"DVFS only": the same model at the lowest clock). A router picks per group of a *predictor* column —
the scaling pattern (an oracle: known only once every model has answered), Table X's text rule, a
difficulty classifier's out-of-fold label, the category — the cheapest configuration within
``tolerance`` of the group's best accuracy (:func:`ttclib.routing.route`).

Routers choose on one half of the queries (split within each dataset) and every policy is scored on the
other half, each query's energy and quality being what its configuration measured on it. Intervals come
from resampling those queries jointly for all policies (they answer the same queries).

>>> import pandas as pd
>>> r = pd.DataFrame({"query_id": [f"q{i}" for i in range(8)] * 2, "benchmark": (["a"] * 4 + ["b"] * 4) * 2,
...                   "model": ["s"] * 8 + ["l"] * 8, "strategy": "base", "energy_j": [1.0] * 8 + [4.0] * 8,
...                   "correct": [1] * 4 + [0] * 4 + [1] * 8, "kind": (["easy"] * 4 + ["hard"] * 4) * 2})
>>> t = compare(with_clock(r), {"model": "l", "strategy": "base", "clock": "unlocked"}, {"by kind": "kind"}, n_boot=200)
>>> t.set_index("policy").loc["by kind", ["energy_per_query_j", "quality", "saved_pct"]].tolist()
[2.5, 1.0, 37.5]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import routing
from .verdicts import interval, paired_difference_ci, widest

UNLOCKED = "unlocked"


def with_clock(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with a ``clock`` column: ``"<n> MHz"`` where the run locked the SM clock, else
    :data:`UNLOCKED` (the GPU's own clock, or a CPU)."""
    mhz = results["sm_clock_mhz"] if "sm_clock_mhz" in results else pd.Series(np.nan, index=results.index)
    return results.assign(clock=[UNLOCKED if v != v or v is None else f"{int(v)} MHz" for v in mhz])


def mhz(clock: str) -> float:
    """The clock label's MHz (inf for unlocked: the GPU's highest, as it runs by itself)."""
    return np.inf if clock == UNLOCKED else float(clock.split()[0])


def baseline(results: pd.DataFrame, config=("model", "strategy", "clock"), model: str | None = None) -> dict:
    """Table XVIII's baseline: the largest model (``model``, default the last one the results list —
    grids list models smallest first) with its base strategy at its highest clock."""
    model = model or list(dict.fromkeys(results.model))[-1]
    mine = results[results.model == model]
    strategy = "base" if (mine.strategy == "base").any() else mine.strategy.iloc[0]
    clock = max(mine[mine.strategy == strategy].clock.unique(), key=mhz)
    return dict(zip(config, (model, strategy, clock), strict=True))


# The routers of section 10: name -> predictor column of :func:`with_predictors`.
ROUTERS = {
    "by pattern (oracle)": "pattern",
    "by Table X rule": "rule",
    "by classifier": "predicted",
    "by category": "subset",
}


def with_predictors(results: pd.DataFrame, workload) -> pd.DataFrame:
    """``results`` with what each router reads of a query, from a :class:`ttclib.features.Workload`: its
    scaling pattern (an oracle), Table X's rule and the out-of-fold difficulty classifier (``easy``/``hard``)."""
    from .features import predicted_easy

    q = workload.queries
    known = q[["query_id", "pattern"]].assign(rule=q.rule_easy.map({1: "easy", 0: "hard"}), predicted=predicted_easy(q))
    return results.merge(known, on="query_id")


def top_clock(results: pd.DataFrame) -> pd.DataFrame:
    """The base-strategy results at the highest clock: the runs the scaling patterns are read from."""
    base = results[results.strategy == "base"]
    return base[base.clock == max(base.clock.unique(), key=mhz)]


def fixed_policies(results: pd.DataFrame, base: dict) -> dict[str, dict]:
    """Table XVIII's fixed rows: the baseline, and "DVFS only" (its model at the lowest clock) where one is."""
    lowest = min(results.clock.unique(), key=mhz)
    return {"baseline": base} | ({"DVFS only": {**base, "clock": lowest}} if lowest != base["clock"] else {})


def compare(
    results: pd.DataFrame,
    base: dict,
    routers: dict[str, str],
    *,
    fixed: dict[str, dict] | None = None,
    oracles: tuple[str, ...] = ("pattern",),
    quality: str = "correct",
    tolerance: float = 0.0,
    seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
) -> pd.DataFrame:
    """Table XVIII with intervals: energy per query, quality, energy saved against ``base`` (%) and the
    quality change, per policy, on the held-out half. Policies: every configuration alone ("always …"),
    ``fixed`` (name -> configuration, e.g. "DVFS only"), and each router of ``routers`` (name -> predictor
    column; a predictor in ``oracles`` is marked ``kind="oracle"``). Where the results hold more than one
    clock, each router also runs restricted to the baseline's clock ("… at <clock>": routing without
    DVFS). ``attrs["choices"]``: each router's configuration per group (its Table XV)."""
    config = list(base)
    results = results.assign(correct=results.correct.astype(float))
    train, test = routing.split_halves(results, by="benchmark", seed=seed)
    cells = {
        v: test.pivot_table(index="query_id", columns=config, values=v, aggfunc="mean") for v in ("energy_j", quality)
    }
    configs = list(cells["energy_j"].columns)
    key = tuple(base[c] for c in config)
    if key not in configs:
        raise ValueError(f"baseline {base} is not among the configurations {configs}")

    def name(c: tuple) -> str:
        return " ".join(str(v) for v in c if v not in ("base", UNLOCKED))

    assign, kinds, choices = {}, {}, {}
    for c in configs:
        assign[f"always {name(c)}"], kinds[f"always {name(c)}"] = (
            pd.Series([c] * len(cells["energy_j"]), index=cells["energy_j"].index),
            "fixed",
        )
    for label, c in (fixed or {}).items():
        c = tuple(c[k] for k in config)
        if c in configs:
            assign[label], kinds[label] = assign[f"always {name(c)}"], "fixed"
    clocks = results.clock.unique() if "clock" in results else []
    for label, by in routers.items():
        variants = {label: train}
        if len(clocks) > 1:
            variants[f"{label} at {base['clock']}"] = train[train.clock == base["clock"]]
        for variant, t in variants.items():
            chosen = routing.route(t, base, by=by, tolerance=tolerance).table.set_index(by)[config]
            choices[variant] = chosen.reset_index()
            group = test.groupby("query_id")[by].first().reindex(cells["energy_j"].index)
            picked = [tuple(chosen.loc[g]) if g in chosen.index else key for g in group]
            assign[variant], kinds[variant] = (
                pd.Series(picked, index=group.index),
                "oracle" if by in oracles else "router",
            )
    out = _score(cells, assign, key, n_boot, seed, level)
    out.insert(1, "kind", out.policy.map(kinds))
    out.attrs["choices"] = choices
    out.attrs["baseline"] = base
    out.attrs["n_train"], out.attrs["n_test"] = train.query_id.nunique(), len(cells["energy_j"])
    return out


def _score(
    cells: dict[str, pd.DataFrame], assign: dict[str, pd.Series], base: tuple, n_boot: int, seed: int, level: float
) -> pd.DataFrame:
    energy_t, quality_t = cells.values()
    cols = list(energy_t.columns)

    def pick(t: pd.DataFrame, a: pd.Series) -> np.ndarray:  # per row of t, the column a names
        return t.to_numpy(float)[np.arange(len(t)), [cols.index(c) for c in a]]

    e = np.column_stack([pick(energy_t, a) for a in assign.values()])
    q = np.column_stack([pick(quality_t, a) for a in assign.values()])
    b = cols.index(base)
    e_base, q_base = energy_t.to_numpy(float)[:, b], quality_t.to_numpy(float)[:, b]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(e), (n_boot, len(e)))
    boot_e, boot_q = e[draws].mean(axis=1), q[draws].mean(axis=1)
    boot_saved = 100 * (1 - boot_e / e_base[draws].mean(axis=1)[:, None])
    boot_dq = boot_q - q_base[draws].mean(axis=1)[:, None]
    binary = np.isin(q, (0.0, 1.0)).all()
    rows = []
    for i, policy in enumerate(assign):
        dq = interval(boot_dq[:, i], level)
        if binary:  # a query bootstrap is degenerate when few queries change: widen to the paired interval
            dq = widest(dq, paired_difference_ci(q_base, q[:, i], level)[1:])
        rows.append(
            {
                "policy": policy,
                "energy_per_query_j": e[:, i].mean(),
                **dict(zip(("energy_lo", "energy_hi"), interval(boot_e[:, i], level), strict=True)),
                "quality": q[:, i].mean(),
                **dict(zip(("quality_lo", "quality_hi"), interval(boot_q[:, i], level), strict=True)),
                "saved_pct": 100 * (1 - e[:, i].mean() / e_base.mean()),
                **dict(zip(("saved_lo", "saved_hi"), interval(boot_saved[:, i], level), strict=True)),
                "d_quality": q[:, i].mean() - q_base.mean(),
                "d_quality_lo": dq[0],
                "d_quality_hi": dq[1],
                "n": len(e),
            }
        )
    return pd.DataFrame(rows)


def pareto(table: pd.DataFrame) -> pd.Series:
    """Whether each policy is on the energy-quality frontier: no other spends less energy per query
    without losing quality, or reaches more quality without spending more (Figure 7).

    >>> pareto(pd.DataFrame({"energy_per_query_j": [1, 2, 3, 2.5], "quality": [0.5, 0.7, 0.8, 0.6]})).tolist()
    [True, True, True, False]
    """
    e, q = table.energy_per_query_j.to_numpy(float), table.quality.to_numpy(float)
    dominated = [bool(((e <= e[i]) & (q >= q[i]) & ((e < e[i]) | (q > q[i]))).any()) for i in range(len(e))]
    return pd.Series(np.logical_not(dominated), index=table.index, name="pareto")


def pattern_mix(queries: pd.DataFrame, choice: pd.DataFrame, results: pd.DataFrame, base: dict) -> pd.DataFrame:
    """Table XVII on measurements: each scaling pattern's share of ``queries``, the configuration the
    pattern router chose for it (``choice``: an entry of :func:`compare`'s ``attrs["choices"]``), that
    configuration's measured energy per query over all of ``results`` and its saving against ``base``;
    ``attrs["saved_pct"]`` is the share-weighted whole (:func:`ttclib.routing.mix_savings`)."""
    config = list(base)
    per = results.groupby(config).energy_j.mean()
    shares = queries.pattern.value_counts(normalize=True)
    chosen = choice.set_index("pattern")[config]
    key = tuple(base.values())
    assigned = {p: tuple(chosen.loc[p]) if p in chosen.index else key for p in shares.index}
    return routing.mix_savings(
        shares.to_dict(), assigned, {k: float(per.loc[k]) for k in {*assigned.values(), key}}, baseline=key
    )
