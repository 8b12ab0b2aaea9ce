"""A realistic, seeded e-commerce demo warehouse: raw customers, orders, items, products, events.

Customers belong to one of six hidden types that differ in demographics, purchase rate, basket
size, category and price-tier preferences, discounts, returns and browsing. The type is written
to ``demo_truth.customer_types`` only, which no feature or model reads, so tests can measure
whether segmentation recovers it. Data is generated in chunks of customers straight into DuckDB,
so a million customers (over ten million orders) fits comfortably in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from pyprofile.warehouse import Warehouse

CATEGORIES = ["electronics", "fashion", "home", "beauty", "sports", "grocery", "books", "toys"]
TIERS = ["budget", "mid", "premium"]
GENDERS = ["female", "male", "other"]
INCOME_BANDS = ["<25k", "25-50k", "50-100k", "100k+"]
REGIONS = ["north", "south", "east", "west", "central"]
CHANNELS = ["organic", "paid_search", "paid_social", "email", "referral", "affiliate"]
EVENT_TYPES = ["page_view", "product_view", "add_to_cart", "checkout", "purchase"]


@dataclass(frozen=True)
class CustomerType:
    name: str
    share: float
    age: tuple[float, float]  # mean, sd
    gender: tuple[float, ...]
    income: tuple[float, ...]
    region: tuple[float, ...]
    channel: tuple[float, ...]
    orders_per_month: float  # mean purchase rate while active
    basket_items: float  # mean items per order
    categories: tuple[float, ...]  # Dirichlet concentration over CATEGORIES
    tiers: tuple[float, ...]  # price-tier probabilities
    discount_prob: float
    return_prob: float
    sessions_per_month: float  # browsing sessions without a purchase


TYPES = [
    CustomerType(
        "loyal_high_spender",
        0.15,
        (46, 9),
        (0.48, 0.50, 0.02),
        (0.03, 0.12, 0.40, 0.45),
        (0.15, 0.15, 0.20, 0.20, 0.30),
        (0.40, 0.20, 0.05, 0.20, 0.15, 0.00),
        2.4,
        3.2,
        (6, 1, 5, 1, 2, 3, 2, 1),
        (0.10, 0.35, 0.55),
        0.04,
        0.03,
        1.0,
    ),
    CustomerType(
        "bargain_hunter",
        0.22,
        (33, 8),
        (0.62, 0.36, 0.02),
        (0.30, 0.45, 0.20, 0.05),
        (0.25, 0.25, 0.15, 0.15, 0.20),
        (0.05, 0.10, 0.15, 0.35, 0.05, 0.30),
        1.0,
        1.6,
        (1, 6, 1, 5, 1, 2, 1, 2),
        (0.75, 0.22, 0.03),
        0.70,
        0.12,
        2.0,
    ),
    CustomerType(
        "new_customer",
        0.12,
        (27, 6),
        (0.50, 0.47, 0.03),
        (0.25, 0.40, 0.28, 0.07),
        (0.20, 0.20, 0.20, 0.20, 0.20),
        (0.10, 0.15, 0.55, 0.05, 0.10, 0.05),
        0.0,
        2.0,
        (2, 3, 1, 2, 3, 1, 1, 1),
        (0.35, 0.50, 0.15),
        0.35,
        0.06,
        2.0,
    ),
    CustomerType(
        "lapsing",
        0.16,
        (41, 11),
        (0.52, 0.46, 0.02),
        (0.12, 0.35, 0.40, 0.13),
        (0.20, 0.30, 0.20, 0.10, 0.20),
        (0.25, 0.30, 0.10, 0.20, 0.10, 0.05),
        1.0,
        2.2,
        (2, 2, 4, 1, 4, 2, 3, 1),
        (0.30, 0.55, 0.15),
        0.20,
        0.15,
        0.6,
    ),
    CustomerType(
        "one_off",
        0.17,
        (37, 13),
        (0.50, 0.48, 0.02),
        (0.20, 0.35, 0.33, 0.12),
        (0.20, 0.20, 0.20, 0.20, 0.20),
        (0.15, 0.35, 0.20, 0.05, 0.10, 0.15),
        0.0,
        1.8,
        (2, 2, 2, 1, 2, 1, 3, 4),
        (0.40, 0.45, 0.15),
        0.25,
        0.10,
        0.2,
    ),
    CustomerType(
        "window_shopper",
        0.18,
        (24, 5),
        (0.45, 0.51, 0.04),
        (0.40, 0.40, 0.17, 0.03),
        (0.20, 0.20, 0.20, 0.20, 0.20),
        (0.15, 0.10, 0.55, 0.05, 0.10, 0.05),
        0.0,
        0.0,
        (3, 3, 1, 2, 2, 1, 1, 2),
        (0.40, 0.45, 0.15),
        0.0,
        0.0,
        1.5,
    ),
]

DEFAULT_END = date(2025, 12, 31)
DAYS = 730  # two years of history


@dataclass
class DemoSummary:
    customers: int
    orders: int
    order_items: int
    products: int
    events: int


def _daily_weights(start: date, n_days: int) -> np.ndarray:
    """Relative purchase intensity per day: weekly cycle, yearly wave and a holiday peak."""
    days = np.array([start + timedelta(days=int(i)) for i in range(n_days)])
    weekday = np.array([d.weekday() for d in days])
    doy = np.array([d.timetuple().tm_yday for d in days])
    weekly = np.array([0.95, 0.92, 0.95, 1.0, 1.1, 1.3, 1.25])[weekday]
    yearly = 1 + 0.2 * np.sin(2 * np.pi * (doy - 100) / 365.25)
    holiday = np.where((doy >= 325) & (doy <= 358), 1.6, 1.0)  # late Nov to Christmas
    return weekly * yearly * holiday


class _Sampler:
    """Draws days in [lo, hi] with probability proportional to the daily weights."""

    def __init__(self, weights: np.ndarray):
        self.cdf = np.concatenate([[0.0], np.cumsum(weights)])

    def days(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        a, b = self.cdf[lo], self.cdf[hi + 1]
        u = a + rng.random(len(lo)) * (b - a)
        return np.clip(np.searchsorted(self.cdf, u, side="right") - 1, lo, hi)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return (u > cum).sum(axis=1)


def _products(rng: np.random.Generator, n_products: int) -> pa.Table:
    cat = rng.integers(0, len(CATEGORIES), n_products)
    tier = rng.choice(3, n_products, p=[0.45, 0.40, 0.15])
    base = np.array([180, 45, 60, 25, 55, 12, 18, 30], dtype=float)[cat]
    mult = np.array([0.55, 1.0, 2.4])[tier]
    price = np.round(base * mult * rng.lognormal(0, 0.35, n_products), 2) + 0.99
    brand = rng.integers(1, 41, n_products)
    return pa.table(
        {
            "product_no": np.arange(1, n_products + 1),
            "category": np.array(CATEGORIES)[cat],
            "tier": tier,
            "cat_idx": cat,
            "brand": [f"brand_{b:02d}" for b in brand],
            "price": price,
        }
    )


def _chunk(
    rng: np.random.Generator,
    first_no: int,
    n: int,
    products: pa.Table,
    sampler: _Sampler,
    start: date,
    counters: dict[str, int],
) -> dict[str, pa.Table]:
    """Generate n customers with all their orders, items and events."""
    end_day = DAYS - 1
    shares = np.array([t.share for t in TYPES])
    ctype = rng.choice(len(TYPES), n, p=shares / shares.sum())

    def per_type(attr: str) -> np.ndarray:
        return np.array([getattr(t, attr) for t in TYPES], dtype=float)[ctype]

    def draw(attr: str, labels: list[str]) -> np.ndarray:
        probs = np.array([getattr(t, attr) for t in TYPES], dtype=float)[ctype]
        return np.array(labels)[_choice_rows(rng, probs)]

    ages = np.array([t.age for t in TYPES])[ctype]
    age = np.clip(np.round(rng.normal(ages[:, 0], ages[:, 1])), 18, 90).astype(int)
    gender, income = draw("gender", GENDERS), draw("income", INCOME_BANDS)
    region, channel = draw("region", REGIONS), draw("channel", CHANNELS)

    # activity windows (day indices into the 2-year history)
    name = np.array([t.name for t in TYPES])[ctype]
    signup = rng.integers(0, DAYS - 120, n)
    is_new = name == "new_customer"
    signup[is_new] = rng.integers(DAYS - 90, DAYS, is_new.sum())
    active_end = np.full(n, end_day)
    lapsing = name == "lapsing"
    signup[lapsing] = rng.integers(0, 300, lapsing.sum())
    active_end[lapsing] = np.minimum(
        signup[lapsing] + rng.integers(120, 400, lapsing.sum()), end_day - 150
    )
    first_order = np.minimum(signup + rng.geometric(0.15, n) - 1, active_end)

    rate = per_type("orders_per_month") / 30.4 * rng.gamma(4.0, 0.25, n)
    span = active_end - first_order + 1
    n_orders = rng.poisson(rate * span)
    n_orders = np.where(
        np.isin(name, ["loyal_high_spender", "bargain_hunter"]), n_orders + 1, n_orders
    )
    n_orders[lapsing] = np.maximum(n_orders[lapsing], 2)
    n_orders[is_new] = 1 + rng.poisson(0.7, is_new.sum())
    n_orders[name == "one_off"] = 1
    n_orders[name == "window_shopper"] = 0

    # orders: the first on first_order, the rest spread over the window by daily intensity
    o_cust = np.repeat(np.arange(n), n_orders)
    is_first = np.ones(len(o_cust), dtype=bool)
    is_first[1:] = o_cust[1:] != o_cust[:-1]
    o_day = sampler.days(rng, first_order[o_cust], active_end[o_cust])
    o_day[is_first] = first_order[o_cust[is_first]]
    hour_p = np.array(
        [
            1,
            0.5,
            0.3,
            0.2,
            0.2,
            0.3,
            0.8,
            1.5,
            2.5,
            3,
            3.2,
            3.5,
            4,
            3.8,
            3.5,
            3.4,
            3.5,
            4,
            4.8,
            5.5,
            6,
            5.5,
            4,
            2,
        ]
    )
    o_sec = (
        o_day * 86400
        + rng.choice(24, len(o_cust), p=hour_p / hour_p.sum()) * 3600
        + rng.integers(0, 3600, len(o_cust))
    )
    order_no = counters["order"] + np.arange(len(o_cust))
    counters["order"] += len(o_cust)

    # items: category from the customer's own preference, tier from the type, product by popularity
    cat_pref = rng.gamma(np.array([t.categories for t in TYPES], dtype=float)[ctype])
    cat_pref /= cat_pref.sum(axis=1, keepdims=True)
    basket = per_type("basket_items")[o_cust]
    n_items = 1 + rng.poisson(np.maximum(basket - 1, 0) * rng.gamma(3.0, 1 / 3.0, len(o_cust)))
    i_order = np.repeat(np.arange(len(o_cust)), n_items)
    i_cust = o_cust[i_order]
    i_cat = _choice_rows(rng, cat_pref[i_cust])
    i_tier = _choice_rows(rng, np.array([t.tiers for t in TYPES])[ctype[i_cust]])
    p_cat = products.column("cat_idx").to_numpy()
    p_tier = products.column("tier").to_numpy()
    p_price = products.column("price").to_numpy()
    i_prod = np.zeros(len(i_order), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        for t in range(3):
            mask = (i_cat == c) & (i_tier == t)
            pool = np.flatnonzero((p_cat == c) & (p_tier == t))
            if len(pool) == 0:
                pool = np.flatnonzero(p_cat == c)
            if mask.any():
                pop = 1.0 / np.arange(1, len(pool) + 1) ** 0.8  # Zipf-like popularity
                i_prod[mask] = pool[rng.choice(len(pool), mask.sum(), p=pop / pop.sum())]
    qty = 1 + rng.poisson(0.25, len(i_order))
    unit_price = p_price[i_prod]
    gross = np.bincount(i_order, weights=qty * unit_price, minlength=len(o_cust))
    discounted = rng.random(len(o_cust)) < per_type("discount_prob")[o_cust]
    discount = np.round(np.where(discounted, gross * rng.uniform(0.1, 0.35, len(o_cust)), 0), 2)
    amount = np.round(gross - discount, 2)
    u = rng.random(len(o_cust))
    status = np.where(
        u < 0.02,
        "cancelled",
        np.where(
            rng.random(len(o_cust)) < per_type("return_prob")[o_cust], "returned", "completed"
        ),
    )

    # events: a session before every order, plus browsing sessions without a purchase
    months = (np.minimum(active_end + 30, end_day) - signup + 1) / 30.4
    n_browse = rng.poisson(per_type("sessions_per_month") * months * rng.gamma(3.0, 1 / 3.0, n))
    b_cust = np.repeat(np.arange(n), n_browse)
    b_day = sampler.days(rng, signup[b_cust], np.minimum(active_end[b_cust] + 30, end_day))
    b_sec = b_day * 86400 + rng.integers(8 * 3600, 23 * 3600, len(b_cust))
    b_views = 1 + rng.poisson(2.0, len(b_cust))
    b_cart = rng.random(len(b_cust)) < 0.15
    s_cust = np.concatenate([o_cust, b_cust])
    s_start = np.concatenate([o_sec - rng.integers(300, 2400, len(o_cust)), b_sec])
    session_no = counters["session"] + np.arange(len(s_cust))
    counters["session"] += len(s_cust)
    n_purchase_sessions = len(o_cust)

    ev_session, ev_type, ev_offset, ev_product = [], [], [], []

    def add(sessions, etype, offset, product):
        ev_session.append(sessions)
        ev_type.append(np.full(len(sessions), EVENT_TYPES.index(etype), dtype=np.int8))
        ev_offset.append(offset)
        ev_product.append(product)

    all_s = np.arange(len(s_cust))
    add(all_s, "page_view", np.zeros(len(all_s)), np.full(len(all_s), -1))
    # purchase sessions: view and add to cart each bought product, then check out and buy
    add(i_order, "product_view", rng.integers(20, 200, len(i_order)), i_prod)
    add(i_order, "add_to_cart", rng.integers(200, 280, len(i_order)), i_prod)
    ord_s = np.arange(n_purchase_sessions)
    end_off = (o_sec - s_start[:n_purchase_sessions]).astype(float)
    add(ord_s, "checkout", end_off - 60, np.full(len(ord_s), -1))
    add(ord_s, "purchase", end_off, np.full(len(ord_s), -1))
    # browsing sessions: product views in the customer's preferred categories, some carts
    v_sess = np.repeat(np.arange(len(b_cust)), b_views)
    v_cat = _choice_rows(rng, cat_pref[b_cust[v_sess]])
    v_prod = np.zeros(len(v_sess), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        mask = v_cat == c
        pool = np.flatnonzero(p_cat == c)
        if mask.any():
            v_prod[mask] = pool[rng.integers(0, len(pool), mask.sum())]
    add(n_purchase_sessions + v_sess, "product_view", rng.integers(20, 900, len(v_sess)), v_prod)
    first_view = np.ones(len(v_sess), dtype=bool)
    first_view[1:] = v_sess[1:] != v_sess[:-1]
    cart_rows = first_view & b_cart[v_sess]
    add(
        n_purchase_sessions + v_sess[cart_rows],
        "add_to_cart",
        np.full(cart_rows.sum(), 950),
        v_prod[cart_rows],
    )

    ev_s = np.concatenate(ev_session)
    epoch = int((start - date(1970, 1, 1)).days) * 86400
    cust_no = first_no + np.arange(n)
    customers = pa.table(
        {
            "customer_no": cust_no,
            "signup_sec": epoch + signup * 86400 + rng.integers(0, 86400, n),
            "age": age,
            "birth_offset": rng.integers(0, 365, n),
            "gender": gender,
            "income_band": income,
            "region": region,
            "channel": channel,
            "null_gender": rng.random(n) < 0.03,
            "null_income": rng.random(n) < 0.05,
        }
    )
    orders = pa.table(
        {
            "order_no": order_no,
            "customer_no": cust_no[o_cust],
            "ordered_sec": epoch + o_sec,
            "amount": amount,
            "discount": discount,
            "status": status,
        }
    )
    items = pa.table(
        {
            "order_no": order_no[i_order],
            "product_no": i_prod + 1,
            "quantity": qty,
            "unit_price": unit_price,
        }
    )
    ev_prod = np.concatenate(ev_product)
    events = pa.table(
        {
            "customer_no": cust_no[s_cust[ev_s]],
            "event_sec": epoch + s_start[ev_s] + np.concatenate(ev_offset).astype(np.int64),
            "event_type": np.array(EVENT_TYPES)[np.concatenate(ev_type)],
            "product_no": pa.array(ev_prod + 1, mask=ev_prod < 0),
            "session_no": session_no[ev_s],
        }
    )
    truth = pa.table({"customer_no": cust_no, "customer_type": name})
    return {
        "customers": customers,
        "orders": orders,
        "items": items,
        "events": events,
        "truth": truth,
    }


_DDL = """
create schema if not exists raw;
create schema if not exists demo_truth;
create or replace table raw.products (product_id varchar, category varchar, brand varchar,
    price decimal(12, 2));
