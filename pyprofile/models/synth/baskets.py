"""What synthetic customers buy and view: products by category, popularity and price level;
quantities, discounts and order amounts.

Products are the shop's own catalogue (shared, not personal data). A line's category comes
from its customer's category shares; the product within the category is drawn by its real
popularity among the products whose standardised log price is near the line's level (the
customer's price level plus the real spread of a customer's lines around it), so a premium
customer buys premium products and popularity only decides between products of similar price. Kernels are tabulated per category
and price-level bin. Quantities, discount fractions and the ratio of amount to the line total
are drawn from their real distributions (quantiles, not rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyprofile.models.synth.activity import Indexed
from pyprofile.models.synth.summary import PRICE_FLOOR, line_z

Z_BINS = np.linspace(-3.0, 3.0, 25)  # price-level bin centres
KERNEL_SD = 0.25  # products within about a bin of a line's price level
QUANTILES = 101
SMOOTHING = 0.5  # pseudo-count of every product (unsold products stay possible)


def _quantiles(x: np.ndarray, default: float) -> np.ndarray:
    x = x[np.isfinite(x)]
    if not len(x):
        return np.full(QUANTILES, default)
    return np.quantile(x, np.linspace(0, 1, QUANTILES))


def draw_quantile(q: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from a distribution given by its quantiles (linear between knots)."""
    return np.interp(rng.random(n), np.linspace(0, 1, len(q)), q)


@dataclass
class BasketModel:
    """The fitted product, quantity and price model (arrays only)."""

    p_cat: np.ndarray  # category code per product
    p_price: np.ndarray  # typical unit price per product
    p_buy: np.ndarray  # purchase popularity
    p_view: np.ndarray  # view popularity
    p_z: np.ndarray  # standardised log price within category
    spread: float  # a customer's lines around its price level (sd)
    cat_share: np.ndarray  # global share of lines per category
    view_cat_share: np.ndarray  # global share of product views per category
    qty_values: np.ndarray
    qty_probs: np.ndarray
    dispersion: float  # over-dispersion of lines per order within a customer (1 = multinomial)
    discount_q: np.ndarray  # discount / (amount + discount) of discounted orders
    ratio_q: np.ndarray  # amount / (line total - discount)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in vars(self).items()}

    # ------------------------------------------------------------------ drawing
    def products(self, categories: np.ndarray, level: np.ndarray, rng, *, view=False):
        """A product per entry in its category: by popularity (views or purchases) and, for
        purchases, near the price ``level`` (standardised log price)."""
        out = np.zeros(len(categories), np.int64)
        zbin = np.abs(level[:, None] - Z_BINS[None]).argmin(1) if not view else None
        for c in np.unique(categories):
            pool = np.flatnonzero(self.p_cat == c)
            if not len(pool):
                pool = np.arange(len(self.p_cat))
            rows = np.flatnonzero(categories == c)
            weight = (self.p_view if view else self.p_buy)[pool]
            if view:
                out[rows] = pool[_draw(weight[None], np.zeros(len(rows), int), rng)]
                continue
            kernel = np.exp(-0.5 * ((self.p_z[pool][None] - Z_BINS[:, None]) / KERNEL_SD) ** 2)
            out[rows] = pool[_draw(weight[None] * kernel + 1e-12, zbin[rows], rng)]
        return out

    def quantities(self, n: int, rng) -> np.ndarray:
        return rng.choice(self.qty_values, n, p=self.qty_probs)


def _draw(weights: np.ndarray, row: np.ndarray, rng) -> np.ndarray:
    """One column index per entry, drawn from ``weights[row]`` (rows need not sum to 1)."""
    cum = np.cumsum(weights, 1)
    u = rng.random(len(row)) * cum[row, -1]
    out = np.empty(len(row), np.int64)
    for r in np.unique(row):
        sel = row == r
        out[sel] = np.searchsorted(cum[r], u[sel], side="right")
    return np.minimum(out, weights.shape[1] - 1)


def fit_baskets(ix: Indexed, view_code: int | None) -> BasketModel:
    """Popularity, typical price and price level of each product; quantity, discount and
    amount distributions."""
    n_products = len(ix.p_cat)
    n_cat = max(len(ix.categories), 1)
    buy = np.bincount(ix.i_prod, minlength=n_products) + SMOOTHING
    views = ix.e_prod[(ix.e_prod >= 0) & (ix.e_type == view_code)] if view_code is not None else []
    view = np.bincount(np.asarray(views, np.int64), minlength=n_products) + SMOOTHING
    price = _typical_price(ix, n_products)
    _, scale = line_z(ix)
    logp = np.log(np.maximum(price, PRICE_FLOOR))
    p_z = (logp - scale.mean[ix.p_cat]) / scale.std[ix.p_cat]
    cat_lines = np.bincount(ix.p_cat[ix.i_prod], minlength=n_cat) + SMOOTHING
    cat_views = np.bincount(ix.p_cat[np.asarray(views, np.int64)], minlength=n_cat) + SMOOTHING
    qty = ix.i_qty[ix.i_qty <= np.quantile(ix.i_qty, 0.999)] if len(ix.i_qty) else np.ones(1, int)
    values, counts = np.unique(qty, return_counts=True)
    return BasketModel(
        p_cat=ix.p_cat,
        p_price=price,
        p_buy=buy.astype(float),
        p_view=view.astype(float),
        p_z=p_z,
        spread=scale.spread,
        cat_share=cat_lines / cat_lines.sum(),
        view_cat_share=cat_views / cat_views.sum(),
        qty_values=values.astype(np.int64),
        qty_probs=counts / counts.sum(),
        dispersion=_dispersion(ix),
        **_amount_quantiles(ix),
    )


