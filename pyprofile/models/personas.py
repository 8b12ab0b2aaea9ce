"""Readable personas for learned segments, generated from facts in the data (no external service).

For each segment: size and share; how each numeric feature differs from the whole base
(``lift`` = segment mean / base mean, ``z`` = (segment mean - base mean) / base standard
deviation, a standardised mean difference, 0 when fewer than half of the segment have a value);
the top distinguishing features (largest ``|z|``);
the dominant RFM segment; favourite categories (``category_<name>_share`` columns); and
demographics. A short name and a one-paragraph description are composed from those facts only,
deterministically, in the words of the feature dictionary (:mod:`pyprofile.models.dictionary`:
labels, units, adjectives; no column names), and every number in the text is also stored in the
``facts`` JSON column.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.models.data import as_frame
from pyprofile.models.dictionary import adjective, feature, segment_sentence

DEMOGRAPHICS = ("age", "gender", "income_band", "region", "channel")
KEY_FEATURES = ("recency_days", "order_count", "monetary_amount", "tenure_days", "discount_share")

MIN_Z = 0.5  # a feature distinguishes a segment when |z| >= MIN_Z
MIN_COVERAGE = 0.5  # ... and at least this share of the segment has a value for it


def fmt(value: float) -> str:
    """How numbers are written in descriptions (the tests parse them back)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _numeric_columns(frame: pd.DataFrame, skip: set[str]) -> list[str]:
    cols = []
    for col in frame.columns:
        if col in skip or col.endswith("_id"):
            continue
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or (
            pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_datetime64_any_dtype(s)
        ):
            cols.append(col)
        elif (
            s.dtype == object
            and s.notna().any()
            and s.dropna().map(lambda v: hasattr(v, "as_integer_ratio")).all()
        ):
            cols.append(col)  # decimals
    return cols


def _as_float(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.to_numeric(frame[c].astype("Float64"), errors="coerce") for c in cols},
        index=frame.index,
    ).astype("float64")


def _mode(series: pd.Series) -> tuple[Any, float] | None:
    """Most common non-null value (ties: first in sorted order) and its share of all rows."""
    counts = series.dropna().astype(str).value_counts()
    if counts.empty:
        return None
    top = counts[counts == counts.max()].sort_index().index[0]
    return top, float(counts[top] / len(series))


def build_profiles(
    features: Any,
    segments: Any,
    *,
    id_column: str = "customer_id",
    segment_column: str = "segment_id",
    rfm_column: str = "rfm_segment",
    category_pattern: str = r"^category_(.+)_share$",
    demographics: tuple[str, ...] = DEMOGRAPHICS,
    key_features: tuple[str, ...] = KEY_FEATURES,
    top_n: int = 3,
    currency: str = "",
) -> pd.DataFrame:
    """One row per segment: size, share, name, description and the facts behind them.

    ``features`` has one row per customer; ``segments`` maps ``id_column`` to
    ``segment_column``. Returns the rows of ``ml.segment_profiles``.
    """
    data = _joined(features, segments, id_column, segment_column)
    category_cols = {c: m.group(1) for c in data.columns if (m := re.match(category_pattern, c))}
    skip = {id_column, segment_column, *category_cols, *demographics}
    base = _Base(data, _numeric_columns(data, skip), category_cols)
    labels = data[segment_column].to_numpy()
    rows = []
    for seg in sorted(pd.unique(labels)):
        mask = labels == seg
        facts, z, seg_mean = _segment_facts(base, mask, rfm_column, demographics, top_n)
        row = {
            "segment_id": int(seg),
            "size": facts["size"],
            "share": facts["share"],
            "dominant_rfm_segment": (facts["dominant_rfm_segment"] or {}).get("name"),
            "dominant_rfm_share": (facts["dominant_rfm_segment"] or {}).get("share"),
            "favourite_categories": ", ".join(f["category"] for f in facts["favourite_categories"])
            or None,
            "top_features": ", ".join(feature(t["feature"]).label for t in facts["top_features"])
            or None,
        }
        for f in key_features:
            if f in base.num_cols:
                row[f"mean_{f}"] = float(seg_mean[f])
                row[f"z_{f}"] = float(z[f])
        rows.append((row, facts, z))
    names = _unique_names(
        [_name(z, facts) for _, facts, z in rows], [r["segment_id"] for r, _, _ in rows]
    )
    out = []
    for (row, facts, _), name in zip(rows, names, strict=True):
        row["segment_name"] = name
        row["description"] = describe(name, facts, currency)
        row["facts"] = json.dumps(facts, sort_keys=True)
        out.append(row)
    frame = pd.DataFrame(out)
    first = ["segment_id", "segment_name", "size", "share", "description"]
    return frame[first + [c for c in frame.columns if c not in first]]


