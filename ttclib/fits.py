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
curve_fit's, scaled by the residual variance, for the nonlinear ones); bands use the delta method.

The saturation batch of a throughput curve depends on which form wins as much as on its
parameters: measured to batch 24 below the bend of a Michaelis–Menten curve whose 90 % point is
at 72, an exponential ceiling wins one time in five (5 % noise) and puts that point near 15, with
a delta-method interval that never covers 72. Its interval is therefore a parametric bootstrap of
the whole procedure — noise drawn around the winning curve, every candidate refitted and the
winner re-chosen by the same criterion in each replicate (:func:`saturation_bootstrap`) — with a
replicate whose winner has no ceiling counting as +inf. A ceiling is *shown*
(:attr:`SaturationFit.ceiling`) only when that interval's upper end lies within twice the largest
batch measured: there a Michaelis–Menten curve already stands at ≥ 82 % of its ceiling, so the
bend is in the data, and the non-saturating alternative (log_linear keeps rising) is among the
forms the replicates re-choose. Requiring the upper end within the largest batch itself would
demand the plateau be measured at 90 %, which a hyperbola reaches only at 9k. Known-answer
simulations (tests/test_fits.py): true 90 % point at batch 72, measured to 24 → a ceiling shown
in 0–1 % of data sets (12–19 % with the delta method); measured to 256 → shown in ~90 %, the
interval covering 72 in ~95 %; linear truth → never.

Ratios of means (:func:`ratio_ci`) take a t interval on the log ratio for independent samples
(repetition means: 96 % at n = 3) and a paired studentized bootstrap for items measured
under both conditions (the same queries).

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
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats

ENERGY_FORMS = ("linear", "quadratic", "power")
THROUGHPUT_FORMS = ("michaelis_menten", "exp_saturation", "linear", "log_linear")
PER_TOKEN_FORMS = ("inverse", "power", "log_linear")
FREQUENCY_FORMS = ("dvfs", "linear", "quadratic")
N_BOOT = 200  # bootstrap refits behind a saturation batch's interval
BEYOND = 10.0  # a refit's saturation batch past BEYOND × the largest batch measured is no ceiling (+inf)


# --- model forms -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """One candidate: ``f(x, *p)``, its Jacobian ``jac(x, *p)`` (n × k) and how to start and print it."""

    name: str
    params: tuple[str, ...]
    f: Callable[..., np.ndarray]
    jac: Callable[..., np.ndarray]
    text: Callable[..., str]  # fitted numbers → "y = …"
    linear: bool  # linear in p: jac(x) is the design matrix
    positive_x: bool = False  # needs x > 0 (logs, 1/x, x^b)
    p0: Callable[[np.ndarray, np.ndarray], list[float]] | None = None
    x_at: Callable[..., tuple[float, np.ndarray]] | None = None  # (q, *p) → x where y = q·ymax, ∂x/∂p
    # Nonlinear forms y = p[0]·shape(x, p[1]): p[0] is profiled out in closed form and p[1] scanned
    # over scan(x) → (grid of t, t → p[1]), which refits many bootstrap replicates at once.
    shape: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    scan: Callable[[np.ndarray], tuple[np.ndarray, Callable]] | None = None

    @property
    def k(self) -> int:
        return len(self.params)


def _g(v: float) -> str:
    return f"{v:.4g}"


def _terms(coefs, suffixes) -> str:
    """'y = 1.2 + 0.034·x - 1e-06·x²' from coefficients and their term suffixes."""
    out = _g(coefs[0]) + suffixes[0]
    for c, s in zip(coefs[1:], suffixes[1:], strict=True):
        out += (" - " if c < 0 else " + ") + _g(abs(c)) + s
    return "y = " + out


def _linear_form(name, params, columns, suffixes, positive_x=False) -> Form:
    def design(x, *_):
        return np.column_stack([c(np.asarray(x, float)) for c in columns])

    return Form(
        name,
        params,
        f=lambda x, *p: design(x) @ np.asarray(p),
        jac=design,
        text=lambda *p: _terms(p, suffixes),
        linear=True,
        positive_x=positive_x,
    )


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


def _scale_scan(x):
    # k of a saturating form, in log space: from far below the smallest x (a step) to far above
    # the largest (a straight line through the origin); 25 points per decade, refined later.
    lo, hi = np.log(np.min(x[x > 0]) / 1e3), np.log(np.max(x) * 1e4)
    return np.linspace(lo, hi, int(25 * (hi - lo) / np.log(10)) + 1), np.exp


