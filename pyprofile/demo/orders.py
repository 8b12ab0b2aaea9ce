"""Demo orders (``raw.orders``): when each customer orders, and what each order comes to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pyprofile.demo.customer_types import per_type
from pyprofile.demo.customers import Cohort
from pyprofile.demo.items import Items
from pyprofile.demo.sampling import DaySampler
from pyprofile.demo.seasonality import HOUR_WEIGHTS


@dataclass
class Orders:
    customer: np.ndarray  # row in the cohort
    sec: np.ndarray  # seconds since the first day of the history
    number: np.ndarray  # order_no, unique across chunks


@dataclass
class Payments:
    amount: np.ndarray
    discount: np.ndarray
    status: np.ndarray


def place_orders(
    rng: np.random.Generator, cohort: Cohort, sampler: DaySampler, counters: dict[str, int]
) -> Orders:
    """The first order on first_order, the rest spread over the window by daily intensity."""
    o_cust = np.repeat(np.arange(len(cohort)), cohort.n_orders)
    is_first = np.ones(len(o_cust), dtype=bool)
    is_first[1:] = o_cust[1:] != o_cust[:-1]
    o_day = sampler.days(rng, cohort.first_order[o_cust], cohort.active_end[o_cust])
    o_day[is_first] = cohort.first_order[o_cust[is_first]]
    o_sec = (
        o_day * 86400
        + rng.choice(24, len(o_cust), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum()) * 3600
        + rng.integers(0, 3600, len(o_cust))
    )
    order_no = counters["order"] + np.arange(len(o_cust))
    counters["order"] += len(o_cust)
    return Orders(o_cust, o_sec, order_no)


def settle_orders(
    rng: np.random.Generator, cohort: Cohort, orders: Orders, items: Items
) -> Payments:
    """Amount after the type's discounts, and the status (a few cancelled, some returned)."""
    o_cust = orders.customer
    gross = np.bincount(
        items.order, weights=items.quantity * items.unit_price, minlength=len(o_cust)
    )
    discounted = rng.random(len(o_cust)) < per_type(cohort.ctype, "discount_prob")[o_cust]
    discount = np.round(np.where(discounted, gross * rng.uniform(0.1, 0.35, len(o_cust)), 0), 2)
    amount = np.round(gross - discount, 2)
    u = rng.random(len(o_cust))
    returned = rng.random(len(o_cust)) < per_type(cohort.ctype, "return_prob")[o_cust]
    status = np.where(u < 0.02, "cancelled", np.where(returned, "returned", "completed"))
    return Payments(amount, discount, status)


def orders_table(orders: Orders, payments: Payments, cust_no: np.ndarray, epoch: int) -> pa.Table:
    """The order rows."""
    return pa.table(
        {
            "order_no": orders.number,
            "customer_no": cust_no[orders.customer],
            "ordered_sec": epoch + orders.sec,
            "amount": payments.amount,
            "discount": payments.discount,
            "status": payments.status,
        }
    )
