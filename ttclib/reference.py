"""Hardware-only GPU reference runs, shown beside a section's own results and never mixed into them.

``params/gpu_check.yaml`` measures a few runs on a GPU with a random-weight model and fixed output
lengths: the strategy shapes of Figure 3, energy vs maximum length (Figure 4) and throughput vs batch
size (Figure 7) of Jin et al. [000], Maliakel et al. [002]'s frequency sweep, and Wilhelm et al. [001]'s
operating curves (Figures 1-4: energy per token vs input and output tokens at batch 1). Its runs live
in its ``runs_dir`` (``outputs/gpu/runs``). A section notebook asks
:func:`gpu_reference` for the runs that fit its figure and hands them to :func:`show`, which prints
their own caption, table, fits and sentence and draws their own figure; without the folder
:func:`gpu_reference` returns None and :func:`show` does nothing, so the notebook runs unchanged.

Runs are assigned to sections by their specs alone (no run ids, no hand-made lists):

- ``curves``: the *curve runs* are the runs without a locked clock at batch size 1 that set
  ``input_tokens`` or generate one token (``max_new_tokens`` 1). A model's curve runs belong here
  when it has all three of Figure 1 (one token, prompts as they are: ``input_tokens`` unset), an input
  sweep (one token, at least :data:`MIN_SWEEP` ``input_tokens``) and an output sweep (``ignore_eos``,
  ``max_new_tokens`` > 1, ``input_tokens`` set; at least :data:`MIN_SWEEP` - 1 lengths, its one-token
  point being the input sweep's). Curve runs belong to no other section, whether they make curves
  or not (a batch-1 output sweep would otherwise join a batch sweep at its length);
- ``batch``: runs that differ only in ``batch_size`` (same model, strategy, output length, samples
  and prompt budget), at least :data:`MIN_SWEEP` batch sizes;
- ``length``: runs that differ only in ``max_new_tokens`` (same model, strategy, batch size, samples
  and prompt budget: a CoT prompt states its budget, which defaults to ``max_new_tokens``), at least
  :data:`MIN_SWEEP` lengths;
- ``dvfs``: runs at locked SM clocks (``sm_clock_mhz``) that differ only in the clock, at least two
  clocks; runs at locked clocks belong to no other section;
- ``power``: the strategy shapes: every run outside the batch sweeps and, of each length sweep, only its
  longest run; of the (model, batch size) groups holding two or more strategies, the one with the
  most strategies (then the largest batch), one run per strategy (its longest output).

A run without ``input_tokens`` (a table made by hand) counts as one whose prompts are as they are, and
one without ``ignore_eos`` as one that stops at EOS.

Every label comes from ``run.json`` through the runs table: the measured GPU, the model and whether
its weights are random, the backend, the meter with its method and power source.

>>> select(pd.DataFrame({"run_id": list("abcd"), "model": "m", "strategy": "base", "max_new_tokens": 8,
...                      "samples": 1, "budget": None, "batch_size": [1, 4, 16, 16],
...                      "device": "cuda"}).iloc[:3], "batch")
['a', 'b', 'c']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import fits, metrics, rundir
from .metrics import RunSet

ROOT = Path(__file__).resolve().parent.parent
GPU_PARAMS = "gpu_check.yaml"  # the params file whose default profile holds the reference runs
SECTIONS = {
    "power": "fig3_power_gpu",
    "length": "fig4_energy_vs_length_gpu",
    "batch": "fig7_throughput_vs_batch_gpu",
    "dvfs": "fig3-6_dvfs_gpu",
    "curves": "fig1-4_operating_curves_gpu",
}  # section -> figure name
MIN_SWEEP = 3  # distinct x values before runs count as a sweep
SPEC_KEYS = ["model", "strategy", "max_new_tokens", "batch_size", "samples", "prompt_budget"]
_METERS = {"nvml": "NVML", "rapl": "RAPL"}


@dataclass
class Reference(RunSet):
    """The reference runs of one section (a :class:`~ttclib.metrics.RunSet`) and where they came from."""

    section: str = ""
    runs_dir: Path | None = None


@dataclass
class Panel:
    """What :func:`show` prints and draws for one section: computed from the runs, never typed."""

    section: str
    caption: str
    table: pd.DataFrame
    curves: dict = field(default_factory=dict)
    sentence: str = ""
    repetitions: pd.DataFrame | None = None  # per-repetition observations behind the table


# --- finding and selecting -------------------------------------------------------------------


def runs_dir_for(params_file: str | os.PathLike | None = None) -> Path | None:
    """The reference runs' folder: the ``runs_dir`` of :data:`GPU_PARAMS`' default profile, that file
    taken beside ``params_file`` (the repository's ``params/`` when None). None when it is missing."""
    from .params import load_params

    folder = Path(params_file).parent if params_file is not None else ROOT / "params"
    gpu_params = folder / GPU_PARAMS
    return load_params(gpu_params, "default").runs_dir if gpu_params.is_file() else None


def _prompt_budget(runs: pd.DataFrame) -> pd.Series:
    """The budget a run's prompt states: ``budget``, else ``max_new_tokens`` (the CoT default)."""
    budget = runs["budget"] if "budget" in runs else pd.Series(np.nan, index=runs.index)
    return budget.astype(float).fillna(runs.max_new_tokens.astype(float))


def _sweeps(df: pd.DataFrame, axis: str) -> list[pd.DataFrame]:
    fixed = [k for k in SPEC_KEYS if k != axis]
    return [g for _, g in df.groupby(fixed, dropna=False, sort=False) if g[axis].nunique() >= MIN_SWEEP]


def _column(runs: pd.DataFrame, name: str, absent) -> pd.Series:
    """``runs[name]``, or ``absent`` on every row when the table lacks the column."""
    return runs[name] if name in runs else pd.Series(absent, index=runs.index)


def _curve_runs(runs: pd.DataFrame, locked: pd.Series) -> pd.Series:
    """Which of ``runs`` are curve runs: no locked clock, batch size 1, ``input_tokens`` set or one token."""
    set_input = _column(runs, "input_tokens", np.nan).notna()
    return ~locked & (runs.batch_size == 1) & (set_input | (runs.max_new_tokens == 1))


def _curve_models(curve: pd.DataFrame) -> set:
    """The models whose curve runs hold Figure 1, an input sweep and an output sweep (the rules above)."""
    inputs = pd.to_numeric(_column(curve, "input_tokens", np.nan), errors="coerce")
    eos = _column(curve, "ignore_eos", False).fillna(False).astype(bool)
    one = curve.max_new_tokens == 1
    models = set()
    for model, g in curve.groupby("model", sort=False):
        n_in, o = inputs[g.index], one[g.index]
        out = g[eos[g.index] & (g.max_new_tokens > 1) & n_in.notna()]
        if (o & n_in.isna()).any() and n_in[o].nunique() >= MIN_SWEEP and out.max_new_tokens.nunique() >= MIN_SWEEP - 1:
            models.add(model)
    return models


def select(runs: pd.DataFrame, section: str) -> list[str]:
    """The run ids of ``runs`` (the runs table) that belong to ``section``, by the rules above."""
    if section not in SECTIONS:
        raise ValueError(f"section must be one of {', '.join(SECTIONS)}, not {section!r}")
    locked = _column(runs, "sm_clock_set_mhz", np.nan).notna()
    curve = _curve_runs(runs, locked)
    if section == "curves":
        models = _curve_models(runs[curve])
        return [r for r, c, m in zip(runs.run_id, curve, runs.model, strict=True) if c and m in models]
    if section == "dvfs":  # runs at locked clocks, in groups that differ only in the clock (two or more)
        keys = ["model", "strategy", "max_new_tokens", "batch_size", "samples", "benchmark"]
        df = runs[locked]
        df = df.assign(samples=df.samples.fillna(1))  # (the locked rows' own: an empty table takes no index)
        ids = {
            r
            for _, g in df.groupby([k for k in keys if k in df], dropna=False)
            if g.sm_clock_set_mhz.nunique() >= 2
            for r in g.run_id
        }
        return [r for r in runs.run_id if r in ids]
    others = runs[~locked & ~curve]
    df = others.assign(prompt_budget=_prompt_budget(others), samples=others.samples.fillna(1))
    batch, length = _sweeps(df, "batch_size"), _sweeps(df, "max_new_tokens")
    if section == "batch":
        ids = set().union(*(g.run_id for g in batch)) if batch else set()
    elif section == "length":
        ids = set().union(*(g.run_id for g in length)) if length else set()
    else:
        in_batch = set().union(*(g.run_id for g in batch)) if batch else set()
        shorter = {r for g in length for r in g.run_id[g.max_new_tokens < g.max_new_tokens.max()]}
        rest = df[~df.run_id.isin(in_batch | shorter)]
        groups = [g for _, g in rest.groupby(["model", "batch_size"], sort=False) if g.strategy.nunique() >= 2]
        if not groups:
            return []
        best = max(groups, key=lambda g: (g.strategy.nunique(), g.batch_size.iloc[0]))
        ids = set(best.sort_values("max_new_tokens").groupby("strategy").run_id.last())
    return [r for r in runs.run_id if r in ids]


def gpu_reference(
    section: str, params_file: str | os.PathLike | None = None, *, runs_dir: str | os.PathLike | None = None
) -> Reference | None:
    """The GPU reference runs for ``section`` (``power``, ``length``, ``batch``, ``dvfs`` or ``curves``), loaded with
    :func:`metrics.load_runs`; None when there is no reference folder (see :func:`runs_dir_for`; a
    notebook's ``params_file`` finds the one beside its params), no complete GPU run in it, or none
    that fits the section."""
    if section not in SECTIONS:
        raise ValueError(f"section must be one of {', '.join(SECTIONS)}, not {section!r}")
    folder = Path(runs_dir) if runs_dir is not None else runs_dir_for(params_file)
    dirs = rundir.completed_runs(folder) if folder is not None and folder.is_dir() else []
    if not dirs:
        return None
    data = metrics.load_runs(dirs)
    gpu = data.runs[data.runs.device.astype(str).str.startswith("cuda")]
    ids = select(gpu, section) if len(gpu) else []
    if not ids:
        return None
    keep = lambda df: df[df.run_id.isin(ids)].reset_index(drop=True) if len(df) else df  # noqa: E731
    return Reference(keep(data.runs), keep(data.queries), keep(data.power), section=section, runs_dir=folder)


# --- labels ----------------------------------------------------------------------------------


def _model_label(runs: pd.DataFrame) -> str:
    out = []
    for model, g in runs.groupby("model", sort=False):
        random = (g.model_kind == "random").all() if "model_kind" in g else False
        name = model.split(":", 1)[1] if random and ":" in model else model
        params = g.parameters.dropna()
        size = f" ({params.iloc[0] / 1e9:.1f} B parameters)" if len(params) and params.iloc[0] else ""
        out.append(f"{'random-weight ' if random else ''}{name}{size}")
    return ", ".join(out)


def label(runs: pd.DataFrame) -> str:
    """The caption every reference table, figure and sentence carries, from the runs table alone, e.g.
    'GPU reference: NVIDIA H200, random-weight qwen2.5-7b (7.6 B parameters), transformers, NVML
    (energy counter; instant power field), hardware only: accuracy not meaningful'."""
    devices = runs.measured_devices.dropna() if "measured_devices" in runs else pd.Series(dtype=object)
    where = ", ".join(sorted(set(devices))) or metrics.hardware_label(runs)
    meters = []
    for (meter, method), g in runs.groupby(["meter", "meter_method"], sort=False, dropna=False):
        method = method.replace("_", " ") if isinstance(method, str) else None
        detail = "; ".join(d for d in (method, metrics.power_source_label(g)) if d)
        meters.append(f"{_METERS.get(meter, meter)}" + (f" ({detail})" if detail else ""))
    backends = ", ".join(dict.fromkeys(runs.backend))
    text = f"GPU reference: {where}, {_model_label(runs)}, {backends}, {', '.join(meters)}"
    if "model_kind" in runs and (runs.model_kind == "random").all():
        text += ", hardware only: accuracy not meaningful"
    return text


def _shape(row) -> str:
    """A run's output shape: '32 tokens' or '5 × 32 tokens'."""
    samples = int(row.samples) if row.samples == row.samples and row.samples else 1
    return f"{samples} × {row.max_new_tokens} tokens" if samples > 1 else f"{row.max_new_tokens} tokens"


def shapes(runs: pd.DataFrame) -> dict[str, str]:
    """strategy → 'strategy: <output shape>' (legend labels of the power panel)."""
    return {r.strategy: f"{r.strategy}: {_shape(r)}" for r in runs.itertuples()}


# --- the section's table, fits and sentence --------------------------------------------------


def panel(gpu: Reference) -> Panel:
    """Table, fits and computed sentence of ``gpu``'s section."""
    from . import dvfs, report

    caption = label(gpu.runs)
    if gpu.section == "dvfs":
        t = dvfs.frequency_tables(gpu)
        return Panel("dvfs", caption, t["savings"], t["fits"], report.dvfs_phases(gpu, gpu.runs, tables=t), t["sweep"])
    if gpu.section == "curves":
        per_token, estimator, util = _curves(gpu)
        results = gpu.results
        per_run = results.groupby("run_id", sort=False).agg(
            queries=("query_id", "nunique"), prompt_tokens=("prompt_tokens", "mean")
        )
        table = (
            gpu.runs.assign(input_tokens=pd.to_numeric(_column(gpu.runs, "input_tokens", np.nan), errors="coerce"))
            .rename(columns={"completion_tokens_per_query": "completion_tokens"})
            .merge(per_run, on="run_id")
            .merge(util[["run_id", "mean_util_pct"]], on="run_id", how="left")
            .sort_values(["model", "input_tokens", "max_new_tokens"], na_position="first", kind="stable")
            .reset_index(drop=True)[
                [
                    "model",
                    "input_tokens",
                    "max_new_tokens",
                    "queries",
                    "repetitions",
                    "prompt_tokens",
                    "completion_tokens",
                    "energy_per_query_j",
                    "energy_per_processed_token_j",
                    "mean_util_pct",
                    "meter",
                    "run_id",
                ]
            ]
        )
        curves = {(m, side): getattr(c, side) for m, c in estimator.curves.items() for side in ("input", "output")}
        sentence = report.gpu_curves(metrics.prompts_as_they_are(results), per_token, estimator, util, gpu.runs)
        return Panel("curves", caption, table, curves, sentence)
    repetitions = metrics.throughput_by_repetition(gpu.queries, gpu.runs)
    first = metrics.first_repetition(repetitions)
    if gpu.section == "power":
        summary = metrics.power_summary(gpu.power)
        table = (
            summary.rename(columns={"samples": "power_samples"})
            .merge(
                gpu.runs[
                    [
                        "run_id",
                        "strategy",
                        "max_new_tokens",
                        "samples",
                        "batch_size",
                        "completion_tokens_per_query",
                        "idle_power_w",
                        "energy_per_query_j",
                        "energy_per_token_j",
                        "measured_s",
                        "meter",
                        "power_source",
                        "measured_devices",
                    ]
                ],
                on="run_id",
            )
            .merge(first[["run_id", "slowdown"]].rename(columns={"slowdown": "first_repetition_x"}), on="run_id")
        )
        table = table.iloc[np.argsort([_order(s) for s in table.strategy], kind="stable")].reset_index(drop=True)[
            [
                "strategy",
                "max_new_tokens",
                "samples",
                "batch_size",
                "mean_power_w",
                "std_power_w",
                "power_samples",
                "idle_power_w",
                "energy_per_query_j",
                "energy_per_token_j",
                "measured_s",
                "first_repetition_x",
                "meter",
                "power_source",
                "measured_devices",
                "run_id",
            ]
        ]
        return Panel("power", caption, table, {}, report.gpu_power(summary, gpu.runs, first), repetitions)
    if gpu.section == "length":
        by = ["model", "strategy", "max_new_tokens"]
        points = metrics.operating_points(gpu.results, by=by)
        points = points.drop(columns=[c for c in points if c.startswith("accuracy")])  # random weights
        table = (
            points.merge(gpu.runs[[*by, "run_id", "energy_per_token_j", "mean_power_w", "meter"]], on=by)
            .merge(first[["run_id", "slowdown"]].rename(columns={"slowdown": "first_repetition_x"}), on="run_id")
            .sort_values(by)
            .reset_index(drop=True)
        )
        curves = fits.fit_by(points, ["model", "strategy"], fits.fit_energy_vs_length, "GPU energy/query ~ max length")
        per_rep = metrics.energy_by_repetition(gpu.results, by=by)
        return Panel(
            "length", caption, table, curves, report.gpu_length(table, curves, gpu.runs, first, per_rep), per_rep
        )
    points = metrics.throughput_points(repetitions)
    table = (
        points.merge(first[["run_id", "slowdown"]].rename(columns={"slowdown": "first_repetition_x"}), on="run_id")[
            [
                "strategy",
                "batch_size",
                "max_new_tokens",
                "queries_per_s",
                "queries_per_s_lo",
                "queries_per_s_hi",
                "ci_over",
                "first_repetition_x",
                "completion_tokens_per_query",
                "energy_per_token_j",
                "mean_power_w",
                "meter",
                "model",
                "hardware",
                "run_id",
            ]
        ]
        .sort_values(["strategy", "batch_size"])
        .reset_index(drop=True)
    )
    curves = fits.throughput_curves(repetitions, label="GPU queries/s ~ batch size")
    return Panel(
        "batch", caption, table, curves, report.gpu_throughput(table, curves, gpu.runs, first, repetitions), repetitions
    )


def _curves(gpu: Reference) -> tuple[pd.DataFrame, fits.EnergyEstimator, pd.DataFrame]:
    """What notebook 06 computes of its runs, of ``gpu``'s: energy per processed token per model over the
    Figure 1 prompts, the :class:`~ttclib.fits.EnergyEstimator` of the input and output sweeps, and the
    utilisation per run."""
    results = gpu.results
    per_token = metrics.mean_by(metrics.prompts_as_they_are(results), "energy_per_processed_token_j")
    return per_token, fits.EnergyEstimator.from_results(results), metrics.utilisation(gpu)


def _order(strategy: str) -> int:
    from .plots import STRATEGY_ORDER

    return STRATEGY_ORDER.index(strategy) if strategy in STRATEGY_ORDER else len(STRATEGY_ORDER)


def figure(gpu: Reference, p: Panel):
    """The section's figure, drawn by the section's own plot function with the caption on top."""
    from . import plots

    if p.section == "power":
        longest = gpu.runs.sort_values("measured_s").run_id.iloc[-1]
        return plots.power_by_strategy(
            metrics.power_summary(gpu.power), gpu.power, gpu.runs, longest, labels=shapes(gpu.runs), note=p.caption
        )
    if p.section == "length":
        return plots.energy_vs_length(p.table, gpu.runs, p.curves, repetitions=p.repetitions, note=p.caption).figure
    if p.section == "curves":
        per_token, estimator, util = _curves(gpu)
        return plots.operating_curves(per_token, estimator, gpu.results, util, gpu.runs, note=p.caption)
    if p.section == "dvfs":
        assert p.repetitions is not None  # the dvfs panel carries the clock sweep
        low = p.repetitions.sort_values("frequency_mhz").run_id.iloc[0]
        return plots.frequency_sweep(p.repetitions, p.table, gpu.runs, gpu.power, clock_run=low, note=p.caption)
    return plots.throughput_vs_batch(p.table, p.curves, repetitions=p.repetitions, note=p.caption, logy=True).figure


def show(gpu: Reference | None, figures_dir: str | os.PathLike) -> Panel | None:
    """Print ``gpu``'s caption, table, fits and sentence, draw its figure and save it (``figures_dir``/
    :data:`SECTIONS` name, .png and .svg); does nothing and returns None when ``gpu`` is None."""
    if gpu is None:
        return None
    from . import plots

    show_table: Callable[..., object]
    try:
        from IPython.display import display as show_table
    except ImportError:  # outside IPython
        show_table = print
    p = panel(gpu)
    print(p.caption)
    show_table(p.table.round(3))
    for fit in p.curves.values():
        print(f"{fit.formula}\n  {fit.summary()}")
    plots.save(figure(gpu, p), SECTIONS[p.section], figures_dir)
    print(p.sentence)
    return p


__all__ = [
    "Panel",
    "Reference",
    "SECTIONS",
    "clock_facts",
    "figure",
    "gpu_reference",
    "label",
    "panel",
    "runs_dir_for",
    "select",
    "shapes",
    "show",
]


def clock_facts(params_file: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """What ``make gpu-check`` measured of clock locking (``nvml_check.json`` beside the reference runs,
    step f: each SM clock locked under a matmul load, the clock NVML read and the power), one row per
    clock, with the GPU, whether the reset worked, and the clock read after it in ``attrs``; None
    without that file or step."""
    import json

    folder = runs_dir_for(params_file)
    path = folder.parent / "nvml_check.json" if folder is not None else None
    if path is None or not path.is_file():
        return None
    check = json.loads(path.read_text())
    step = check.get("steps", {}).get("clocks") or {}
    if not step.get("levels"):
        return None
    model = next((g.get("model") for g in check.get("gpus") or [] if g.get("name") == step.get("gpu")), step.get("gpu"))
    driver = ((check["steps"].get("support") or {}).get("system") or {}).get("DriverVersion", {}).get("value")
    table = pd.DataFrame(step["levels"])[
        ["locked_mhz", "mean_sm_clock_mhz", "min_sm_clock_mhz", "max_sm_clock_mhz", "counter_mean_power_w", "samples"]
    ]
    table.attrs.update(
        gpu=model,
        driver=driver,
        load=step.get("load"),
        reset=step.get("reset"),
        sm_clock_after_reset_mhz=step.get("sm_clock_after_reset_mhz"),
        path=str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
    )
    return table
