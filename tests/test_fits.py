"""Operating-curve fits on constructed data with known answers (ttclib.fits)."""
from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from ttclib import fits


def _inside(ci, value):
    return ci[0] <= value <= ci[1]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def test_docstring_examples():
    result = doctest.testmod(fits, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_quadratic_wins_and_recovers_coefficients(rng):
    a, b, c = 5.0, 0.02, 3e-6
    x = np.linspace(100, 4000, 60)
    truth = a + b * x + c * x**2
    df = pd.DataFrame({"completion_tokens": x, "energy_j": truth + rng.normal(0, 0.5, x.size)})
    fit = fits.fit_energy_vs_tokens(df)
    assert fit.form == "quadratic" and fit.criterion == "bic"
    assert fit.curve == "energy_j ~ completion_tokens"
    for name, value in zip("abc", (a, b, c)):
        assert _inside(fit.ci[name], value), (name, fit.ci[name])
    assert fit.r2 > 0.99 and fit.n == 60
    np.testing.assert_allclose(fit.predict(x), truth, atol=0.4)   # noise sd 0.5
    assert set(fit.candidates.form) == {"linear", "quadratic", "power"}
    assert fit.candidates.set_index("form").delta_bic["quadratic"] == 0
    assert fit.formula.startswith("y = ") and "·x²" in fit.formula
    assert "quadratic wins by BIC" in fit.summary() and "n = 60" in fit.summary()


def test_linear_forms_match_statsmodels(rng):
    """The shared likelihood, criteria, R², CIs and band equal statsmodels' own for a linear form."""
    x = np.linspace(1, 50, 40)
    y = 2 + 0.3 * x + 0.001 * x**2 + rng.normal(0, 0.4, x.size)
    w = 1 / (1 + x / 50)
    fit = fits.fit_curve(x, y, forms=("quadratic",), weights=w)
    res = sm.WLS(y, np.column_stack([np.ones_like(x), x, x**2]), weights=w).fit()
    assert fit.aic == pytest.approx(res.aic) and fit.bic == pytest.approx(res.bic)
    assert fit.r2 == pytest.approx(res.rsquared)
    np.testing.assert_allclose([fit.ci[k] for k in "abc"], res.conf_int(0.05), rtol=1e-8)
    grid = np.array([1.0, 10.0, 30.0])
    band = res.get_prediction(np.column_stack([np.ones(3), grid, grid**2])).conf_int(alpha=0.1)
    np.testing.assert_allclose(np.column_stack(fit.predict_ci(grid, level=0.9)), band, rtol=1e-8)


def test_linear_data_prefers_linear(rng):
    x = np.linspace(0, 100, 40)
    fit = fits.fit_curve(x, 1 + 2 * x + rng.normal(0, 1.0, x.size), forms=("linear", "quadratic"))
    assert fit.form == "linear"
    assert fit.candidates.set_index("form").delta_bic["quadratic"] > 0
    assert _inside(fit.ci["b"], 2.0)


def test_power_law(rng):
    x = np.geomspace(1, 1000, 30)
    y = 3 * x**0.7 * (1 + rng.normal(0, 0.02, x.size))
    # Noise proportional to y: weights 1/y² make the CIs honest (unweighted they cover ~70 %).
    fit = fits.fit_curve(x, y, weights=1 / y**2)
    assert fit.form == "power"
    assert _inside(fit.ci["b"], 0.7) and abs(fit.params["a"] - 3) < 0.3


def test_saturating_throughput(rng):
    ymax, k = 50.0, 8.0
    b = 2.0 ** np.arange(9)   # 1, 2, 4, …, 256
    qps = ymax * b / (k + b) * (1 + rng.normal(0, 0.03, b.size))
    df = pd.DataFrame({"batch_size": b, "queries_per_s": qps, "w": 1 / qps**2})
    fit = fits.fit_throughput_vs_batch(df, weights="w")   # multiplicative noise (see test_power_law)
    assert isinstance(fit, fits.SaturationFit) and fit.form == "michaelis_menten"
    assert _inside(fit.ci["ymax"], ymax) and _inside(fit.ci["k"], k)
    assert fit.saturation == 0.9
    assert _inside(fit.saturation_ci, 9 * k)
    assert fit.saturation_batch == pytest.approx(9 * fit.params["k"])
    assert "batch" in fit.summary()
    lo, hi = fit.predict_ci(b)
    assert np.all(lo < fit.predict(b)) and np.all(fit.predict(b) < hi)


def test_saturation_level_is_configurable(rng):
    b = 2.0 ** np.arange(9)
    df = pd.DataFrame({"batch_size": b, "queries_per_s": 50 * b / (8 + b) * (1 + rng.normal(0, 0.01, b.size))})
    fit = fits.fit_throughput_vs_batch(df, saturation=0.5)
    assert fit.saturation_batch == pytest.approx(fit.params["k"])
    with pytest.raises(ValueError, match="saturation"):
        fits.fit_throughput_vs_batch(df, saturation=1.0)


def test_no_ceiling_means_no_saturation_batch(rng):
    b = 2.0 ** np.arange(9)
    df = pd.DataFrame({"batch_size": b, "queries_per_s": 3 + 2 * b + rng.normal(0, 0.1, b.size)})
    fit = fits.fit_throughput_vs_batch(df, forms=("linear", "log_linear"))
    assert fit.form == "linear" and np.isnan(fit.saturation_batch)
    assert "no ceiling" in fit.summary()


def test_energy_per_token_amortised(rng):
    a, b = 0.5, 4.0
    x = np.array([1, 2, 4, 8, 16, 32, 64, 128.0]).repeat(3)
    df = pd.DataFrame({"batch_size": x, "energy_per_token_j": a + b / x + rng.normal(0, 0.02, x.size)})
    fit = fits.fit_energy_per_token_vs_batch(df)
    assert fit.form == "inverse"
    assert _inside(fit.ci["a"], a) and _inside(fit.ci["b"], b)
    assert fit.params["a"] == pytest.approx(a, abs=0.03) and fit.params["b"] == pytest.approx(b, rel=0.02)


def test_energy_vs_length_and_aic(rng):
    x = np.array([256, 512, 1024, 2048, 4096, 8192.0]).repeat(2)
    df = pd.DataFrame({"max_new_tokens": x, "energy_per_query_j": 10 + 0.05 * x + rng.normal(0, 2, x.size)})
    fit = fits.fit_energy_vs_length(df, criterion="aic")
    assert fit.criterion == "aic" and fit.candidates.set_index("form").delta_aic[fit.form] == 0
    assert fit.form in ("linear", "quadratic")


def test_mean_ci_matches_scipy():
    v = np.array([3.1, 2.7, 3.5, 2.9, 3.3, np.nan])
    m, lo, hi = fits.mean_ci(v, level=0.9)
    clean = v[~np.isnan(v)]
    expect = stats.t.interval(0.9, clean.size - 1, loc=clean.mean(), scale=stats.sem(clean))
    assert m == pytest.approx(clean.mean()) and (lo, hi) == pytest.approx(expect)
    m1 = fits.mean_ci([4.0])
    assert m1[0] == 4.0 and np.isnan(m1[1]) and np.isnan(m1[2])


def test_ratio_ci_known_ratio(rng):
    def sample(n):
        return rng.normal(50, 5, n), rng.normal(10, 1, n)

    small, large = fits.ratio_ci(*sample(20)), fits.ratio_ci(*sample(400))
    for r, lo, hi in (small, large):
        assert lo < 5 < hi and lo < r < hi
    assert large[2] - large[1] < small[2] - small[1]
    num, den = sample(60)
    boot, delta = fits.ratio_ci(num, den), fits.ratio_ci_delta(num, den)
    assert boot[0] == delta[0]
    assert (boot[2] - boot[1]) == pytest.approx(delta[2] - delta[1], rel=0.1)
    assert boot[1:] == pytest.approx(delta[1:], rel=0.1)
    assert fits.ratio_ci(num, den) == boot   # fixed seed: reproducible


def test_too_few_points_skip_a_form_and_name_the_curve_when_none_fits():
    three = pd.DataFrame({"completion_tokens": [1.0, 2, 3], "energy_j": [1.1, 1.9, 3.2]})
    fit = fits.fit_energy_vs_tokens(three)
    c = fit.candidates.set_index("form")
    assert not c.converged["quadratic"] and c.status["quadratic"].startswith("skipped: 3 points")
    assert fit.form in ("linear", "power") and "not compared: quadratic (skipped: 3 points" in fit.summary()
    with pytest.raises(ValueError, match="energy_j ~ completion_tokens: no form could be fitted.*linear skipped: 2 points"):
        fits.fit_energy_vs_tokens(three.iloc[:2])


def test_non_positive_x_skips_power():
    x = np.arange(0.0, 20)
    fit = fits.fit_curve(x, 1 + 2 * x + 0.1 * np.sin(x))
    c = fit.candidates.set_index("form")
    assert not c.converged["power"] and c.status["power"] == "skipped: needs x > 0"
    assert np.isnan(c.bic["power"]) and c.converged["linear"] and c.converged["quadratic"]
    assert fit.form in ("linear", "quadratic") and "power (skipped" in fit.summary()


def test_nans_dropped_and_counted():
    x = np.array([1, 2, 3, 4, 5, 6, np.nan, 8.0])
    y = np.array([2, 4.1, 5.9, 8, 10.1, np.nan, 14, 16.0])
    fit = fits.fit_curve(x, y, forms=("linear",))
    assert fit.n == 6 and fit.n_dropped == 2 and "2 rows with NaN dropped" in fit.summary()


def test_failed_fit_listed_and_never_wins(monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found: maxfev exceeded")

    monkeypatch.setattr(fits.optimize, "curve_fit", fail)
    b = 2.0 ** np.arange(9)
    fit = fits.fit_curve(b, 50 * b / (8 + b), forms=("michaelis_menten", "log_linear"))
    c = fit.candidates.set_index("form")
    assert fit.form == "log_linear"
    assert not c.converged["michaelis_menten"] and c.status["michaelis_menten"].startswith("failed")
    with pytest.raises(ValueError, match="no form could be fitted"):
        fits.fit_curve(b, 50 * b / (8 + b), forms=("michaelis_menten",))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown forms"):
        fits.fit_curve([1, 2, 3, 4], [1, 2, 3, 4], forms=("cubic",))
    with pytest.raises(ValueError, match="criterion"):
        fits.fit_curve([1, 2, 3, 4], [1, 2, 3, 4], forms=("linear",), criterion="r2")
    with pytest.raises(ValueError, match="columns"):
        fits.fit_energy_vs_tokens(pd.DataFrame({"x": [1.0]}))


def test_constant_y_is_no_curve():
    with pytest.raises(ValueError, match=r"E ~ n: all 5 y values are equal \(2\)"):
        fits.fit_curve([1, 2, 3, 4, 5], [2.0] * 5, name="E ~ n")


def test_fit_by_fits_each_group_and_explains_the_ones_it_cannot(rng):
    x = np.tile([16, 32, 64, 128, 256.0], 2)
    df = pd.DataFrame({"model": ["a"] * 5 + ["b"] * 5, "max_new_tokens": x,
                       "energy_per_query_j": 2 + 0.05 * x + rng.normal(0, 0.01, 10)})
    df.loc[df.model == "b", "max_new_tokens"] = 64.0          # one distinct x: no curve
    out = fits.fit_by(df, "model", label="E ~ L")
    assert list(out) == ["a", "b"]
    assert isinstance(out["a"], fits.Fit) and out["a"].params["b"] == pytest.approx(0.05, rel=0.02)
    assert isinstance(out["b"], fits.Unfitted) and out["b"].formula == "no fit"
    assert out["b"].summary().startswith("E ~ L [b]: no form could be fitted (0 NaN rows dropped): linear skipped: 5 points (1 distinct x)")
    assert np.isnan(out["b"].predict([1.0, 2.0])).all()
    two = fits.fit_by(df.assign(s="cot"), ["model", "s"], label="E ~ L")
    assert two[("a", "cot")].curve == "E ~ L [a cot]"


def test_fit_by_raises_on_bad_arguments_instead_of_hiding_them():
    df = pd.DataFrame({"model": "a", "max_new_tokens": [1.0, 2, 3, 4], "energy_per_query_j": [1.0, 2, 3, 4.1]})
    with pytest.raises(ValueError, match="not in the table"):
        fits.fit_by(df, "model", fits.fit_energy_vs_tokens)          # no completion_tokens column
    with pytest.raises(fits.NoFit) as e:
        fits.fit_energy_vs_length(df.iloc[:1], name="E ~ L")
    assert str(e.value).startswith("E ~ L: no form could be fitted") and e.value.reason.startswith("no form")


def test_ceiling_only_within_the_measured_range():
    b = 2.0 ** np.arange(7)                                          # batches 1..64
    near = fits.fit_throughput_vs_batch(pd.DataFrame({"batch_size": b, "queries_per_s": 10 * b / (4 + b)}))
    assert near.x_max == 64 and near.ceiling == near.saturation_batch == pytest.approx(36, rel=0.01)
    far = fits.fit_throughput_vs_batch(pd.DataFrame({"batch_size": b, "queries_per_s": 10 * b / (400 + b)}))
    assert far.saturation_batch > 128 and np.isnan(far.ceiling)     # extrapolated past 2 × 64: no ceiling
