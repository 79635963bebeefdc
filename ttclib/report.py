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


def overview(runs: pd.DataFrame, small: str, large: str, ttc: str = "cot") -> str:
    """Scaling the model (Base small → Base large) vs spending test-time compute on the small one."""
    scale = metrics.gain_per_wh(runs, {"model": small, "strategy": "base"}, {"model": large, "strategy": "base"})
    spend = metrics.gain_per_wh(runs, {"model": small, "strategy": "base"}, {"model": small, "strategy": ttc})
    better = _efficiency(spend) > _efficiency(scale)
    hw = ", ".join(sorted(set(runs.hardware)))
    meter = metrics.meter_label(runs)
    return (f"On {hw} ({meter}): scaling Base {small} → {large} gave {_describe(scale)}; "
            f"{ttc.upper()} on {small} gave {_describe(spend)}. "
            f"Paper (math, A100): scaling 1.5B→7B +{PAPER_OVERVIEW['scaling_gain_pct']} points at similar energy, "
            f"RT on 1.5B +{PAPER_OVERVIEW['ttc_gain_pct']} points. "
            f"The claim that test-time compute buys more accuracy per unit energy than scaling "
            f"{'held' if better else 'did not hold'} here.")


def _efficiency(g: dict) -> float:
    """Order gains: any gain at lower energy beats any slope; otherwise compare points per Wh."""
    if g["energy_delta_wh"] <= 0:
        return float("inf") if g["accuracy_gain_pct"] > 0 else float("-inf")
    return g["gain_per_wh"]

