"""The six hidden customer types of the demo, and the label vocabularies they draw from.

A type fixes the demographics, purchase rate, basket size, category and price-tier preferences,
discounts, returns and browsing of its customers. It is written to ``demo_truth`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def type_index(rng: np.random.Generator, n: int) -> np.ndarray:
    """The hidden type (an index into TYPES) of n customers, drawn by the types' shares."""
    shares = np.array([t.share for t in TYPES])
    return rng.choice(len(TYPES), n, p=shares / shares.sum())


def per_type(ctype: np.ndarray, attr: str) -> np.ndarray:
    """A numeric type attribute for each customer (rows of a matrix for tuple attributes)."""
    return np.array([getattr(t, attr) for t in TYPES], dtype=float)[ctype]


def type_names(ctype: np.ndarray) -> np.ndarray:
    """The type name of each customer."""
    return np.array([t.name for t in TYPES])[ctype]
