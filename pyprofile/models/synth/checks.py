"""Order-level fidelity of a synthetic shop: the shapes that customer features hide.

Each check compares one distribution of the synthetic tables with the real one and scores it
in [0, 1] (1 = identical): ``1 - total variation distance`` for counts and categories
(orders per customer, lines per order, hour of day, weekday, month, statuses, event types,
events per session), ``1 - KS statistic`` for continuous values (days between a customer's
orders, order amounts) and ``1 - |difference|`` for the session funnel rates (view -> cart,
cart -> purchase). Inputs are the cleaned raw tables as pandas frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyprofile.models.synth.quality import ks_statistic

SESSION_GAP = 1800


def epoch_seconds(values: pd.Series) -> np.ndarray:
    """Timestamps as float seconds since 1970 (whatever the frame's time unit)."""
    return pd.to_datetime(values).to_numpy(dtype="datetime64[ms]").astype(np.int64) / 1e3


def _tvd(real: pd.Series, synthetic: pd.Series) -> float:
    p = real.value_counts(normalize=True, dropna=False)
    q = synthetic.value_counts(normalize=True, dropna=False)
    both = p.index.union(q.index)
    return float(0.5 * np.abs(p.reindex(both, fill_value=0) - q.reindex(both, fill_value=0)).sum())


def _ks(real: np.ndarray, synthetic: np.ndarray) -> float:
    real, synthetic = real[np.isfinite(real)], synthetic[np.isfinite(synthetic)]
    if not len(real) or not len(synthetic):
        return float("nan")
    return ks_statistic(np.sort(real), synthetic)


def _orders_per_customer(t: dict) -> pd.Series:
    counts = t["orders"]["customer_id"].value_counts()
    return counts.reindex(t["customers"]["customer_id"].astype(str), fill_value=0).clip(upper=50)


def _gaps(t: dict) -> np.ndarray:
    o = t["orders"].sort_values(["customer_id", "ordered_at"])
    seconds = epoch_seconds(o["ordered_at"])
    same = o["customer_id"].to_numpy()[1:] == o["customer_id"].to_numpy()[:-1]
    return (np.diff(seconds) / 86400.0)[same]


def _sessions(events: pd.DataFrame) -> pd.Series:
    """A session key per event: its session id, else a 30-minute inactivity gap."""
    if "session_id" in events and events["session_id"].notna().all():
        return events["customer_id"].astype(str) + "|" + events["session_id"].astype(str)
    e = events.sort_values(["customer_id", "event_at"])
    t = epoch_seconds(e["event_at"])
    new = np.r_[
        True,
        (e["customer_id"].to_numpy()[1:] != e["customer_id"].to_numpy()[:-1])
        | (np.diff(t) > SESSION_GAP),
    ]
    return pd.Series(np.cumsum(new), index=e.index).reindex(events.index).astype(str)


def _funnel(events: pd.DataFrame, view: str, cart: str, purchase: str) -> tuple[float, float]:
    key = _sessions(events)
    flags = pd.DataFrame({"s": key, "t": events["event_type"].astype(str)})
    has = flags.assign(v=flags["t"] == view, c=flags["t"] == cart, p=flags["t"] == purchase)
    per = has.groupby("s")[["v", "c", "p"]].any()
    view_to_cart = per["c"][per["v"]].mean() if per["v"].any() else np.nan
    cart_to_buy = per["p"][per["c"]].mean() if per["c"].any() else np.nan
    return float(view_to_cart), float(cart_to_buy)


def _times(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column])


def order_checks(
    real: dict,
    synthetic: dict,
    *,
    view_event: str = "product_view",
    cart_event: str = "add_to_cart",
    purchase_event: str = "purchase",
) -> list[dict]:
    """One row per check: ``metric``, ``score`` and the real and synthetic summary value."""
    rows = []

    def add(metric, distance, real_value=None, synthetic_value=None):
        rows.append(
            {
                "metric": metric,
                "score": 1 - distance if np.isfinite(distance) else float("nan"),
                "real": real_value,
                "synthetic": synthetic_value,
            }
        )

    r_opc, s_opc = _orders_per_customer(real), _orders_per_customer(synthetic)
    add("orders_per_customer", _tvd(r_opc, s_opc), r_opc.mean(), s_opc.mean())
    r_gap, s_gap = _gaps(real), _gaps(synthetic)
    add("days_between_orders", _ks(r_gap, s_gap), np.median(r_gap), np.median(s_gap))
    r_amt = pd.to_numeric(real["orders"]["amount"]).to_numpy(float)
    s_amt = pd.to_numeric(synthetic["orders"]["amount"]).to_numpy(float)
    add("order_amount", _ks(r_amt, s_amt), np.median(r_amt), np.median(s_amt))
    r_lines = real["order_items"]["order_id"].value_counts().clip(upper=20)
    s_lines = synthetic["order_items"]["order_id"].value_counts().clip(upper=20)
    add("lines_per_order", _tvd(r_lines, s_lines), r_lines.mean(), s_lines.mean())
    r_t, s_t = _times(real["orders"], "ordered_at"), _times(synthetic["orders"], "ordered_at")
    add("order_hour", _tvd(r_t.dt.hour, s_t.dt.hour))
    add("order_weekday", _tvd(r_t.dt.weekday, s_t.dt.weekday))
    add("order_month", _tvd(r_t.dt.to_period("M"), s_t.dt.to_period("M")))
    if "status" in real["orders"]:
        add("order_status", _tvd(real["orders"]["status"], synthetic["orders"]["status"]))
    if real.get("events") is not None and synthetic.get("events") is not None:
        _event_checks(
            real["events"], synthetic["events"], view_event, cart_event, purchase_event, add
        )
    return rows


def _event_checks(real, synthetic, view, cart, purchase, add) -> None:
    add("event_type", _tvd(real["event_type"], synthetic["event_type"]))
    r_size = _sessions(real).value_counts().clip(upper=30)
    s_size = _sessions(synthetic).value_counts().clip(upper=30)
    add("events_per_session", _tvd(r_size, s_size), r_size.mean(), s_size.mean())
    r_rates, s_rates = _funnel(real, view, cart, purchase), _funnel(synthetic, view, cart, purchase)
    add("view_to_cart_rate", abs(r_rates[0] - s_rates[0]), r_rates[0], s_rates[0])
    add("cart_to_purchase_rate", abs(r_rates[1] - s_rates[1]), r_rates[1], s_rates[1])
    r_t, s_t = _times(real, "event_at"), _times(synthetic, "event_at")
    add("event_hour", _tvd(r_t.dt.hour, s_t.dt.hour))
    add("event_month", _tvd(r_t.dt.to_period("M"), s_t.dt.to_period("M")))