FORMS: dict[str, Form] = {
    f.name: f
    for f in [
        _linear_form("linear", ("a", "b"), [np.ones_like, lambda x: x], ["", "·x"]),
        _linear_form("quadratic", ("a", "b", "c"), [np.ones_like, lambda x: x, np.square], ["", "·x", "·x²"]),
        _linear_form("log_linear", ("a", "b"), [np.ones_like, np.log], ["", "·ln x"], positive_x=True),
        _linear_form("inverse", ("a", "b"), [np.ones_like, lambda x: 1 / x], ["", "/x"], positive_x=True),
        _linear_form(
            "dvfs", ("a", "b", "c"), [np.ones_like, lambda x: 1 / x, np.square], ["", "/x", "·x²"], positive_x=True
        ),
        Form(
            "power",
            ("a", "b"),
            f=lambda x, a, b: a * np.power(x, b),
            jac=_power_jac,
            text=lambda a, b: f"y = {_g(a)}·x^{_g(b)}",
            linear=False,
            positive_x=True,
            p0=_power_p0,
            shape=np.power,
            scan=lambda x: (np.linspace(-5, 5, 401), lambda t: t),
        ),
        Form(
            "michaelis_menten",
            ("ymax", "k"),
            f=lambda x, ymax, k: ymax * x / (k + x),
            jac=_mm_jac,
            text=lambda ymax, k: f"y = {_g(ymax)}·x / ({_g(k)} + x)",
            linear=False,
            p0=_mm_p0,
            x_at=lambda q, ymax, k: (k * q / (1 - q), np.array([0.0, q / (1 - q)])),
            shape=lambda x, k: x / (k + x),
            scan=_scale_scan,
        ),
        Form(
            "exp_saturation",
            ("ymax", "k"),
            f=lambda x, ymax, k: ymax * (1 - np.exp(-x / k)),
            jac=_exp_jac,
            text=lambda ymax, k: f"y = {_g(ymax)}·(1 - exp(-x / {_g(k)}))",
            linear=False,
            p0=_exp_p0,
            x_at=lambda q, ymax, k: (-k * np.log1p(-q), np.array([0.0, -np.log1p(-q)])),
            shape=lambda x, k: -np.expm1(-x / k),
            scan=_scale_scan,
        ),
    ]
}
"""Every supported form by name: linear a + b·x, quadratic a + b·x + c·x², log_linear a + b·ln x,
inverse a + b/x (a fixed cost amortised over x), power a·x^b, michaelis_menten ymax·x/(k + x),
exp_saturation ymax·(1 − exp(−x/k)), and dvfs a + b/f + c·f² — energy at clock f: a part no clock
changes (memory-bound time at constant power), static power over compute time that scales as 1/f, and
dynamic energy per unit of work ∝ V², with V rising about linearly with f over the DVFS range."""