create or replace table raw.customers (customer_id varchar, email varchar, signup_at timestamp,
    birth_date date, gender varchar, income_band varchar, region varchar, channel varchar);
create or replace table raw.orders (order_id varchar, customer_id varchar, ordered_at timestamp,
    amount decimal(12, 2), discount decimal(12, 2), status varchar);
create or replace table raw.order_items (order_id varchar, product_id varchar, quantity integer,
    unit_price decimal(12, 2));
create or replace table raw.events (customer_id varchar, event_at timestamp, event_type varchar,
    product_id varchar, session_id varchar);
create or replace table demo_truth.customer_types (customer_id varchar, customer_type varchar);
"""

_INSERTS = {
    "customers": """insert into raw.customers select
        'C' || lpad(customer_no::varchar, 7, '0'),
        'customer' || customer_no || '@example.com',
        to_timestamp(signup_sec)::timestamp,
        (date '{end}' - to_years(age) - to_days(birth_offset::int))::date,
        case when null_gender then null else gender end,
        case when null_income then null else income_band end,
        region, channel
        from src""",
    "orders": """insert into raw.orders select
        'O' || lpad(order_no::varchar, 9, '0'), 'C' || lpad(customer_no::varchar, 7, '0'),
        to_timestamp(ordered_sec)::timestamp, amount, discount, status from src""",
    "items": """insert into raw.order_items select
        'O' || lpad(order_no::varchar, 9, '0'), 'P' || lpad(product_no::varchar, 5, '0'),
        quantity, unit_price from src""",
    "events": """insert into raw.events select
        'C' || lpad(customer_no::varchar, 7, '0'), to_timestamp(event_sec)::timestamp,
        event_type, 'P' || lpad(product_no::varchar, 5, '0'), 'S' || session_no from src""",
    "truth": """insert into demo_truth.customer_types select
        'C' || lpad(customer_no::varchar, 7, '0'), customer_type from src""",
}

# A few rows that break the input contract, as real exports do; staging rejects them.
_DIRTY = """
insert into raw.orders select * from raw.orders
    where order_id in (select order_id from raw.orders order by order_id limit 3);
