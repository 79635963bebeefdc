"""Accuracy against energy per query category (Wilhelm et al. [001], Table 1) and the category router of its §5.

:func:`table` is Table 1 on this package's results: per category (MMLU's eight, the ``subset``
column) and configuration (model, strategy), the accuracy and energy per query with 95 % CIs, and
the changes against a baseline configuration in percent, as the paper reports them::

    Δacc % = 100 · (acc / acc_base − 1)        ΔE % = 100 · (E / E_base − 1)

with percentile intervals from a paired bootstrap: queries are resampled within their category,
jointly for every configuration (all answer the same problems; :func:`verdicts.bootstrap_means`).
An ``All`` row pools the categories (each query once).

The router (:func:`route`) follows Figure 5: a *performance estimator* (accuracy per category
and configuration, estimated on one half of the queries) and an *energy estimator* (the operating
curves of :class:`ttclib.fits.EnergyEstimator`, at each category's prompt length and the output
each configuration produces) choose a configuration per category; the choice is then scored on
the other half, where its measured energy and accuracy are compared with always using the small
and always using the large model. :func:`budgets` turns the curves into token budgets: how many
chain-of-thought tokens the small model may spend before its answer costs more than the large
model's direct one.

>>> import pandas as pd
>>> r = pd.DataFrame({"subset": ["Math"] * 4, "query_id": ["a", "b"] * 2, "model": ["s", "s", "l", "l"],
...                   "strategy": "base", "correct": [0, 1, 1, 1], "energy_j": [1.0, 1.0, 3.0, 3.0]})
>>> t = table(r, {"model": "s", "strategy": "base"}, n_boot=200)
>>> t[t.model == "l"][["subset", "accuracy", "d_accuracy_pct", "d_energy_pct"]].values.tolist()
[['Math', 1.0, 100.0, 200.0], ['All', 1.0, 100.0, 200.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import routing
from .fits import EnergyEstimator, mean_ci, proportion_ci
from .verdicts import bootstrap_means, interval

CONFIG = ["model", "strategy"]
ALL = "All"


def _label(model: str, strategy: str) -> str:
    return f"{model} {strategy}"


def table(
    results: pd.DataFrame, baseline: dict, by: str = "subset", n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Table 1: one row per (category, configuration) and per configuration over all categories
    (``by`` = ``ALL``): n, accuracy (Wilson CI), energy per query (t CI), and Δ% against
    ``baseline`` ({"model", "strategy"}) with paired-bootstrap CIs."""
    r = results.dropna(subset=[by]).assign(correct=lambda d: d.correct.astype(float))
    base = _label(baseline["model"], baseline["strategy"])
    r = r.assign(config=[_label(m, s) for m, s in zip(r.model, r.strategy, strict=True)])
    if base not in set(r.config):
        raise ValueError(f"baseline {baseline} is not among the configurations {sorted(set(r.config))}")
    groups = [(g, r[r[by] == g]) for g in dict.fromkeys(r[by])] + [(ALL, r)]
    rows = []
    for i, (group, g) in enumerate(groups):
        acc = g.pivot_table(index="query_id", columns="config", values="correct", aggfunc="mean")
        energy = g.pivot_table(index="query_id", columns="config", values="energy_j", aggfunc="mean")[acc.columns]
        strata = g.drop_duplicates("query_id").set_index("query_id")[by].reindex(acc.index)
        a = bootstrap_means(acc, n_boot, seed + i, strata).to_numpy()
        e = bootstrap_means(energy, n_boot, seed + i, strata).to_numpy()
        b = list(acc.columns).index(base)
        with np.errstate(all="ignore"):
            d_acc, d_e = 100 * (a / a[:, [b]] - 1), 100 * (e / e[:, [b]] - 1)
        for j, config in enumerate(acc.columns):
            model, strategy = g.loc[g.config == config, CONFIG].iloc[0]
            acc_ci, e_ci = proportion_ci(acc[config].dropna(), level), mean_ci(energy[config].dropna(), level)
            rows.append(
                {
                    by: group,
                    "model": model,
                    "strategy": strategy,
                    "n": int(acc[config].notna().sum()),
                    "accuracy": acc_ci[0],
                    "accuracy_lo": acc_ci[1],
                    "accuracy_hi": acc_ci[2],
                    "energy_per_query_j": e_ci[0],
                    "energy_per_query_j_lo": e_ci[1],
                    "energy_per_query_j_hi": e_ci[2],
                    **_change("d_accuracy_pct", d_acc[:, j], level),
                    **_change("d_energy_pct", d_e[:, j], level),
                }
            )
    return pd.DataFrame(rows)


def _change(name: str, replicates: np.ndarray, level: float) -> dict:
    lo, hi = interval(replicates[1:], level)
    return {name: float(replicates[0]), f"{name}_lo": lo, f"{name}_hi": hi}


def shapes(results: pd.DataFrame, by: str = "subset") -> pd.DataFrame:
    """Per category and configuration: mean prompt and output tokens *per sample* and samples per
    query — the shape of a query that the energy estimator prices (results sum tokens over samples)."""
    r = results.assign(
        input_tokens=results.prompt_tokens / results.samples, output_tokens=results.completion_tokens / results.samples
    )
    return r.groupby([by, *CONFIG], sort=False)[["input_tokens", "output_tokens", "samples"]].mean().reset_index()


