"""One chunk of demo customers with all their rows, drawn from one random generator.

The draws happen in a fixed order (customers, orders, items, payments, sessions, events, then
the customers' remaining columns): that order is what makes a seed reproduce its data.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from pyprofile.demo.customers import (
    category_preferences,
    customers_table,
    draw_cohort,
    truth_table,
)
from pyprofile.demo.events import draw_sessions, events_table, session_events
from pyprofile.demo.items import draw_items, items_table
from pyprofile.demo.orders import orders_table, place_orders, settle_orders
from pyprofile.demo.products import Catalog
from pyprofile.demo.sampling import DaySampler
from pyprofile.demo.seasonality import epoch_seconds


def generate_chunk(
    rng: np.random.Generator,
    first_no: int,
    n: int,
    catalog: Catalog,
    sampler: DaySampler,
    start: date,
    counters: dict[str, int],
) -> dict[str, pa.Table]:
    """Generate n customers (numbered from first_no) with all their orders, items and events."""
    cohort = draw_cohort(rng, n)
    orders = place_orders(rng, cohort, sampler, counters)
    cat_pref = category_preferences(rng, cohort)
    items = draw_items(rng, cohort, cat_pref, orders.customer, catalog)
    payments = settle_orders(rng, cohort, orders, items)
    sessions = draw_sessions(rng, cohort, orders, sampler, counters)
    events = session_events(rng, sessions, orders, items, cat_pref, catalog)
    epoch = epoch_seconds(start)
    cust_no = first_no + np.arange(n)
    return {
        "customers": customers_table(rng, cohort, cust_no, epoch),  # the last draws
        "orders": orders_table(orders, payments, cust_no, epoch),
        "items": items_table(items, orders.number),
        "events": events_table(events, sessions, cust_no, epoch),
        "truth": truth_table(cohort, cust_no),
    }
