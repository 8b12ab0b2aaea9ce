"""The feature dictionary: how each customer feature is said in plain words.

Personas, segment names, churn reasons and the report describe features through this one
table, never through column names: a label, a unit (which decides how values are written:
days, money in the shop's currency, shares as percentages, counts), the adjectives a segment
gets when it is higher or lower than everyone, a sentence for a segment's average ("last bought
127 days ago on average (everyone: 95 days)") and one for a single customer's value ("no
purchase for 41 days"). Columns the dictionary does not know are described generically from
their name; technical columns (the lifetimes-style summary, which repeats other features) are
never used to describe a segment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """How one feature is said. ``average`` and ``single`` are templates over ``{v}``."""

    label: str
    unit: str = "number"  # days | years | money | share | count | score | number
    higher: str | None = None  # adjective of a segment above everyone (None: never in a name)
    lower: str | None = None
    average: str = "{label} {v} on average"
    single: str = "{label} {v}"
    describe: bool = True  # may a segment be described by it


_F = Feature
FEATURES: dict[str, Feature] = {
    "recency_days": _F(
        "days since the last purchase",
        "days",
        "lapsed",
        "recently active",
        "last bought {v} ago on average",
        "last purchase {v} ago",
    ),
    "order_count": _F(
        "orders",
        "count",
        "frequent",
        "occasional",
        "{v} orders on average",
        "{v} orders",
    ),
    "monetary_amount": _F(
        "total spend",
        "money",
        "high-spending",
        "low-spending",
        "spent {v} in total on average",
        "spent {v} in total",
    ),
    "avg_order_amount": _F(
        "spend per order",
        "money",
        "big-ticket",
        "small-ticket",
        "spent {v} per order on average",
        "{v} per order",
    ),
    "tenure_days": _F(
        "time as a customer",
        "days",
        "long-standing",
        "new",
        "customers for {v} on average",
        "a customer for {v}",
    ),
    "avg_days_between_orders": _F(
        "days between orders",
        "days",
        "slow-repeating",
        "fast-repeating",
        "bought every {v} on average",
        "buys every {v}",
    ),
    "spend_90d_amount": _F(
        "spend in the last 90 days",
        "money",
        "currently spending",
        "currently quiet",
        "spent {v} in the last 90 days on average",
        "spent {v} in the last 90 days",
    ),
    "spend_prev_90d_amount": _F(
        "spend in the 90 days before",
        "money",
        None,
        None,
        "spent {v} in the 90 days before on average",
        "spent {v} in the 90 days before",
    ),
    "spend_trend": _F(
        "spending trend",
        "number",
        "growing",
        "declining",
        "spending trend {v} on average (-1 falling to +1 rising)",
        "spending trend {v}",
    ),
    "return_rate": _F(
        "share of orders returned",
        "share",
        "return-prone",
        "rarely returning",
        "returned {v} of their orders",
        "returned {v} of orders",
    ),
    "discount_share": _F(
        "share of spend discounted",
        "share",
        "discount-driven",
        "full-price",
        "got {v} of their spend as discounts",
        "{v} of spend discounted",
    ),
    "distinct_products": _F(
        "different products bought",
        "count",
        "broad-range",
        "narrow-range",
        "bought {v} different products on average",
        "{v} different products",
    ),
    "avg_basket_size": _F(
        "items per order",
        "count",
        "big-basket",
        "small-basket",
        "bought {v} items per order on average",
        "{v} items per order",
    ),
    "session_count": _F(
        "visits",
        "count",
        "highly engaged",
        "low-engagement",
        "made {v} visits on average",
        "{v} visits",
    ),
    "view_to_cart_rate": _F(
        "visits with a product view that led to the cart",
        "share",
        "decisive",
        "hesitant",
        "put items in the cart in {v} of visits with a product view",
        "put items in the cart in {v} of visits",
    ),
    "cart_to_purchase_rate": _F(
        "visits with a cart that ended in a purchase",
        "share",
        "closing",
        "cart-abandoning",
        "bought in {v} of visits with a cart",
        "bought in {v} of visits with a cart",
    ),
    "days_since_last_visit": _F(
        "days since the last visit",
        "days",
        "no longer visiting",
        "recently visiting",
        "last visited {v} ago on average",
        "no visit for {v}",
    ),
    "has_purchased": _F(
        "share who bought",
        "share",
        "buying",
        "non-buying",
        "{v} have bought",
        "has bought",
    ),
    "r_score": _F("recency score", "score", "recently active", "lapsed", "recency score {v}"),
    "f_score": _F("frequency score", "score", "frequent", "occasional", "frequency score {v}"),
    "m_score": _F("monetary score", "score", "high-spending", "low-spending", "spend score {v}"),
    "age": _F("age", "years", "older", "younger", "aged {v} on average", "aged {v}"),
    # lifetimes-style summary: the same facts as above in another form, kept out of personas
    "frequency": _F(
        "repeat purchase days", "count", single="bought again on {v} days", describe=False
    ),
    "recency": _F(
        "days from first to last purchase",
        "days",
        single="{v} between the first and the last purchase",
        describe=False,
    ),
    "T": _F(
        "days since the first purchase", "days", single="first purchase {v} ago", describe=False
    ),
    "monetary_value": _F(
        "mean value of repeat purchases", "money", single="{v} per repeat purchase", describe=False
    ),
}
_EVENTS = re.compile(r"^(.+)_events$")
_CATEGORY = re.compile(r"^category_(.+)_share$")
_EMBEDDING = re.compile(r"^embedding_(\d+)$")  # a sequence model's customer embedding


def feature(name: str) -> Feature:
    """The dictionary entry of column ``name`` (generic for unknown columns)."""
    if name in FEATURES:
        return FEATURES[name]
    if m := _EVENTS.match(name):
        what = m.group(1).replace("_", " ")
        return Feature(
            f"{what} events",
            "count",
            "highly engaged",
            "low-engagement",
            f"had {{v}} {what} events on average",
            f"{{v}} {what} events",
        )
    if m := _CATEGORY.match(name):
        what = m.group(1).replace("_", " ")
        return Feature(
            f"share of spend on {what}",
            "share",
            f"{what}-loving",
            None,
            f"spent {{v}} of their money on {what}",
            f"{{v}} of spend on {what}",
        )
    if m := _EMBEDDING.match(name):
        label = f"recent-events pattern {m.group(1)}"
        return Feature(label, "number", None, None, f"{label} {{v}} on average", f"{label} {{v}}")
    label = name.replace("_", " ")
    return Feature(label, "number", None, None, f"{label} {{v}} on average", f"{label} {{v}}")


def value(unit: str, x: float | None, currency: str = "") -> str:
    """A number written with its unit: ``127 days``, ``$1,234``, ``35%``, ``4.2``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "unknown"
    x = float(x)
    if unit == "years":
        return f"{x:,.0f}"
    if unit == "days":
        return f"{x:,.0f} day" if round(x) == 1 else f"{x:,.0f} days"
    if unit == "money":
        amount = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"
        return f"{currency}{amount}" if len(currency) <= 1 else f"{amount} {currency}"
    if unit == "share":
        return f"{100 * x:.0f}%"
    if unit == "score":
        return f"{x:.1f} of 5"
    if unit == "count":
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.2f}" if abs(x) < 10 else f"{x:,.1f}"


def segment_sentence(name: str, segment: float, everyone: float, currency: str = "") -> str:
    """``last bought 127 days ago on average (everyone: 95 days)``."""
    f = feature(name)
    seg = value(f.unit, segment, currency)
    base = value(f.unit, everyone, currency)
    return f"{f.average.format(label=f.label, v=seg)} (everyone: {base})"


def adjective(name: str, higher: bool) -> str | None:
    """The word a segment gets for being above (or below) everyone on ``name``, if any."""
    f = feature(name)
    return f.higher if higher else f.lower


def reason(name: str, x, typical, *, level: str | None = None, currency: str = "") -> str:
    """Why one customer's churn risk is up, in words: ``no visit for 41 days (typical: 9
    days)``; a categorical feature reads ``region is north``."""
    if level is not None:
        return f"{name.replace('_', ' ')} is {level}"
    if name == "has_purchased":
        return "has bought" if x else "has not bought yet"
    f = feature(name)
    said = f.single.format(label=f.label, v=value(f.unit, x, currency))
    return f"{said} (typical: {value(f.unit, typical, currency)})"