insert into raw.orders values
    ('O_BAD_NULL_CUSTOMER', null, timestamp '{end} 10:00:00', 19.99, 0, 'completed'),
    ('O_BAD_NEGATIVE', (select min(customer_id) from raw.customers), timestamp '{end} 11:00:00',
        -25.00, 0, 'completed'),
    ('O_BAD_ORPHAN', 'C_UNKNOWN', timestamp '{end} 12:00:00', 42.00, 0, 'completed'),
    ('O_BAD_FUTURE', (select max(customer_id) from raw.customers), timestamp '2999-01-01 00:00:00',
        10.00, 0, 'completed');
"""


def generate_demo(
    db,
    *,
    customers: int = 10_000,
    seed: int = 42,
    end_date: date = DEFAULT_END,
    n_products: int = 500,
    chunk_size: int = 50_000,
    dirty: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Write the demo raw tables (replacing them) into the warehouse ``db``; returns row counts."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    wh = Warehouse.open(db)
    rng = np.random.default_rng(seed)
    start = end_date - timedelta(days=DAYS - 1)
    sampler = _Sampler(_daily_weights(start, DAYS))
    products = _products(rng, n_products)
    con = wh.con
    with wh.transaction():
        for stmt in _DDL.split(";"):
            if stmt.strip():
                con.execute(stmt)
        con.register("src", products)
        con.execute("""insert into raw.products select 'P' || lpad(product_no::varchar, 5, '0'),
            category, brand, price from src""")
        con.unregister("src")
    counters = {"order": 1, "session": 1}
    done = 0
    while done < customers:
        n = min(chunk_size, customers - done)
        tables = _chunk(rng, done + 1, n, products, sampler, start, counters)
        # one transaction per chunk keeps memory bounded however many customers are asked for
        with wh.transaction():
            for key, table in tables.items():
                con.register("src", table)
                con.execute(_INSERTS[key].format(end=end_date.isoformat()))
                con.unregister("src")
        done += n
        if progress:
            progress(done, customers)
    if dirty and customers >= 10:
        with wh.transaction():
            con.execute(_DIRTY.format(end=end_date.isoformat()))
    counts = {
        t: wh.count(f"raw.{t}")
        for t in ["customers", "orders", "order_items", "products", "events"]
    }
    wh.close()
    return DemoSummary(
        counts["customers"],
        counts["orders"],
        counts["order_items"],
        counts["products"],
        counts["events"],
    )
