"""Customer lifetime value: BG/NBD purchase model and Gamma-Gamma spend model.

Both are fitted by maximum likelihood on the lifetimes-style summary columns
(``frequency`` = repeat purchases, ``recency`` = time from first to last purchase,
``T`` = time from first purchase to the observation date, ``monetary_value`` = mean
value of the repeat purchases), with the same likelihoods as the ``lifetimes`` package
(Fader, Hardie & Lee 2005; Fader & Hardie 2013), computed stably with ``gammaln`` and
log-sum-exp and optimised over log-parameters with analytic gradients.

The fitted models also write their scoring formulas as SQL macro bodies
(:meth:`BGNBD.p_alive_sql`, :meth:`BGNBD.expected_purchases_sql`,
:meth:`GammaGamma.expected_value_sql`, :func:`clv_sql`) that give the same numbers as
the Python methods, so any DuckDB client can score customers without Python.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator

from pyprofile.errors import InputError, NotFittedError

__all__ = ["BGNBD", "GammaGamma", "clv", "clv_sql"]

# exp() arguments are capped here in Python and in SQL alike (exp(700) ~ 1e304, no overflow).
_EXP_CAP = 700.0
# Series terms: enough that z**N < e**-40 for the hypergeometric series (see _n_terms).
_SERIES_LOG_EPS = 40.0
_SERIES_MAX_TERMS = 100_000


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


def _lit(value: float) -> str:
    """A float as an exact DuckDB DOUBLE literal (17 significant digits round-trip).

    Negative values are parenthesised: ``x - -1e0`` would start a ``--`` SQL comment.
    """
    value = float(value)
    if not np.isfinite(value):
        raise InputError(f"cannot write the non-finite value {value} into SQL")
    text = f"{value:.17e}"
    return f"({text})" if value < 0 else text


def _col(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dbl(name: str) -> str:
    return f"cast({_col(name)} as double)"


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


class _Fitted(BaseEstimator):
    """Shared by the two models: parameters, fitted check, pickle-free persistence.

    ``penalizer`` adds an L2 penalty as lifetimes does; ``tol`` and ``max_iter`` steer L-BFGS-B.
    """

    param_names: tuple[str, ...] = ()
    params_: dict[str, float]

    def __init__(self, *, penalizer: float = 0.0, tol: float = 1e-9, max_iter: int = 2000):
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays + metadata for :func:`pyprofile.registry.pack` (no pickle)."""
        self._check_fitted()
        return (
            {"params": np.array([self.params_[k] for k in self.param_names])},
            {
                "model": type(self).__name__,
                "param_names": list(self.param_names),
                "penalizer": self.penalizer,
            },
        )

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]):
        """Inverse of :meth:`to_arrays`."""
        if meta.get("model") != cls.__name__:
            raise InputError(f"artifact holds a {meta.get('model')} model, not {cls.__name__}")
        model = cls(penalizer=meta.get("penalizer", 0.0))
        model.params_ = dict(
            zip(cls.param_names, (float(v) for v in arrays["params"]), strict=True)
        )
        return model


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
            out = np.where(x == 0, 1.0, 1.0 / (1.0 + np.exp(np.minimum(ld, _EXP_CAP))))
        out[np.isnan(x) | np.isnan(tx) | np.isnan(T)] = np.nan
        return out

    def _series_consts(self):
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
        A, B, growth = self._series_consts()
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

    # ------------------------------------------------------------------ SQL
    def p_alive_sql(
        self, frequency: str = "frequency", recency: str = "recency", T: str = "T"
    ) -> str:
        """SQL expression equal to :meth:`p_alive` (a macro body over the three named columns)."""
        self._check_fitted()
        x, tx, TT = _dbl(frequency), _dbl(recency), _dbl(T)
        return (
            f"(case when {x} is null or {tx} is null or {TT} is null then null "
            f"when {x} = 0 then 1.0 "
            f"else 1.0 / (1.0 + exp(least({self._log_div_sql(x, tx, TT)}, {_lit(_EXP_CAP)}))) end)"
        )

    def _log_div_sql(self, x: str, tx: str, T: str) -> str:
        r, alpha, a, b = (_lit(self.params_[k]) for k in self.param_names)
        return (
            f"(({r} + {x}) * ln(({alpha} + {T}) / ({alpha} + {tx})) + ln({a} / ({b} + {x} - 1.0)))"
        )

    def expected_purchases_sql(
        self,
        t: str = "horizon",
        frequency: str = "frequency",
        recency: str = "recency",
        T: str = "T",
    ) -> str:
        """SQL expression equal to :meth:`expected_purchases` (needs DuckDB >= 1.3 lambdas).

        The horizon argument is named ``horizon`` by default because DuckDB macro parameter
        names are case-insensitive (``t`` would clash with ``T``).
        """
        self._check_fitted()
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        A, B, growth = self._series_consts()
        x, tx, TT, tt = _dbl(frequency), _dbl(recency), _dbl(T), _dbl(t)
        z = f"({tt} / ({_lit(alpha)} + {TT} + {tt}))"
        C = f"({_lit(a + b - 1.0)} + {x})"
        n_terms = (
            f"least({_SERIES_MAX_TERMS}, cast(ceil(-{_lit(_SERIES_LOG_EPS)} / ln({z})) as bigint)"
            f" * {1 + growth} + 20)"
        )
        if A == 0.0 or B == 0.0:
            hyp = "1.0"
        else:
            # k-th term from log-gamma ratios; signs from the negative Pochhammer factors
            n_neg = [int(np.ceil(-v)) if v < 0 else 0 for v in (A, B)]
            sign_parts = [f"least(k, {n})" for n in n_neg if n] + [
                f"(case when {C} < 0 then least(k, cast(ceil(-{C}) as bigint)) else 0 end)"
            ]
            sign = f"(case when ({' + '.join(sign_parts)}) % 2 = 0 then 1.0 else -1.0 end)"
            log_term = (
                f"lgamma({_lit(A)} + k) - {_lit(float(gammaln(A)))} "
                f"+ lgamma({_lit(B)} + k) - {_lit(float(gammaln(B)))} "
                f"+ lgamma({C}) - lgamma({C} + k) - lgamma(k + 1.0) + k * ln({z})"
            )
            hyp = (
                f"list_sum(list_transform(range(0, {n_terms}), lambda k: {sign} * exp({log_term})))"
            )
        second = f"(1.0 - exp({_lit(a - 1.0)} * ln(({_lit(alpha)} + {TT}) / ({_lit(alpha)} + {TT} + {tt}))) * {hyp})"
        first = f"(({_lit(a + b - 1.0)} + {x}) / {_lit(a - 1.0)})"
        return (
            f"(case when {x} is null or {tx} is null or {TT} is null or {tt} is null then null "
            f"when {tt} <= 0 then 0.0 "
            f"else {first} * {second} * {self.p_alive_sql(frequency, recency, T)} end)"
        )