def estimated_energy(
    shape: pd.DataFrame, estimator: EnergyEstimator, by: str = "subset", shared_prefill: bool = False
) -> pd.DataFrame:
    """The energy estimator's price of each (category, configuration) in ``shape`` (:func:`shapes`):
    one query of ``samples`` samples, each ``output_tokens`` long after ``input_tokens`` of prompt.
    Every sample pays its own prefill (as this package's MV does), or with ``shared_prefill`` one
    prefill serves all samples and each adds only its decode — E(in, 1) + k·(E(in, out) − E(in, 1)),
    what the paper's MV energies suggest. The interval is the single query's band scaled (its ends
    move together: one fitted curve). Columns [by, model, strategy, energy_j, energy_j_lo, energy_j_hi],
    the form :func:`routing.route` takes."""
    rows = []
    for s in shape.itertuples():
        one = estimator.predict(s.model, s.input_tokens, s.output_tokens)
        if shared_prefill:
            prefill = float(estimator.predict(s.model, s.input_tokens, 1).energy_j[0])
            scale = (prefill + s.samples * (float(one.energy_j[0]) - prefill)) / float(one.energy_j[0])
        else:
            scale = s.samples
        rows.append(
            {
                by: getattr(s, by),
                "model": s.model,
                "strategy": s.strategy,
                "energy_j": scale * float(one.energy_j[0]),
                "energy_j_lo": scale * float(one.lo[0]),
                "energy_j_hi": scale * float(one.hi[0]),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Router:
    """Figure 5's router scored on held-out queries: the routing (:class:`routing.Routing`, measured on
    the test half), the estimates it chose by, and bootstrap intervals of what it saved."""

    routing: routing.Routing
    accuracy: pd.DataFrame  # performance estimator: accuracy per (category, configuration), training half
    energy: pd.DataFrame  # energy estimator: J per query per (category, configuration), with its source
    saved: pd.DataFrame  # routing.bootstrap on the test half: saved share and accuracy change, with CIs
    compared: pd.DataFrame  # on the test half: the router against always using each configuration


def route(
    results: pd.DataFrame,
    estimator: EnergyEstimator | None,
    fallback: dict,
    *,
    by: str = "subset",
    tolerance: float = 0.0,
    seed: int = 0,
    n_boot: int = 2000,
) -> Router:
    """Figure 5's router, honestly scored: accuracy estimated on one half of the queries
    (:func:`routing.split_halves`), energy from the operating curves (``estimator``; the training
    half's measured energy where a model has no curves), the choice scored on the other half, with
    intervals from resampling its queries (the choice held fixed: it was made on the other half)."""
    train, test = routing.split_halves(results, by=by, seed=seed)
    accuracy = routing.estimated_accuracy(train, by)
    keys = [by, *CONFIG]
    energy = train.groupby(keys, sort=False).energy_j.mean().reset_index().assign(source="measured (training half)")
    if estimator is not None:
        priced = shapes(train, by)
        priced = priced[priced.model.isin(estimator.curves)]
        if len(priced):
            curves = estimated_energy(priced, estimator, by).assign(source="operating curves")
            mine = energy.set_index(keys).index.isin(curves.set_index(keys).index)
            energy = pd.concat([curves, energy[~mine]], ignore_index=True)
    chosen = dict(by=by, tolerance=tolerance, accuracy=accuracy, energy=energy[[*keys, "energy_j"]])
    routed = routing.route(test, fallback, **chosen)
    saved = routing.bootstrap(test, fallback, n_boot=n_boot, seed=seed, **chosen)
    return Router(routed, accuracy, energy, saved, _compared(test, routed))


def _compared(test: pd.DataFrame, routed: routing.Routing) -> pd.DataFrame:
    """Energy per query and accuracy on the held-out half: the router, then always one configuration
    (always-small, always-large, ...), each with its 95 % CI over the queries."""
    rows = [
        {
            "policy": "router",
            "energy_per_query_j": routed.oracle_energy_j / routed.n,
            "accuracy": routed.oracle_accuracy,
        }
    ]
    for (model, strategy), g in test.groupby(CONFIG, sort=False):
        per_query = g.assign(correct=g.correct.astype(float)).groupby("query_id")[["energy_j", "correct"]].mean()
        e, a = mean_ci(per_query.energy_j), proportion_ci(per_query.correct)
        rows.append(
            {
                "policy": f"always {model} {strategy}",
                "energy_per_query_j": e[0],
                "energy_per_query_j_lo": e[1],
                "energy_per_query_j_hi": e[2],
                "accuracy": a[0],
                "accuracy_lo": a[1],
                "accuracy_hi": a[2],
            }
        )
    return pd.DataFrame(rows)


def mv_prices(
    results: pd.DataFrame, estimator: EnergyEstimator | None, model: str, strategy: str = "mv", samples=None
) -> pd.DataFrame | None:
    """The energy estimator's price of ``model``'s majority vote relative to one direct answer of the
    same shape (both priced by the curves, so the batch size and meter of the MV runs do not enter):
    every sample with its own prefill (``own``, as this package measures it) and one prefill shared by
    all samples (``shared``), for the runs' sample count and any others in ``samples`` (e.g. the
    paper's 16). Columns samples, prefill, energy_j, direct_j, change_pct. None without curves for
    the model or without its MV runs."""
    mv = results[(results.model == model) & (results.strategy == strategy)]
    if estimator is None or model not in estimator.curves or mv.empty:
        return None
    shape = shapes(mv.assign(pooled=ALL), by="pooled")
    direct = float(estimated_energy(shape.assign(samples=1), estimator, "pooled").energy_j[0])
    rows = []
    for k in dict.fromkeys([int(round(shape.samples[0])), *np.atleast_1d(samples if samples is not None else [])]):
        for name, shared in (("own", False), ("shared", True)):
            e = float(estimated_energy(shape.assign(samples=k), estimator, "pooled", shared_prefill=shared).energy_j[0])
            rows.append(
                {"samples": k, "prefill": name, "energy_j": e, "direct_j": direct, "change_pct": 100 * (e / direct - 1)}
            )
    return pd.DataFrame(rows)


def budgets(estimator: EnergyEstimator, small: str, large: str, input_tokens) -> pd.DataFrame:
    """Token budgets from the operating curves: for each prompt length, the most output tokens the
    ``small`` model may generate before its answer costs more energy than the ``large`` model's
    one-token answer to the same prompt."""
    rows = []
    for n in np.atleast_1d(input_tokens):
        cap = float(estimator.predict(large, n, 1).energy_j[0])
        rows.append(
            {
                "input_tokens": float(n),
                "large_one_token_j": cap,
                "small_tokens_within": estimator.curves[small].tokens_within(cap, n),
            }
        )
    return pd.DataFrame(rows)


def overall(tab: pd.DataFrame, by: str = "subset") -> pd.DataFrame:
    """The ``All`` rows of :func:`table`, one per configuration."""
    return tab[tab[by] == ALL].reset_index(drop=True)


# --- the paper's own Table 1, checked against itself -------------------------------------------

# Wilhelm et al. [001], Table 1: accuracy and energy of Llama-3.2-1B zero-shot per category, and (accuracy,
# Δacc %, ΔE %) of Llama-3.1-8B, 1B with MV and 1B with CoT. Energies as printed ("78,556 kJ": a
# decimal comma, 78.556 kJ; 78,556 kJ would be 21.8 kWh for one category of MMLU on one L40S).
PAPER_TABLE1 = {
    "Computer Science": (0.38, 78.556, (0.56, 47, 42), (0.39, 3, 118), (0.43, 13, 13858)),
    "Economics": (0.40, 80.437, (0.62, 51, 65), (0.42, 5, 177), (0.42, 5, 13211)),
    "Engineering": (0.37, 74.805, (0.75, 99, 36), (0.44, 19, 72), (0.43, 17, 12233)),
    "Health": (0.50, 78.484, (0.78, 57, 44), (0.54, 8, 108), (0.55, 10, 14339)),
    "Humanities": (0.44, 79.029, (0.72, 61, 63), (0.46, 5, 174), (0.45, 2, 13334)),
    "Math": (0.11, 83.532, (0.39, 350, 37), (0.11, 0, 88), (0.31, 281, 15132)),
    "Natural Sciences": (0.26, 76.172, (0.54, 100, 41), (0.27, 4, 102), (0.29, 11, 15483)),
    "Sociology": (0.47, 76.673, (0.82, 72, 40), (0.48, 2, 97), (0.60, 26, 13198)),
}
PAPER_CONFIGS = ("Llama 8B", "Llama 1B MV", "Llama 1B CoT")


def paper_inconsistencies(slack_pct: float = 1.0) -> pd.DataFrame:
    """Rows of the paper's Table 1 whose printed Δaccuracy % cannot follow from its own accuracies:
    outside the range the two-decimal rounding of both accuracies allows (± ``slack_pct`` for the
    rounding of the percentage itself).

    >>> bad = paper_inconsistencies()
    >>> bad[(bad.subset == "Math") & (bad.config == "Llama 8B")][["printed_pct", "from_accuracies_pct"]].values.tolist()
    [[350.0, 254.5]]
    """
    rows = []
    for cat, (base, _, *others) in PAPER_TABLE1.items():
        for config, (acc, d_acc, _) in zip(PAPER_CONFIGS, others, strict=True):
            lo = 100 * ((acc - 0.005) / (base + 0.005) - 1) - slack_pct
            hi = 100 * ((acc + 0.005) / (base - 0.005) - 1) + slack_pct
            if not lo <= d_acc <= hi:
                rows.append(
                    {
                        "subset": cat,
                        "config": config,
                        "accuracy": acc,
                        "baseline_accuracy": base,
                        "printed_pct": d_acc,
                        "from_accuracies_pct": round(100 * (acc / base - 1), 1),
                        "rounding_allows_pct": (round(lo, 1), round(hi, 1)),
                    }
                )
    return pd.DataFrame(rows)
