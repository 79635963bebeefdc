"""Computed sentences that compare a result with the paper's claim — never hand-typed numbers."""
from __future__ import annotations

import pandas as pd

from . import metrics

# Paper 000, section 4.1 (math, A100, Qwen2.5): Base 1.5B -> 7B gained 4.8 points at about the
# same energy; RT on 1.5B gained 34.3 points at similar energy (7.5x the gain of scaling).
PAPER_OVERVIEW = {"scaling_gain_pct": 4.8, "ttc_gain_pct": 34.3}


def _describe(g: dict) -> str:
    slope = f"{g['gain_per_wh']:.0f} points/Wh" if g["gain_per_wh"] == g["gain_per_wh"] else \
        ("accuracy gained with less energy" if g["accuracy_gain_pct"] > 0 else "no gain for less energy")
    return (f"{g['accuracy_gain_pct']:+.1f} points for {g['energy_ratio']:.2f}× the energy per query "
            f"({slope})")


def overview(runs: pd.DataFrame, ttc: str = "cot", small: str | None = None, large: str | None = None) -> str:
    """Scaling the model (Base small → Base large) vs spending test-time compute on the small one.

    ``small``/``large`` default to the models with the fewest and most parameters.
    """
    by_size = runs.sort_values("parameters").model.unique()
    small, large = small or by_size[0], large or by_size[-1]
    scale = metrics.gain_per_wh(runs, {"model": small, "strategy": "base"}, {"model": large, "strategy": "base"})
    spend = metrics.gain_per_wh(runs, {"model": small, "strategy": "base"}, {"model": small, "strategy": ttc})
    hw = ", ".join(sorted(set(runs.hardware)))
    return (f"On {hw} ({metrics.meter_label(runs)}): scaling Base {small} → {large} gave {_describe(scale)}; "
            f"{ttc.upper()} on {small} gave {_describe(spend)}. "
            f"Paper (math, A100): scaling 1.5B→7B +{PAPER_OVERVIEW['scaling_gain_pct']} points at similar energy, "
            f"RT on 1.5B +{PAPER_OVERVIEW['ttc_gain_pct']} points. {_verdict(scale, spend)}")


def _verdict(scale: dict, spend: dict) -> str:
    claim = "The claim that test-time compute buys more accuracy per unit energy than scaling the model"
    if spend["accuracy_gain_pct"] <= 0 and scale["accuracy_gain_pct"] <= 0:
        return f"{claim} could not be tested here: neither scaling nor test-time compute improved accuracy."
    if spend["accuracy_gain_pct"] <= 0:
        return f"{claim} did not hold here: test-time compute did not improve accuracy."
    held = scale["accuracy_gain_pct"] <= 0 or _efficiency(spend) > _efficiency(scale)
    return f"{claim} {'held' if held else 'did not hold'} here."


def _efficiency(g: dict) -> float:
    """Order gains: any gain at lower energy beats any slope; otherwise compare points per Wh."""
    if g["energy_delta_wh"] <= 0:
        return float("inf") if g["accuracy_gain_pct"] > 0 else float("-inf")
    return g["gain_per_wh"]

