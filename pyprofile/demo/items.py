"""Demo order lines (``raw.order_items``): what each order contains."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pyprofile.demo.customer_types import CATEGORIES, TIERS, per_type
from pyprofile.demo.customers import Cohort
from pyprofile.demo.products import Catalog
from pyprofile.demo.sampling import choice_rows


@dataclass
class Items:
    order: np.ndarray  # row in the chunk's orders
    product: np.ndarray  # row in the catalog (product_no - 1)
    quantity: np.ndarray
    unit_price: np.ndarray


def draw_items(
    rng: np.random.Generator,
    cohort: Cohort,
    cat_pref: np.ndarray,
    order_customer: np.ndarray,
    catalog: Catalog,
) -> Items:
    """Basket size from the type; per line a category from the customer's own preference,
    a tier from the type and a product of that category and tier by popularity."""
    basket = per_type(cohort.ctype, "basket_items")[order_customer]
    spread = rng.gamma(3.0, 1 / 3.0, len(order_customer))
    n_items = 1 + rng.poisson(np.maximum(basket - 1, 0) * spread)
    i_order = np.repeat(np.arange(len(order_customer)), n_items)
    i_cust = order_customer[i_order]
    i_cat = choice_rows(rng, cat_pref[i_cust])
    i_tier = choice_rows(rng, per_type(cohort.ctype[i_cust], "tiers"))
    i_prod = _popular_products(rng, i_cat, i_tier, catalog)
    qty = 1 + rng.poisson(0.25, len(i_order))
    return Items(i_order, i_prod, qty, catalog.price[i_prod])


def _popular_products(
    rng: np.random.Generator, i_cat: np.ndarray, i_tier: np.ndarray, catalog: Catalog
) -> np.ndarray:
    """A product per line, Zipf-like within its category and tier (any tier if none)."""
    i_prod = np.zeros(len(i_cat), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        for t in range(len(TIERS)):
            mask = (i_cat == c) & (i_tier == t)
            pool = np.flatnonzero((catalog.category == c) & (catalog.tier == t))
            if len(pool) == 0:
                pool = np.flatnonzero(catalog.category == c)
            if mask.any():
                pop = 1.0 / np.arange(1, len(pool) + 1) ** 0.8  # Zipf-like popularity
                i_prod[mask] = pool[rng.choice(len(pool), mask.sum(), p=pop / pop.sum())]
    return i_prod


def items_table(items: Items, order_no: np.ndarray) -> pa.Table:
    """The order lines."""
    return pa.table(
        {
            "order_no": order_no[items.order],
            "product_no": items.product + 1,
            "quantity": items.quantity,
            "unit_price": items.unit_price,
        }
    )