def _n_terms(z: np.ndarray, growth: int) -> np.ndarray:
    """Series length per row so that z**N < e**-40 (times a polynomial allowance); as in SQL."""
    with np.errstate(divide="ignore"):
        n = np.ceil(-_SERIES_LOG_EPS / np.log(z)).astype(np.int64) * (1 + growth) + 20
    return np.minimum(n, _SERIES_MAX_TERMS)


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

    def expected_value_sql(
        self, frequency: str = "frequency", monetary_value: str = "monetary_value"
    ) -> str:
        """SQL expression equal to :meth:`expected_value`."""
        self._check_fitted()
        p, q, v = (self.params_[k] for k in self.param_names)
        x, m = _dbl(frequency), _dbl(monetary_value)
        w = f"({_lit(p)} * {x} / ({_lit(p)} * {x} + {_lit(q - 1.0)}))"
        mm = f"(case when {x} > 0 then {m} else 0.0 end)"
        return (
            f"(case when {x} is null then null "
            f"else (1.0 - {w}) * {_lit(v * p / (q - 1.0))} + {w} * {mm} end)"
        )


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


def clv_sql(
    expected_purchases_macro: str,
    expected_value_macro: str,
    *,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    monetary_value: str = "monetary_value",
    months: int = 12,
    discount_rate: float = 0.01,
    periods_per_month: float = 30.0,
) -> str:
    """SQL expression equal to :func:`clv`, calling the published macros by name."""
    args = ", ".join(_col(c) for c in (frequency, recency, T))
    ev = f"{expected_value_macro}({_col(frequency)}, {_col(monetary_value)})"
    cums = ["0.0"] + [
        f"{expected_purchases_macro}({_lit(m * periods_per_month)}, {args})"
        for m in range(1, months + 1)
    ]
    parts = [
        f"({cums[m]} - {cums[m - 1]}) / {_lit((1.0 + discount_rate) ** m)}"
        for m in range(1, months + 1)
    ]
    return f"({ev} * ({' + '.join(parts)}))"
