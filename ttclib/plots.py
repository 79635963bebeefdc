"""Figures in one house style; every energy axis names its unit and the meter behind it."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import fits, metrics

STRATEGY_ORDER = ["base", "mv", "cot", "rt"]
# One colour per strategy in every figure (seaborn's default palette, in the paper's order);
# strategies outside it take the palette's later colours.
_PALETTE = sns.color_palette("deep", 10)
STRATEGY_COLORS = dict(zip(STRATEGY_ORDER, _PALETTE, strict=False))  # the first colours; the rest for others


def strategy_color(strategy: str):
    """The colour of ``strategy`` in every figure."""
    if strategy not in STRATEGY_COLORS:
        STRATEGY_COLORS[strategy] = _PALETTE[len(STRATEGY_COLORS) % len(_PALETTE)]
    return STRATEGY_COLORS[strategy]


def _label_groups(xy, labels, near=(40.0, 12.0)) -> list[tuple[int, str]]:
    """Labels of points whose positions ``xy`` (display pixels, n × 2) lie within ``near`` (dx, dy
    pixels) of a group's first point merged into one label "a, b", so that labels never overprint.
    Returns (index of the group's first point, label).

    >>> _label_groups([[100, 50], [110, 52], [300, 50]], ["13", "128", "7"])
    [(0, '13, 128'), (2, '7')]
    """
    xy = np.asarray(xy, float)
    groups: list[list[int]] = []
    for i in np.argsort(xy[:, 0], kind="stable"):
        for g in groups:
            if abs(xy[i, 0] - xy[g[0], 0]) <= near[0] and abs(xy[i, 1] - xy[g[0], 1]) <= near[1]:
                g.append(int(i))
                break
        else:
            groups.append([int(i)])
    return [(g[0], ", ".join(dict.fromkeys(str(labels[i]) for i in g))) for g in groups]


def _annotate_apart(ax, xs, ys, labels, sep: str = ", ", **kw) -> None:
    """Annotate points, one label per cluster of (nearly) coinciding points (:func:`_label_groups`),
    each label raised by as many rows as it takes not to overlap a label already placed (rows on a
    flat line of points at 0 % would otherwise pile up); call after everything is drawn and the
    scales are set, so that pixel distances are final."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys, labels = xs[ok], ys[ok], [lab for lab, k in zip(labels, ok, strict=True) if k]
    if not len(xs):
        return
    ax.autoscale_view()
    pixels = ax.transData.transform(np.column_stack([xs, ys]))
    size = kw.pop("fontsize", 7)
    dx, dy = kw.pop("xytext", (4, 4))
    char_w, line_h = 0.62 * size * ax.figure.dpi / 72, 1.25 * size * ax.figure.dpi / 72  # pixels
    placed: list[tuple[float, float, float, float]] = []  # x0, x1, y0, y1
    for i, label in _label_groups(pixels, labels):
        text = label.replace(", ", sep)
        lines = text.split("\n")
        w, h = char_w * max(map(len, lines)), line_h * len(lines)
        x0 = pixels[i, 0] + dx * ax.figure.dpi / 72
        rise = 0.0
        while any(
            x0 < b[1] and b[0] < x0 + w and pixels[i, 1] + rise < b[3] and b[2] < pixels[i, 1] + rise + h
            for b in placed
        ):
            rise += line_h
        placed.append((x0, x0 + w, pixels[i, 1] + rise, pixels[i, 1] + rise + h))
        ax.annotate(
            text,
            (xs[i], ys[i]),
            textcoords="offset points",
            fontsize=size,
            xytext=(dx, dy + rise * 72 / ax.figure.dpi),
            **kw,
        )


def style() -> None:
    sns.set_theme(style="whitegrid", context="notebook")


def _strategies(values) -> list[str]:
    """The strategies in ``values``, in the paper's order (base, mv, cot, rt), any others after."""
    present = set(values)
    return [s for s in STRATEGY_ORDER if s in present] + sorted(present - set(STRATEGY_ORDER))


_where = metrics.hardware_label


def _noted(title: str, note: str | None) -> str:
    """``note`` (e.g. a reference's caption, wrapped) as the first lines of ``title``."""
    if not note:
        return title
    import textwrap

    return "\n".join(textwrap.wrap(note, 95)) + "\n" + title


def _energy_label(runs: pd.DataFrame) -> str:
    return f"energy per query (J) — {metrics.meter_label(runs)}"


def _points_with_ci(
    ax, pts: pd.DataFrame, color, label=None, marker="o", line="-", x="energy_per_query_j", y="accuracy"
):
    """Measured points with their CI as error bars (accuracy in %), joined in the given order."""
    xs, ys = pts[x].to_numpy(float), 100 * pts[y].to_numpy(float)
    xerr = np.abs(np.vstack([xs - pts[f"{x}_lo"], pts[f"{x}_hi"] - xs])) if f"{x}_lo" in pts else None
    yerr = np.abs(np.vstack([ys - 100 * pts[f"{y}_lo"], 100 * pts[f"{y}_hi"] - ys])) if f"{y}_lo" in pts else None
    ax.errorbar(
        xs,
        ys,
        xerr=np.nan_to_num(xerr) if xerr is not None else None,
        yerr=np.nan_to_num(yerr) if yerr is not None else None,
        fmt=marker + line,
        color=color,
        label=label,
        capsize=2,
        lw=1.2,
        ms=5,
        elinewidth=0.8,
    )


def _ci_note(points: pd.DataFrame) -> str:
    over = ", ".join(sorted({c.split(" ", 1)[1] for c in points.ci_over}))
    return f"95 % CIs: energy across {over}, accuracy across queries (Wilson)"


def accuracy_vs_energy(points: pd.DataFrame, runs: pd.DataFrame):
    """Figure 1 shape: accuracy vs energy per query, one line per strategy through the model sizes,
    each point with its 95 % CI (``points`` from :func:`metrics.operating_points`); one panel per task
    category when ``points`` has a ``category`` column. Returns the figure."""
    style()
    cats = list(dict.fromkeys(points.category)) if "category" in points else [None]
    fig, axes = plt.subplots(1, len(cats), figsize=(7 * len(cats), 4.5), squeeze=False)
    size = metrics.model_sizes(runs)
    df = points.assign(_size=points.model.map(size)).sort_values("_size")
    strategies = _strategies(df.strategy)
    for cat, ax in zip(cats, axes[0], strict=True):
        pts = df if cat is None else df[df.category == cat]
        for strategy in strategies:
            _points_with_ci(ax, pts[pts.strategy == strategy], strategy_color(strategy), label=strategy)
        _annotate_apart(ax, pts.energy_per_query_j, 100 * pts.accuracy, pts.model.tolist(), fontsize=8)
        ax.set_xlabel(_energy_label(runs))
        ax.set_ylabel("accuracy (%)")
        ax.set_title(
            f"{cat + ': ' if cat else ''}accuracy vs energy per query — {_where(runs)}\n{_ci_note(pts)}", fontsize=10
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def normalized_energy(normalized: pd.DataFrame, runs: pd.DataFrame, *, ax=None):
    """Figure 2 shape: each strategy's energy per query over Base's, per benchmark and model, with its
    95 % CI; the dotted line at 1 is Base. Benchmarks are grouped by category."""
    style()
    df = normalized.sort_values(["category", "benchmark"], kind="stable")
    pair = "base_model" if "base_model" in df else "model"  # RT on a distill is drawn beside its Base model
    groups = list(dict.fromkeys(zip(df.category, df.benchmark, df[pair], strict=True)))
    ax = ax or plt.subplots(figsize=(max(6, 1.1 * len(groups) + 2), 4.5))[1]
    strategies = _strategies(df.strategy)
    width = 0.8 / max(len(strategies), 1)
    for i, strategy in enumerate(strategies):
        color = strategy_color(strategy)
        g = df[df.strategy == strategy].set_index(["category", "benchmark", pair]).reindex(groups)
        xs = np.arange(len(groups)) + (i - (len(strategies) - 1) / 2) * width
        err = np.nan_to_num(np.abs(np.vstack([g.energy_ratio - g.energy_ratio_lo, g.energy_ratio_hi - g.energy_ratio])))
        ax.bar(xs, g.energy_ratio, width, yerr=err, capsize=2, color=color, label=f"{strategy} / base")
    ax.axhline(1, color="k", ls=":", lw=1)
    ax.set_xticks(range(len(groups)), [f"{b}\n{m}\n({c})" for c, b, m in groups], fontsize=7)
    ax.set_xlabel("benchmark, Base model (each strategy on its own model of that size)" if pair == "base_model" else "")
    ax.set_ylabel(f"energy per query / Base's (×)\n{metrics.meter_label(runs)}", fontsize=9)
    ax.set_title(
        f"Normalized energy — {_where(runs)}\n95 % CI across {', '.join(sorted(set(df.ci_over)))}", fontsize=10
    )
    ax.legend(fontsize=8)
    return ax


def length_sweep(points: pd.DataFrame, runs: pd.DataFrame, *, ax=None):
    """Figure 4 shape: accuracy vs energy per query as the maximum output length grows, one line per
    model and strategy (each dot a maximum length, labelled), and the Pareto frontier of all dots."""
    style()
    ax = ax or plt.subplots(figsize=(7.5, 4.8))[1]
    size = metrics.model_sizes(runs)
    configs = sorted(points.groupby(["model", "strategy"]).groups, key=lambda k: (size.get(k[0], 0), k[1]))
    models = list(dict.fromkeys(m for m, _ in configs))
    for model, strategy in configs:
        color = strategy_color(strategy)  # colour: strategy; marker and line: model
        marker, line = "osD^v"[models.index(model) % 5], ["-", "--", ":", "-."][models.index(model) % 4]
        pts = points[(points.model == model) & (points.strategy == strategy)].sort_values("max_new_tokens")
        _points_with_ci(ax, pts, color, label=f"{model} {strategy}", marker=marker, line=line)
    ends = points.sort_values("max_new_tokens").groupby(["model", "strategy"]).nth([0, -1])
    names = (
        ends.max_new_tokens.astype(str)
        if len(configs) == 1
        else ends.model + " " + ends.strategy + ": " + ends.max_new_tokens.astype(str)
    )
    _annotate_apart(ax, ends.energy_per_query_j, 100 * ends.accuracy, names.tolist(), sep="\n")
    front = points[metrics.pareto_mask(points.energy_per_query_j, points.accuracy)].sort_values("energy_per_query_j")
    ax.step(
        front.energy_per_query_j,
        100 * front.accuracy,
        where="post",
        color="k",
        ls="--",
        lw=1,
        marker="s",
        mfc="none",
        ms=10,
        label="Pareto frontier",
    )  # squares: visible with one point
    ax.set_xlabel(_energy_label(runs))
    ax.set_ylabel("accuracy (%)")
    ax.set_title(
        f"Accuracy vs energy as the maximum output length grows (dots: max tokens)\n{_where(runs)}, {_ci_note(points)}",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    return ax


def tokens_by_correctness(results: pd.DataFrame, *, ax=None):
    """Figure 5 shape: output tokens of correct vs incorrect answers per model and strategy (box plots,
    whiskers at 1.5 IQR, outliers drawn), one value per query and outcome (:func:`metrics.answer_lengths`)."""
    style()
    ax = ax or plt.subplots(figsize=(7, 4.2))[1]
    df = metrics.answer_lengths(results).assign(
        answer=lambda d: np.where(d.correct, "correct", "incorrect"), config=lambda d: d.model + " " + d.strategy
    )
    hue_order = ["correct", "incorrect"]
    palette = dict(zip(hue_order, sns.color_palette("deep", 10)[2:4], strict=True))
    sns.boxplot(
        df,
        x="config",
        y="completion_tokens",
        hue="answer",
        hue_order=hue_order,
        palette=palette,
        whis=1.5,
        fliersize=2,
        ax=ax,
    )
    configs = list(dict.fromkeys(df.config))
    counts = df.groupby(["config", "answer"]).size()
    top = df.completion_tokens.max()
    for i, config in enumerate(configs):  # n per box: a box of 4 queries is not a distribution
        for j, answer in enumerate(hue_order):
            n = int(counts.get((config, answer), 0))
            ax.annotate(
                f"n={n}", (i + (j - 0.5) * 0.4, top), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7
            )
    ax.set_xlabel("")
    ax.set_ylabel("output tokens per query (all samples;\nmean over its repetitions)")
    ax.set_title("Output tokens of correct and incorrect answers (n: queries per box)\n", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    return ax


def difficulty(points: pd.DataFrame, runs: pd.DataFrame, levels: list[str] | None = None):
    """Figure 6 shape: accuracy vs energy per query, one panel per difficulty level (easiest
    first), a colour per strategy, every configuration labelled with its model, and the level's
    Pareto frontier dashed. Returns the figure."""
    style()
    levels = levels or list(dict.fromkeys(points.difficulty))
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 4.5), sharex=True, sharey=True, squeeze=False)
    strategies = _strategies(points.strategy)
    palette = {s: strategy_color(s) for s in strategies}
    for level, ax in zip(levels, axes[0], strict=True):
        pts = points[points.difficulty == level]
        for strategy in strategies:
            _points_with_ci(ax, pts[pts.strategy == strategy], palette[strategy], label=strategy, line="")
        front = pts[metrics.pareto_mask(pts.energy_per_query_j, pts.accuracy)].sort_values("energy_per_query_j")
        ax.plot(
            front.energy_per_query_j,
            100 * front.accuracy,
            "--",
            color="black",
            lw=1,
            marker="s",
            mfc="none",
            ms=10,
            label="Pareto frontier",
        )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overprint on short spans
        ax.set_xlabel(_energy_label(runs), fontsize=8)
        ax.set_title(f"{level} ({pts.queries.max():.0f} queries)", fontsize=10)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][0].set_ylim(-3, 103)
    for level, ax in zip(levels, axes[0], strict=True):  # after every panel: the shared x range is final
        pts = points[points.difficulty == level]
        _annotate_apart(
            ax, pts.energy_per_query_j, 100 * pts.accuracy, (pts.model + " " + pts.strategy).tolist(), sep="\n"
        )
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"Accuracy vs energy per difficulty level — {_where(runs)}\n{_ci_note(points)}", fontsize=10)
    fig.tight_layout()
    return fig


