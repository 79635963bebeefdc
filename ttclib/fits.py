"""Operating-curve fits: a few candidate model forms per curve, the winner chosen by AIC or BIC.

Each curve (energy vs output tokens, energy vs maximum output length, throughput vs batch size,
energy per token vs batch size) is fitted with every candidate form; the candidates table keeps
all of them so a notebook can show by how much the winner won.

Forms linear in their parameters (``linear``, ``quadratic``, ``log_linear``, ``inverse``) are
fitted by statsmodels WLS (OLS when no weights are given). The others (``power``,
``michaelis_menten``, ``exp_saturation``) are fitted by nonlinear least squares
(``scipy.optimize.curve_fit``) on the original y scale — the power law too, started from the
log–log OLS fit — so that every candidate's residuals, and hence its likelihood, are on the same
scale and the criteria compare like with like.

Information criteria follow statsmodels' OLS/WLS definition for all candidates::

    llf = -n/2 · (ln(2π) + ln(SSR_w / n) + 1) + ½ Σ ln w      (Gaussian, variance profiled out)
    aic = -2 llf + 2 k,   bic = -2 llf + k ln n

where k counts the mean parameters only (statsmodels leaves the variance out); every candidate
has exactly one variance parameter, so leaving it out shifts all criteria alike and the
differences that pick the winner are unchanged. Confidence intervals are t intervals with
n − k degrees of freedom from the parameter covariance (statsmodels' for the linear forms,
curve_fit's, scaled by the residual variance, for the nonlinear ones); bands and derived
quantities (the saturation batch) use the delta method.

>>> import numpy as np
>>> x = np.arange(1.0, 21.0)
>>> fit = fit_curve(x, 2 + 0.5 * x + np.sin(x) / 10, forms=("linear", "quadratic"), name="demo")
>>> fit.form, fit.formula
('linear', 'y = 2.017 + 0.4988·x')
>>> fit.summary()
'demo: linear wins by BIC (ΔBIC 2.0 to quadratic); R² = 0.999, n = 20.'
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats

ENERGY_FORMS = ("linear", "quadratic", "power")
THROUGHPUT_FORMS = ("michaelis_menten", "exp_saturation", "linear", "log_linear")
PER_TOKEN_FORMS = ("inverse", "power", "log_linear")


# --- model forms -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Form:
    """One candidate: ``f(x, *p)``, its Jacobian ``jac(x, *p)`` (n × k) and how to start and print it."""

    name: str
    params: tuple[str, ...]
    f: Callable[..., np.ndarray]
    jac: Callable[..., np.ndarray]
    text: Callable[..., str]                       # fitted numbers → "y = …"
    linear: bool                                   # linear in p: jac(x) is the design matrix
    positive_x: bool = False                       # needs x > 0 (logs, 1/x, x^b)
    p0: Callable[[np.ndarray, np.ndarray], list[float]] | None = None
    x_at: Callable[..., tuple[float, np.ndarray]] | None = None   # (q, *p) → x where y = q·ymax, ∂x/∂p

    @property
    def k(self) -> int:
        return len(self.params)


def _g(v: float) -> str:
    return f"{v:.4g}"


def _terms(coefs, suffixes) -> str:
    """'y = 1.2 + 0.034·x - 1e-06·x²' from coefficients and their term suffixes."""
    out = _g(coefs[0]) + suffixes[0]
    for c, s in zip(coefs[1:], suffixes[1:]):
        out += (" - " if c < 0 else " + ") + _g(abs(c)) + s
    return "y = " + out


def _linear_form(name, params, columns, suffixes, positive_x=False) -> Form:
    def design(x, *_):
        return np.column_stack([c(np.asarray(x, float)) for c in columns])

    return Form(name, params, f=lambda x, *p: design(x) @ np.asarray(p), jac=design,
                text=lambda *p: _terms(p, suffixes), linear=True, positive_x=positive_x)


def _power_p0(x, y):
    ok = y > 0
    if ok.sum() < 2:
        return [float(np.mean(y)), 0.0]
    b, ln_a = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
    return [float(np.exp(ln_a)), float(b)]


def _mm_p0(x, y):
    # Hanes–Woolf linearisation: x/y = k/ymax + x/ymax.
    if np.all(y > 0):
        slope, icpt = np.polyfit(x, x / y, 1)
        if slope > 0 and icpt > 0:
            return [1 / slope, icpt / slope]
    return [1.1 * float(np.max(y)), float(np.median(x))]


def _exp_p0(x, y):
    order = np.argsort(x)
    ymax = float(np.max(y))
    # k is where the curve reaches 1 − 1/e of its ceiling.
    k = float(x[order][np.argmax(y[order] >= (1 - np.exp(-1)) * ymax)])
    return [ymax, k if k > 0 else max(float(np.median(x)), 1.0)]


def _power_jac(x, a, b):
    xb = np.power(x, b)
    return np.column_stack([xb, a * xb * np.log(x)])


def _mm_jac(x, ymax, k):
    return np.column_stack([x / (k + x), -ymax * x / (k + x) ** 2])


def _exp_jac(x, ymax, k):
    e = np.exp(-x / k)
    return np.column_stack([1 - e, -ymax * x * e / k**2])


FORMS: dict[str, Form] = {f.name: f for f in [
    _linear_form("linear", ("a", "b"), [np.ones_like, lambda x: x], ["", "·x"]),
    _linear_form("quadratic", ("a", "b", "c"), [np.ones_like, lambda x: x, np.square], ["", "·x", "·x²"]),
    _linear_form("log_linear", ("a", "b"), [np.ones_like, np.log], ["", "·ln x"], positive_x=True),
    _linear_form("inverse", ("a", "b"), [np.ones_like, lambda x: 1 / x], ["", "/x"], positive_x=True),
    Form("power", ("a", "b"), f=lambda x, a, b: a * np.power(x, b), jac=_power_jac,
         text=lambda a, b: f"y = {_g(a)}·x^{_g(b)}", linear=False, positive_x=True, p0=_power_p0),
    Form("michaelis_menten", ("ymax", "k"), f=lambda x, ymax, k: ymax * x / (k + x), jac=_mm_jac,
         text=lambda ymax, k: f"y = {_g(ymax)}·x / ({_g(k)} + x)", linear=False, p0=_mm_p0,
         x_at=lambda q, ymax, k: (k * q / (1 - q), np.array([0.0, q / (1 - q)]))),
    Form("exp_saturation", ("ymax", "k"), f=lambda x, ymax, k: ymax * (1 - np.exp(-x / k)), jac=_exp_jac,
         text=lambda ymax, k: f"y = {_g(ymax)}·(1 - exp(-x / {_g(k)}))", linear=False, p0=_exp_p0,
         x_at=lambda q, ymax, k: (-k * np.log1p(-q), np.array([0.0, -np.log1p(-q)]))),
]}
"""Every supported form by name: linear a + b·x, quadratic a + b·x + c·x², log_linear a + b·ln x,
inverse a + b/x (a fixed cost amortised over x), power a·x^b, michaelis_menten ymax·x/(k + x),
exp_saturation ymax·(1 − exp(−x/k))."""


# --- the result --------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Fit:
    """The winning form of one curve, with every candidate's criteria in ``candidates``."""

    curve: str                              # "y_name ~ x_name"
    form: str                               # winning form (a key of FORMS)
    formula: str                            # the winner with fitted numbers, "y = 1.2 + 0.034·x"
    params: dict[str, float]                # point estimates, in the units of y and x
    ci: dict[str, tuple[float, float]]      # per parameter, at ``level``
    level: float                            # confidence level of ``ci`` (0.95)
    r2: float                               # 1 − SSR/SST (weighted when weights are given)
    aic: float                              # -2 llf + 2k, k = mean parameters (statsmodels)
    bic: float                              # -2 llf + k ln n
    n: int                                  # points used
    n_dropped: int                          # rows dropped for NaN/inf in x, y or weights
    criterion: str                          # "aic" or "bic": what chose the winner
    candidates: pd.DataFrame                # per form: k, aic, bic, r2, delta_aic, delta_bic, converged, status
    cov: np.ndarray = field(repr=False)     # parameter covariance, in ``params`` order
    df_resid: int = field(repr=False)       # n − k, degrees of freedom of the t intervals
    model: Form = field(repr=False)         # the winning form's functions

    def predict(self, x) -> np.ndarray:
        """Fitted mean of y at ``x``."""
        with np.errstate(all="ignore"):
            return self.model.f(np.asarray(x, float), *self.params.values())

    def predict_ci(self, x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) confidence band of the fitted mean at ``x`` (delta method; exact for
        the linear forms, where it equals statsmodels' mean_ci)."""
        x = np.asarray(x, float)
        with np.errstate(all="ignore"):
            j = np.atleast_2d(self.model.jac(x, *self.params.values()))
        se = np.sqrt(np.einsum("ij,jk,ik->i", j, self.cov, j))
        half = _t(level, self.df_resid) * se
        y = self.predict(x)
        return y - half, y + half

    def summary(self) -> str:
        """One sentence: winner, criterion, margin over each other candidate, R², n."""
        c = self.candidates.set_index("form")
        delta = f"delta_{self.criterion}"
        crit = self.criterion.upper()
        others = c[c.converged & (c.index != self.form)].sort_values(delta)
        margin = ", ".join(f"{d:.1f} to {name}" for name, d in others[delta].items())
        out = f"{self.curve}: {self.form} wins by {crit}"
        out += f" (Δ{crit} {margin})" if margin else " (only candidate fitted)"
        out += f"; R² = {self.r2:.3f}, n = {self.n}"
        if self.n_dropped:
            out += f" ({self.n_dropped} rows with NaN dropped)"
        failed = c[~c.converged]
        if len(failed):
            out += "; not compared: " + ", ".join(f"{name} ({s})" for name, s in failed.status.items())
        return out + "."


@dataclass(frozen=True, eq=False)
class SaturationFit(Fit):
    """A throughput fit with the batch size at which the winning curve reaches a share of its ceiling."""

    saturation: float = 0.9                 # share of ymax that defines saturation
    saturation_batch: float = np.nan        # x where y = saturation·ymax; NaN if the winner has no ceiling
    saturation_ci: tuple[float, float] = (np.nan, np.nan)   # at ``level``, delta method
    x_max: float = np.nan                   # the largest batch size measured

    @property
    def ceiling(self) -> float:
        """``saturation_batch`` when the data show it: within twice the largest batch measured and
        with a CI above zero; NaN otherwise (a ceiling extrapolated far past the data is none)."""
        shown = self.saturation_batch <= 2 * self.x_max and self.saturation_ci[0] > 0
        return self.saturation_batch if shown else np.nan

    def summary(self) -> str:
        if np.isnan(self.saturation_batch):
            return super().summary()[:-1] + f"; the {self.form} form has no ceiling, so no saturation batch."
        lo, hi = self.saturation_ci
        return (super().summary()[:-1] + f"; {self.saturation:.0%} of ymax is reached at batch "
                f"{self.saturation_batch:.3g} ({self.level:.0%} CI {lo:.3g}–{hi:.3g}).")


class NoFit(ValueError):
    """No candidate form could be fitted to a curve's points (too few of them, or a flat y);
    ``reason`` says why. Bad arguments raise a plain ValueError instead."""

    def __init__(self, curve: str, reason: str):
        super().__init__(f"{curve}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Unfitted:
    """A curve that no form could be fitted to (too few points, all x equal); prints like a Fit."""

    curve: str
    reason: str
    formula: str = "no fit"
    form: str = "none"

    def predict(self, x) -> np.ndarray:
        return np.full(np.shape(x), np.nan)

    def predict_ci(self, x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        return self.predict(x), self.predict(x)

    def summary(self) -> str:
        return f"{self.curve}: {self.reason}."


# --- fitting -----------------------------------------------------------------------------------

def _t(level: float, df: int) -> float:
    return float(stats.t.ppf(0.5 + level / 2, df))


def gaussian_llf(resid, weights=None) -> float:
    """Gaussian log-likelihood with the variance profiled out, as statsmodels' WLS ``llf``.

    >>> round(gaussian_llf([1.0, -1.0, 0.5, -0.5]), 4)
    -4.7357
    """
    r = np.asarray(resid, float)
    w = np.ones_like(r) if weights is None else np.asarray(weights, float)
    n = r.size
    return float(-n / 2 * (np.log(2 * np.pi) + np.log(np.sum(w * r**2) / n) + 1) + 0.5 * np.sum(np.log(w)))


def _fit_form(form: Form, x, y, w) -> tuple[np.ndarray, np.ndarray]:
    """Point estimates and covariance; raises RuntimeError when the fit is not usable."""
    if form.linear:
        X = form.jac(x)
        if np.linalg.matrix_rank(X) < form.k:
            raise RuntimeError("design matrix rank-deficient")
        res = sm.WLS(y, X, weights=w).fit()
        return np.asarray(res.params), np.asarray(res.cov_params())
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # curve_fit only warns when the covariance cannot be estimated; such a fit must not win.
        warnings.simplefilter("error", optimize.OptimizeWarning)
        try:
            p, cov = optimize.curve_fit(form.f, x, y, p0=form.p0(x, y), sigma=1 / np.sqrt(w),
                                        absolute_sigma=False, jac=form.jac, maxfev=5000)
        except (optimize.OptimizeWarning, ValueError, np.linalg.LinAlgError) as e:
            raise RuntimeError(str(e).splitlines()[0]) from e
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(np.diag(cov)))):
        raise RuntimeError("non-finite estimates or covariance")
    return p, cov


def _clean(x, y, weights, curve: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, float).ravel()
    if not (x.size == y.size == w.size):
        raise ValueError(f"{curve}: x, y and weights differ in length ({x.size}, {y.size}, {w.size})")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(w)
    if np.any(w[ok] <= 0):
        raise ValueError(f"{curve}: weights must be positive")
    return x[ok], y[ok], w[ok], int((~ok).sum())


def _too_few(form: Form, x: np.ndarray) -> str | None:
    """Why ``x`` cannot fit ``form`` (k parameters need k + 1 points with k distinct x), or None."""
    if x.size < form.k + 1 or np.unique(x).size < form.k:
        return (f"skipped: {x.size} points ({np.unique(x).size} distinct x) are too few for {form.k} parameters "
                f"(needs {form.k + 1} points, {form.k} distinct x)")
    return None


def fit_curve(x, y, forms=ENERGY_FORMS, criterion: str = "bic", weights=None, name: str = "",
              level: float = 0.95) -> Fit:
    """Fit every form in ``forms`` to (x, y) and return the one with the lowest ``criterion``.

    NaN/inf rows are dropped and counted. A form that needs x > 0 is skipped when some x ≤ 0,
    and a nonlinear fit that fails is kept in ``candidates`` with converged=False; neither can
    win. ``weights`` are WLS weights (inverse variances up to a factor; for noise proportional
    to y pass 1/y²). A form with more parameters than the points support (k + 1 points, k distinct
    x) is skipped the same way. Raises ValueError when no form could be fitted.

    >>> import numpy as np
    >>> x = np.array([1, 2, 4, 8, 16, 32, 64, 128.0])
    >>> fit = fit_curve(x, 3 * x**0.7 * (1 + 0.01 * np.cos(x)), forms=("linear", "power"))
    >>> fit.form, round(fit.params["b"], 2), fit.candidates.form.tolist()
    ('power', 0.7, ['linear', 'power'])
    """
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion must be 'aic' or 'bic', not {criterion!r}")
    unknown = [f for f in forms if f not in FORMS]
    if unknown:
        raise ValueError(f"unknown forms {unknown}; known: {sorted(FORMS)}")
    curve = name or f"{getattr(y, 'name', None) or 'y'} ~ {getattr(x, 'name', None) or 'x'}"
    x, y, w, dropped = _clean(x, y, weights, curve)
    if y.size > 1 and np.ptp(y) == 0:
        raise NoFit(curve, f"all {y.size} y values are equal ({y[0]:g}): there is no curve to fit")

    rows, fitted = [], {}
    for name_ in forms:
        form = FORMS[name_]
        row = dict(form=name_, k=form.k, aic=np.nan, bic=np.nan, r2=np.nan, converged=False, status="ok")
        if few := _too_few(form, x):
            row["status"] = few
        elif form.positive_x and np.any(x <= 0):
            row["status"] = "skipped: needs x > 0"
        else:
            try:
                p, cov = _fit_form(form, x, y, w)
            except RuntimeError as e:
                row["status"] = f"failed: {e}"
            else:
                fitted[name_] = (p, cov)
                row.update(converged=True, **_criteria(form, p, x, y, w))
        rows.append(row)
    cand = pd.DataFrame(rows)
    if not fitted:
        raise NoFit(curve, f"no form could be fitted ({dropped} NaN rows dropped): "
                    + "; ".join(f"{r['form']} {r['status']}" for r in rows))
    for c in ("aic", "bic"):
        cand[f"delta_{c}"] = cand[c] - cand[c].min()
    cand = cand[["form", "k", "aic", "bic", "r2", "delta_aic", "delta_bic", "converged", "status"]]

    best = cand.loc[cand[criterion].idxmin()]
    form = FORMS[best.form]
    p, cov = fitted[best.form]
    df = x.size - form.k
    half = _t(level, df) * np.sqrt(np.diag(cov))
    return Fit(curve=curve, form=best.form, formula=form.text(*p),
               params={k: float(v) for k, v in zip(form.params, p)},
               ci={k: (float(v - h), float(v + h)) for k, v, h in zip(form.params, p, half)},
               level=level, r2=float(best.r2), aic=float(best.aic), bic=float(best.bic), n=int(x.size),
               n_dropped=dropped, criterion=criterion, candidates=cand, cov=cov, df_resid=df, model=form)


def _criteria(form: Form, p, x, y, w) -> dict[str, float]:
    with np.errstate(all="ignore"):
        resid = y - form.f(x, *p)
    llf, n = gaussian_llf(resid, w), x.size
    ybar = np.sum(w * y) / np.sum(w)
    return dict(aic=-2 * llf + 2 * form.k, bic=-2 * llf + form.k * np.log(n),
                r2=1 - np.sum(w * resid**2) / np.sum(w * (y - ybar) ** 2))


# --- the paper's curves ------------------------------------------------------------------------

def _columns(df: pd.DataFrame, x: str, y: str, kw: dict):
    missing = [c for c in (x, y) if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the table (have {list(df.columns)})")
    if isinstance(kw.get("weights"), str):
        kw["weights"] = df[kw["weights"]]
    kw.setdefault("name", f"{y} ~ {x}")
    return df[x], df[y], kw


def fit_energy_vs_tokens(df: pd.DataFrame, x: str = "completion_tokens", y: str = "energy_j", **kw) -> Fit:
    """Energy per query (J) vs its output tokens, one row per query (``RunSet.results``).
    Candidates linear, quadratic (attention: per-token cost grows with context), power.
    ``kw`` go to :func:`fit_curve`; ``weights`` may name a column."""
    x_, y_, kw = _columns(df, x, y, kw)
    return fit_curve(x_, y_, **{"forms": ENERGY_FORMS, **kw})


def fit_energy_vs_length(df: pd.DataFrame, x: str = "max_new_tokens", y: str = "energy_per_query_j", **kw) -> Fit:
    """Energy per query (J) vs the maximum output length, one row per run; forms as
    :func:`fit_energy_vs_tokens`."""
    x_, y_, kw = _columns(df, x, y, kw)
    return fit_curve(x_, y_, **{"forms": ENERGY_FORMS, **kw})


def fit_energy_per_token_vs_batch(df: pd.DataFrame, x: str = "batch_size", y: str = "energy_per_token_j",
                                  **kw) -> Fit:
    """Energy per output token (J/token) vs batch size: inverse a + b/x (a fixed cost per step
    shared by the batch), power, log_linear."""
    x_, y_, kw = _columns(df, x, y, kw)
    return fit_curve(x_, y_, **{"forms": PER_TOKEN_FORMS, **kw})


def fit_throughput_vs_batch(df: pd.DataFrame, x: str = "batch_size", y: str = "queries_per_s",
                            saturation: float = 0.9, **kw) -> SaturationFit:
    """Throughput (queries/s) vs batch size: michaelis_menten ymax·x/(k + x) and exp_saturation
    ymax·(1 − exp(−x/k)), with linear and log_linear as baselines; adds the batch size at which
    the winner reaches ``saturation``·ymax (9·k for Michaelis–Menten at 0.9) and its CI.

    >>> b = 2.0 ** np.arange(9)
    >>> qps = 50 * b / (8 + b) * (1 + 0.02 * np.cos(3 * b))
    >>> fit = fit_throughput_vs_batch(pd.DataFrame({"batch_size": b, "queries_per_s": qps}))
    >>> fit.formula, round(fit.saturation_batch, 1)
    ('y = 49.97·x / (7.999 + x)', 72.0)
    >>> fit.summary().split("; ")[-1]
    '90% of ymax is reached at batch 72 (95% CI 67.4–76.6).'
    """
    if not 0 < saturation < 1:
        raise ValueError(f"saturation must be in (0, 1), not {saturation}")
    x_, y_, kw = _columns(df, x, y, kw)
    fit = fit_curve(x_, y_, **{"forms": THROUGHPUT_FORMS, **kw})
    base = {f.name: getattr(fit, f.name) for f in fields(Fit)} | {"x_max": float(np.nanmax(x_))}
    if fit.model.x_at is None:
        return SaturationFit(**base, saturation=saturation)
    xs, grad = fit.model.x_at(saturation, *fit.params.values())
    half = _t(fit.level, fit.df_resid) * float(np.sqrt(grad @ fit.cov @ grad))
    return SaturationFit(**base, saturation=saturation, saturation_batch=float(xs),
                         saturation_ci=(float(xs - half), float(xs + half)))


# --- intervals across repetitions --------------------------------------------------------------

def _sample(values) -> np.ndarray:
    v = np.asarray(values, float).ravel()
    return v[np.isfinite(v)]


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper): Student t interval of the mean; NaN bounds for fewer than 2 values.

    >>> mean_ci([1.0, 2.0, 3.0])
    (2.0, -0.48413771175033..., 4.48413771175033...)
    >>> mean_ci([5.0])
    (5.0, nan, nan)
    """
    v = _sample(values)
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    m = float(v.mean())
    if v.size < 2:
        return (m, np.nan, np.nan)
    half = _t(level, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return (m, float(m - half), float(m + half))


def proportion_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(share, lower, upper): Wilson score interval (statsmodels) of a share from per-item values in
    [0, 1] (1 = correct; a query's accuracy averaged over repetitions may be fractional). Unlike a t
    interval it stays inside [0, 1] and is not degenerate at 0 % or 100 %.

    >>> [round(v, 3) for v in proportion_ci([1, 1, 1, 0, 0])]
    [0.6, 0.231, 0.882]
    >>> [round(v, 3) for v in proportion_ci([0, 0, 0, 0])]
    [0.0, 0.0, 0.49]
    """
    from statsmodels.stats.proportion import proportion_confint

    v = _sample(values)
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = proportion_confint(v.sum(), v.size, alpha=1 - level, method="wilson")
    return (float(v.mean()), float(lo), float(hi))


def ratio_ci(num, den, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(ratio, lower, upper) of mean(num)/mean(den) for two independent samples (e.g. the energy
    of majority voting and of the base strategy over repetitions): percentile bootstrap,
    each sample resampled on its own, with a fixed seed.

    >>> r, lo, hi = ratio_ci([48, 52, 50, 51, 49], [10, 9, 11, 10, 10])
    >>> r, lo < 5 < hi
    (5.0, True)
    """
    a, b = _sample(num), _sample(den)
    r = float(a.mean() / b.mean()) if a.size and b.size else np.nan
    if a.size < 2 or b.size < 2:
        return (r, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    ratios = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(a.size, b.size))   # bounds the index arrays' memory
    for s in range(0, n_boot, chunk):
        m = min(chunk, n_boot - s)
        ratios[s:s + m] = (a[rng.integers(0, a.size, (m, a.size))].mean(1)
                           / b[rng.integers(0, b.size, (m, b.size))].mean(1))
    lo, hi = np.quantile(ratios, [0.5 - level / 2, 0.5 + level / 2])
    return (r, float(lo), float(hi))


def ratio_ci_delta(num, den, level: float = 0.95) -> tuple[float, float, float]:
    """(ratio, lower, upper) of mean(num)/mean(den), independent samples, by the delta method:
    se(R) = |R|·sqrt(s₁²/(n₁ m₁²) + s₂²/(n₂ m₂²)), normal quantile.

    >>> r, lo, hi = ratio_ci_delta([48, 52, 50, 51, 49], [10, 9, 11, 10, 10])
    >>> round(lo, 2), round(hi, 2)
    (4.66, 5.34)
    """
    a, b = _sample(num), _sample(den)
    r = float(a.mean() / b.mean()) if a.size and b.size else np.nan
    if a.size < 2 or b.size < 2:
        return (r, np.nan, np.nan)
    se = abs(r) * np.sqrt(a.var(ddof=1) / (a.size * a.mean() ** 2) + b.var(ddof=1) / (b.size * b.mean() ** 2))
    half = float(stats.norm.ppf(0.5 + level / 2)) * se
    return (r, float(r - half), float(r + half))


def fit_by(df: pd.DataFrame, by, fit=None, label: str = "", **kw) -> dict:
    """One curve per group of ``by`` with ``fit`` (default :func:`fit_energy_vs_length`), named
    ``"<label> [<group>]"``. A group no form can be fitted to (a smoke run with one distinct x)
    maps to an :class:`Unfitted` saying why (:class:`NoFit`) instead of stopping the others;
    bad arguments (a missing column, an unknown form) still raise.

    >>> d = pd.DataFrame({"m": ["a"] * 4 + ["b"] * 2, "max_new_tokens": [1, 2, 3, 4, 5, 5],
    ...                   "energy_per_query_j": [2.0, 4.1, 5.9, 8.0, 1, 1]})
    >>> [f.summary().split(":")[0] + ": " + f.formula for f in fit_by(d, "m", label="E").values()]
    ['E [a]: y = 2.025·x^0.9878', 'E [b]: no fit']
    """
    fit = fit or fit_energy_vs_length
    out = {}
    for key, g in df.groupby(by, sort=False):
        curve = f"{label or fit.__name__} [{' '.join(map(str, key)) if isinstance(key, tuple) else key}]"
        try:
            out[key] = fit(g, name=curve, **kw)
        except NoFit as e:
            out[key] = Unfitted(curve, e.reason)
    return out


def throughput_curves(runs: pd.DataFrame, by: str = "strategy", y: str = "queries_per_s",
                      saturation: float = 0.9, label: str | None = None) -> dict:
    """One :func:`fit_throughput_vs_batch` per value of ``by`` (e.g. per strategy), weighted by
    1/y²: run-to-run noise in throughput grows with throughput (multiplicative). ``label`` names the
    curves (default ``"<y> ~ batch_size"``)."""
    runs = runs.assign(_w=1 / runs[y].to_numpy(float) ** 2)
    return fit_by(runs, by, fit_throughput_vs_batch, label or f"{y} ~ batch_size", y=y, saturation=saturation,
                  weights="_w")
