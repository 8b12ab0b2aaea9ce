"""Privacy of a synthetic shop beyond distance to closest record: a membership-inference
attacker and copied order sequences.

- :func:`membership_inference`: the attacker scores each real customer by how close the
  nearest synthetic customer is (closer = "was in the training data") and is measured by the
  ROC AUC of that score between training customers and held-out ones. 0.5 is a coin flip; a
  generator that copies its training rows drives it towards 1.
- :func:`sequence_copies`: synthetic customers whose order sequence (every order's time and
  amount) equals a real customer's, exactly and at day level, next to the same rate between
  held-out real customers and training customers (what chance alone gives).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyprofile.models.synth.quality import distances_to_closest


def membership_inference(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: dict[str, str],
    *,
    max_rows: int = 2000,
    random_state: int = 0,
) -> dict[str, float]:
    """ROC AUC of the distance-to-closest-synthetic-record attacker (members = ``train``)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(random_state)
    n = min(len(train), len(holdout), max_rows)
    if n < 10 or not len(synthetic):
        return {"mia_auc": float("nan"), "mia_rows": float(n)}
    members = train.iloc[np.sort(rng.choice(len(train), n, replace=False))]
    others = holdout.iloc[np.sort(rng.choice(len(holdout), n, replace=False))]
    if len(synthetic) > 20_000:
        synthetic = synthetic.iloc[np.sort(rng.choice(len(synthetic), 20_000, replace=False))]
    d_in, d_out = distances_to_closest(synthetic, [members, others], columns)
    y = np.r_[np.ones(n), np.zeros(n)]
    auc = roc_auc_score(y, -np.r_[d_in, d_out])
    return {"mia_auc": float(auc), "mia_rows": float(n)}


def _signatures(orders: pd.DataFrame, *, by_day: bool) -> pd.Series:
    """Per customer: its orders' (time or day, amount in cents), sorted, as one string."""
    t = pd.to_datetime(orders["ordered_at"])
    seconds = t.to_numpy(dtype="datetime64[s]").astype(np.int64).astype(str)
    when = t.dt.strftime("%Y-%m-%d") if by_day else pd.Series(seconds, index=t.index)
    cents = np.round(pd.to_numeric(orders["amount"]).to_numpy(float) * 100).astype(np.int64)
    key = pd.DataFrame(
        {"c": orders["customer_id"].astype(str), "k": when + "@" + cents.astype(str)}
    )
    key = key.sort_values(["c", "k"])
    return key.groupby("c")["k"].agg("|".join)


def sequence_copies(
    train_orders: pd.DataFrame, holdout_orders: pd.DataFrame, synthetic_orders: pd.DataFrame
) -> dict[str, float]:
    """Synthetic customers whose order sequence equals a real one's (exactly: same times to
    the second and amounts; by day: same days and amounts, customers with 2+ orders), and
    the held-out real customers' rate of the same against the training customers."""
    out = {}
    real = pd.concat([train_orders, holdout_orders])
    exact_real = set(_signatures(real, by_day=False))
    exact_syn = _signatures(synthetic_orders, by_day=False)
    out["sequence_exact_copies"] = float(exact_syn.isin(exact_real).sum())
    out["sequence_exact_copy_share"] = (
        float(exact_syn.isin(exact_real).mean()) if len(exact_syn) else 0.0
    )
    for name, frame in (("synthetic", synthetic_orders), ("holdout", holdout_orders)):
        multi = frame.groupby("customer_id")["order_id"].transform("size") >= 2
        sig = _signatures(frame[multi], by_day=True)
        reference = _signatures(train_orders if name == "holdout" else real, by_day=True)
        share = float(sig.isin(set(reference)).mean()) if len(sig) else 0.0
        out[f"sequence_day_copy_share_{name}"] = share
    return out