def save(fig, name: str, figures_dir: str | os.PathLike) -> list[Path]:
    """Write ``name``.png and ``name``.svg; returns the paths."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    # no timestamps, fixed ids: re-plotting the same numbers leaves the committed files unchanged
    fig.savefig(paths[0], dpi=150, bbox_inches="tight", metadata={"Software": None})
    with plt.rc_context({"svg.hashsalt": "ttc-energy"}):
        fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    return paths


def throughput_vs_batch(
    points: pd.DataFrame,
    curves: dict,
    *,
    ax=None,
    repetitions: pd.DataFrame | None = None,
    note: str | None = None,
    logy: bool = False,
):
    """Figure 7 shape: queries per second vs batch size per strategy, measured points with their 95 %
    CI across repetitions (``points`` from :func:`metrics.throughput_points`) and the fitted
    saturating curve with its 95 % band; a dotted line marks each saturation batch.

    With ``repetitions`` (:func:`metrics.throughput_by_repetition`) every repetition is drawn as a dot
    (hollow: the first) beside the mean instead of the CI bars, for runs with too few repetitions
    for a useful t interval; ``note`` heads the title (a reference's caption); ``logy`` a log y axis."""
    style()
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    palette = {s: strategy_color(s) for s in curves}
    for strategy, fit in curves.items():
        pts = points[points.strategy == strategy].sort_values("batch_size")
        color = palette[strategy]
        tokens = pts.completion_tokens_per_query.mean()
        qps = pts.queries_per_s.to_numpy(float)
        label = f"{strategy} ({tokens:.0f} output tokens/query)"
        if repetitions is None:
            err = np.nan_to_num(np.abs(np.vstack([qps - pts.queries_per_s_lo, pts.queries_per_s_hi - qps])))
            ax.errorbar(
                pts.batch_size, qps, yerr=err, fmt="o", color=color, capsize=2, ms=5, elinewidth=0.8, label=label
            )
        else:
            ax.plot(pts.batch_size, qps, "D", color=color, ms=7, alpha=0.5, label=f"{label}: mean of repetitions")
            _repetition_dots(ax, repetitions[repetitions.strategy == strategy], "batch_size", "queries_per_s", color)
        if isinstance(fit, fits.Unfitted):
            continue
        grid = np.geomspace(pts.batch_size.min(), pts.batch_size.max(), 100)
        lo, hi = fit.predict_ci(grid)
        ax.plot(grid, fit.predict(grid), "-", color=color, lw=1.2, label=f"{strategy}: {fit.form} fit")
        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0, label=f"{strategy}: 95 % CI of the fitted mean")
        sat = getattr(fit, "ceiling", float("nan"))
        if sat == sat:
            ax.axvline(
                sat, color=color, ls=":", lw=1, label=f"{strategy}: {fit.saturation:.0%} of ceiling at batch {sat:.3g}"
            )
    ax.set_xscale("log", base=2)
    if logy:
        shown = np.concatenate(
            [points.queries_per_s.to_numpy(float)]
            + ([repetitions.queries_per_s.to_numpy(float)] if repetitions is not None else [])
        )
        ax.set_yscale("log")
        ax.set_ylim(0.5 * np.nanmin(shown[shown > 0]), 2 * np.nanmax(shown))  # a band below 0 is off the scale
    ax.set_xlabel("batch size (requests generated together)")
    ax.set_ylabel("throughput (queries/s)")
    over = ", ".join(sorted(set(points.ci_over)))
    spread = (
        f"95 % CIs across {over}"
        if repetitions is None
        else f"dots: each of {over} (hollow: the first), diamonds: their mean"
    )
    ax.set_title(
        _noted(
            f"Throughput vs batch size — {', '.join(sorted(set(points.model)))}\n"
            f"{_where(points)}, fixed output lengths; {spread}",
            note,
        ),
        fontsize=10,
    )
    ax.legend(fontsize=8)
    return ax


