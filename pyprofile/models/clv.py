"""Customer lifetime value: BG/NBD purchase model and Gamma-Gamma spend model.

Both are fitted by maximum likelihood on the lifetimes-style summary columns
(``frequency`` = repeat purchases, ``recency`` = time from first to last purchase,
``T`` = time from first purchase to the observation date, ``monetary_value`` = mean
value of the repeat purchases), with the same likelihoods as the ``lifetimes`` package
(Fader, Hardie & Lee 2005; Fader & Hardie 2013), computed stably with ``gammaln`` and
log-sum-exp and optimised over log-parameters with analytic gradients.

The same formulas are rendered as SQL scoring functions by
:mod:`pyprofile.warehouse.scoring_sql`, giving the same numbers as these methods.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from pyprofile.errors import InputError
from pyprofile.models.base import Estimator

__all__ = ["BGNBD", "GammaGamma", "clv"]

# exp() arguments are capped here in Python and in SQL alike (exp(700) ~ 1e304, no overflow).
EXP_CAP = 700.0
# Series terms: enough that z**N < e**-40 for the hypergeometric series (see _n_terms).
SERIES_LOG_EPS = 40.0
SERIES_MAX_TERMS = 100_000


# ---------------------------------------------------------------------------- helpers
def _as_float(name: str, values: Any) -> np.ndarray:
    """Any 1-d array-like (numpy, pandas, Arrow) as float64; nulls become NaN."""
    if hasattr(values, "to_numpy") and not hasattr(values, "dtype"):  # pyarrow (Chunked)Array
        values = values.to_numpy(zero_copy_only=False)
    if hasattr(values, "to_numpy"):  # pandas Series (nullable dtypes included)
        values = values.to_numpy(dtype=float, na_value=np.nan)
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"column {name} must be numeric: {exc}") from exc
    return np.atleast_1d(arr).reshape(-1)


def _check_lengths(**cols: np.ndarray) -> int:
    sizes = {k: v.shape[0] for k, v in cols.items()}
    if len(set(sizes.values())) != 1:
        raise InputError(f"columns have different lengths: {sizes}")
    return next(iter(sizes.values()))


def _validate_summary(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    n = _check_lengths(frequency=frequency, recency=recency, T=T)
    for name, arr in (("frequency", frequency), ("recency", recency), ("T", T)):
        bad = int(np.sum(~np.isfinite(arr)))
        if bad:
            raise InputError(f"column {name} has {bad} null or non-finite value(s) in {n} rows")
        neg = int(np.sum(arr < 0))
        if neg:
            raise InputError(f"column {name} has {neg} negative value(s) in {n} rows")
    frac = int(np.sum(frequency != np.round(frequency)))
    if frac:
        raise InputError(
            f"column frequency must count repeat purchases: {frac} non-integer value(s)"
        )
    late = int(np.sum(recency > T * (1 + 1e-12) + 1e-12))
    if late:
        raise InputError(
            f"{late} of {n} rows have recency > T (last purchase after the as-of date)"
        )


def _minimize(fun, x0_list: Sequence[np.ndarray], tol: float, max_iter: int):
    """L-BFGS-B from several starts; keep the best converged optimum.

    BLAS is held to one thread: the problem is tiny and threaded BLAS only spins (10x slower
    on a busy two-core machine).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _minimize_starts(fun, x0_list, tol, max_iter)


def _minimize_starts(fun, x0_list: Sequence[np.ndarray], tol: float, max_iter: int):
    best = None
    for x0 in x0_list:
        res = minimize(
            fun,
            np.asarray(x0, dtype=float),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-20.0, 20.0)] * len(x0),
            options={"maxiter": max_iter, "ftol": tol * 1e-5, "gtol": tol},
        )
        if (
            np.all(np.isfinite(res.x))
            and np.isfinite(res.fun)
            and (best is None or res.fun < best.fun)
        ):
            best = res
    return best


