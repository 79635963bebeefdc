"""Figures in one house style; every energy axis names its unit and the meter behind it."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import metrics

STRATEGY_ORDER = ["base", "mv", "cot", "rt"]


def style() -> None:
    sns.set_theme(style="whitegrid", context="notebook")


def accuracy_vs_energy(runs: pd.DataFrame, *, energy: str = "energy_per_query_j", ax=None):
    """Figure 1 shape: accuracy vs energy per query, one line per strategy through model sizes."""
    style()
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    df = runs.sort_values("parameters").copy()
    df["accuracy_pct"] = 100 * df.accuracy
    hue_order = [s for s in STRATEGY_ORDER if s in set(df.strategy)] + sorted(set(df.strategy) - set(STRATEGY_ORDER))
    sns.lineplot(df, x=energy, y="accuracy_pct", hue="strategy", hue_order=hue_order, sort=False,
                 marker="o", estimator=None, units="strategy", ax=ax)
    for row in df.itertuples():
        ax.annotate(row.model, (getattr(row, energy), row.accuracy_pct), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    unit = "J" if energy.endswith("_j") else "Wh"
    ax.set_xlabel(f"energy per query ({unit}) — {metrics.meter_label(runs)}")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy vs energy per query\n{', '.join(sorted(set(runs.hardware)))}", fontsize=10)
    return ax


def save(fig, name: str, figures_dir: str | Path) -> list[Path]:
    """Write ``name``.png and ``name``.svg; returns the paths."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths



def throughput_vs_batch(runs: pd.DataFrame, curves: dict, *, ax=None):
    """Figure 7 shape: queries per second vs batch size per strategy, measured points and the
    fitted saturating curve with its 95 % band; a dotted line marks each saturation batch."""
    style()
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    palette = dict(zip(curves, sns.color_palette(n_colors=len(curves))))
    for strategy, fit in curves.items():
        pts = runs[runs.strategy == strategy].sort_values("batch_size")
        color = palette[strategy]
        tokens = pts.completion_tokens_per_query.mean()
        ax.plot(pts.batch_size, pts.queries_per_s, "o", color=color,
                label=f"{strategy} ({tokens:.0f} output tokens/query)")
        grid = np.geomspace(pts.batch_size.min(), pts.batch_size.max(), 100)
        lo, hi = fit.predict_ci(grid)
        ax.plot(grid, fit.predict(grid), "-", color=color, lw=1.2, label=f"{strategy}: {fit.form} fit")
        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0)
        sat = getattr(fit, "saturation_batch", float("nan"))
        if sat == sat and sat <= grid.max() * 4:
            ax.axvline(sat, color=color, ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (requests generated together)")
    ax.set_ylabel("throughput (queries/s)")
    ax.set_title(f"Throughput vs batch size — {', '.join(sorted(set(runs.model)))}\n"
                 f"{', '.join(sorted(set(runs.hardware)))}, fixed output lengths", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def power_by_strategy(summary: pd.DataFrame, power: pd.DataFrame, runs: pd.DataFrame, example_run: str | None = None):
    """Figure 3 shape: mean power ± std per model and strategy (left) and one run's power trace (right)."""
    style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    df = summary.merge(runs[["run_id", "model", "strategy", "parameters"]], on="run_id").sort_values("parameters")
    order = [s for s in STRATEGY_ORDER if s in set(df.strategy)]
    models = list(dict.fromkeys(df.model))
    width = 0.8 / max(len(order), 1)
    for i, strategy in enumerate(order):
        g = df[df.strategy == strategy].set_index("model").reindex(models)
        xs = [m + (i - (len(order) - 1) / 2) * width for m in range(len(models))]
        left.bar(xs, g.mean_power_w, width, yerr=g.std_power_w, capsize=3, label=strategy)
    left.set_xticks(range(len(models)), models, fontsize=8)
    meter = metrics.meter_label(runs)
    left.set_ylabel("mean power (W) ± std of samples")
    left.set_title(f"Power per strategy — {', '.join(sorted(set(runs.hardware)))}\n{meter}", fontsize=10)
    left.legend(fontsize=8)
    example_run = example_run or df.run_id.iloc[-1]
    trace = power[power.run_id == example_run].groupby("t", as_index=False).power_w.sum()
    info = df[df.run_id == example_run].iloc[0]
    right.plot(trace.t - trace.t.min(), trace.power_w, lw=0.8)
    right.set_xlabel("time in run (s)")
    right.set_ylabel("power (W)")
    right.set_title(f"Trace: {info.model}, {info.strategy} ({meter})", fontsize=10)
    fig.tight_layout()
    return fig