def _repetition_dots(ax, reps: pd.DataFrame, x: str, y: str, color) -> None:
    """Each repetition's value as a small dot, the first repetition of each run hollow."""
    first = reps.repetition == reps.groupby("run_id").repetition.transform("min")
    ax.plot(reps[x][first], reps[y][first], "o", mfc="none", color=color, ms=5, label="first repetition")
    ax.plot(reps[x][~first], reps[y][~first], "o", color=color, ms=4, alpha=0.8, label="later repetitions")


def energy_vs_length(
    points: pd.DataFrame,
    runs: pd.DataFrame,
    curves: dict | None = None,
    *,
    ax=None,
    repetitions: pd.DataFrame | None = None,
    note: str | None = None,
):
    """Energy per query vs the maximum output length (Figure 4's energy axis), one line per model and
    strategy: the mean over repetitions (``points`` from :func:`metrics.operating_points` by model,
    strategy and max_new_tokens) with its 95 % CI, or, given ``repetitions``
    (:func:`metrics.energy_by_repetition`), every repetition as a dot (hollow: the first); the fitted
    curve of ``curves`` (:func:`fits.fit_by` by model and strategy) with its 95 % band."""
    style()
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    configs = list(dict.fromkeys(zip(points.model, points.strategy, strict=True)))
    for model, strategy in configs:
        color = strategy_color(strategy)
        pts = points[(points.model == model) & (points.strategy == strategy)].sort_values("max_new_tokens")
        x, e = pts.max_new_tokens.to_numpy(float), pts.energy_per_query_j.to_numpy(float)
        if repetitions is None:
            err = np.nan_to_num(np.abs(np.vstack([e - pts.energy_per_query_j_lo, pts.energy_per_query_j_hi - e])))
            ax.errorbar(
                x, e, yerr=err, fmt="o", color=color, capsize=2, ms=5, elinewidth=0.8, label=f"{model} {strategy}"
            )
        else:
            ax.plot(x, e, "D", color=color, ms=7, alpha=0.5, label=f"{model} {strategy}: mean of repetitions")
            reps = repetitions[(repetitions.model == model) & (repetitions.strategy == strategy)]
            first = reps.repetition == reps.repetition.min()
            ax.plot(
                reps.max_new_tokens[first],
                reps.energy_per_query_j[first],
                "o",
                mfc="none",
                color=color,
                ms=5,
                label="first repetition",
            )
            ax.plot(
                reps.max_new_tokens[~first],
                reps.energy_per_query_j[~first],
                "o",
                color=color,
                ms=4,
                alpha=0.8,
                label="later repetitions",
            )
        fit = (curves or {}).get((model, strategy))
        if fit is not None and not isinstance(fit, fits.Unfitted):
            grid = np.linspace(x.min(), x.max(), 100)
            lo, hi = fit.predict_ci(grid)
            ax.plot(grid, fit.predict(grid), "-", color=color, lw=1.2, label=f"{fit.form} fit: {fit.formula}")
            ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0, label="95 % CI of the fitted mean")
    ax.set_xlabel("maximum output length (max_new_tokens)")
    ax.set_ylabel(_energy_label(runs))
    over = ", ".join(sorted(set(points.ci_over)))
    spread = (
        f"95 % CIs across {over}"
        if repetitions is None
        else f"dots: each of {over} (hollow: the first), diamonds: their mean"
    )
    ax.set_title(_noted(f"Energy per query vs maximum output length — {_where(runs)}\n{spread}", note), fontsize=10)
    ax.legend(fontsize=8)
    return ax