def _joined(features: Any, segments: Any, id_column: str, segment_column: str) -> pd.DataFrame:
    """Features with each customer's segment (inner join), after checking the columns."""
    feats = as_frame(features)
    segs = as_frame(segments)
    for name, frame, cols in (
        ("features", feats, [id_column]),
        ("segments", segs, [id_column, segment_column]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError(f"{name} ({len(frame)} rows) lacks column(s) {', '.join(missing)}")
    data = feats.merge(segs[[id_column, segment_column]], on=id_column, how="inner")
    if data.empty:
        raise InputError(
            f"no customer of segments ({len(segs)} rows) is in features ({len(feats)} rows)"
        )
    return data


class _Base:
    """The whole base's numbers that every segment is compared with."""

    def __init__(self, data: pd.DataFrame, num_cols: list[str], category_cols: dict[str, str]):
        self.data = data
        self.num_cols = num_cols
        self.category_cols = category_cols
        self.numeric = _as_float(data, num_cols)
        self.cats = _as_float(data, list(category_cols))
        self.mean, self.std = self.numeric.mean(), self.numeric.std(ddof=0)
        self.cat_mean = self.cats.mean()


def _segment_facts(base: _Base, mask: np.ndarray, rfm_column: str, demographics, top_n: int):
    """(facts, z per feature, mean per feature) of the segment selected by ``mask``."""
    seg_mean = base.numeric[mask].mean()
    # A feature only distinguishes a segment when most of its customers have a value.
    covered = base.numeric[mask].notna().mean() >= MIN_COVERAGE
    z = ((seg_mean - base.mean) / base.std.where(base.std > 0)).where(covered).fillna(0.0)
    lift = seg_mean / base.mean.where(base.mean != 0)
    order = [
        f for f in z.abs().sort_values(ascending=False, kind="stable").index if feature(f).describe
    ]
    top = [
        {
            "feature": f,
            "segment_mean": float(seg_mean[f]),
            "base_mean": float(base.mean[f]),
            "lift": None if pd.isna(lift[f]) else float(lift[f]),
            "z": float(z[f]),
        }
        for f in order[:top_n]
        if abs(z[f]) >= MIN_Z
    ]
    data = base.data
    rfm = _mode(data.loc[mask, rfm_column]) if rfm_column in data.columns else None
    facts = {
        "size": int(mask.sum()),
        "share": float(mask.sum() / len(data)),
        "top_features": top,
        "favourite_categories": _favourites(base, mask),
        "dominant_rfm_segment": None if rfm is None else {"name": rfm[0], "share": rfm[1]},
        "demographics": _demographics(data, mask, demographics, base.num_cols),
        "features_z": {f: float(z[f]) for f in base.num_cols},
        **_buying(data, mask),
    }
    return facts, z, seg_mean


def _buying(data: pd.DataFrame, mask: np.ndarray) -> dict[str, float]:
    """The segment's share of customers who bought, and of those who bought exactly once."""
    if "order_count" not in data.columns:
        return {}
    orders = pd.to_numeric(data.loc[mask, "order_count"].astype("Float64"), errors="coerce")
    orders = orders.fillna(0).to_numpy(dtype=float)
    return {
        "buyer_share": float(np.mean(orders > 0)),
        "one_order_share": float(np.mean(orders == 1)),
    }


def _favourites(base: _Base, mask: np.ndarray) -> list[dict[str, Any]]:
    """The segment's two largest category spend shares, with the base's share."""
    if not base.category_cols:
        return []
    cat_mean = base.cats[mask].mean().dropna()
    return [
        {
            "category": base.category_cols[col],
            "segment_share": float(cat_mean[col]),
            "base_share": float(base.cat_mean[col]),
        }
        for col in cat_mean[cat_mean > 0].sort_values(ascending=False, kind="stable").index[:2]
    ]


def _demographics(data: pd.DataFrame, mask: np.ndarray, columns, num_cols) -> dict[str, Any]:
    """Median of numeric demographics, most common value (and its share) of the others."""
    demo: dict[str, Any] = {}
    for col in columns:
        if col not in data.columns:
            continue
        values = data.loc[mask, col]
        if col in num_cols or pd.api.types.is_numeric_dtype(values):
            med = pd.to_numeric(values.astype("Float64"), errors="coerce").median()
            if pd.notna(med):
                demo[col] = {"median": float(med)}
        elif (mode := _mode(values)) is not None:
            demo[col] = {"mode": mode[0], "share": mode[1]}
    return demo


NOT_BUYING, ONE_ORDER = 0.05, 0.9  # buyer shares that name a segment by its buying
_BUYING_WORDS = {"frequent", "occasional", "buying", "non-buying"}


def _name(z: pd.Series, facts: dict[str, Any]) -> str:
    """Two adjectives of the most distinguishing features (|z| >= MIN_Z) that have one in the
    feature dictionary; a segment of customers who have not bought, or bought once, is named
    for that first."""
    prefix = None
    if facts.get("buyer_share", 1.0) <= NOT_BUYING:
        prefix = "not yet buying"
    elif facts.get("one_order_share", 0.0) >= ONE_ORDER:
        prefix = "one-order"
    words: list[str] = [prefix] if prefix else []
    for name in z.abs().sort_values(ascending=False, kind="stable").index:
        if abs(z[name]) < MIN_Z or len(words) == 2:
            break
        word = adjective(name, z[name] > 0) if feature(name).describe else None
        if word and word not in words and not (prefix and word in _BUYING_WORDS):
            words.append(word)
    if not words:
        return "Typical customers"
    return f"{', '.join(words)} customers".capitalize()


def _unique_names(names: list[str], ids: list[int]) -> list[str]:
    counts = pd.Series(names).value_counts()
    return [f"{n} ({i})" if counts[n] > 1 else n for n, i in zip(names, ids, strict=True)]


def _label(column: str) -> str:
    return column.replace("_", " ")


def describe(name: str, facts: dict[str, Any], currency: str = "") -> str:
    """One plain-language paragraph, every number taken from ``facts`` and written with its
    unit (``currency`` before or after amounts)."""
    parts = [f"{name}: {facts['size']:,} customers ({pct(facts['share'])} of the base)."]
    if facts["top_features"]:
        diffs = [
            segment_sentence(t["feature"], t["segment_mean"], t["base_mean"], currency)
            for t in facts["top_features"]
        ]
        parts.append("Compared with everyone: " + "; ".join(diffs) + ".")
    else:
        parts.append("No feature differs much from the whole base.")
    rfm = facts["dominant_rfm_segment"]
    if rfm is not None:
        parts.append(f"Most common RFM segment: {rfm['name']} ({pct(rfm['share'])}).")
    if facts["favourite_categories"]:
        favs = [
            f"{f['category']} ({pct(f['segment_share'])} of spend vs {pct(f['base_share'])} overall)"
            for f in facts["favourite_categories"]
        ]
        parts.append("Favourite categories: " + _join(favs) + ".")
    demo = []
    for col, fact in facts["demographics"].items():
        if "median" in fact:
            demo.append(f"median {_label(col)} {fmt(fact['median'])}")
        else:
            demo.append(f"{_label(col)} mostly {fact['mode']} ({pct(fact['share'])})")
    if demo:
        parts.append("Demographics: " + "; ".join(demo) + ".")
    return " ".join(parts)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
