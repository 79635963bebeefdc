"""Verdicts on the paper's claims, decided by confidence intervals, never by point estimates.

A claim **held** when its interval lies wholly on the claimed side, **did not hold** when it lies
wholly on the other, and is **inconclusive at this sample size** otherwise; a claim the meter or
the design cannot test (power from an estimate meter) **could not be tested**. A claim made of
parts held only when every part held, and did not hold as soon as one part did not::

    >>> above(1.2, 3.0, 1.0), above(0.5, 0.9, 1.0), above(0.8, 1.4, 1.0)
    ('held', 'did not hold', 'inconclusive')
    >>> within(-0.04, 0.06, -0.1, 0.1), within(0.12, 0.3, -0.1, 0.1), within(-0.02, 0.14, -0.1, 0.1)
    ('held', 'did not hold', 'inconclusive')
    >>> str(Verdict("The claim that X", all_of(["held", "inconclusive"]), "n = 20 per group"))
    'The claim that X was inconclusive at this sample size here: n = 20 per group.'

Uncertainty over the choice of problems comes from :func:`bootstrap_means`, which resamples
queries jointly across configurations: every configuration answers the same problems, so a
hard problem drawn twice is hard for all of them (a paired design).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

Outcome = Literal["held", "did not hold", "inconclusive", "not tested"]
OUTCOMES: tuple[Outcome, ...] = ("held", "did not hold", "inconclusive", "not tested")
_PHRASE = {
    "held": "held",
    "did not hold": "did not hold",
    "inconclusive": "was inconclusive at this sample size",
    "not tested": "could not be tested",
}
LEVEL = 0.95


@dataclass(frozen=True)
class Verdict:
    """One claim's outcome and the evidence it rests on (numbers with their intervals)."""

    claim: str  # "The claim that …"
    outcome: Outcome
    why: str = ""  # the evidence, one clause

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {self.outcome!r}")

    def __str__(self) -> str:
        return f"{self.claim} {_PHRASE[self.outcome]} here" + (f": {self.why}." if self.why else ".")


def _finite(*v: float) -> bool:
    return all(x is not None and np.isfinite(x) for x in v)


def above(lo: float, hi: float, threshold: float) -> Outcome:
    """Whether an interval supports "greater than ``threshold``" (NaN bounds: inconclusive)."""
    if _finite(lo) and lo > threshold:
        return "held"
    if _finite(hi) and hi <= threshold:
        return "did not hold"
    return "inconclusive"


def below(lo: float, hi: float, threshold: float) -> Outcome:
    """Whether an interval supports "less than ``threshold``"."""
    if _finite(hi) and hi < threshold:
        return "held"
    if _finite(lo) and lo >= threshold:
        return "did not hold"
    return "inconclusive"


def within(lo: float, hi: float, low: float, high: float) -> Outcome:
    """Equivalence: held when the whole interval lies in [low, high], did not hold when it lies
    wholly outside, inconclusive when it straddles a bound."""
    if _finite(lo, hi) and low <= lo and hi <= high:
        return "held"
    if (_finite(hi) and hi < low) or (_finite(lo) and lo > high):
        return "did not hold"
    return "inconclusive"


def at_least(lo: float, hi: float, margin: float) -> Outcome:
    """Non-inferiority of a difference: held when its lower bound is above ``-margin``, did not hold
    when the whole interval is below zero (a loss shown), inconclusive otherwise."""
    if _finite(lo) and lo >= -margin:
        return "held"
    if _finite(hi) and hi < 0:
        return "did not hold"
    return "inconclusive"


def all_of(outcomes: Iterable[Outcome]) -> Outcome:
    """A claim made of parts: held if all held, did not hold if any did not, else inconclusive
    (not tested when no part could be tested).

    >>> all_of(["held", "held"]), all_of(["held", "did not hold", "inconclusive"]), all_of(["not tested"])
    ('held', 'did not hold', 'not tested')
    """
    out = list(outcomes)
    if not out or all(o == "not tested" for o in out):
        return "not tested"
    if "did not hold" in out:
        return "did not hold"
    return "held" if all(o == "held" for o in out) else "inconclusive"