def power_by_strategy(
    summary: pd.DataFrame,
    power: pd.DataFrame | metrics.RunSet,
    runs: pd.DataFrame,
    example_run: str | None = None,
    *,
    labels: dict | None = None,
    note: str | None = None,
):
    """Figure 3 shape: mean power ± std per model and strategy (left) and one run's power trace (right).
    ``power``: the traces, or the RunSet (runs read by :func:`metrics.load_runs` then read only the
    example run's trace). ``labels`` maps a strategy to its legend text; ``note`` (a reference's
    caption) heads the figure."""
    style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    cols = ["run_id", "model", "strategy", "parameters"] + (["benchmark"] if "benchmark" in runs else [])
    df = summary.merge(runs[cols], on="run_id").sort_values(["parameters"] + cols[4:])
    # one bar group per model, or per model and benchmark when the grid has several (the paper's
    # Figure 3 is per benchmark)
    several = "benchmark" in df and df.benchmark.nunique() > 1
    df["group"] = df.model + ("\n" + df.benchmark if several else "")
    order = _strategies(df.strategy)
    models = list(dict.fromkeys(df.group))
    width = 0.8 / max(len(order), 1)
    for i, strategy in enumerate(order):
        g = df[df.strategy == strategy].groupby("group").mean(numeric_only=True).reindex(models)
        xs = [m + (i - (len(order) - 1) / 2) * width for m in range(len(models))]
        left.bar(
            xs,
            g.mean_power_w,
            width,
            yerr=g.std_power_w,
            capsize=3,
            color=strategy_color(strategy),
            label=(labels or {}).get(strategy, strategy),
        )
    left.set_xticks(range(len(models)), models, fontsize=8)
    meter = metrics.meter_label(runs)
    left.set_ylabel("mean power (W) ± std of samples")
    left.set_title(f"Power per strategy — {_where(runs)}\n{meter}", fontsize=10)
    left.legend(fontsize=8)
    example_run = example_run or df.run_id.iloc[-1]
    one = power.trace(example_run) if isinstance(power, metrics.RunSet) else power[power.run_id == example_run]
    trace = one.groupby("t", as_index=False).power_w.sum()
    info = df[df.run_id == example_run].iloc[0]
    right.plot(trace.t - trace.t.min(), trace.power_w, lw=0.8, color=strategy_color(info.strategy))
    right.set_xlabel("time in run (s)")
    right.set_ylabel("power (W)")
    right.set_title(f"Trace: {info.model}, {(labels or {}).get(info.strategy, info.strategy)} ({meter})", fontsize=10)
    if note:
        fig.suptitle(_noted("", note).strip(), fontsize=10, fontweight="bold")
    fig.tight_layout()
    return fig