class _Fitted(Estimator):
    """Shared by the two models: parameters, fitted check, pickle-free persistence.

    ``penalizer`` adds an L2 penalty as lifetimes does; ``tol`` and ``max_iter`` steer L-BFGS-B.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    fitted_attribute: ClassVar[str] = "params_"
    _extra_state: ClassVar[tuple[str, ...]] = ()
    params_: dict[str, float]

    def __init__(self, *, penalizer: float = 0.0, tol: float = 1e-9, max_iter: int = 2000):
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        state = {
            k: getattr(self, k)
            for k in ("log_likelihood_", "converged_", "n_customers_", *self._extra_state)
            if hasattr(self, k)
        }
        return {"params": np.array([self.params_[k] for k in self.param_names])}, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.params_ = dict(
            zip(self.param_names, (float(v) for v in arrays["params"]), strict=True)
        )
        for key, value in state.items():
            setattr(self, key, value)


# ---------------------------------------------------------------------------- BG/NBD
class BGNBD(_Fitted):
    """Beta-geometric / negative binomial model of repeat purchases (Fader, Hardie & Lee 2005).

    Purchases of an active customer follow a Poisson process with rate
    ``lambda ~ Gamma(r, alpha)``; after each purchase the customer drops out with
    probability ``p ~ Beta(a, b)``. ``fit(frequency, recency, T)`` finds ``r, alpha, a, b``
    by maximum likelihood; ``recency`` and ``T`` are in one time unit (days in pyprofile).

    >>> bg = BGNBD().fit(df["frequency"], df["recency"], df["T"])
    >>> bg.p_alive(df["frequency"], df["recency"], df["T"])
    """

    param_names = ("r", "alpha", "a", "b")
    artifact_format = "pyprofile.bgnbd/1"
    _extra_state = ("n_repeat_customers_",)

    # ------------------------------------------------------------------ likelihood
    @staticmethod
    def _loglik_terms(theta, x, tx, T):
        r, alpha, a, b = np.exp(theta)
        rep = x > 0
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        A2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        A3 = -(r + x) * np.log(alpha + T)
        # only repeat customers can have dropped out after their last purchase
        A4 = np.where(
            rep,
            np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + tx),
            -np.inf,
        )
        m = np.maximum(A3, A4)
        e3, e4 = np.exp(A3 - m), np.exp(A4 - m)
        ll = A1 + A2 + m + np.log(e3 + e4)
        return ll, e3 / (e3 + e4), e4 / (e3 + e4), (r, alpha, a, b)

    @classmethod
    def _neg_ll(cls, theta, x, tx, T, penalizer):
        ll, w3, w4, (r, alpha, a, b) = cls._loglik_terms(theta, x, tx, T)
        n = x.shape[0]
        bxm1 = b + np.maximum(x, 1.0) - 1.0
        d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T)
        d_r -= w4 * np.log(alpha + tx)
        d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + tx)
        d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
        d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / bxm1
        params = np.array([r, alpha, a, b])
        grad = np.array([d_r.sum(), d_alpha.sum(), d_a.sum(), d_b.sum()]) * params
        value = -ll.sum() / n + penalizer * np.sum(params**2)
        return value, -grad / n + 2.0 * penalizer * params**2

    def fit(self, frequency, recency, T) -> BGNBD:
        """Fit ``r, alpha, a, b`` by maximum likelihood; returns ``self``."""
        x, tx, T = (
            _as_float(n, v) for n, v in (("frequency", frequency), ("recency", recency), ("T", T))
        )
        _validate_summary(x, tx, T)
        n = x.shape[0]
        if n < 2:
            raise InputError(f"BG/NBD needs at least 2 customers to fit; got {n}")
        n_rep = int(np.sum(x > 0))
        if n_rep == 0:
            raise InputError(
                f"BG/NBD needs repeat customers: all {n} customers have frequency 0, so the "
                "dropout process cannot be estimated"
            )
        if not np.any(T > 0):
            raise InputError(f"BG/NBD needs observation time: T is 0 for all {n} customers")
        # two starts: all ones, and a moment-based guess of the purchase rate
        starts = [
            np.zeros(4),
            np.log([0.5, max(float(np.mean(T) / (1.0 + np.mean(x))), 1e-3), 0.5, 2.0]),
        ]
        res = _minimize(
            lambda th: self._neg_ll(th, x, tx, T, self.penalizer), starts, self.tol, self.max_iter
        )
        if res is None:
            raise InputError(f"BG/NBD likelihood could not be optimised on {n} customers")
        self.params_ = dict(zip(self.param_names, (float(v) for v in np.exp(res.x)), strict=True))
        self.log_likelihood_ = (
            float(-res.fun * n)
            if self.penalizer == 0
            else float(self._loglik_terms(res.x, x, tx, T)[0].sum())
        )
        self.converged_ = bool(res.success)
        self.n_customers_ = n
        self.n_repeat_customers_ = n_rep
        return self

    def log_likelihood(self, frequency, recency, T) -> np.ndarray:
        """Per-customer log-likelihood under the fitted parameters."""
        self._check_fitted()
        x, tx, T = (
            _as_float(n, v) for n, v in (("frequency", frequency), ("recency", recency), ("T", T))
        )
        theta = np.log([self.params_[k] for k in self.param_names])
        return self._loglik_terms(theta, x, tx, T)[0]

    # ------------------------------------------------------------------ predictions
    def _log_div(self, x, tx, T):
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (r + x) * np.log((alpha + T) / (alpha + tx)) + np.log(a / (b + x - 1.0))

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """P(customer still active | history); 1 for customers without repeat purchases."""
        self._check_fitted()
        x, tx, T = (
            _as_float(n, v) for n, v in (("frequency", frequency), ("recency", recency), ("T", T))
        )
        _check_lengths(frequency=x, recency=tx, T=T)
        ld = self._log_div(x, tx, T)
        with np.errstate(invalid="ignore"):
            out = np.where(x == 0, 1.0, 1.0 / (1.0 + np.exp(np.minimum(ld, EXP_CAP))))
        out[np.isnan(x) | np.isnan(tx) | np.isnan(T)] = np.nan
        return out

    def series_constants(self) -> tuple[float, float, int]:
        """(A, B, growth) of the hypergeometric series after Euler's transformation."""
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        A, B = a + b - 1.0 - r, a - 1.0
        growth = int(np.ceil(max(0.0, a - r - 2.0)))
        return A, B, growth

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Conditional expected number of purchases in the next ``t`` periods.

        Same quantity as lifetimes' ``conditional_expected_number_of_purchases_up_to_time``;
        the Gauss hypergeometric function is summed as a series after Euler's transformation
        ``2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1-r-x) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, which
        converges fast for customers with many purchases and never overflows.
        """
        self._check_fitted()
        x, tx, T = (
            _as_float(n, v) for n, v in (("frequency", frequency), ("recency", recency), ("T", T))
        )
        t = np.broadcast_to(_as_float("t", t), x.shape).astype(float)
        _check_lengths(frequency=x, recency=tx, T=T, t=t)
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        A, B, growth = self.series_constants()
        out = np.full(x.shape, np.nan)
        ok = ~(np.isnan(x) | np.isnan(tx) | np.isnan(T) | np.isnan(t))
        out[ok & (t <= 0)] = 0.0
        pos = ok & (t > 0)
        if np.any(pos):
            xp, Tp, tp = x[pos], T[pos], t[pos]
            z = tp / (alpha + Tp + tp)
            C = a + b + xp - 1.0
            hyp = _hyp2f1(A, B, C, z, _n_terms(z, growth))
            second = 1.0 - np.exp((a - 1.0) * np.log((alpha + Tp) / (alpha + Tp + tp))) * hyp
            first = (a + b + xp - 1.0) / (a - 1.0)
            out[pos] = first * second * self.p_alive(xp, tx[pos], Tp)
        return out

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected purchases in ``(0, t]`` of a new customer (unconditional)."""
        self._check_fitted()
        from scipy.special import hyp2f1

        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        t = _as_float("t", t)
        hyp = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))
        return (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)) ** r * hyp)


