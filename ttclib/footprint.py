"""Carbon and cost of the measured energy: derived quantities per 1,000 queries (issue 18, item 5).

Nothing here is measured. A table's energy per query E (joules) becomes, for 1,000 queries,

    kWh   = 1000 · E / 3.6e6
    gCO2e = kWh · g        (g: grid carbon intensity, gCO2e per kWh)
    cost  = kWh · price    (price: currency units per kWh)

Both factors are parameters (``Footprint``); each is a constant, so a confidence interval on E
maps onto the same interval of each derived column. Use ``caption`` under any table or figure that
shows them. One watt-hour per query is 1 kWh per 1,000 queries, so exactly ``g`` grams:

>>> import pandas as pd
>>> t = per_thousand_queries(pd.DataFrame({"energy_per_query_j": [3600.0]}))
>>> float(t.energy_per_1k_queries_kwh[0]), bool(t.gco2e_per_1k_queries[0] == DEFAULT.grid_g_per_kwh)
(1.0, True)
>>> fp = Footprint(grid_g_per_kwh=400, price_per_kwh=0.25, currency="EUR", source="example")
>>> float(per_thousand_queries(pd.DataFrame({"energy_per_query_j": [3600.0]}), footprint=fp).cost_per_1k_queries[0])
0.25
>>> caption(fp)
'derived, not measured: gCO2e = energy × 400 g/kWh (example); cost = energy × 0.25 EUR/kWh'
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace

import pandas as pd

from .metrics import J_PER_WH

J_PER_KWH = 1000 * J_PER_WH
QUERIES = 1000
CI_SUFFIXES = ("", "_lo", "_hi")


@dataclass(frozen=True)
class Footprint:
    """The two conversion factors from energy to emissions and money, and where they come from."""

    grid_g_per_kwh: float  # grid carbon intensity, gCO2e per kWh
    price_per_kwh: float  # electricity price, currency units per kWh
    currency: str  # e.g. "USD"
    source: str  # one line: where the figures come from, with their year

    def __post_init__(self):
        for name in ("grid_g_per_kwh", "price_per_kwh"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite, non-negative number, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("currency", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")

    @classmethod
    def from_params(cls, params: dict | None) -> Footprint:
        """A notebook's parameter dict (keys: the field names) over ``DEFAULT``; ``None``: ``DEFAULT``.

        A price in another currency needs the price with it; new figures without a ``source`` are
        labelled as the notebook's own.
        """
        params = dict(params or {})
        known = {f.name for f in fields(cls)}
        for key in params:
            if key not in known:
                raise ValueError(f"unknown footprint parameter {key!r}; expected some of {sorted(known)}")
        if "currency" in params and "price_per_kwh" not in params:
            raise ValueError(f"currency given without price_per_kwh: the default price is in {DEFAULT.currency}")
        changed = sorted(k for k in params if k != "source" and params[k] != getattr(DEFAULT, k))
        if changed and "source" not in params:
            params["source"] = f"{', '.join(changed)} set in the notebook's parameters; otherwise {DEFAULT.source}"
        return replace(DEFAULT, **params)


# Ember's intensities are lifecycle emissions in CO2 equivalents (its Global Electricity Review 2024
# methodology); the 480 figure was checked against a summary of that review, not the review itself.
# The US price was not checked against EIA's text (consistent with NREL's "4.8 % per year from 2019
# to 2023"); a notebook that knows its grid and tariff should pass its own.
DEFAULT = Footprint(
    grid_g_per_kwh=480.0,
    price_per_kwh=0.127,
    currency="USD",
    source="world average grid intensity in 2023, 480 gCO2e/kWh (Ember, Global Electricity Review 2024); "
    "US average retail price in 2023, all sectors, about 12.7 US cents/kWh (US EIA; figure not checked "
    "against the source text)",
)


def caption(footprint: Footprint = DEFAULT) -> str:
    """The sentence that labels derived carbon and cost figures, with the factors and their source."""
    return (
        f"derived, not measured: gCO2e = energy × {footprint.grid_g_per_kwh:g} g/kWh ({footprint.source}); "
        f"cost = energy × {footprint.price_per_kwh:g} {footprint.currency}/kWh"
    )


def per_thousand_queries(
    table: pd.DataFrame, energy_col: str = "energy_per_query_j", footprint: Footprint = DEFAULT
) -> pd.DataFrame:
    """A copy of ``table`` with energy (kWh), gCO2e and cost per 1,000 queries from ``energy_col`` (J/query).

    ``energy_col + "_lo"``/``"_hi"`` (a confidence interval), when present, get matching
    ``_lo``/``_hi`` columns. ``attrs["footprint"]`` holds the caption.
    """
    if energy_col not in table.columns:
        raise ValueError(f"energy column {energy_col!r} is not in the table (columns: {list(table.columns)})")
    out = table.copy()
    for suffix in CI_SUFFIXES:
        if energy_col + suffix in table.columns:
            kwh = table[energy_col + suffix].astype(float) * QUERIES / J_PER_KWH
            out["energy_per_1k_queries_kwh" + suffix] = kwh
            out["gco2e_per_1k_queries" + suffix] = kwh * footprint.grid_g_per_kwh
            out["cost_per_1k_queries" + suffix] = kwh * footprint.price_per_kwh
    out.attrs["footprint"] = caption(footprint)
    return out