# --- the result --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Fit:
    """The winning form of one curve, with every candidate's criteria in ``candidates``."""

    curve: str  # "y_name ~ x_name"
    form: str  # winning form (a key of FORMS)
    formula: str  # the winner with fitted numbers, "y = 1.2 + 0.034·x"
    params: dict[str, float]  # point estimates, in the units of y and x
    ci: dict[str, tuple[float, float]]  # per parameter, at ``level``
    level: float  # confidence level of ``ci`` (0.95)
    r2: float  # 1 − SSR/SST (weighted when weights are given)
    aic: float  # -2 llf + 2k, k = mean parameters (statsmodels)
    bic: float  # -2 llf + k ln n
    n: int  # points used
    n_dropped: int  # rows dropped for NaN/inf in x, y or weights
    criterion: str  # "aic" or "bic": what chose the winner
    candidates: pd.DataFrame  # per form: k, aic, bic, r2, delta_aic, delta_bic, converged, status
    cov: np.ndarray = field(repr=False)  # parameter covariance, in ``params`` order
    df_resid: int = field(repr=False)  # n − k, degrees of freedom of the t intervals
    model: Form = field(repr=False)  # the winning form's functions

    def predict(self, x) -> np.ndarray:
        """Fitted mean of y at ``x``."""
        with np.errstate(all="ignore"):
            return self.model.f(np.asarray(x, float), *self.params.values())

    def predict_ci(self, x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) confidence band of the fitted mean at ``x`` (delta method; exact for
        the linear forms, where it equals statsmodels' mean_ci)."""
        x = np.asarray(x, float)
        j = self.jacobian(x)
        se = np.sqrt(np.einsum("ij,jk,ik->i", j, self.cov, j))
        half = _t(level, self.df_resid) * se
        y = self.predict(x)
        return y - half, y + half

    def jacobian(self, x) -> np.ndarray:
        """∂(fitted mean)/∂(parameters) at ``x``, one row per x: what the delta-method bands propagate."""
        with np.errstate(all="ignore"):
            return np.atleast_2d(self.model.jac(np.asarray(x, float), *self.params.values()))

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
    """A throughput fit with the batch size at which the curve reaches a share of its ceiling, and
    an interval for it that carries the choice of form: a parametric bootstrap of the whole
    select-then-fit procedure (:func:`saturation_bootstrap`). A replicate whose winning form has no
    ceiling, or puts it past ``BEYOND`` × the largest batch, counts as +inf."""

    saturation: float = 0.9  # share of ymax that defines saturation
    saturation_batch: float = np.nan  # x where the winner reaches saturation·ymax; NaN if it has no ceiling
    saturation_ci: tuple[float, float] = (np.nan, np.nan)  # at ``level``, form re-selected per replicate; hi may be inf
    saturation_ci_form: tuple[float, float] = (
        np.nan,
        np.nan,
    )  # delta method, given the winning form (ignores selection)
    ceiling_share: float = np.nan  # share of bootstrap replicates whose winner has a ceiling within BEYOND × x_max
    n_boot: int = 0  # bootstrap replicates behind saturation_ci
    x_max: float = np.nan  # the largest batch size measured
    ceiling_within: float = 2.0  # a ceiling is shown when saturation_ci's upper end ≤ this × x_max

    @property
    def ceiling(self) -> float:
        """``saturation_batch`` when the data show a ceiling: the winner has one and the upper end of
        ``saturation_ci`` lies within ``ceiling_within`` × the largest batch; NaN (no ceiling in the
        measured range) otherwise."""
        shown = self.saturation_batch > 0 and self.saturation_ci[1] <= self.ceiling_within * self.x_max
        return self.saturation_batch if shown else np.nan

    def summary(self) -> str:
        head = super().summary()[:-1]
        lo, hi = self.saturation_ci
        refits = f"{self.level:.0%} CI {lo:.3g}–{hi:.3g}, form re-selected in {self.n_boot} refits"
        if np.isnan(self.saturation_batch):
            return (
                head + f"; the {self.form} form has no ceiling, so no saturation batch "
                f"({self.ceiling_share:.0%} of {self.n_boot} refits put one within {BEYOND:g}× the largest batch)."
            )
        if self.ceiling == self.ceiling:
            return head + f"; {self.saturation:.0%} of ymax is reached at batch {self.saturation_batch:.3g} ({refits})."
        return (
            head + f"; {self.saturation:.0%} of ymax at batch {self.saturation_batch:.3g} ({refits}) reaches "
            f"past {self.ceiling_within:g}× the largest batch measured ({self.x_max:g}): "
            "no ceiling in the measured range."
        )


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
    return float(_llf(np.sum(w * r**2), w))


def _llf(ssr_w, w):
    """:func:`gaussian_llf` from the weighted SSR (an array of them: one per bootstrap replicate)."""
    n = w.size
    return -n / 2 * (np.log(2 * np.pi) + np.log(ssr_w / n) + 1) + 0.5 * np.sum(np.log(w))


def _ic(llf, k: int, n: int, criterion: str):
    return -2 * llf + (2 * k if criterion == "aic" else k * np.log(n))


def _fit_form(form: Form, x, y, w) -> tuple[np.ndarray, np.ndarray]:
    """Point estimates and covariance; raises RuntimeError when the fit is not usable."""
    if form.linear:
        X = form.jac(x)
        if np.linalg.matrix_rank(X) < form.k:
            raise RuntimeError("design matrix rank-deficient")
        res = sm.WLS(y, X, weights=w).fit()
        return np.asarray(res.params), np.asarray(res.cov_params())
    assert form.p0 is not None  # every nonlinear form has a starting point
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # curve_fit only warns when the covariance cannot be estimated; such a fit must not win.
        warnings.simplefilter("error", optimize.OptimizeWarning)
        try:
            p, cov = optimize.curve_fit(
                form.f, x, y, p0=form.p0(x, y), sigma=1 / np.sqrt(w), absolute_sigma=False, jac=form.jac, maxfev=5000
            )
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
        return (
            f"skipped: {x.size} points ({np.unique(x).size} distinct x) are too few for {form.k} parameters "
            f"(needs {form.k + 1} points, {form.k} distinct x)"
        )
    return None


def fit_curve(
    x, y, forms=ENERGY_FORMS, criterion: str = "bic", weights=None, name: str = "", level: float = 0.95
) -> Fit:
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
        raise NoFit(
            curve,
            f"no form could be fitted ({dropped} NaN rows dropped): "
            + "; ".join(f"{r['form']} {r['status']}" for r in rows),
        )
    for c in ("aic", "bic"):
        cand[f"delta_{c}"] = cand[c] - cand[c].min()
    cand = cand[["form", "k", "aic", "bic", "r2", "delta_aic", "delta_bic", "converged", "status"]]

    best = cand.loc[cand[criterion].idxmin()]
    form = FORMS[best.form]
    p, cov = fitted[best.form]
    df = x.size - form.k
    half = _t(level, df) * np.sqrt(np.diag(cov))
    return Fit(
        curve=curve,
        form=best.form,
        formula=form.text(*p),
        params={k: float(v) for k, v in zip(form.params, p, strict=True)},
        ci={k: (float(v - h), float(v + h)) for k, v, h in zip(form.params, p, half, strict=True)},
        level=level,
        r2=float(best.r2),
        aic=float(best.aic),
        bic=float(best.bic),
        n=int(x.size),
        n_dropped=dropped,
        criterion=criterion,
        candidates=cand,
        cov=cov,
        df_resid=df,
        model=form,
    )


def _criteria(form: Form, p, x, y, w) -> dict[str, float]:
    with np.errstate(all="ignore"):
        resid = y - form.f(x, *p)
    llf, n = gaussian_llf(resid, w), x.size
    ybar = np.sum(w * y) / np.sum(w)
    return dict(
        aic=_ic(llf, form.k, n, "aic"),
        bic=_ic(llf, form.k, n, "bic"),
        r2=1 - np.sum(w * resid**2) / np.sum(w * (y - ybar) ** 2),
    )


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


def fit_energy_vs_input(df: pd.DataFrame, x: str = "prompt_tokens", y: str = "energy_j", **kw) -> Fit:
    """Energy per query (J) vs its input tokens, one row per query of runs that generate one token
    (Wilhelm et al. [001], Figure 2): prefill cost as a function of prompt length. Forms as
    :func:`fit_energy_vs_tokens`; the quadratic term is attention's cost growing with context."""
    x_, y_, kw = _columns(df, x, y, kw)
    return fit_curve(x_, y_, **{"forms": ENERGY_FORMS, **kw})


def fit_energy_per_token_vs_batch(df: pd.DataFrame, x: str = "batch_size", y: str = "energy_per_token_j", **kw) -> Fit:
    """Energy per output token (J/token) vs batch size: inverse a + b/x (a fixed cost per step
    shared by the batch), power, log_linear."""
    x_, y_, kw = _columns(df, x, y, kw)
    return fit_curve(x_, y_, **{"forms": PER_TOKEN_FORMS, **kw})


def fit_throughput_vs_batch(
    df: pd.DataFrame,
    x: str = "batch_size",
    y: str = "queries_per_s",
    saturation: float = 0.9,
    n_boot: int = N_BOOT,
    seed: int = 0,
    ceiling_within: float = 2.0,
    **kw,
) -> SaturationFit:
    """Throughput (queries/s) vs batch size: michaelis_menten ymax·x/(k + x) and exp_saturation
    ymax·(1 − exp(−x/k)), with linear and log_linear as baselines; adds the batch size at which
    the winner reaches ``saturation``·ymax (9·k for Michaelis–Menten at 0.9), its CI with the
    choice of form re-made in ``n_boot`` bootstrap refits (:func:`saturation_bootstrap`, fixed
    ``seed``), and whether that shows a ceiling within ``ceiling_within`` × the largest batch
    (:attr:`SaturationFit.ceiling`).

    >>> b = 2.0 ** np.arange(9)
    >>> qps = 50 * b / (8 + b) * (1 + 0.02 * np.cos(3 * b))
    >>> fit = fit_throughput_vs_batch(pd.DataFrame({"batch_size": b, "queries_per_s": qps}))
    >>> fit.formula, round(fit.saturation_batch, 1), round(fit.ceiling, 1)
    ('y = 49.97·x / (7.999 + x)', 72.0, 72.0)
    >>> fit.summary().split("; ")[-1]
    '90% of ymax is reached at batch 72 (95% CI 68–76.3, form re-selected in 200 refits).'

    Measured only up to batch 16, the same curve shows no ceiling: Michaelis–Menten still wins,
    but the interval reaches past twice the largest batch.

    >>> fit = fit_throughput_vs_batch(pd.DataFrame({"batch_size": b[:5], "queries_per_s": qps[:5]}))
    >>> fit.form, round(fit.saturation_batch, 1), fit.ceiling
    ('michaelis_menten', 67.2, nan)
    >>> fit.summary().split("; ")[-1]  # doctest: +NORMALIZE_WHITESPACE
    '90% of ymax at batch 67.2 (95% CI 13.9–71.8, form re-selected in 200 refits) reaches past 2× the largest
    batch measured (16): no ceiling in the measured range.'
    """
    if not 0 < saturation < 1:
        raise ValueError(f"saturation must be in (0, 1), not {saturation}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")
    x_, y_, kw = _columns(df, x, y, kw)
    fit = fit_curve(x_, y_, **{"forms": THROUGHPUT_FORMS, **kw})
    xs, ys, ws, _ = _clean(x_, y_, kw.get("weights"), fit.curve)
    base: dict[str, Any] = {f.name: getattr(fit, f.name) for f in fields(Fit)} | {
        "x_max": float(np.max(xs)),
        "ceiling_within": ceiling_within,
    }
    sats = saturation_bootstrap(fit, xs, ys, ws, saturation, n_boot, seed)
    q = np.quantile(sats, [0.5 - fit.level / 2, 0.5 + fit.level / 2], method="inverted_cdf")
    boot: dict[str, Any] = dict(
        saturation=saturation,
        saturation_ci=(float(q[0]), float(q[1])),
        ceiling_share=float(np.isfinite(sats).mean()),
        n_boot=n_boot,
    )
    if fit.model.x_at is None:
        return SaturationFit(**base, **boot)
    xsat, grad = fit.model.x_at(saturation, *fit.params.values())
    half = _t(fit.level, fit.df_resid) * float(np.sqrt(grad @ fit.cov @ grad))
    return SaturationFit(
        **base, **boot, saturation_batch=float(xsat), saturation_ci_form=(float(xsat - half), float(xsat + half))
    )


# --- saturation with the choice of form re-made (parametric bootstrap) ------------------------


def saturation_bootstrap(
    fit: Fit, x, y, weights=None, saturation: float = 0.9, n_boot: int = N_BOOT, seed: int = 0
) -> np.ndarray:
    """Saturation batch of each of ``n_boot`` parametric bootstrap replicates of ``fit`` (fitted to
    x, y, weights), with the form chosen anew among ``fit``'s converged candidates by its criterion
    in every replicate; +inf where the chosen form has no ceiling or puts it past ``BEYOND`` × max x.

    Replicates are the winning curve plus Gaussian noise with the fit's weights, y* = f(x) + σ*·z/√w,
    where σ*² = σ̂²·df/χ²_df is drawn anew per replicate: with σ̂ plugged in, the n − k = 3…7
    degrees of freedom of these curves make the intervals too narrow (90 % coverage at nominal
    95 % on Michaelis–Menten data, 5 % noise); with the draw, a linear model's replicates reproduce
    its t interval. Refitting without the choice of form (the delta method of ``saturation_ci_form``)
    cannot see that an exponential ceiling fitted to a curve measured below its bend is one choice
    among near-equals.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    rng = np.random.default_rng(seed)
    mu = fit.predict(x)
    sd = np.sqrt(np.sum(w * (y - mu) ** 2) / rng.chisquare(fit.df_resid, n_boot))  # σ̂²·df/χ²_df, σ̂² = SSR_w/df
    Y = mu + sd[:, None] * rng.standard_normal((n_boot, x.size)) / np.sqrt(w)
    names = fit.candidates.form[fit.candidates.converged].tolist()
    crit, sats = np.empty((len(names), n_boot)), np.full((len(names), n_boot), np.inf)
    for i, name in enumerate(names):
        form = FORMS[name]
        ssr, theta = _refit_many(form, x, Y, w)
        crit[i] = _ic(_llf(ssr, w), form.k, x.size, fit.criterion)
        if form.x_at is not None:
            sats[i] = form.x_at(saturation, 1.0, theta)[0]
    with np.errstate(invalid="ignore"):
        crit = np.where(np.isnan(crit), np.inf, crit)
        chosen = sats[np.argmin(crit, axis=0), np.arange(n_boot)]
        return np.where((chosen > 0) & (chosen <= BEYOND * np.max(x)), chosen, np.inf)


def _refit_many(form: Form, x, Y, w) -> tuple[np.ndarray, np.ndarray | None]:
    """Weighted SSR of ``form`` least-squares fitted to every row of Y (replicates × points) and,
    for a nonlinear form, its p[1] per row. Linear forms: one WLS solve for all rows. y = a·shape(x, θ):
    a in closed form for every θ of the form's grid, then the best θ refined four times tenfold
    (θ to ~1e-5 relative, the optimum curve_fit finds), vectorised over replicates."""
    if form.linear:
        X = form.jac(x)
        xtw = X.T * w
        beta = np.linalg.solve(xtw @ X, xtw @ Y.T)
        return np.sum(w * (Y - (X @ beta).T) ** 2, axis=1), None
    assert form.scan is not None  # every nonlinear form has a scan grid
    grid, to_theta = form.scan(x)
    t, step, rows = np.broadcast_to(grid, (len(Y), grid.size)), grid[1] - grid[0], np.arange(len(Y))
    for _ in range(5):
        ssr = _profiled_ssr(form, x, Y, w, to_theta(t))
        centre = t[rows, np.argmin(ssr, axis=1)]
        t, step = centre[:, None] + np.linspace(-step, step, 21), step / 10
    theta = to_theta(centre)
    # the SSR at the optimum from the residuals themselves: Σwy² − (Σwgy)²/Σwg² cancels badly when the fit is close
    return _profiled_ssr(form, x, Y, w, theta[:, None], direct=True)[:, 0], theta


def _profiled_ssr(form: Form, x, Y, w, theta, direct: bool = False) -> np.ndarray:
    """Weighted SSR (rows × θ) of y = a·shape(x, θ) with a at its least-squares value for each θ."""
    assert form.shape is not None  # only nonlinear forms (which all have a shape) are profiled
    with np.errstate(all="ignore"):
        g = form.shape(x, theta[..., None])  # rows × θ × points
        gw = g * w
        num, den = np.einsum("rkn,rn->rk", gw, Y), np.sum(gw * g, axis=-1)
        if direct:
            ssr = np.sum(w * (Y[:, None, :] - (num / den)[..., None] * g) ** 2, axis=-1)
        else:
            ssr = np.sum(w * Y**2, axis=1)[:, None] - num**2 / den
    return np.where(np.isfinite(ssr), ssr, np.inf)


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


def ratio_ci(
    num, den, level: float = 0.95, paired: bool = False, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(ratio, lower, upper) of mean(num)/mean(den), for positive quantities (energy, power, throughput).

    Independent samples (``paired=False``; e.g. the energy per query of each repetition of two
    strategies, n = 3 or 10 per side): a t interval on the log ratio, se² = s₁²/(n₁m₁²) + s₂²/(n₂m₂²)
    (the delta method on the log scale) with Welch–Satterthwaite degrees of freedom. At n = 3 the
    percentile bootstrap of two independent samples covered 80 % and the delta method on the ratio
    scale 87 % (``ratio_ci_delta``); this one covers 96 % (94–97 % at n = 2…10; tests/test_fits.py).

    Paired items (``paired=True``; e.g. two strategies' energies on the same queries, one
    repetition): ``num`` and ``den`` must be aligned and of equal length; pairs with a NaN are
    dropped. Query indices are resampled jointly (``n_boot`` times, fixed ``seed``) in a symmetric
    studentized bootstrap of the log ratio, se from the paired delta method, sd(aᵢ/ā − bᵢ/b̄)/√n.
    Per-query energies are skewed (queries differ tenfold in length), and a t interval (delta
    method or Fieller) or a BCa bootstrap under-covers at n = 15 (91–94 % and 87–89 %); studentizing
    corrects the skew (96 % at n = 15, 95 % at 50). Resampling the two sides independently ignores
    the pairing and is about twice too wide.
    With heavy tails (lognormal σ = 1, n = 12/36) it is still the
    closest to nominal (87 %/91 %, against 77–87 % for percentile and BCa) but now and then very
    wide: a resample without the outlier has a small se and a large shift. Such an interval is the
    data saying that n is too small, not a numerical failure, so it is reported as it is.

    NaN bounds when a side has fewer than two values or a mean that is not positive.

    >>> r, lo, hi = ratio_ci([48, 52, 50, 51, 49], [10, 9, 11, 10, 10])
    >>> r, round(lo, 2), round(hi, 2)
    (5.0, 4.59, 5.45)

    The same queries under two strategies: paired, and far narrower than if they were independent.

    >>> num, den = [4.1, 8.3, 2.2, 16.5, 6.0], [1.0, 2.0, 0.5, 4.2, 1.4]
    >>> [round(v, 2) for v in ratio_ci(num, den, paired=True)], [round(v, 2) for v in ratio_ci(num, den)]
    ([4.08, 3.72, 4.47], [4.08, 1.33, 12.54])
    """
    if paired:
        return _paired_ratio_ci(num, den, level, n_boot, seed)
    a, b = _sample(num), _sample(den)
    r = float(a.mean() / b.mean()) if a.size and b.size else np.nan
    if a.size < 2 or b.size < 2 or not (a.mean() > 0 and b.mean() > 0):
        return (r, np.nan, np.nan)
    va, vb = a.var(ddof=1) / (a.size * a.mean() ** 2), b.var(ddof=1) / (b.size * b.mean() ** 2)
    if va + vb == 0:
        return (r, r, r)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = _t(level, df) * np.sqrt(va + vb)
    return (r, float(r * np.exp(-half)), float(r * np.exp(half)))


def _log_ratio(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(mean a / mean b) and its paired delta-method se, along the last axis."""
    ma, mb = a.mean(-1), b.mean(-1)
    z = a / ma[..., None] - b / mb[..., None]
    return np.log(ma / mb), z.std(-1, ddof=1) / np.sqrt(a.shape[-1])


def _paired_ratio_ci(num, den, level: float, n_boot: int, seed: int) -> tuple[float, float, float]:
    a, b = np.asarray(num, float).ravel(), np.asarray(den, float).ravel()
    if a.size != b.size:
        raise ValueError(f"paired=True needs num and den aligned item by item; got {a.size} and {b.size} values")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    r = float(a.mean() / b.mean()) if a.size else np.nan
    if a.size < 2 or not (a.mean() > 0 and b.mean() > 0):
        return (r, np.nan, np.nan)
    log_r, se = _log_ratio(a, b)
    if se == 0:
        return (r, r, r)
    rng = np.random.default_rng(seed)
    t = np.empty(n_boot)
    chunk = max(1, 2_000_000 // a.size)  # bounds the index arrays' memory
    with np.errstate(all="ignore"):
        for s in range(0, n_boot, chunk):
            idx = rng.integers(0, a.size, (min(chunk, n_boot - s), a.size))
            log_rb, se_b = _log_ratio(a[idx], b[idx])
            t[s : s + len(idx)] = np.abs(log_rb - log_r) / se_b  # 0/0 (a resample of one item) → NaN
    t = np.where(np.isnan(t), np.inf, t)  # a degenerate resample widens, never narrows
    half = float(np.quantile(t, level, method="inverted_cdf")) * se
    return (r, float(r * np.exp(-half)), float(r * np.exp(half)))


def log_ratio_se(num, den) -> float:
    """The paired delta-method standard error of log(mean num / mean den): sd(aᵢ/ā − bᵢ/b̄)/√n."""
    a, b = np.asarray(num, float).ravel(), np.asarray(den, float).ravel()
    return float(_log_ratio(a, b)[1]) if a.size > 1 else np.nan


def paired_ratio_t(num, den, level: float = 0.95) -> tuple[float, float, float]:
    """(ratio, lower, upper) of mean(num)/mean(den) for a few paired items (2-9 batches of a run): a t
    interval on the log ratio, se from the paired delta method, n − 1 degrees of freedom. With so few
    items a bootstrap has too few distinct resamples (three items: ten) and its studentized form
    degenerates; this one is wide, as it should be (t = 4.3 at n = 3), and covers close to nominal
    (tests/test_fits.py). NaN bounds below two items or without positive means.

    >>> [round(v, 3) for v in paired_ratio_t([4.0, 5.0, 6.0], [8.0, 9.0, 13.0])]
    [0.5, 0.39, 0.641]
    """
    a, b = np.asarray(num, float).ravel(), np.asarray(den, float).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    r = float(a.mean() / b.mean()) if a.size and b.mean() != 0 else np.nan
    if a.size < 2 or not (a.mean() > 0 and b.mean() > 0):
        return (r, np.nan, np.nan)
    half = _t(level, a.size - 1) * log_ratio_se(a, b)
    return (r, float(r * np.exp(-half)), float(r * np.exp(half)))


def ratio_ci_delta(num, den, level: float = 0.95) -> tuple[float, float, float]:
    """(ratio, lower, upper) of mean(num)/mean(den), independent samples, by the delta method:
    se(R) = |R|·sqrt(s₁²/(n₁ m₁²) + s₂²/(n₂ m₂²)), normal quantile. Kept for comparison: it
    under-covers with few values (87 % at nominal 95 % with n = 3); use :func:`ratio_ci`.

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


def throughput_curves(
    runs: pd.DataFrame,
    by: str = "strategy",
    y: str = "queries_per_s",
    saturation: float = 0.9,
    label: str | None = None,
    **kw,
) -> dict:
    """One :func:`fit_throughput_vs_batch` per value of ``by`` (e.g. per strategy), weighted by
    1/y²: run-to-run noise in throughput grows with throughput (multiplicative). ``label`` names the
    curves (default ``"<y> ~ batch_size"``); ``kw`` (n_boot, seed, ceiling_within) go to the fit."""
    runs = runs.assign(_w=1 / runs[y].to_numpy(float) ** 2)
    return fit_by(
        runs, by, fit_throughput_vs_batch, label or f"{y} ~ batch_size", y=y, saturation=saturation, weights="_w", **kw
    )


# --- operating curves as an energy estimator (Wilhelm et al. [001], §4 and §5) ---------------------------


@dataclass(frozen=True)
class Estimate:
    """Predicted energy per query (J) with its confidence band (the fitted mean's, not a single query's)."""

    energy_j: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float


@dataclass(frozen=True)
class OperatingCurve:
    """One model's operating curves: energy per query vs input tokens (one output token) and vs
    output tokens (at a fixed input of ``input_at`` tokens). Together they estimate a query of any
    shape as prefill plus decode::

        E(in, out) = E_in(in) + E_out(out) − E_out(1)

    The output curve's own prefill (its value at one token) is taken off so that only the decode
    increment is added; this assumes decoding costs the same after a longer prompt, which holds
    while attention is a small part of each step (short contexts; the input curve's quadratic term
    says how small). The band adds the two fits' delta-method variances (independent data) and
    uses the smaller of their residual degrees of freedom.

    >>> x = np.repeat([16.0, 64, 256, 1024], 5)
    >>> rng = np.random.default_rng(0)
    >>> e_in = fit_energy_vs_input(
    ...     pd.DataFrame({"prompt_tokens": x, "energy_j": 2 + 0.01 * x + rng.normal(0, .05, x.size)}))
    >>> o = np.repeat([1.0, 16, 64, 128], 5)
    >>> e_out = fit_energy_vs_tokens(
    ...     pd.DataFrame({"completion_tokens": o, "energy_j": 2.6 + 0.2 * o + rng.normal(0, .05, o.size)}))
    >>> curve = OperatingCurve("m", e_in, e_out, input_at=64)
    >>> round(float(curve.predict(512, 101).energy_j[0]), 1)        # 2 + 5.12 + 0.2 * 100
    27.1
    >>> curve.tokens_within(22.0, input_tokens=64)                  # 2.64 + 0.2 * (out - 1) <= 22
    97
    """

    model: str
    input: Fit
    output: Fit
    input_at: float

    def predict(self, input_tokens, output_tokens, level: float = 0.95) -> Estimate:
        x_in, x_out = np.atleast_1d(np.asarray(input_tokens, float)), np.atleast_1d(np.asarray(output_tokens, float))
        x_in, x_out = np.broadcast_arrays(x_in, x_out)
        one = np.ones_like(x_out)
        mean = self.input.predict(x_in) + self.output.predict(x_out) - self.output.predict(one)
        j_in = self.input.jacobian(x_in)
        j_out = self.output.jacobian(x_out) - self.output.jacobian(one)
        var = np.einsum("ij,jk,ik->i", j_in, self.input.cov, j_in) + np.einsum(
            "ij,jk,ik->i", j_out, self.output.cov, j_out
        )
        half = _t(level, min(self.input.df_resid, self.output.df_resid)) * np.sqrt(var)
        return Estimate(mean, mean - half, mean + half, level)

    def tokens_within(self, energy_j: float, input_tokens: float, most: int = 1 << 17) -> int:
        """The largest number of output tokens whose predicted energy per query stays within
        ``energy_j`` after a prompt of ``input_tokens`` (a token budget from the curves); 0 when
        even one token costs more, ``most`` when the budget is never reached below it."""
        cost = lambda out: float(self.predict(input_tokens, out).energy_j[0])  # noqa: E731
        if cost(1) > energy_j:
            return 0
        lo, hi = 1, 2
        while hi < most and cost(hi) <= energy_j:
            lo, hi = hi, min(2 * hi, most)
        if cost(hi) <= energy_j:
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if cost(mid) <= energy_j else (lo, mid)
        return lo


class EnergyEstimator:
    """Energy per query of any model from its :class:`OperatingCurve` (Wilhelm et al. [001]'s energy estimator):
    ``predict(model, input_tokens, output_tokens)`` with an interval, and token budgets.

    Built from per-query results (:attr:`RunSet.results`) by :meth:`from_results`: the input sweep is
    every query of a run that generates exactly one token (``max_new_tokens == 1``), the output
    sweep every query of a fixed-length run (``ignore_eos``), whose prompts share one length
    (``input_tokens``). Per-query energies are a query's own only at batch size 1 (the paper's
    setting); batched runs split a batch's energy, so their rows are refused."""

    def __init__(self, curves: dict[str, OperatingCurve]):
        self.curves = curves

    @classmethod
    def from_results(cls, results: pd.DataFrame, criterion: str = "bic", level: float = 0.95) -> EnergyEstimator:
        batched = results[results.batch_size > 1]
        if len(batched):
            raise ValueError(
                f"operating curves need batch size 1 (a query's own energy); runs "
                f"{sorted(batched.run_id.unique())} have batch sizes {sorted(map(int, batched.batch_size.unique()))}"
            )
        curves = {}
        for model, g in results.groupby("model", sort=False):
            inputs, outputs = g[g.max_new_tokens == 1], g[g.ignore_eos.astype(bool) & (g.max_new_tokens > 1)]
            if inputs.empty or outputs.empty:
                continue
            at = outputs.prompt_tokens.median()
            curves[model] = OperatingCurve(
                model,
                fit_energy_vs_input(
                    inputs, criterion=criterion, level=level, name=f"energy/query ~ input tokens [{model}]"
                ),
                fit_energy_vs_tokens(
                    pd.concat([outputs, inputs[inputs.prompt_tokens == at]]),
                    criterion=criterion,
                    level=level,
                    name=f"energy/query ~ output tokens [{model}]",
                ),
                input_at=float(at),
            )
        if not curves:
            raise ValueError("no model has both an input sweep (max_new_tokens 1) and an output sweep (ignore_eos)")
        return cls(curves)

    def predict(self, model: str, input_tokens, output_tokens, level: float = 0.95) -> Estimate:
        if model not in self.curves:
            raise KeyError(f"no operating curves for model {model!r} (have {sorted(self.curves)})")
        return self.curves[model].predict(input_tokens, output_tokens, level)

    def at(self, shapes, level: float = 0.95) -> pd.DataFrame:
        """Predicted energy per query of every model at each (input tokens, output tokens) in ``shapes``,
        with its band: columns model, input_tokens, output_tokens, energy_j, energy_j_lo, energy_j_hi."""
        rows = []
        for model in self.curves:
            for n_in, n_out in shapes:
                e = self.predict(model, n_in, n_out, level)
                rows.append(
                    {
                        "model": model,
                        "input_tokens": n_in,
                        "output_tokens": n_out,
                        "energy_j": e.energy_j[0],
                        "energy_j_lo": e.lo[0],
                        "energy_j_hi": e.hi[0],
                    }
                )
        return pd.DataFrame(rows)