def dispersion_terms(ix: Indexed) -> tuple[np.ndarray, ...]:
    """Per customer: orders with lines, the within-customer sum of squares of extra lines
    (beyond one) per order, and its expectation if the extra lines went to the customer's
    orders uniformly at random (multinomial)."""
    lines = np.bincount(ix.i_order, minlength=len(ix.o_sec))
    has = lines > 0
    cust, extra = ix.o_cust[has], lines[has] - 1.0
    k = np.bincount(cust, minlength=ix.n_customers)
    n = np.bincount(cust, weights=extra, minlength=ix.n_customers)
    mean = n / np.maximum(k, 1)
    within = np.bincount(cust, weights=(extra - mean[cust]) ** 2, minlength=ix.n_customers)
    return k, within, n * (1 - 1 / np.maximum(k, 1))


def _dispersion(ix: Indexed) -> float:
    """How much more a customer's lines vary from order to order than if its extra lines
    (beyond one per order) went to its orders uniformly at random: within-customer variance
    over the multinomial's, pooled over customers with two or more orders (at least 1)."""
    k, within, expected = dispersion_terms(ix)
    multi = k >= 2
    if expected[multi].sum() <= 0:
        return 1.0
    return max(float(within[multi].sum() / expected[multi].sum()), 1.0)


def spread_lines(extra, n_orders, dispersion: float, rng) -> np.ndarray:
    """Extra lines per order: each customer's ``extra`` lines over its ``n_orders`` orders
    (customers in order) with Dirichlet-multinomial weights whose concentration gives the
    real over-dispersion."""
    k = n_orders.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (
            (extra - dispersion) / (k * (dispersion - 1))
            if dispersion > 1
            else np.full(len(k), 1e6)
        )
    a = np.clip(np.nan_to_num(a, nan=1e6, posinf=1e6), 0.05, 1e6)
    owner = np.repeat(np.arange(len(k)), n_orders)
    weight = rng.gamma(a[owner])
    cum = np.cumsum(weight)
    end = np.cumsum(np.bincount(owner, weights=weight, minlength=len(k)))
    begin = end - np.bincount(owner, weights=weight, minlength=len(k))
    who = np.repeat(np.arange(len(k)), extra)
    target = begin[who] + rng.random(len(who)) * (end[who] - begin[who])
    first = np.r_[0, np.cumsum(n_orders)[:-1]]
    pick = np.clip(
        np.searchsorted(cum, target, side="right"), first[who], first[who] + n_orders[who] - 1
    )
    return np.bincount(pick, minlength=len(owner))


def _typical_price(ix: Indexed, n_products: int) -> np.ndarray:
    """Median unit price of each product's lines; the category median for unsold products."""
    price = np.full(n_products, np.nan)
    if len(ix.i_prod):
        order = np.lexsort((ix.i_price, ix.i_prod))
        prod, values = ix.i_prod[order], ix.i_price[order]
        starts = np.flatnonzero(np.r_[True, prod[1:] != prod[:-1]])
        ends = np.r_[starts[1:], len(prod)]
        price[prod[starts]] = values[(starts + ends - 1) // 2]
    for c in np.unique(ix.p_cat):
        sel = ix.p_cat == c
        known = price[sel][np.isfinite(price[sel])]
        fill = (
            np.median(known)
            if len(known)
            else np.nanmedian(price)
            if np.isfinite(price).any()
            else 1.0
        )
        price[sel & ~np.isfinite(price)] = fill
    return price


def _amount_quantiles(ix: Indexed) -> dict[str, np.ndarray]:
    gross = np.bincount(ix.i_order, weights=ix.i_qty * ix.i_price, minlength=len(ix.o_sec))
    discount = ix.o_discount if ix.o_discount is not None else np.zeros(len(ix.o_sec))
    discounted = discount > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = discount / (ix.o_amount + discount)
        ratio = ix.o_amount / (gross - discount)
    has_lines = np.bincount(ix.i_order, minlength=len(ix.o_sec)) > 0
    ratio = ratio[has_lines & (gross - discount > 0)]
    return {
        "discount_q": _quantiles(frac[discounted], 0.0),
        "ratio_q": _quantiles(np.clip(ratio, 0, 10), 1.0),
    }
