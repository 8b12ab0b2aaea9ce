"""Generated shops with planted customer types, for the segmentation benchmark.

Each shop simulates every customer's orders (and, where the shop has them, browsing sessions)
from the customer's hidden type, then computes a ``features.customer_features``-like table
with the same column names and the same definitions as the dbt feature layer (RFM with
``percent_rank`` quintile scores and the named RFM segment, the lifetimes-style summary, order
behaviour, baskets, category spend shares, event counts and funnel rates, demographics). The
type is returned separately and is never a feature.

The shops are built to differ from the demo and from each other:

* ``three``: 3 types of a gift shop, 3 years of history, no events, no demographics, no
  categories; large, rare gift orders next to small frequent ones and bulk resellers.
* ``seven``: 7 types of a grocery marketplace, 18 months, events and demographics, five
  categories of its own; daily shoppers, stock-up buyers, deal hunters, serial returners,
  lapsed regulars, new joiners and browsers who never buy.
* ``guests``: 4 types, dominated by one-order guest checkouts (65%), next to sign-ups who
  never bought (15%), repeat regulars and a few VIPs; two years, no events, two demographics.

    from benchmarks.shops import make_shop
    features, truth = make_shop("guests", 10_000, seed=0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

AS_OF = pd.Timestamp("2025-06-30")
RFM_RULES = [  # (name, condition on r and fm), the rules of dbt_project/macros/rfm_segment.sql
    ("Champions", lambda r, fm: (r == 5) & (fm >= 4)),
    ("Loyal Customers", lambda r, fm: (r >= 3) & (r <= 4) & (fm >= 4)),
    ("Potential Loyalist", lambda r, fm: (r >= 4) & (fm >= 2) & (fm <= 3)),
    ("New Customers", lambda r, fm: (r == 5) & (fm == 1)),
    ("Promising", lambda r, fm: (r == 4) & (fm == 1)),
    ("Need Attention", lambda r, fm: (r == 3) & (fm == 3)),
    ("About to Sleep", lambda r, fm: (r == 3) & (fm <= 2)),
    ("Can't Lose Them", lambda r, fm: (r <= 2) & (fm == 5)),
    ("At Risk", lambda r, fm: (r <= 2) & (fm >= 3) & (fm <= 4)),
    ("Lost", lambda r, fm: (r == 1) & (fm == 1)),
]


@dataclass(frozen=True)
class Kind:
    """One planted customer type."""

    name: str
    share: float
    orders_per_month: float  # purchase rate while active (gamma heterogeneity, shape 2)
    amount: float  # median order amount (per-customer median varies, log-sd 0.3)
    amount_sd: float = 0.5  # log-sd of one customer's order amounts
    life_days: float = np.inf  # mean active days after the first order (exponential)
    max_orders: int = 10_000  # 1: one-order guests; 0: never buys
    signup: tuple[float, float] = (0.0, 1.0)  # sign-up window, fraction of the history
    guest: bool = False  # signed up at the first order (guest checkout)
    discount_prob: float = 0.1
    return_prob: float = 0.03
    items: float = 1.5  # mean units per order
    sessions_per_month: float = 0.0  # browsing sessions without a purchase
    cart_prob: float = 0.2  # a browsing session adds to cart
    categories: tuple[float, ...] = ()  # Dirichlet concentration over the shop's categories
    age: tuple[float, float] = (40.0, 12.0)
    region: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)


@dataclass(frozen=True)
class Shop:
    kinds: list[Kind]
    history_days: int
    events: bool = False
    demographics: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    products: int = 400
    extra: dict = field(default_factory=dict)


SHOPS: dict[str, Shop] = {
    "three": Shop(
        [
            Kind("gifter", 0.45, 0.08, 90.0, amount_sd=0.4, discount_prob=0.05, items=1.2),
            Kind("regular", 0.35, 1.2, 22.0, amount_sd=0.3, discount_prob=0.25, items=2.5),
            Kind(
                "reseller",
                0.20,
                0.4,
                700.0,
                amount_sd=0.5,
                discount_prob=0.8,
                items=12.0,
                return_prob=0.08,
            ),
        ],
        history_days=3 * 365,
    ),
    "seven": Shop(
        [
            Kind(
                "daily",
                0.14,
                5.0,
                35.0,
                discount_prob=0.1,
                items=6.0,
                sessions_per_month=6.0,
                categories=(8, 6, 3, 1, 1),
                age=(38, 9),
            ),
            Kind(
                "stock_up",
                0.16,
                0.9,
                160.0,
                discount_prob=0.1,
                items=14.0,
                sessions_per_month=1.0,
                categories=(2, 6, 6, 1, 2),
                age=(45, 10),
            ),
            Kind(
                "deal_hunter",
                0.18,
                1.4,
                28.0,
                discount_prob=0.85,
                items=3.0,
                sessions_per_month=10.0,
                cart_prob=0.5,
                categories=(2, 5, 3, 1, 3),
                age=(31, 8),
            ),
            Kind(
                "returner",
                0.10,
                1.0,
                110.0,
                return_prob=0.45,
                items=4.0,
                sessions_per_month=3.0,
                categories=(1, 1, 4, 6, 2),
                age=(29, 6),
            ),
            Kind(
                "lapsed",
                0.16,
                2.0,
                50.0,
                life_days=100.0,
                signup=(0.0, 0.4),
                items=4.0,
                sessions_per_month=0.3,
                categories=(4, 4, 2, 1, 1),
                age=(50, 12),
            ),
            Kind(
                "new_joiner",
                0.11,
                1.5,
                45.0,
                signup=(0.9, 0.97),
                items=4.0,
                sessions_per_month=4.0,
                categories=(3, 3, 3, 2, 2),
                age=(27, 5),
            ),
            Kind(
                "browser",
                0.15,
                0.0,
                40.0,
                max_orders=0,
                sessions_per_month=3.0,
                cart_prob=0.15,
                age=(35, 14),
            ),
        ],
        history_days=540,
        events=True,
        demographics=("age", "gender", "region", "channel"),
        categories=("fresh", "pantry", "household", "baby", "pets"),
    ),
    "guests": Shop(
        [
            Kind(
                "guest",
                0.65,
                0.0,
                60.0,
                amount_sd=0.7,
                max_orders=1,
                guest=True,
                discount_prob=0.3,
                return_prob=0.08,
            ),
            Kind("sign_up_only", 0.15, 0.0, 60.0, max_orders=0),
            Kind("regular", 0.15, 0.8, 55.0, discount_prob=0.2, items=2.0),
            Kind("vip", 0.05, 2.5, 180.0, discount_prob=0.05, items=3.0, return_prob=0.1),
        ],
        history_days=2 * 365,
        demographics=("region", "channel"),
    ),
}


def make_shop(
    name: str, n_customers: int = 10_000, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series]:
    """(features, truth): a customer_features-like table and each customer's planted type."""
    shop = SHOPS[name]
    rng = np.random.default_rng(seed)
    kinds = shop.kinds
    shares = np.array([k.share for k in kinds])
    ctype = rng.choice(len(kinds), n_customers, p=shares / shares.sum())
    ids = np.array([f"{name[0].upper()}{i:06d}" for i in range(n_customers)])
    cust = _customers(rng, shop, ctype)
    orders = _orders(rng, shop, ctype, cust)
    frame = pd.DataFrame({"customer_id": ids, "as_of_date": AS_OF})
    as_of_day = shop.history_days - 1
    frame = frame.join(_rfm(orders, n_customers, as_of_day))
    frame.insert(8, "tenure_days", (cust["age_days"]).astype("int64"))
    frame = frame.join(_order_behaviour(orders, n_customers, as_of_day))
    frame = frame.join(_baskets(rng, shop, ctype, orders, n_customers))
    if shop.events:
        frame = frame.join(_events(rng, shop, ctype, cust, orders, n_customers))
    frame = frame.join(_demographics(rng, shop, ctype, n_customers))
    frame["has_purchased"] = frame["order_count"] > 0
    truth = pd.Series(np.array([k.name for k in kinds])[ctype], index=ids, name="customer_type")
    return frame, truth