def _n_terms(z: np.ndarray, growth: int) -> np.ndarray:
    """Series length per row so that z**N < e**-40 (times a polynomial allowance); as in SQL."""
    with np.errstate(divide="ignore"):
        n = np.ceil(-SERIES_LOG_EPS / np.log(z)).astype(np.int64) * (1 + growth) + 20
    return np.minimum(n, SERIES_MAX_TERMS)


def _hyp2f1(A: float, B: float, C: np.ndarray, z: np.ndarray, n_terms: np.ndarray) -> np.ndarray:
    """Gauss 2F1(A, B; C; z) summed to ``n_terms`` terms per row (terms by recurrence)."""
    order = np.argsort(-n_terms, kind="stable")
    C_s, z_s, n_s = C[order], z[order], n_terms[order]
    total = np.ones_like(z_s)
    term = np.ones_like(z_s)
    # rows sorted by decreasing length: at step k only the first `m` rows still sum
    thresholds = n_s[::-1]
    for k in range(int(n_s.max()) - 1):
        m = n_s.shape[0] - int(np.searchsorted(thresholds, k + 2, side="left"))
        if m == 0:
            break
        term = term[:m] * ((A + k) * (B + k) / ((C_s[:m] + k) * (k + 1.0)) * z_s[:m])
        total[:m] += term
    out = np.empty_like(total)
    out[order] = total
    return out