# --- Wilhelm et al. [001]: operating curves (Figures 1-4) and the MMLU trade-off (Table 1) ----------------


def _model_colors(models) -> dict:
    return dict(zip(models, sns.color_palette("colorblind", max(len(models), 3)), strict=False))


def _curve(ax, fit, xs, color) -> None:
    """A fitted curve with its 95 % band over ``xs`` (nothing for an unfitted one)."""
    if getattr(fit, "form", "none") == "none":
        return
    grid = np.linspace(min(xs), max(xs), 200)
    lo, hi = fit.predict_ci(grid)
    ax.plot(grid, fit.predict(grid), color=color, lw=1.2, label=f"{fit.form} fit")
    ax.fill_between(grid, lo, hi, color=color, alpha=0.2, lw=0)


def operating_curves(
    per_token: pd.DataFrame,
    estimator,
    results: pd.DataFrame,
    util: pd.DataFrame,
    runs: pd.DataFrame,
    note: str | None = None,
):
    """Wilhelm et al. [001]'s Figures 1-4 in one figure: (1) energy per processed token per model on the
    prompts as they are (one output token; 95 % CI over prompts; the title names the benchmark: MT-Bench
    in the paper), (2) energy per query vs input tokens and (3) vs output tokens, every query a dot, the
    selected fit with its 95 % band, (4) utilisation per model while generating (mean ± std of the trace).
    ``estimator`` is a :class:`ttclib.fits.EnergyEstimator`; its curves give panels 2 and 3. ``note`` (a
    reference's caption) heads the figure."""
    style()
    models = list(per_token.model)
    colors = _model_colors(models)
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0, 0]
    x = np.arange(len(per_token))
    err = np.abs(
        np.vstack(
            [
                per_token.energy_per_processed_token_j - per_token.energy_per_processed_token_j_lo,
                per_token.energy_per_processed_token_j_hi - per_token.energy_per_processed_token_j,
            ]
        )
    )
    ax.bar(
        x, per_token.energy_per_processed_token_j, yerr=np.nan_to_num(err), capsize=3, color=[colors[m] for m in models]
    )
    ax.set_xticks(x, models, rotation=15, fontsize=8)
    ax.set_ylabel("energy per processed token (J)")
    ax.set_title(
        f"Fig. 1: energy per token, {metrics.prompts_label(metrics.prompts_as_they_are(results))}, one output "
        "token\n(95 % CI over prompts)",
        fontsize=10,
    )
    for ax, side, x_col, xlabel in (
        (axes[0, 1], "input", "prompt_tokens", "input tokens (prompt, chat template included)"),
        (axes[1, 0], "output", "completion_tokens", "output tokens (fixed with ignore_eos)"),
    ):
        for model, curve in estimator.curves.items():
            fit = getattr(curve, side)
            mine = results[results.model == model]
            pts = (
                mine[mine.max_new_tokens == 1]
                if side == "input"
                else mine[
                    (mine.prompt_tokens == curve.input_at) & (mine.ignore_eos.astype(bool) | (mine.max_new_tokens == 1))
                ]
            )
            ax.scatter(pts[x_col], pts.energy_j, s=10, alpha=0.6, color=colors.get(model), label=model)
            _curve(ax, fit, pts[x_col], colors.get(model))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("energy per query (J)")
        fixed = (
            "one output token"
            if side == "input"
            else f"{np.median([c.input_at for c in estimator.curves.values()]):g} input tokens"
        )
        ax.set_title(
            f"Fig. {2 if side == 'input' else 3}: energy vs {side} tokens ({fixed}); fit by BIC, 95 % band", fontsize=10
        )
        ax.legend(fontsize=7)
    ax = axes[1, 1]
    u = (
        util.groupby("model", sort=False)
        .agg(mean=("mean_util_pct", "mean"), std=("std_util_pct", "mean"))
        .reindex(models)
    )
    ax.bar(x, u["mean"], yerr=np.nan_to_num(u["std"]), capsize=3, color=[colors[m] for m in models])
    ax.set_xticks(x, models, rotation=15, fontsize=8)
    what = "GPU utilisation (NVML)" if set(util.meter) == {"nvml"} else "CPU use of the process tree"
    ax.set_ylabel(f"{what} (% of all CPUs)" if "CPU" in what else f"{what} (%)")
    ax.set_title("Fig. 4: utilisation while generating (mean ± std over the trace)", fontsize=10)
    fig.suptitle(
        _noted(f"Operating curves at batch size 1 — {_where(runs)}; energy: {metrics.meter_label(runs)}", note),
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def mmlu_tradeoff(tab: pd.DataFrame, runs: pd.DataFrame, by: str = "subset"):
    """Table 1 as a figure: accuracy (95 % Wilson CI) and energy per query (95 % t CI, log scale)
    per category, one bar per configuration (:func:`ttclib.tradeoff.table`)."""
    style()
    t = tab.assign(config=tab.model + " " + tab.strategy)
    configs = list(dict.fromkeys(t.config))
    groups = list(dict.fromkeys(t[by]))
    colors = dict(zip(configs, sns.color_palette("colorblind", max(len(configs), 3)), strict=False))
    fig, axes = plt.subplots(2, 1, figsize=(13, 8), sharex=True)
    width = 0.8 / len(configs)
    for i, config in enumerate(configs):
        c = t[t.config == config].set_index(by).reindex(groups)
        x = np.arange(len(groups)) + (i - (len(configs) - 1) / 2) * width
        for ax, col, scale in ((axes[0], "accuracy", 100), (axes[1], "energy_per_query_j", 1)):
            v = scale * c[col]
            err = np.abs(np.vstack([v - scale * c[f"{col}_lo"], scale * c[f"{col}_hi"] - v]))
            ax.bar(x, v, width, yerr=np.nan_to_num(err), capsize=2, color=colors[config], label=config)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8, ncol=2)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("energy per query (J)")
    axes[1].set_xticks(np.arange(len(groups)), groups, rotation=20, fontsize=9)
    axes[0].set_title(
        f"MMLU by category: accuracy and energy per query — {_where(runs)}; energy: "
        f"{metrics.meter_label(runs)}\n95 % CIs: accuracy Wilson, energy t over queries",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --- Maliakel et al. [002]: phases and frequency (Section VI) -------------------------------------------------

PHASE_COLORS = {"prefill": sns.color_palette("deep")[3], "decode": sns.color_palette("deep")[0]}


def phase_split(
    table: pd.DataFrame,
    power: pd.DataFrame | None,
    queries: pd.DataFrame | None,
    runs: pd.DataFrame,
    trace_run: str | None = None,
    note: str | None = None,
):
    """Prefill vs decode (Maliakel et al. [002], Table XI's Pre%/Dec%, Figures 5 and 6): (a) time and (b) energy per
    query split into the two phases per model, workload and batch size; (c) decode's share of time vs
    batch size with its 95 % CI; (d) the sampled power of one run over time, its prefill spans shaded
    (where a phase-aware clock policy would switch). ``table`` is :func:`ttclib.dvfs.sweep` without the
    prefill-only twins (:func:`ttclib.dvfs.generating`)."""
    style()
    t = table.reset_index(drop=True)
    t["label"] = t.model.str.replace("-instruct", "") + "\n" + t.workload + ", B=" + t.batch_size.astype(str)
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    x = np.arange(len(t))
    for ax, (pre, dec, unit, what) in zip(
        axes[0],
        (("prefill_s", "decode_s", "s", "time"), ("prefill_energy_j", "decode_energy_j", "J", "energy")),
        strict=False,
    ):
        ax.bar(x, t[pre], color=PHASE_COLORS["prefill"], label="prefill")
        ax.bar(x, t[dec], bottom=t[pre], color=PHASE_COLORS["decode"], label="decode")
        ax.set_xticks(x, t.label, rotation=75, fontsize=6)
        ax.set_ylabel(f"{what} per query ({unit})")
        ax.set_title(f"{what.capitalize()} per query: prefill (start to first token) and decode", fontsize=10)
        ax.legend(fontsize=8)
    ax = axes[1, 0]
    for (model, workload), g in t.groupby(["model", "workload"], sort=False):
        g = g.sort_values("batch_size")
        y = 100 * g.decode_share
        err = np.abs(np.vstack([y - 100 * g.decode_share_lo, 100 * g.decode_share_hi - y]))
        ax.errorbar(g.batch_size, y, yerr=np.nan_to_num(err), marker="o", capsize=3, label=f"{model}, {workload}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("decode share of inference time (%)")
    ax.set_title("Decode's share of time vs batch size (Fig. 5 / Table XI Dec%; 95 % CI over batches)", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    if power is not None and len(power) and queries is not None and trace_run is not None:
        p = power.groupby("t", as_index=False).power_w.sum()
        q = queries[queries.run_id == trace_run]
        t0 = q.t_start.min()
        p = p[(p.t >= t0 - 0.5) & (p.t <= q.t_end.max() + 0.5)]
        ax.plot(p.t - t0, p.power_w, lw=1, color="0.3", label="power (sampled)")
        for s, f in q[["t_start", "t_first_token"]].drop_duplicates().itertuples(index=False):
            ax.axvspan(s - t0, f - t0, color=PHASE_COLORS["prefill"], alpha=0.3, lw=0)
        ax.axvspan(0, 0, color=PHASE_COLORS["prefill"], alpha=0.3, label="prefill spans")
        r = runs.set_index("run_id").loc[trace_run]
        ax.set_title(
            f"Fig. 6: power over one run ({r.model}, B={r.batch_size}); a phase-aware clock\n"
            "would run prefill fast and decode slow",
            fontsize=10,
        )
        ax.set_xlabel("time since the run's first query (s)")
        ax.set_ylabel("power (W)")
        ax.legend(fontsize=8)
    else:
        ax.set_axis_off()
    fig.suptitle(
        _noted(f"Prefill and decode — {_where(runs)}; energy and power: {metrics.meter_label(runs)}", note), fontsize=11
    )
    fig.tight_layout()
    return fig


def frequency_sweep(
    table: pd.DataFrame,
    savings: pd.DataFrame,
    runs: pd.DataFrame,
    power: pd.DataFrame | None = None,
    clock_run: str | None = None,
    note: str | None = None,
):
    """Maliakel et al. [002]'s Figures 3-6 from runs at locked SM clocks: (a) energy per generated token vs clock,
    (b) energy saved against the highest clock ("the frequency cliff"), (c) energy saved and latency
    change at the lowest clock per batch size (Table XI, 95 % CIs), (d) the SM clock the trace read
    over one run. ``table`` is :func:`ttclib.dvfs.sweep`, ``savings`` :func:`ttclib.dvfs.savings`."""
    style()
    t = table[table.frequency_mhz.notna() & ((table.max_new_tokens > 1) | table.scoring.eq("loglikelihood"))]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    groups = list(t.groupby(["model", "batch_size", "workload"], sort=False))
    colors = dict(zip([k for k, _ in groups], sns.color_palette("colorblind", max(len(groups), 3)), strict=False))
    for key, g in groups:
        g = g.sort_values("frequency_mhz")
        tokens = runs.set_index("run_id").completion_tokens_per_query.reindex(g.run_id).to_numpy(float)
        if np.all(tokens > 0):  # log-likelihood runs generate nothing: no energy per generated token
            axes[0, 0].plot(
                g.frequency_mhz,
                g.energy_j / tokens,
                marker="o",
                color=colors[key],
                label=f"{key[0]}, B={key[1]}, {key[2]}",
            )
        base = g.energy_j.iloc[-1]
        axes[0, 1].plot(g.frequency_mhz, 100 * (1 - g.energy_j / base), marker="o", color=colors[key])
    axes[0, 0].set_xlabel("SM clock locked (MHz)")
    axes[0, 0].set_ylabel(f"energy per generated token (J) — {metrics.meter_label(runs)}")
    axes[0, 0].set_title("Fig. 3: energy per generated token vs SM clock", fontsize=10)
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].set_xlabel("SM clock locked (MHz)")
    axes[0, 1].set_ylabel("energy saved vs the highest clock (%)")
    axes[0, 1].set_title("Fig. 4: the frequency cliff — savings against the highest clock", fontsize=10)
    ax = axes[1, 0]
    if len(savings):
        s = savings.sort_values(["batch_size", "model"]).reset_index(drop=True)
        x = np.arange(len(s))
        for off, col, label in ((-0.2, "energy_saved", "energy saved"), (0.2, "latency_delta", "latency change")):
            y = s[f"{col}_pct"]
            err = np.abs(np.vstack([y - s[f"{col}_lo"], s[f"{col}_hi"] - y]))
            ax.bar(x + off, y, width=0.4, yerr=np.nan_to_num(err), capsize=3, label=label)
        ax.set_xticks(
            x, [f"{m}\nB={b} {w}" for m, b, w in zip(s.model, s.batch_size, s.benchmark, strict=True)], fontsize=7
        )
        ax.set_ylabel(f"% at {s.low_mhz.iloc[0]:g} vs {s.base_mhz.iloc[0]:g} MHz")
        ax.legend(fontsize=8)
    ax.set_title("Fig. 5 / Table XI: at the lowest clock, by batch size (95 % CI)", fontsize=10)
    ax = axes[1, 1]
    if power is not None and clock_run is not None and "sm_clock_mhz" in power:
        p = power[power.run_id == clock_run] if "run_id" in power else power
        ax.plot(p.t - p.t.min(), p.sm_clock_mhz, lw=1)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("SM clock read (MHz)")
        ax.set_title("Fig. 6: the SM clock over one run, as NVML read it", fontsize=10)
    else:
        ax.set_axis_off()
    fig.suptitle(_noted(f"GPU frequency sweep — {_where(runs)}", note), fontsize=11)
    fig.tight_layout()
    return fig


# --- Maliakel et al. [002]: difficulty features and routing (Sections V and VII) ---------------------------------

PATTERN_COLORS = dict(
    zip(
        ("Always Easy", "Scaling Helps", "Always Hard", "Inconsistent"), sns.color_palette("colorblind", 4), strict=True
    )
)


def length_vs_quality(queries: pd.DataFrame, runs: pd.DataFrame, correlation: pd.Series | None = None):
    """Figure 2 and Table IX at a glance: (a) input length against the models' mean normalised quality
    per query, easy and hard (Table VI's label) marked, Pearson r with its 95 % CI in the title; (b) the
    mean entity density and causal question score of each scaling pattern (:func:`ttclib.features.workload`)."""
    style()
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    for label, marker, color in ((1, "o", _PALETTE[2]), (0, "x", _PALETTE[3])):
        g = queries[queries.easy == label]
        ax.scatter(
            g.input_tokens,
            g.quality,
            marker=marker,
            s=22,
            alpha=0.7,
            color=color,
            label=f"{'easy' if label else 'hard'} ({len(g)})",
        )
    ax.set_xlabel("input tokens (the largest model's tokenizer)")
    ax.set_ylabel("quality: mean over models, min-max normalised per dataset")
    r = (
        ""
        if correlation is None
        else (
            f": r = {correlation.r:+.3f} (95 % CI {correlation.lo:+.2f} to "
            f"{correlation.hi:+.2f}, n = {int(correlation.n)})"
        )
    )
    ax.set_title(f"(a) length vs quality{r}", fontsize=10)
    ax.legend(fontsize=8, title="label: above the dataset median", title_fontsize=8)
    ax = axes[1]
    means = queries.groupby("pattern")[["entity_density", "causal_question_score"]].mean()
    means = means.reindex([p for p in PATTERN_COLORS if p in means.index])
    x = np.arange(len(means))
    for i, col in enumerate(means.columns):
        ax.bar(x + (i - 0.5) * 0.38, means[col], 0.38, label=col.replace("_", " "), color=_PALETTE[i])
    counts = queries.pattern.value_counts()
    ax.set_xticks(x, [f"{p}\n{100 * counts[p] / len(queries):.0f} %" for p in means.index], fontsize=8)
    ax.set_ylabel("mean feature value (0-1)")
    ax.set_title("(b) scaling patterns: share of queries, mean features", fontsize=10)
    ax.legend(fontsize=8)
    models = ", ".join(sorted(runs.model.unique()))
    fig.suptitle(
        f"Query difficulty from text — {metrics.hardware_label(runs)}; models: {models}; "
        "quality is measured, no energy in this figure",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def pareto_frontier(table: pd.DataFrame, runs: pd.DataFrame):
    """Figure 7: energy per query against quality for every policy of :func:`ttclib.policies.compare`
    (held-out half, 95 % bootstrap CIs), the frontier (:func:`ttclib.policies.pareto`) joined, fixed
    configurations as circles, routers as squares, oracles as diamonds."""
    from .policies import pareto

    style()
    t = table.assign(pareto=pareto(table)).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(10, 6.5))
    markers = {"fixed": "o", "router": "s", "oracle": "D"}
    for kind, g in t.groupby("kind", sort=False):
        err_x = np.abs(np.vstack([g.energy_per_query_j - g.energy_lo, g.energy_hi - g.energy_per_query_j]))
        err_y = 100 * np.abs(np.vstack([g.quality - g.quality_lo, g.quality_hi - g.quality]))
        ax.errorbar(
            g.energy_per_query_j,
            100 * g.quality,
            xerr=np.nan_to_num(err_x),
            yerr=np.nan_to_num(err_y),
            fmt=markers.get(kind, "o"),
            ms=7,
            capsize=2,
            alpha=0.85,
            label=kind,
        )
    front = t[t.pareto].sort_values("energy_per_query_j")
    ax.plot(front.energy_per_query_j, 100 * front.quality, "k--", lw=1, label="frontier")
    ax.set_xscale("log")
    low, high = (
        np.nanmin(t[["energy_lo", "energy_per_query_j"]].to_numpy()),
        np.nanmax(t[["energy_hi", "energy_per_query_j"]].to_numpy()),
    )
    ax.set_xlim(low / 1.3, high * 3)  # room for the labels right of the points
    _annotate_apart(ax, t.energy_per_query_j, 100 * t.quality, list(t.policy), fontsize=7)
    ax.set_xlabel(f"energy per query (J, log scale) — {metrics.meter_label(runs)}")
    ax.set_ylabel("quality (% correct)")
    ax.set_title(
        f"Energy-quality frontier of serving policies — {metrics.hardware_label(runs)}\n"
        f"scored on the held-out half ({int(t.n.iloc[0])} queries), 95 % bootstrap CIs",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