def _per(kinds: list[Kind], attr: str, ctype: np.ndarray) -> np.ndarray:
    return np.array([getattr(k, attr) for k in kinds], dtype=float)[ctype]


def _customers(rng: np.random.Generator, shop: Shop, ctype: np.ndarray) -> dict[str, np.ndarray]:
    """Sign-up day (days before as_of), first order and the end of the active period."""
    n, h = len(ctype), shop.history_days
    lo = np.array([k.signup[0] for k in shop.kinds])[ctype]
    hi = np.array([k.signup[1] for k in shop.kinds])[ctype]
    start = np.floor(h * (lo + (hi - lo) * rng.random(n)))  # day since the history began
    first = start + np.where(_per(shop.kinds, "guest", ctype) > 0, 0, rng.exponential(15, n))
    life = rng.exponential(np.minimum(_per(shop.kinds, "life_days", ctype), 1e9))
    end = np.minimum(first + life, h - 1)
    buys = (_per(shop.kinds, "max_orders", ctype) > 0) & (first <= h - 1)
    return {
        "start": start,
        "first": np.floor(first),
        "end": end,
        "buys": buys,
        "age_days": (h - 1) - start,
    }


def _orders(rng, shop: Shop, ctype: np.ndarray, cust: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per order: customer, day (since the history began), amount, discount, status."""
    kinds = shop.kinds
    rate = _per(kinds, "orders_per_month", ctype) * rng.gamma(2.0, 0.5, len(ctype)) / 30.0
    span = np.maximum(cust["end"] - cust["first"], 0)
    extra = rng.poisson(rate * span)
    n_orders = np.where(
        cust["buys"], np.minimum(1 + extra, _per(kinds, "max_orders", ctype)), 0
    ).astype(int)
    c = np.repeat(np.arange(len(ctype)), n_orders)
    first_of = np.r_[True, c[1:] != c[:-1]] if len(c) else np.zeros(0, bool)
    day = np.floor(cust["first"][c] + rng.random(len(c)) * span[c])
    day[first_of] = cust["first"][c[first_of]]
    median = _per(kinds, "amount", ctype) * np.exp(rng.normal(0, 0.3, len(ctype)))
    gross = np.round(median[c] * np.exp(rng.normal(0, _per(kinds, "amount_sd", ctype)[c])), 2)
    discounted = rng.random(len(c)) < _per(kinds, "discount_prob", ctype)[c]
    discount = np.round(np.where(discounted, gross * rng.uniform(0.1, 0.4, len(c)), 0.0), 2)
    returned = rng.random(len(c)) < _per(kinds, "return_prob", ctype)[c]
    cancelled = rng.random(len(c)) < 0.02
    status = np.where(cancelled, "cancelled", np.where(returned, "returned", "completed"))
    return pd.DataFrame(
        {
            "c": c,
            "day": day.astype(int),
            "amount": gross - discount,
            "discount": discount,
            "status": status,
        }
    )


def _score(values: pd.Series, ascending: bool) -> pd.Series:
    """1 + floor(5 * percent_rank), capped at 5 (SQL's percent_rank: ties share the min rank)."""
    rank = values.rank(method="min", ascending=ascending)
    n = values.notna().sum()
    pr = (rank - 1) / max(n - 1, 1)
    return np.minimum(5, 1 + np.floor(5 * pr)).astype("Int32")


def _rfm(orders: pd.DataFrame, n: int, as_of_day: int) -> pd.DataFrame:
    """RFM, the lifetimes-style summary, quintile scores and the named RFM segment."""
    buys = orders[orders["status"] == "completed"]
    daily = buys.groupby(["c", "day"], as_index=False).agg(
        n=("amount", "size"), amt=("amount", "sum")
    )
    g = daily.groupby("c")
    first, last = g["day"].min(), g["day"].max()
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["first_order_date"] = AS_OF - pd.to_timedelta(as_of_day - first, unit="D")
    out["last_order_date"] = AS_OF - pd.to_timedelta(as_of_day - last, unit="D")
    out["recency_days"] = (as_of_day - last).astype("Int64")
    out["order_count"] = g["n"].sum().reindex(out.index).fillna(0).astype(float)
    out["monetary_amount"] = g["amt"].sum().reindex(out.index).fillna(0.0)
    out["avg_order_amount"] = out["monetary_amount"] / out["order_count"].where(
        out["order_count"] > 0
    )
    days = g.size()
    first_amt = daily[daily["day"] == daily["c"].map(first)].set_index("c")["amt"]
    out["frequency"] = (days - 1).astype("Int64")
    out["recency"] = (last - first).astype("Int64")
    out["T"] = (as_of_day - first).astype("Int64")
    repeat = (g["amt"].sum() - first_amt) / (days - 1).where(days > 1)
    out["monetary_value"] = repeat.fillna(0.0).where(days.reindex(out.index).notna())
    buyer = out["order_count"] > 0
    out["r_score"] = _score(out["recency_days"].where(buyer).astype(float), ascending=False)
    out["f_score"] = _score(out["order_count"].where(buyer), ascending=True)
    out["m_score"] = _score(out["monetary_amount"].where(buyer), ascending=True)
    out["rfm_segment"] = _rfm_segment(out)
    return out


def _rfm_segment(out: pd.DataFrame) -> np.ndarray:
    r = out["r_score"].astype(float).to_numpy()
    fm = np.floor(
        (out["f_score"].astype(float) + out["m_score"].astype(float)) / 2 + 0.5
    ).to_numpy()
    names = np.full(len(out), "Hibernating", dtype=object)
    done = np.isnan(r)
    names[done] = "No Purchases"
    for name, rule in RFM_RULES:
        hit = ~done & np.nan_to_num(rule(r, fm)).astype(bool)
        names[hit] = name
        done |= hit
    return names


def _order_behaviour(orders: pd.DataFrame, n: int, as_of_day: int) -> pd.DataFrame:
    """Days between purchases, 90-day spend and trend, return rate, discount share."""
    buys = orders[orders["status"] == "completed"]
    placed = orders[orders["status"] != "cancelled"]
    g = buys.groupby("c")
    span = (g["day"].max() - g["day"].min()) / (g.size() - 1).where(g.size() > 1)
    age = as_of_day - buys["day"]
    s90 = buys["amount"].where(age < 90, 0).groupby(buys["c"]).sum()
    sp90 = buys["amount"].where((age >= 90) & (age < 180), 0).groupby(buys["c"]).sum()
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["avg_days_between_orders"] = span
    out["spend_90d_amount"] = s90.reindex(out.index).fillna(0.0)
    out["spend_prev_90d_amount"] = sp90.reindex(out.index).fillna(0.0)
    total = out["spend_90d_amount"] + out["spend_prev_90d_amount"]
    out["spend_trend"] = (
        (out["spend_90d_amount"] - out["spend_prev_90d_amount"]) / total.where(total > 0)
    ).fillna(0.0)
    pg = placed.groupby("c")
    out["return_rate"] = (placed["status"] == "returned").groupby(placed["c"]).mean()
    out["discount_share"] = pg["discount"].sum() / (
        pg["amount"].sum() + pg["discount"].sum()
    ).where(lambda s: s > 0)
    return out


def _baskets(rng, shop: Shop, ctype: np.ndarray, orders: pd.DataFrame, n: int) -> pd.DataFrame:
    """Distinct products (Zipf popularity), units per purchase, category spend shares."""
    buys = orders[orders["status"] == "completed"]
    units = 1 + rng.poisson(
        np.maximum(_per(shop.kinds, "items", ctype)[buys["c"].to_numpy()] - 1, 0)
    )
    line_c = np.repeat(buys["c"].to_numpy(), units)
    popularity = 1.0 / np.arange(1, shop.products + 1) ** 1.1
    product = rng.choice(shop.products, len(line_c), p=popularity / popularity.sum())
    out = pd.DataFrame(index=pd.RangeIndex(n))
    distinct = pd.Series(product).groupby(line_c).nunique()
    out["distinct_products"] = distinct.reindex(out.index).fillna(0).astype("int64")
    out["avg_basket_size"] = pd.Series(units).groupby(buys["c"].to_numpy()).mean()
    if shop.categories:
        alpha = np.array([k.categories or (1.0,) * len(shop.categories) for k in shop.kinds])
        pref = np.vstack([rng.dirichlet(alpha[t]) for t in ctype])
        spend = buys["amount"].to_numpy()
        for j, cat in enumerate(shop.categories):
            share = (
                pd.Series(spend * pref[buys["c"].to_numpy(), j]).groupby(buys["c"].to_numpy()).sum()
            )
            total = pd.Series(spend).groupby(buys["c"].to_numpy()).sum()
            out[f"category_{cat}_share"] = (share / total.where(total > 0)).reindex(out.index)
    return out


def _events(rng, shop: Shop, ctype, cust, orders: pd.DataFrame, n: int) -> pd.DataFrame:
    """Event counts per type, sessions, funnel rates and days since the last visit."""
    h = shop.history_days
    months = np.maximum((h - 1) - cust["start"], 1) / 30.0
    browse = rng.poisson(_per(shop.kinds, "sessions_per_month", ctype) * months)
    bc = np.repeat(np.arange(n), browse)
    b_day = np.floor(cust["start"][bc] + rng.random(len(bc)) * ((h - 1) - cust["start"][bc]))
    b_cart = rng.random(len(bc)) < _per(shop.kinds, "cart_prob", ctype)[bc]
    placed = orders[orders["status"] != "cancelled"]
    pc = placed["c"].to_numpy()
    sess_c = np.r_[bc, pc]
    views = 1 + rng.poisson(2.5, len(sess_c))
    cart = np.r_[b_cart, np.ones(len(pc), bool)]
    bought = np.r_[np.zeros(len(bc), bool), np.ones(len(pc), bool)]
    days = np.r_[b_day, placed["day"].to_numpy()]
    carts = cart * (1 + rng.poisson(0.5, len(sess_c)))
    s = pd.DataFrame(
        {"c": sess_c, "views": views, "cart": cart, "carts": carts, "bought": bought, "day": days}
    )
    g = s.groupby("c")
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["page_view_events"] = g.size()
    out["product_view_events"] = g["views"].sum()
    out["add_to_cart_events"] = g["carts"].sum()
    out["checkout_events"] = g["bought"].sum()
    out["purchase_events"] = g["bought"].sum()
    for col in [
        "page_view_events",
        "product_view_events",
        "add_to_cart_events",
        "checkout_events",
        "purchase_events",
    ]:
        out[col] = out[col].reindex(out.index).fillna(0).astype(float)
    out["session_count"] = g.size().reindex(out.index).fillna(0).astype("int64")
    out["view_to_cart_rate"] = g["cart"].mean()
    out["cart_to_purchase_rate"] = g["bought"].sum() / g["cart"].sum().where(lambda v: v > 0)
    out["days_since_last_visit"] = ((h - 1) - g["day"].max()).astype("Int64")
    return out


def _demographics(rng, shop: Shop, ctype: np.ndarray, n: int) -> pd.DataFrame:
    out = pd.DataFrame(index=pd.RangeIndex(n))
    kinds = shop.kinds
    if "age" in shop.demographics:
        mean_sd = np.array([k.age for k in kinds])[ctype]
        age = rng.normal(mean_sd[:, 0], mean_sd[:, 1])
        out["age"] = np.clip(np.round(age), 18, 90).astype("int32")
    if "gender" in shop.demographics:
        out["gender"] = rng.choice(["female", "male", "other"], n, p=[0.52, 0.46, 0.02])
    if "region" in shop.demographics:
        probs = np.array([k.region for k in kinds])[ctype]
        pick = (probs.cumsum(1) > rng.random((n, 1))).argmax(1)
        out["region"] = np.array(["north", "south", "east", "west"])[pick]
    if "channel" in shop.demographics:
        out["channel"] = rng.choice(["organic", "paid", "email", "marketplace"], n)
    return out
