"""Carbon and cost per 1,000 queries (issue 18 item 5): known answers and the inputs that must be refused."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from ttclib.footprint import DEFAULT, Footprint, caption, per_thousand_queries

FP = Footprint(grid_g_per_kwh=400, price_per_kwh=0.25, currency="USD", source="test figures, 2024")


def test_known_answer_3_6_joules_per_query():
    # 3.6 J × 1000 queries = 3600 J = 0.001 kWh → 0.4 g at 400 g/kWh, 0.00025 USD at 0.25 USD/kWh
    t = per_thousand_queries(pd.DataFrame({"energy_per_query_j": [3.6]}), footprint=FP)
    assert t.energy_per_1k_queries_kwh[0] == pytest.approx(0.001, rel=1e-12)
    assert t.gco2e_per_1k_queries[0] == pytest.approx(0.4, rel=1e-12)
    assert t.cost_per_1k_queries[0] == pytest.approx(0.00025, rel=1e-12)


def test_one_watt_hour_per_query_gives_the_grid_intensity_in_grams():
    t = per_thousand_queries(pd.DataFrame({"e": [3600.0, 7200.0]}), energy_col="e")
    assert t.gco2e_per_1k_queries.tolist() == pytest.approx([DEFAULT.grid_g_per_kwh, 2 * DEFAULT.grid_g_per_kwh])
    assert t.cost_per_1k_queries.tolist() == pytest.approx([DEFAULT.price_per_kwh, 2 * DEFAULT.price_per_kwh])


def test_confidence_interval_columns_map_by_the_same_factor():
    table = pd.DataFrame(
        {
            "model": ["a", "b"],
            "energy_per_query_j": [36.0, 72.0],
            "energy_per_query_j_lo": [18.0, 36.0],
            "energy_per_query_j_hi": [54.0, 144.0],
        }
    )
    t = per_thousand_queries(table, footprint=FP)
    # 1000 queries × J / 3.6e6 J/kWh: 36 J → 0.01 kWh → 4 g → 0.0025 USD
    assert t.gco2e_per_1k_queries.tolist() == pytest.approx([4.0, 8.0])
    assert t.gco2e_per_1k_queries_lo.tolist() == pytest.approx([2.0, 4.0])
    assert t.gco2e_per_1k_queries_hi.tolist() == pytest.approx([6.0, 16.0])
    assert t.cost_per_1k_queries_lo.tolist() == pytest.approx([0.00125, 0.0025])
    assert t.cost_per_1k_queries_hi.tolist() == pytest.approx([0.00375, 0.01])
    assert t.energy_per_1k_queries_kwh_hi.tolist() == pytest.approx([0.015, 0.04])
    assert t.model.tolist() == ["a", "b"]
    assert "gco2e_per_1k_queries" not in table.columns  # the input is left as it was


def test_no_interval_columns_without_an_interval_and_nan_passes_through():
    t = per_thousand_queries(pd.DataFrame({"energy_per_query_j": [np.nan, 3.6]}), footprint=FP)
    assert not [c for c in t.columns if c.endswith(("_lo", "_hi"))]
    assert math.isnan(t.gco2e_per_1k_queries[0]) and t.gco2e_per_1k_queries[1] == pytest.approx(0.4)


def test_the_table_carries_its_caption():
    t = per_thousand_queries(pd.DataFrame({"energy_per_query_j": [1.0]}), footprint=FP)
    assert t.attrs["footprint"] == caption(FP)
    assert caption(FP) == (
        "derived, not measured: gCO2e = energy × 400 g/kWh (test figures, 2024); cost = energy × 0.25 USD/kWh"
    )


def test_missing_energy_column_is_named():
    with pytest.raises(ValueError, match="'energy_j'"):
        per_thousand_queries(pd.DataFrame({"energy_per_query_j": [1.0]}), energy_col="energy_j")


@pytest.mark.parametrize("field", ["grid_g_per_kwh", "price_per_kwh"])
@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "400", True, None])
def test_bad_factor_is_refused_naming_the_field(field, bad):
    args = dict(grid_g_per_kwh=400, price_per_kwh=0.25, currency="USD", source="s")
    with pytest.raises(ValueError, match=field):
        Footprint(**{**args, field: bad})


@pytest.mark.parametrize("field", ["currency", "source"])
def test_empty_label_is_refused_naming_the_field(field):
    args = dict(grid_g_per_kwh=400, price_per_kwh=0.25, currency="USD", source="s")
    with pytest.raises(ValueError, match=field):
        Footprint(**{**args, field: " "})


def test_zero_and_numpy_factors_are_accepted_as_floats():
    fp = Footprint(grid_g_per_kwh=np.int64(0), price_per_kwh=np.float64(0.1), currency="EUR", source="s")
    assert (fp.grid_g_per_kwh, fp.price_per_kwh) == (0.0, 0.1) and type(fp.grid_g_per_kwh) is float


def test_from_params():
    assert Footprint.from_params(None) == DEFAULT and Footprint.from_params({}) == DEFAULT
    own = Footprint.from_params({"grid_g_per_kwh": 56, "source": "France 2023 (Ember)"})
    assert (own.grid_g_per_kwh, own.price_per_kwh, own.source) == (56.0, DEFAULT.price_per_kwh, "France 2023 (Ember)")
    unsourced = Footprint.from_params({"price_per_kwh": 0.3, "currency": "EUR"})
    assert unsourced.currency == "EUR" and unsourced.source.startswith("currency, price_per_kwh set in the notebook")


def test_from_params_refuses_unknown_key_and_a_currency_without_its_price():
    with pytest.raises(ValueError, match="'grid_intensity'"):
        Footprint.from_params({"grid_intensity": 400})
    with pytest.raises(ValueError, match="currency given without price_per_kwh"):
        Footprint.from_params({"currency": "EUR"})
    with pytest.raises(ValueError, match="grid_g_per_kwh"):
        Footprint.from_params({"grid_g_per_kwh": -5})


def test_default_names_its_source_and_year():
    assert re.search(r"\b20\d\d\b", DEFAULT.source)
    assert "Ember" in DEFAULT.source and "EIA" in DEFAULT.source
    assert f"{DEFAULT.grid_g_per_kwh:g}" in caption() and DEFAULT.currency in caption()
