"""The demo product catalogue (``raw.products``): category, price tier, brand and price."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pyprofile.demo.customer_types import CATEGORIES

BASE_PRICE = np.array([180, 45, 60, 25, 55, 12, 18, 30], dtype=float)  # per CATEGORIES
TIER_SHARES = [0.45, 0.40, 0.15]  # budget, mid, premium
TIER_PRICE = np.array([0.55, 1.0, 2.4])


@dataclass(frozen=True)
class Catalog:
    """The products as a table to write and as arrays to draw from (index = product_no - 1)."""

    table: pa.Table
    category: np.ndarray  # index into CATEGORIES
    tier: np.ndarray  # 0 budget, 1 mid, 2 premium
    price: np.ndarray


def draw_catalog(rng: np.random.Generator, n_products: int) -> Catalog:
    """n_products products with log-normal prices around a category and tier base price."""
    cat = rng.integers(0, len(CATEGORIES), n_products)
    tier = rng.choice(3, n_products, p=TIER_SHARES)
    base = BASE_PRICE[cat]
    mult = TIER_PRICE[tier]
    price = np.round(base * mult * rng.lognormal(0, 0.35, n_products), 2) + 0.99
    brand = rng.integers(1, 41, n_products)
    table = pa.table(
        {
            "product_no": np.arange(1, n_products + 1),
            "category": np.array(CATEGORIES)[cat],
            "brand": [f"brand_{b:02d}" for b in brand],
            "price": price,
        }
    )
    return Catalog(table, cat, tier, price)
