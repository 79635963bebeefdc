"""The frequency axis of Maliakel et al. [002] (Section VI): energy and latency, and their prefill
and decode parts, at locked SM clocks — Tables XI, XII and XIV, and the energy-vs-frequency fit.

Runs that differ only in ``sm_clock_mhz`` answer the same queries, so every comparison between two
clocks is paired (same repetition, query and sample), and every interval resamples batches, not
queries: the rows of a static batch share their prefill and most of their time (:func:`batches`,
:func:`ratio_of_sums`). A run's
frequency is the clock its lock set (``run.json`` ``clocks``), the requested one snapped to what the
GPU supports; the clock the trace read and the throttle reasons are kept beside it.

The decomposition the paper's Table XI rests on — latency change = prefill share × prefill change +
decode share × decode change — holds exactly for totals when the phases' times add up to the
latency; :func:`savings` reports it as ``identity_pct`` next to the measured latency change.

>>> import pandas as pd
>>> edp_argmin(pd.DataFrame({"frequency_mhz": [180, 960, 2842], "energy_j": [5.8, 6.0, 10.0],
...                          "latency_s": [1.30, 1.02, 1.00]}))
960.0
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from . import fits
from .metrics import RunSet, phases, timed

#: Maliakel et al. [002]'s SM clocks (RTX PRO 6000 Blackwell), MHz; 2842 is its baseline.
PAPER_FREQUENCIES = (180, 487, 960, 1500, 2000, 2505, 2842)
GROUP = ("model", "batch_size", "benchmark")
KEY = ["repetition", "query_id", "sample"]

# Table XI of Maliakel et al. [002] (180 vs 2842 MHz): energy saved, latency, prefill and decode change, prefill
# share of time, all in %.
PAPER_TABLE_XI = pd.DataFrame(
    [
        ("Llama-1B", 1, 42.3, 5.6, 52.4, 0.7, 9.6),
        ("Llama-1B", 4, 42.4, 5.3, 34.5, 1.2, 12.4),
        ("Llama-1B", 8, 44.2, 3.5, 21.7, -0.3, 17.0),
        ("Llama-3B", 1, 39.9, 4.2, 37.4, 0.8, 9.4),
        ("Llama-3B", 4, 42.3, 3.3, 16.1, 1.0, 14.7),
        ("Llama-3B", 8, 43.5, 1.6, 8.5, -0.1, 20.0),
        ("Llama-8B", 1, 42.2, 2.5, 23.3, 0.1, 10.0),
        ("Llama-8B", 4, 42.4, 0.8, 7.6, -0.5, 16.9),
        ("Llama-8B", 8, 42.9, 0.3, 3.4, -0.7, 24.4),
        ("Qwen-14B", 1, 41.0, 1.3, 11.2, -0.2, 13.8),
        ("Qwen-14B", 4, 41.7, 0.8, 3.4, 0.2, 17.6),
        ("Qwen-14B", 8, 43.3, 0.0, 1.4, -0.5, 25.9),
        ("Qwen-32B", 1, 44.0, 0.3, 4.4, -0.2, 11.5),
        ("Qwen-32B", 4, 43.0, 0.3, 1.7, 0.0, 19.2),
        ("Qwen-32B", 8, 44.1, -0.1, 0.5, -0.3, 27.5),
    ],
    columns=[
        "model",
        "batch_size",
        "energy_saved_pct",
        "latency_delta_pct",
        "prefill_delta_pct",
        "decode_delta_pct",
        "prefill_share_pct",
    ],
)
# Table XI's average rows (B = 1, 4, 8) as printed.
PAPER_TABLE_XI_AVERAGES = {
    1: (41.9, 2.8, 25.7, 0.2, 10.9),
    4: (42.4, 2.1, 12.7, 0.4, 16.2),
    8: (43.6, 1.1, 7.1, -0.4, 23.0),
}
# Table XII: the EDP-optimal clock, energy saved and latency change vs 2842 MHz, per model and batch.
PAPER_TABLE_XII = pd.DataFrame(
    [
        ("Llama-1B", 1, 960, 44.8, -4.4),
        ("Llama-3B", 1, 960, 47.6, -10.4),
        ("Llama-8B", 1, 960, 47.4, -11.0),
        ("Qwen-14B", 1, 960, 51.5, -19.0),
        ("Qwen-32B", 1, 960, 63.2, -36.5),
        ("Llama-1B", 4, 960, 42.3, 1.2),
        ("Llama-3B", 4, 487, 42.7, 2.7),
        ("Llama-8B", 4, 180, 42.4, 0.8),
        ("Qwen-14B", 4, 487, 41.8, 0.5),
        ("Qwen-32B", 4, 487, 43.4, 0.2),
        ("Llama-1B", 8, 180, 44.2, 3.5),
        ("Llama-3B", 8, 960, 42.8, 0.2),
        ("Llama-8B", 8, 960, 45.2, -5.6),
        ("Qwen-14B", 8, 180, 43.3, 0.0),
        ("Qwen-32B", 8, 180, 44.1, -0.1),
    ],
    columns=["model", "batch_size", "frequency_mhz", "energy_saved_pct", "latency_delta_pct"],
)
# §VI-E: prefill's share of time at B=1 for the short-output datasets (BoolQ, HellaSwag, scored by
# log-likelihood) and the long-output ones (TruthfulQA, NarrativeQA), %.
PAPER_PREFILL_SHARE_PCT = {"short": (31, 39), "long": (3, 12)}
# Table XIV's summary lines that other tables can check.
PAPER_TABLE_XIV = {
    "decode_time_share_pct": (77, 91),
    "edp_energy_saved_pct": (45, 50),
    "edp_latency_delta_pct": (-10, -5),
    "energy_saved_pct": (40, 44),
}


class NoSweep(ValueError):
    """The runs hold no frequency sweep (no run locks a clock, or one clock only)."""


def sweep(data: RunSet, by=GROUP) -> pd.DataFrame:
    """One row per run: ``by``, ``max_new_tokens``, ``scoring``, ``frequency_mhz`` (the clock set; NaN =
    the GPU's own management), the clock the trace read (``sm_clock_median_mhz``), ``throttle``, the
    meter, the run's phases (:func:`ttclib.metrics.phases` over all its queries) and decode's share of
    time with its interval (:func:`time_share`), and ``workload``: what a query asks of the model —
    generation up to N tokens, or log-likelihood scoring (LL), or a prefill-only twin (one token)."""
    by = list(by)
    runs = data.runs.assign(frequency_mhz=pd.to_numeric(data.runs.sm_clock_set_mhz, errors="coerce"))
    ph = phases(data.queries, by=["run_id"])
    shares = {rid: time_share(q) for rid, q in data.queries.groupby("run_id", sort=False)}
    ph = ph.assign(
        **{
            f"decode_share{suffix}": ph.run_id.map(lambda r, i=i: shares[r][i])
            for i, suffix in enumerate(("", "_lo", "_hi"))
        }
    )
    keep = [
        "run_id",
        *by,
        *[c for c in ("max_new_tokens", "scoring") if c not in by],
        "frequency_mhz",
        "sm_clock_median_mhz",
        "throttle",
        "meter",
    ]
    out = runs[keep].merge(ph, on="run_id").sort_values([*by, "frequency_mhz"], ignore_index=True)
    return out.assign(workload=workload(out))


def workload(table: pd.DataFrame) -> pd.Series:
    """'mtbench ≤48 tok', 'mmlu (LL)', 'mtbench prefill only': what each run asks of the model."""
    ll = table.scoring.eq("loglikelihood") if "scoring" in table else pd.Series(False, index=table.index)
    gen = table.benchmark.astype(str) + " ≤" + table.max_new_tokens.astype(int).astype(str) + " tok"
    return gen.where(table.max_new_tokens > 1, table.benchmark.astype(str) + " prefill only").where(
        ~ll, table.benchmark.astype(str) + " (LL)"
    )


def generating(table: pd.DataFrame) -> pd.DataFrame:
    """The runs that answer queries: generation beyond one token, and log-likelihood scoring (not the
    prefill-only twins)."""
    ll = table.scoring.eq("loglikelihood") if "scoring" in table else False
    return table[ll | (table.max_new_tokens > 1)]


def batches(queries: pd.DataFrame) -> np.ndarray:
    """Which batch each query ran in — the unit every interval here resamples. The rows of a static
    batch (transformers) share their start, prefill and most of their time, so they are one
    observation, not several; under continuous batching (SGLang) each query starts on its own.

    >>> batches(pd.DataFrame({"run_id": "r", "repetition": 0, "t_start": [5.0, 5.0, 9.0]})).tolist()
    [0, 0, 1]
    """
    return queries.groupby(["run_id", "repetition", "t_start"], sort=False).ngroup().to_numpy()


def _sums(q: pd.DataFrame, columns: list[str], by: np.ndarray) -> pd.DataFrame:
    return q[columns].groupby(by, sort=False).sum()


FEW_BATCHES = 10  # below this many batches an interval is a t interval, from it on a bootstrap


def ratio_of_sums(num, den, level: float = 0.95) -> tuple[float, float, float]:
    """Σnum / Σden over batches (paired) with an interval: :func:`ttclib.fits.ratio_ci`'s studentized
    bootstrap from :data:`FEW_BATCHES` batches on, below that :func:`ttclib.fits.paired_ratio_t` (a
    bootstrap of three batches has ten distinct resamples)."""
    if len(num) >= FEW_BATCHES:
        return fits.ratio_ci(num, den, level=level, paired=True)
    return fits.paired_ratio_t(num, den, level=level)


def _paired(data: RunSet, a: str, b: str) -> pd.DataFrame:
    """Run ``a``'s and run ``b``'s queries side by side (suffixes _a, _b), by repetition, query and sample,
    summed per batch of run ``b`` (the runs differ only in their clock: the same batches)."""
    cols = ["energy_j", "latency_s", "prefill_s", "decode_s"]
    qa, qb = (timed(data.queries[data.queries.run_id == r]) for r in (a, b))
    both = qa[KEY + cols].merge(qb[KEY + cols + ["run_id", "t_start"]], on=KEY, suffixes=("_a", "_b"))
    sums = _sums(both, [f"{c}_{s}" for c in cols for s in "ab"], batches(both))
    sums.attrs["queries"] = len(both)
    return sums


def time_share(queries: pd.DataFrame, part: str = "decode_s", level: float = 0.95) -> tuple[float, float, float]:
    """The share of inference time spent in one phase — Σ ``part`` / Σ latency over ``queries`` — with
    an interval from the batches (:func:`batches`; :func:`ratio_of_sums` over batch sums, each batch's
    phase and latency together), kept within [0, 1]: NaN bounds with fewer than two batches.
    Queries without a first-token time are left out."""
    q = timed(queries).dropna(subset=["t_first_token"])
    s = _sums(q, [part, "latency_s"], batches(q))
    share, lo, hi = ratio_of_sums(s[part], s.latency_s, level=level)
    return share, max(lo, 0.0) if lo == lo else lo, min(hi, 1.0) if hi == hi else hi  # a share lies in [0, 1]


def share_ratio(
    a: pd.DataFrame, b: pd.DataFrame, part: str = "prefill_s", n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """How many times larger the share of time in ``part`` is for queries ``a`` than for queries ``b``
    — (Σpart/Σlatency)_a / (Σpart/Σlatency)_b — with an interval over each side's batches: a percentile
    bootstrap resampling each side on its own when both have :data:`FEW_BATCHES` or more, else a t
    interval on the log of the ratio (each side's paired delta-method se, the smaller side's degrees of
    freedom). NaN bounds when a side has fewer than two batches.

    >>> a = pd.DataFrame({"run_id": "a", "repetition": 0, "t_start": [0.0, 10.0], "t_first_token": [2.0, 12.0],
    ...                   "t_end": [4.0, 14.0]})
    >>> b = a.assign(t_first_token=[1.0, 11.0])
    >>> share_ratio(a, b)                   # half the time in prefill vs a quarter, in every batch
    (2.0, 2.0, 2.0)
    """
    sides = []
    for x in (a, b):
        t = timed(x).dropna(subset=["t_first_token"])
        sides.append(_sums(t, [part, "latency_s"], batches(t)).to_numpy(float))
    (pa, la), (pb, lb) = (side.T for side in sides)
    if not (len(pa) and len(pb)):
        return (np.nan, np.nan, np.nan)
    ratio = float((pa.sum() / la.sum()) / (pb.sum() / lb.sum()))
    if len(pa) < 2 or len(pb) < 2:
        return (ratio, np.nan, np.nan)
    if min(len(pa), len(pb)) < FEW_BATCHES:
        se = np.hypot(fits.log_ratio_se(pa, la), fits.log_ratio_se(pb, lb))
        half = float(stats.t.ppf(0.5 + level / 2, min(len(pa), len(pb)) - 1)) * se
        return (ratio, ratio * float(np.exp(-half)), ratio * float(np.exp(half)))
    rng = np.random.default_rng(seed)
    ia, ib = rng.integers(0, len(pa), (n_boot, len(pa))), rng.integers(0, len(pb), (n_boot, len(pb)))
    with np.errstate(all="ignore"):
        boot = (pa[ia].sum(1) / la[ia].sum(1)) / (pb[ib].sum(1) / lb[ib].sum(1))
    from .verdicts import interval

    lo, hi = interval(boot, level)
    return (ratio, lo, hi)


def subtraction(data: RunSet, by=GROUP) -> pd.DataFrame:
    """Prefill energy per query two ways, side by side: from timestamps (the full run's queries, start
    to first token: :func:`ttclib.energy.attribute_phases`) and by subtraction (a twin run with
    ``max_new_tokens`` 1 on the same prompts, batch and clock, whose energy per query is a prefill and
    one token). The ratio subtraction / timestamps comes with an interval over the full run's batches.
    The twin's windows must be long enough for the meter: ``twin_windows_ok`` says whether every window
    spans ten counter update periods (always true for meters without a counter)."""
    by = list(by)
    runs = data.runs.assign(frequency_mhz=pd.to_numeric(data.runs.sm_clock_set_mhz, errors="coerce"))
    keys = [*by, "frequency_mhz"]
    rows = []
    for key, g in runs.groupby(keys, sort=False, dropna=False):
        gen = g[g.scoring.ne("loglikelihood")] if "scoring" in g else g
        twins, full = gen[gen.max_new_tokens == 1], gen[gen.max_new_tokens > 1]
        if twins.empty or full.empty:
            continue
        twin, run = twins.iloc[0], full.sort_values("max_new_tokens").iloc[-1]
        q = data.queries
        both = q[q.run_id == run.run_id][KEY + ["prefill_energy_j", "run_id", "t_start"]].merge(
            q[q.run_id == twin.run_id][KEY + ["energy_j"]], on=KEY
        )
        sums = _sums(both, ["energy_j", "prefill_energy_j"], batches(both))
        r, lo, hi = ratio_of_sums(sums.energy_j, sums.prefill_energy_j)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "run_id": run.run_id,
                "twin_run_id": twin.run_id,
                "n": len(both),
                "batches": len(sums),
                "prefill_j_timestamps": both.prefill_energy_j.mean(),
                "prefill_j_subtraction": both.energy_j.mean(),
                "ratio": r,
                "ratio_lo": lo,
                "ratio_hi": hi,
                "twin_windows_ok": bool(twin.get("short_windows", 0) == 0),
            }
        )
    return pd.DataFrame(rows)


def _change(sums: pd.DataFrame, column: str, level: float, saved: bool = False) -> tuple[float, float, float]:
    """Percent change of ``column``'s total from b to a (or percent saved), with an interval over the
    batches (per-batch sums of both sides: :func:`_paired`)."""
    r, lo, hi = ratio_of_sums(sums[f"{column}_a"], sums[f"{column}_b"], level=level)
    if saved:
        return 100 * (1 - r), 100 * (1 - hi), 100 * (1 - lo)
    return 100 * (r - 1), 100 * (lo - 1), 100 * (hi - 1)


def _groups(table: pd.DataFrame, by: list[str]):
    locked = table[table.frequency_mhz.notna()]
    if locked.empty:
        raise NoSweep("no run locks an SM clock (sm_clock_mhz): there is no frequency axis in these runs")
    yield from locked.groupby(by, sort=False, dropna=False)


def savings(
    data: RunSet,
    low: float,
    base: float | None = None,
    by=GROUP,
    level: float = 0.95,
    table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Table XI: at clock ``low`` against ``base`` (default: each group's highest clock), per group —
    energy saved, latency, prefill and decode change (%, with intervals over the batches, paired
    across the two clocks), the prefill share of time at ``base`` and the identity's prediction of the
    latency change from the phases. ``table``: :func:`sweep` of ``data`` by ``by``, when computed already."""
    by, rows = list(by), []
    table = sweep(data, by) if table is None else table
    for key, g in _groups(table, by):
        top = g.frequency_mhz.max() if base is None else base
        at_low, at_base = g[g.frequency_mhz == low], g[g.frequency_mhz == top]
        if at_low.empty or at_base.empty or low == top:
            continue
        pairs = _paired(data, at_low.run_id.iloc[0], at_base.run_id.iloc[0])
        row = dict(
            zip(by, key if isinstance(key, tuple) else (key,), strict=True),
            low_mhz=low,
            base_mhz=top,
            n=pairs.attrs["queries"],
            batches=len(pairs),
        )
        for name, col, saved in (
            ("energy_saved", "energy_j", True),
            ("latency_delta", "latency_s", False),
            ("prefill_delta", "prefill_s", False),
            ("decode_delta", "decode_s", False),
        ):
            row[f"{name}_pct"], row[f"{name}_lo"], row[f"{name}_hi"] = _change(pairs, col, level, saved)
        share = at_base.prefill_time_share.iloc[0]
        row["prefill_share_pct"], row["decode_share_pct"] = 100 * share, 100 * (1 - share)
        row["identity_pct"] = identity(share, row["prefill_delta_pct"], row["decode_delta_pct"])
        rows.append(row)
    return pd.DataFrame(rows)


def identity(prefill_share: float, prefill_delta_pct: float, decode_delta_pct: float) -> float:
    """The latency change (%) the phases predict: prefill share × prefill change + decode share ×
    decode change (shares of time at the baseline clock, as fractions).

    >>> round(identity(0.096, 52.4, 0.7), 2)      # Table XI, Llama-1B at B = 1: printed +5.6 %
    5.66
    """
    return prefill_share * prefill_delta_pct + (1 - prefill_share) * decode_delta_pct


def edp_argmin(points: pd.DataFrame) -> float:
    """The clock (``frequency_mhz``) with the lowest energy × latency among ``points``."""
    edp = points.energy_j * points.latency_s
    return float(points.frequency_mhz.iloc[int(np.argmin(edp.to_numpy(float)))])


def edp_optimal(
    data: RunSet, by=GROUP, n_boot: int = 1000, seed: int = 0, table: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Table XII: per group, the clock minimising EDP = mean energy per query × mean latency, with
    energy saved and latency change there against the group's highest clock, and how sure that is:
    ``share`` — the fraction of ``n_boot`` bootstrap resamples of the batches (:func:`batches` of the
    highest clock's run; the same resample at every clock) whose EDP argmin is that clock — and
    ``by_repetition``, each repetition's own argmin. ``table`` as in :func:`savings`."""
    by, rows = list(by), []
    table = sweep(data, by) if table is None else table
    for key, g in _groups(table, by):
        g = g.sort_values("frequency_mhz")
        if len(g) < 2:
            continue
        wide, batch = _wide(data, g)
        e, lat = wide["energy_j"].to_numpy(float), wide["latency_s"].to_numpy(float)  # queries × clocks
        freqs = g.frequency_mhz.to_numpy(float)
        best = int(np.argmin(e.mean(0) * lat.mean(0)))
        eb, lb = (pd.DataFrame(x).groupby(batch).sum().to_numpy() for x in (e, lat))  # batches × clocks
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(eb), (n_boot, len(eb)))
        boot = np.argmin(eb[idx].sum(1) * lb[idx].sum(1), axis=1)
        reps = wide.index.get_level_values("repetition")
        by_rep = [float(freqs[np.argmin(e[reps == r].mean(0) * lat[reps == r].mean(0))]) for r in sorted(set(reps))]
        top = len(freqs) - 1
        rows.append(
            dict(
                zip(by, key if isinstance(key, tuple) else (key,), strict=True),
                frequency_mhz=freqs[best],
                energy_saved_pct=100 * (1 - e[:, best].mean() / e[:, top].mean()),
                latency_delta_pct=100 * (lat[:, best].mean() / lat[:, top].mean() - 1),
                share=float(np.mean(boot == best)),
                by_repetition=by_rep,
                base_mhz=freqs[top],
                clocks=len(freqs),
                n=len(e),
            )
        )
    return pd.DataFrame(rows)


def _wide(data: RunSet, runs: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Energy and latency per query (rows: repetition, query, sample) at each of ``runs``' clocks
    (columns, in ``runs``' order), only queries measured at every clock, and each row's batch in the
    last run (the highest clock)."""
    q = data.queries[data.queries.run_id.isin(runs.run_id)]
    q = q.assign(
        latency_s=q.t_end - q.t_start, clock=q.run_id.map(dict(zip(runs.run_id, range(len(runs)), strict=True)))
    )
    wide = q.pivot_table(index=KEY, columns="clock", values=["energy_j", "latency_s"], aggfunc="first").dropna()
    top = q[q.run_id == runs.run_id.iloc[-1]]
    batch = pd.Series(batches(top), index=pd.MultiIndex.from_frame(top[KEY])).reindex(wide.index).to_numpy()
    return wide, batch


SIZE_CLASSES = ((3.5e9, "small (1-3B)"), (10e9, "medium (8B)"), (np.inf, "large (14-32B)"))  # Table XIII


def by_dataset_and_size(
    data: RunSet, low: float, batch_size: int = 1, level: float = 0.95, saved: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Table XIII: energy saved and latency change at clock ``low`` against each group's highest, at
    ``batch_size``, averaged by dataset and by model size class (:data:`SIZE_CLASSES`, from the
    parameters each run recorded), with the number of (model, dataset) pairs behind each mean. ``saved``:
    :func:`savings` at ``low``, when computed already."""
    sav = savings(data, low=low, level=level) if saved is None else saved
    sav = sav[sav.batch_size == batch_size]
    if sav.empty:
        return pd.DataFrame(columns=["by", "group", "energy_saved_pct", "latency_delta_pct", "pairs"])
    size = data.runs.drop_duplicates("model").set_index("model").parameters.astype(float)
    sav = sav.assign(
        size_class=[
            next(label for top, label in SIZE_CLASSES if size.get(m, np.nan) < top)
            if size.get(m, np.nan) == size.get(m, np.nan)
            else "unknown"
            for m in sav.model
        ]
    )
    rows = [
        {
            "by": by,
            "group": g,
            "energy_saved_pct": d.energy_saved_pct.mean(),
            "latency_delta_pct": d.latency_delta_pct.mean(),
            "pairs": len(d),
        }
        for by, col in (("dataset", "benchmark"), ("model size", "size_class"))
        for g, d in sav.groupby(col, sort=False)
    ]
    return pd.DataFrame(rows)


def frequency_tables(data: RunSet, by=GROUP) -> dict:
    """Everything the frequency axis gives, from one :func:`sweep`: ``sweep``, ``savings`` (Table XI at the
    lowest clock), ``edp`` (Table XII), ``by_dataset`` (Table XIII) and ``fits`` (energy per query vs clock
    per model, batch size and workload; a group with too few clocks says so). Raises :class:`NoSweep`
    when no run locks a clock."""
    table = sweep(data, by)
    low = table.frequency_mhz.min()
    saved = savings(data, low=low, by=by, table=table)  # NoSweep without a locked clock
    return {
        "sweep": table,
        "savings": saved,
        "edp": edp_optimal(data, by=by, table=table),
        "by_dataset": by_dataset_and_size(data, low=low, saved=saved),
        "fits": fits.fit_by(
            generating(table), ["model", "batch_size", "workload"], fit_energy_vs_frequency, "energy/query ~ SM clock"
        ),
    }


def phase_summary(data: RunSet, by=GROUP) -> pd.DataFrame:
    """Table XIV's phase line: the decode share of time per group at its highest clock (or the
    default clocks when none is locked), and per batch size the mean and range over models."""
    table = sweep(data, by)
    table = table.assign(clock=table.frequency_mhz.fillna(np.inf))
    top = table.loc[table.groupby(list(by), dropna=False).clock.idxmax()]
    return top.assign(decode_share_pct=100 * (1 - top.prefill_time_share))[
        [*by, "frequency_mhz", "decode_share_pct", "prefill_s", "decode_s", "latency_s"]
    ].reset_index(drop=True)


def fit_energy_vs_frequency(table: pd.DataFrame, x: str = "frequency_mhz", y: str = "energy_j", **kw) -> fits.Fit:
    """Energy per query vs SM clock: the DVFS form ``a + b/f + c·f²`` (:data:`ttclib.fits.FORMS`
    ``dvfs``: clock-independent energy, static power over compute time ∝ 1/f, dynamic energy ∝ V² ∝ f²)
    against linear and quadratic polynomials, chosen by BIC (``kw`` go to :func:`ttclib.fits.fit_curve`)."""
    x_, y_, kw = fits._columns(table, x, y, kw)
    return fits.fit_curve(x_, y_, **{"forms": fits.FREQUENCY_FORMS, **kw})


def paper_table_xi_checks(tolerance: float = 0.15) -> pd.DataFrame:
    """Table XI checked against itself: each row's latency change against the identity from its own
    phases (a difference beyond ``tolerance`` points is flagged), and the printed averages against the
    mean of the rows."""
    t = PAPER_TABLE_XI.assign(
        identity_pct=[
            identity(s / 100, p, d)
            for s, p, d in zip(
                PAPER_TABLE_XI.prefill_share_pct,
                PAPER_TABLE_XI.prefill_delta_pct,
                PAPER_TABLE_XI.decode_delta_pct,
                strict=False,
            )
        ]
    )
    return t.assign(
        off_pct=(t.latency_delta_pct - t.identity_pct).round(2),
        flagged=(t.latency_delta_pct - t.identity_pct).abs() > tolerance + 0.05,
    )


def paper_inconsistencies() -> list[str]:
    """What Maliakel et al. [002]'s Section VI says that its own tables do not bear out, computed from them."""
    out = []
    t = paper_table_xi_checks()
    for r in t[t.flagged].itertuples():
        out.append(
            f"Table XI, {r.model} B={r.batch_size}: latency {r.latency_delta_pct:+.1f} % but its phases give "
            f"{r.identity_pct:+.2f} % ({r.prefill_share_pct:.1f} % × {r.prefill_delta_pct:+.1f} % + "
            f"{100 - r.prefill_share_pct:.1f} % × {r.decode_delta_pct:+.1f} %)"
        )
    cols = ["energy_saved_pct", "latency_delta_pct", "prefill_delta_pct", "decode_delta_pct", "prefill_share_pct"]
    for b, printed in PAPER_TABLE_XI_AVERAGES.items():
        means = PAPER_TABLE_XI[PAPER_TABLE_XI.batch_size == b][cols].mean()
        off = [
            f"{c.removesuffix('_pct')} {p} vs {m:.2f}"
            for c, p, m in zip(cols, printed, means, strict=True)
            if abs(p - m) > 0.051
        ]
        if off:
            out.append(f"Table XI, average B={b}: printed averages differ from the rows' means: {'; '.join(off)}")
    dec = 100 - PAPER_TABLE_XI.prefill_share_pct
    lo, hi = PAPER_TABLE_XIV["decode_time_share_pct"]
    if dec.min() < lo - 0.5 or dec.max() > hi + 0.5:
        out.append(
            f"Table XIV: decode is {lo}–{hi} % of time, but Table XI's rows range {dec.min():.1f}–{dec.max():.1f} % "
            f"({lo} % is B=8's average, not its lowest row)"
        )
    lo, hi = PAPER_PREFILL_SHARE_PCT["short"]
    out.append(
        f'§VI-E and Table XIII: BoolQ and HellaSwag are scored by log-likelihood, "no token generation", yet '
        f"prefill is only {lo}–{hi} % of their time: log-likelihood scoring is one forward pass over the "
        f"question and each option, all prefill, so {100 - hi}–{100 - lo} % of their time is in a phase that "
        "scoring does not have (here every log-likelihood query is 100 % prefill)"
    )
    b1 = PAPER_TABLE_XII[PAPER_TABLE_XII.batch_size == 1]
    lo, hi = PAPER_TABLE_XIV["edp_energy_saved_pct"]
    out.append(
        f"Table XIV: the EDP optimum saves {lo}–{hi} % at {PAPER_TABLE_XIV['edp_latency_delta_pct'][0]} to "
        f"{PAPER_TABLE_XIV['edp_latency_delta_pct'][1]} % latency, but Table XII at B=1 gives "
        f"{b1.energy_saved_pct.min():.1f}–{b1.energy_saved_pct.max():.1f} % at {b1.latency_delta_pct.min():+.1f} to "
        f"{b1.latency_delta_pct.max():+.1f} %"
    )
    out.append(
        f"Table XII, B=1: latency falls at 960 MHz against 2842 MHz ({b1.latency_delta_pct.max():+.1f} to "
        f"{b1.latency_delta_pct.min():+.1f} %) while Table XI has both phases slower at 180 MHz; a slower clock "
        "that is faster suggests the 2842 MHz baseline was throttled (power or thermal), which the paper "
        "does not report — runs here record the clock read and the throttle reasons"
    )
    return out