# ---------------------------------------------------------------------------- Gamma-Gamma
class GammaGamma(_Fitted):
    """Gamma-Gamma model of average transaction value (Fader & Hardie 2013).

    Fitted on customers with at least one repeat purchase (``frequency > 0``); others are
    ignored in ``fit``. ``expected_value`` shrinks each customer's observed mean towards the
    population mean, more so for customers with few purchases.
    """

    param_names = ("p", "q", "v")
    artifact_format = "pyprofile.gamma_gamma/1"
    _extra_state = ("n_excluded_",)

    @staticmethod
    def _neg_ll(theta, x, m, penalizer):
        p, q, v = np.exp(theta)
        px = p * x
        lxm_v = np.log(x * m + v)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1.0) * np.log(m)
            + px * np.log(x)
            - (px + q) * lxm_v
        )
        d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - lxm_v)
        d_q = digamma(px + q) - digamma(q) + np.log(v) - lxm_v
        d_v = q / v - (px + q) / (x * m + v)
        n = x.shape[0]
        grad = np.array([d_p.sum(), d_q.sum(), d_v.sum()]) * np.array([p, q, v])
        # lifetimes penalises the log-parameters of Gamma-Gamma
        value = -ll.sum() / n + penalizer * np.sum(theta**2)
        return value, -grad / n + 2.0 * penalizer * theta

    def fit(self, frequency, monetary_value) -> GammaGamma:
        """Fit ``p, q, v`` by maximum likelihood on the repeat customers; returns ``self``.

        Repeat customers whose ``monetary_value`` is null, zero or negative (free or fully
        refunded orders) cannot enter the likelihood: they are left out with a warning and
        counted in ``n_excluded_``.
        """
        x, m = _as_float("frequency", frequency), _as_float("monetary_value", monetary_value)
        n = _check_lengths(frequency=x, monetary_value=m)
        repeat = np.isfinite(x) & (x > 0)
        keep = repeat & np.isfinite(m) & (m > 0)
        n_repeat, excluded = int(repeat.sum()), int(repeat.sum() - keep.sum())
        x, m = x[keep], m[keep]
        if x.shape[0] < 2:
            raise InputError(
                f"Gamma-Gamma needs at least 2 customers with repeat purchases (frequency > 0) "
                f"and a positive monetary_value; got {x.shape[0]} of {n} ({n_repeat} repeat)"
            )
        if excluded:
            warnings.warn(
                f"Gamma-Gamma: {excluded} of {n_repeat} repeat customers have a null, zero or "
                "negative monetary_value and are left out of the fit",
                stacklevel=2,
            )
        if np.ptp(m) == 0:
            raise InputError(
                f"Gamma-Gamma cannot be fitted: all {x.shape[0]} repeat customers have the same "
                "monetary_value"
            )
        mean = float(np.mean(m))
        starts = [np.zeros(3), np.log([2.0, 4.0, mean * 3.0])]
        res = _minimize(
            lambda th: self._neg_ll(th, x, m, self.penalizer), starts, self.tol, self.max_iter
        )
        if res is None:
            raise InputError(
                f"Gamma-Gamma likelihood could not be optimised on {x.shape[0]} customers"
            )
        self.params_ = dict(zip(self.param_names, (float(v) for v in np.exp(res.x)), strict=True))
        self.converged_ = bool(res.success)
        self.log_likelihood_ = float(-self._neg_ll(res.x, x, m, 0.0)[0] * x.shape[0])
        self.n_customers_ = int(x.shape[0])
        self.n_excluded_ = excluded
        return self

    def expected_value(self, frequency, monetary_value) -> np.ndarray:
        """Expected average order value per customer (population mean for ``frequency`` 0)."""
        self._check_fitted()
        x, m = _as_float("frequency", frequency), _as_float("monetary_value", monetary_value)
        _check_lengths(frequency=x, monetary_value=m)
        p, q, v = (self.params_[k] for k in self.param_names)
        if q <= 1.0:
            raise InputError(f"Gamma-Gamma fit has q = {q:.4g} <= 1: the mean spend is infinite")
        w = p * x / (p * x + q - 1.0)
        m = np.where(x > 0, m, 0.0)  # one-off buyers: their mean is unused (w = 0)
        return (1.0 - w) * (v * p / (q - 1.0)) + w * m


# ---------------------------------------------------------------------------- CLV
def clv(
    bgnbd: BGNBD,
    gamma_gamma: GammaGamma,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    periods_per_month: float = 30.0,
) -> np.ndarray:
    """Discounted customer lifetime value over ``months`` months.

    Same definition as lifetimes' ``customer_lifetime_value``: for each month m, expected
    purchases in month m times the expected order value, discounted by
    ``(1 + discount_rate) ** m``. ``periods_per_month`` is the number of ``T`` units in a
    month (30 for days, 4.345 for weeks).
    """
    x = _as_float("frequency", frequency)
    ev = gamma_gamma.expected_value(x, monetary_value)
    total = np.zeros(x.shape)
    prev = np.zeros(x.shape)
    for month in range(1, months + 1):
        cum = bgnbd.expected_purchases(month * periods_per_month, x, recency, T)
        total += ev * (cum - prev) / (1.0 + discount_rate) ** month
        prev = cum
    return total