def interval(replicates, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN replicates dropped; infinities kept)."""
    r = np.asarray(replicates, float)
    r = r[~np.isnan(r)]
    if not r.size:
        return (np.nan, np.nan)
    lo, hi = np.quantile(r, [0.5 - level / 2, 0.5 + level / 2], method="inverted_cdf")
    return (float(lo), float(hi))


def paired_difference_ci(x, y, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean(y) − mean(x), lower, upper) for paired proportions — the same queries answered by two
    configurations — by Agresti and Min's adjusted Wald interval (Biometrics 2005;61:515: half a
    pair added to each cell of the 2×2 table), which is not degenerate when no query changed its
    outcome and covers close to nominal at small n. Per-query values may be fractional (a query's
    accuracy averaged over repetitions): the discordant cells are then expected counts.

    >>> d, lo, hi = paired_difference_ci([1] * 10 + [0] * 10, [1] * 10 + [0] * 10)
    >>> d, round(lo, 3), round(hi, 3)          # 20 queries, none changed: no loss shown, none excluded
    (0.0, -0.089, 0.089)
    >>> [round(v, 3) for v in paired_difference_ci([0] * 5 + [1] * 15, [1] * 20)]
    [0.25, 0.031, 0.424]
    """
    a, b = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = a.size
    if n == 0:
        return (np.nan, np.nan, np.nan)
    only_x, only_y = float((a * (1 - b)).sum()) + 0.5, float(((1 - a) * b).sum()) + 0.5
    n2 = n + 2
    shift = (only_y - only_x) / n2
    se = np.sqrt(max(only_x + only_y - (only_y - only_x) ** 2 / n2, 0.0)) / n2
    z = float(stats.norm.ppf(0.5 + level / 2))
    return (float(b.mean() - a.mean()), float(max(shift - z * se, -1.0)), float(min(shift + z * se, 1.0)))


def widest(*intervals: tuple[float, float]) -> tuple[float, float]:
    """The union of intervals (NaN bounds ignored). A query bootstrap is degenerate at a handful of
    queries (every resample of identical outcomes is identical), so a bootstrap interval of an
    accuracy difference is widened to the paired score interval of :func:`paired_difference_ci`.

    >>> widest((0.2, 0.3), (0.1, 0.25))
    (0.1, 0.3)
    """
    lows = [lo for lo, _ in intervals if lo == lo]
    highs = [hi for _, hi in intervals if hi == hi]
    return (min(lows) if lows else np.nan, max(highs) if highs else np.nan)


# --- the query bootstrap -------------------------------------------------------------------------

UNIT = ["benchmark", "query_id"]


def per_query(
    results: pd.DataFrame,
    configs: Sequence[str] = ("model", "strategy"),
    values: Sequence[str] = ("correct", "energy_j"),
) -> dict[str, pd.DataFrame]:
    """Per value, a (query × configuration) table of each query's mean over its repetitions."""
    unit = [c for c in UNIT if c in results.columns]
    df = results.assign(correct=results.correct.astype(float)) if "correct" in values else results
    tables = {
        v: df.pivot_table(index=unit, columns=list(configs), values=v, aggfunc="mean", sort=False) for v in values
    }
    rows = df.set_index(unit).index.unique()  # the same queries, in the same order, in every table
    return {v: t.reindex(rows) for v, t in tables.items()}


def bootstrap_means(table: pd.DataFrame, n_boot: int = 2000, seed: int = 0, strata=None) -> pd.DataFrame:
    """Means of each column of a (query × configuration) table over ``n_boot`` resamples of its
    rows (queries drawn jointly for every configuration; within each stratum when ``strata`` gives
    one label per row). Row 0 of the result is the observed mean."""
    values = table.to_numpy(float)
    rng = np.random.default_rng(seed)
    labels = np.zeros(len(values), int) if strata is None else pd.factorize(np.asarray(strata))[0]
    idx = []
    for s in np.unique(labels):
        rows = np.flatnonzero(labels == s)
        idx.append(rows[rng.integers(0, rows.size, (n_boot, rows.size))])
    draws = np.concatenate(idx, axis=1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a configuration with no value in a resample
        boot = np.nanmean(values[draws], axis=1)
        observed = np.nanmean(values, axis=0)
    return pd.DataFrame(np.vstack([observed, boot]), columns=table.columns)


def mann_whitney(shorter, longer) -> tuple[Outcome, float]:
    """Whether the values of ``shorter`` are stochastically smaller than ``longer``'s, and the
    one-sided p of that: held at p < 0.05, did not hold when the opposite one-sided test has p < 0.05.

    >>> mann_whitney([1, 2, 3, 4], [10, 11, 12, 13])[0], mann_whitney([10, 11, 12, 13], [1, 2, 3, 4])[0]
    ('held', 'did not hold')
    """
    p = float(stats.mannwhitneyu(shorter, longer, alternative="less").pvalue)
    if p < 1 - LEVEL:
        return "held", p
    if stats.mannwhitneyu(shorter, longer, alternative="greater").pvalue < 1 - LEVEL:
        return "did not hold", p
    return "inconclusive", p
