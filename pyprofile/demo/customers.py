"""Demo customers (``raw.customers`` and ``demo_truth.customer_types``).

A cohort is one chunk of customers: hidden type, demographics, activity window and how many
orders each places. Days are indices into the history (0 = its first day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pyprofile.demo.customer_types import (
    CHANNELS,
    GENDERS,
    INCOME_BANDS,
    REGIONS,
    per_type,
    type_index,
    type_names,
)
from pyprofile.demo.sampling import choice_rows
from pyprofile.demo.seasonality import DAYS, LAST_DAY


@dataclass
class Cohort:
    ctype: np.ndarray  # index into TYPES
    name: np.ndarray  # type name
    age: np.ndarray
    gender: np.ndarray
    income: np.ndarray
    region: np.ndarray
    channel: np.ndarray
    signup: np.ndarray  # day of signup
    active_end: np.ndarray  # last day the customer may order
    first_order: np.ndarray  # day of the first order
    n_orders: np.ndarray

    def __len__(self) -> int:
        return len(self.ctype)


def draw_cohort(rng: np.random.Generator, n: int) -> Cohort:
    """n customers: type, demographics, activity window and order count, in this draw order."""
    ctype = type_index(rng, n)
    name = type_names(ctype)
    age, gender, income, region, channel = _demographics(rng, ctype)
    signup, active_end, first_order = _activity(rng, name)
    n_orders = _order_counts(rng, ctype, name, first_order, active_end)
    return Cohort(
        ctype, name, age, gender, income, region, channel, signup, active_end, first_order, n_orders
    )


def _demographics(rng: np.random.Generator, ctype: np.ndarray) -> tuple[np.ndarray, ...]:
    """Age, gender, income band, region and channel, each drawn from the type's distribution."""

    def draw(attr: str, labels: list[str]) -> np.ndarray:
        return np.array(labels)[choice_rows(rng, per_type(ctype, attr))]

    ages = per_type(ctype, "age")
    age = np.clip(np.round(rng.normal(ages[:, 0], ages[:, 1])), 18, 90).astype(int)
    gender, income = draw("gender", GENDERS), draw("income", INCOME_BANDS)
    region, channel = draw("region", REGIONS), draw("channel", CHANNELS)
    return age, gender, income, region, channel


def _activity(rng: np.random.Generator, name: np.ndarray) -> tuple[np.ndarray, ...]:
    """Signup day, last active day and first order day: new customers signed up lately,
    lapsing ones stopped at least 150 days before the end."""
    n = len(name)
    signup = rng.integers(0, DAYS - 120, n)
    is_new = name == "new_customer"
    signup[is_new] = rng.integers(DAYS - 90, DAYS, is_new.sum())
    active_end = np.full(n, LAST_DAY)
    lapsing = name == "lapsing"
    signup[lapsing] = rng.integers(0, 300, lapsing.sum())
    active_end[lapsing] = np.minimum(
        signup[lapsing] + rng.integers(120, 400, lapsing.sum()), LAST_DAY - 150
    )
    first_order = np.minimum(signup + rng.geometric(0.15, n) - 1, active_end)
    return signup, active_end, first_order


def _order_counts(
    rng: np.random.Generator,
    ctype: np.ndarray,
    name: np.ndarray,
    first_order: np.ndarray,
    active_end: np.ndarray,
) -> np.ndarray:
    """Orders per customer: Poisson at a gamma-spread type rate over the active window."""
    rate = per_type(ctype, "orders_per_month") / 30.4 * rng.gamma(4.0, 0.25, len(ctype))
    span = active_end - first_order + 1
    n_orders = rng.poisson(rate * span)
    n_orders = np.where(
        np.isin(name, ["loyal_high_spender", "bargain_hunter"]), n_orders + 1, n_orders
    )
    lapsing, is_new = name == "lapsing", name == "new_customer"
    n_orders[lapsing] = np.maximum(n_orders[lapsing], 2)
    n_orders[is_new] = 1 + rng.poisson(0.7, is_new.sum())
    n_orders[name == "one_off"] = 1
    n_orders[name == "window_shopper"] = 0
    return n_orders


def category_preferences(rng: np.random.Generator, cohort: Cohort) -> np.ndarray:
    """Each customer's own category shares, Dirichlet around the type's concentration."""
    cat_pref = rng.gamma(per_type(cohort.ctype, "categories"))
    cat_pref /= cat_pref.sum(axis=1, keepdims=True)
    return cat_pref


def customers_table(
    rng: np.random.Generator, cohort: Cohort, cust_no: np.ndarray, epoch: int
) -> pa.Table:
    """The customer rows; draws signup time of day, birthday and missing values."""
    n = len(cohort)
    return pa.table(
        {
            "customer_no": cust_no,
            "signup_sec": epoch + cohort.signup * 86400 + rng.integers(0, 86400, n),
            "age": cohort.age,
            "birth_offset": rng.integers(0, 365, n),
            "gender": cohort.gender,
            "income_band": cohort.income,
            "region": cohort.region,
            "channel": cohort.channel,
            "null_gender": rng.random(n) < 0.03,
            "null_income": rng.random(n) < 0.05,
        }
    )


def truth_table(cohort: Cohort, cust_no: np.ndarray) -> pa.Table:
    """The hidden type of each customer, for ``demo_truth.customer_types`` only."""
    return pa.table({"customer_no": cust_no, "customer_type": cohort.name})
