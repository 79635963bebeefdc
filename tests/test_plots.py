"""Figures: labels that never overprint, and one colour per strategy in every figure."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ttclib import plots  # noqa: E402


def _overlaps(texts) -> list[tuple[str, str]]:
    fig = texts[0].figure
    fig.canvas.draw()
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def test_labels_of_a_flat_row_of_points_do_not_overprint():
    # Figure 6's medium and hard panels: every configuration at 0 %, energies a few pixels apart
    fig, ax = plt.subplots(figsize=(4, 3))
    x = np.array([8.0, 8.3, 12.0, 13.0, 20.0, 21.0])
    names = [f"gemma3-270m config {i}" for i in range(len(x))]
    ax.plot(x, np.zeros_like(x), "o")
    ax.set_xscale("log")
    plots._annotate_apart(ax, x, np.zeros_like(x), names)
    texts = ax.texts
    assert _overlaps(texts) == []
    shown = "\n".join(t.get_text() for t in texts)
    assert all(n in shown for n in names)  # merged or stacked, never dropped
    plt.close(fig)


def test_one_colour_per_strategy_across_figures():
    runs = pd.DataFrame(
        {"model": ["a"], "parameters": [1], "hardware": "cpu", "meter": "estimate", "meter_method": "cpu_time_x_tdp"}
    )
    pts = pd.DataFrame(
        [
            dict(
                model="a",
                strategy=s,
                max_new_tokens=8,
                accuracy=0.5,
                accuracy_lo=0.4,
                accuracy_hi=0.6,
                energy_per_query_j=1.0 + i,
                energy_per_query_j_lo=0.9 + i,
                energy_per_query_j_hi=1.1 + i,
                ci_over="3 repetitions",
            )
            for i, s in enumerate(["rt", "base"])
        ]
    )
    fig = plots.accuracy_vs_energy(pts, runs)
    colours = {
        c.get_label(): matplotlib.colors.to_hex(c.lines[0].get_color())
        for c in fig.axes[0].containers
        if c.get_label() in ("rt", "base")
    }
    assert colours == {s: matplotlib.colors.to_hex(plots.strategy_color(s)) for s in ("rt", "base")}
    assert colours["base"] != colours["rt"]
    plt.close(fig)


def test_figure3_keeps_each_benchmark_of_a_model_apart():
    """Two benchmarks per model (the default grid): one bar group per model and benchmark, each bar
    the power of its own run (it raised on the duplicate model index before)."""
    runs = pd.DataFrame(
        {
            "run_id": list("abcd"),
            "model": ["m"] * 4,
            "strategy": ["base", "cot"] * 2,
            "benchmark": ["math1", "math1", "code1", "code1"],
            "parameters": [1] * 4,
            "meter": ["estimate"] * 4,
            "hardware": ["cpu"] * 4,
            "measured_devices": [None] * 4,
            "meter_method": ["cpu_time_x_tdp"] * 4,
        }
    )
    summary = pd.DataFrame({"run_id": list("abcd"), "mean_power_w": [10.0, 12.0, 20.0, 26.0], "std_power_w": [1.0] * 4})
    power = pd.DataFrame({"run_id": ["d", "d"], "t": [0.0, 1.0], "power_w": [25.0, 27.0]})
    fig = plots.power_by_strategy(summary, power, runs)
    left = fig.axes[0]
    assert [t.get_text() for t in left.get_xticklabels()] == ["m\ncode1", "m\nmath1"]
    heights = {
        c.get_label(): [p.get_height() for p in c.patches]
        for c in left.containers
        if isinstance(c, matplotlib.container.BarContainer)
    }
    assert heights == {"base": [20.0, 10.0], "cot": [26.0, 12.0]}
    plt.close(fig)
