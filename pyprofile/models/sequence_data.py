"""The sequence recommender's data: each customer's time-ordered events as flat token arrays.

A token is one event: a product, an event type and the time gap since the customer's previous
event. Every customer's sequence starts with a start-of-history token, so that a model learns to
predict a customer's first product and an empty history still has a prediction.

Codes (what the network sees):

* items: 0 = padding, 1 = start, ``2 + i`` = the ``i``-th product of the sorted product ids;
* event types: 0 = padding, 1 = start, ``2 + j`` = the ``j``-th of the sorted event types;
* time gaps: 0 = none (padding, start, a customer's first event), else
  ``1 + min(floor(log2(1 + seconds)), GAP_BUCKETS - 2)``: seconds, minutes, hours, days... apart
  (input without times reads as events at one moment: gap bucket 1).

Input rows are ordered by customer, time, product id, then event type (the order of the dbt
model ``features.customer_event_sequences``), so the row order of the input never matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.models.data import as_frame, require_columns

USER, ITEM, TIME, TYPE = "customer_id", "product_id", "timestamp", "event_type"
PAD, START = 0, 1
GAP_BUCKETS = 32
DEFAULT_TYPE = "event"  # the one event type of input without an event_type column
IGNORE = -100  # target of a padded position (torch's cross-entropy ignore_index)


@dataclass
class Sequences:
    """Customers' token sequences, concatenated: customer ``c``'s tokens are
    ``[indptr[c], indptr[c + 1])`` of ``items`` / ``types`` / ``gaps``, the first a start token
    (unless cut off by :meth:`tail`)."""

    customers: np.ndarray
    indptr: np.ndarray
    items: np.ndarray
    types: np.ndarray
    gaps: np.ndarray

    def __len__(self) -> int:
        return len(self.customers)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per customer (the start token included)."""
        return np.diff(self.indptr)

    @property
    def owner(self) -> np.ndarray:
        """Per token, the row of its customer."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def item_counts(self, n_items: int) -> np.ndarray:
        """Occurrences of every product (index ``0 .. n_items - 1``) in the sequences."""
        real = self.items[self.items >= 2].astype(np.int64) - 2
        return np.bincount(real, minlength=n_items)

    def subset(self, keep: np.ndarray) -> Sequences:
        """The tokens where the boolean ``keep`` (one per token) is true, same customers."""
        counts = np.bincount(self.owner[keep], minlength=len(self))
        indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
        return Sequences(
            self.customers, indptr, self.items[keep], self.types[keep], self.gaps[keep]
        )

    def tail(self, length: int) -> Sequences:
        """The latest ``length`` tokens of every customer (what scoring reads)."""
        start = np.repeat(np.maximum(self.indptr[:-1], self.indptr[1:] - length), self.lengths)
        return self.subset(np.arange(len(self.items)) >= start)


def id_array(values: np.ndarray) -> np.ndarray:
    """Ids as an array an artifact can hold (integers, or text), not Python objects."""
    arr = np.asarray(values)
    if arr.dtype == object:
        if len(arr) and all(isinstance(v, (int, np.integer)) for v in arr):
            return arr.astype(np.int64)
        return arr.astype(str)
    return arr


def from_id_array(arr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`id_array` (text ids back to Python strings)."""
    return arr.astype(object) if arr.dtype.kind == "U" else arr


# ---------------------------------------------------------------------- reading the input
def read_tokens(data: Any, what: str = "sequences") -> pd.DataFrame:
    """Validated events: customer_id, product_id, timestamp (datetime) and event_type (text),
    in sequence order. ``timestamp`` may be missing (no time gaps: every token then counts as
    the same moment) and ``event_type`` too (every event is of one type)."""
    frame = as_frame(data, what)
    require_columns(frame, [USER, ITEM], what)
    out = pd.DataFrame({USER: frame[USER], ITEM: frame[ITEM]})
    if TIME in frame.columns:
        out[TIME] = timestamps(frame[TIME])
    else:
        out[TIME] = pd.Timestamp(0)
    out[TYPE] = frame[TYPE].astype(object) if TYPE in frame.columns else DEFAULT_TYPE
    for col in (USER, ITEM, TIME, TYPE):
        bad = int(out[col].isna().sum())
        if bad:
            raise InputError(
                f"{what} ({len(out)} rows): {bad} row(s) have a null or unreadable {col}"
            )
    out[TYPE] = out[TYPE].astype(str)
    return out.sort_values([USER, TIME, ITEM, TYPE], kind="stable").reset_index(drop=True)


def timestamps(values: pd.Series) -> pd.Series:
    """Datetimes (naive UTC); numbers are read as Unix seconds."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return pd.to_datetime(values, unit="s", errors="coerce")
    return pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None)


def tokens_before(tokens: Any, held_out: Any, what: str = "sequences") -> pd.DataFrame:
    """The events of ``tokens`` strictly before each customer's earliest ``held_out`` time
    (a frame with customer_id and timestamp); customers without held-out rows keep all.

    What a model may see when the held-out rows are what it is scored on.
    """
    events = read_tokens(tokens, what)
    held = as_frame(held_out, "held-out rows")
    require_columns(held, [USER, TIME], "held-out rows")
    if held.empty:
        return events
    cutoff = timestamps(held[TIME]).groupby(held[USER].to_numpy()).min()
    limit = events[USER].map(cutoff)
    return events[limit.isna() | (events[TIME] < limit)].reset_index(drop=True)


# ---------------------------------------------------------------------- encoding
def encode(
    events: pd.DataFrame,
    products: pd.Index,
    types: pd.Index,
    *,
    unknown: str = "error",
    what: str = "sequences",
) -> tuple[Sequences, int]:
    """Token sequences of :func:`read_tokens` output, one per customer (sorted ids).

    Products or event types absent from the vocabularies are an error (``unknown="error"``)
    or dropped (``"ignore"``). Returns the sequences and how many events were dropped.
    """
    item = products.get_indexer(events[ITEM])
    kind = types.get_indexer(events[TYPE])
    bad = (item < 0) | (kind < 0)
    if bad.any() and unknown == "error":
        raise InputError(_unknown_message(events, item, kind, what))
    kept = events[~bad]
    user, customers = pd.factorize(events[USER].to_numpy(), sort=True)  # np.unique, hashed
    user = user[~bad]
    counts = np.bincount(user, minlength=len(customers)) + 1  # + the start token
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    n = int(indptr[-1])
    items = np.full(n, START, np.int32)
    kinds = np.full(n, START, np.int16)
    gaps = np.zeros(n, np.int8)
    at = np.arange(len(kept)) + user + 1  # every earlier customer's start token, plus one
    items[at] = item[~bad] + 2
    kinds[at] = kind[~bad] + 2
    gaps[at] = _gap_buckets(kept[TIME].to_numpy(), user)
    return Sequences(customers, indptr, items, kinds, gaps), int(bad.sum())


def _unknown_message(events: pd.DataFrame, item: np.ndarray, kind: np.ndarray, what: str) -> str:
    parts = []
    for codes, col in ((item, ITEM), (kind, TYPE)):
        missing = codes < 0
        if missing.any():
            examples = ", ".join(map(str, pd.unique(events.loc[missing, col])[:5]))
            parts.append(
                f"{int(missing.sum())} row(s) name a {col} the model was not trained on "
                f"(e.g. {examples})"
            )
    return f"{what} ({len(events)} rows): " + "; ".join(parts)


def _gap_buckets(times: np.ndarray, user: np.ndarray) -> np.ndarray:
    """Log2 bucket of the seconds since the same customer's previous event (0: first event)."""
    if len(times) == 0:
        return np.zeros(0, np.int8)
    seconds = times.astype("datetime64[ns]").astype(np.int64) / 1e9
    gap = np.diff(seconds, prepend=seconds[0])
    first = np.r_[True, user[1:] != user[:-1]]
    bucket = 1 + np.minimum(np.floor(np.log2(1.0 + np.maximum(gap, 0.0))), GAP_BUCKETS - 2)
    return np.where(first, 0, bucket).astype(np.int8)


# ---------------------------------------------------------------------- batches
def is_target(seqs: Sequences, codes: np.ndarray | None) -> np.ndarray:
    """Per token: may it be a prediction target (its event type code is in ``codes``; every
    real event when ``codes`` is None)."""
    if codes is None:
        return seqs.items >= 2
    return (seqs.items >= 2) & np.isin(seqs.types, codes)


def next_targets(seqs: Sequences, codes: np.ndarray | None = None) -> np.ndarray:
    """Per token, the flat index of the same customer's next target token after it
    (:func:`is_target`; -1: none). Without ``codes`` it is simply the next token."""
    where = np.flatnonzero(is_target(seqs, codes))
    idx = np.arange(len(seqs.items))
    at = np.searchsorted(where, idx, side="right")
    nxt = np.where(at < len(where), where[np.minimum(at, max(len(where) - 1, 0))], -1)
    owner = seqs.owner
    same = (nxt >= 0) & (owner[np.maximum(nxt, 0)] == owner)
    return np.where(same, nxt, -1)


def windows(
    seqs: Sequences,
    ends: np.ndarray,
    length: int,
    *,
    targets: bool = True,
    following: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Left-padded input windows of ``length`` tokens ending at the flat indices ``ends``
    (items, types, gaps: ``(len(ends), length)``) and, with ``targets``, each position's
    target: the product of its next target token (``following``, from :func:`next_targets`;
    default the next token), a class index, ``IGNORE`` where padded or where none follows."""
    owner = np.searchsorted(seqs.indptr, ends, side="right") - 1
    idx = ends[:, None] - length + 1 + np.arange(length)[None, :]
    valid = idx >= seqs.indptr[owner][:, None]
    safe = np.where(valid, idx, 0)
    out = {
        "items": np.where(valid, seqs.items[safe], PAD).astype(np.int64),
        "types": np.where(valid, seqs.types[safe], PAD).astype(np.int64),
        "gaps": np.where(valid, seqs.gaps[safe], 0).astype(np.int64),
    }
    if targets:
        nxt = safe + 1 if following is None else following[safe]
        target = valid & (nxt >= 0)
        item = seqs.items[np.where(target, nxt, 0)].astype(np.int64) - 2
        out["targets"] = np.where(target, item, IGNORE)
    return out


def last_windows(seqs: Sequences, rows: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """Each customer's latest window (what scoring and embeddings read)."""
    return windows(seqs, seqs.indptr[rows + 1] - 1, length, targets=False)


def seen_items(seqs: Sequences, codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, product indices) of the distinct products of every customer's target
    events (:func:`is_target`: all events without ``codes``, e.g. only purchases with them)."""
    owner = seqs.owner
    real = is_target(seqs, codes)
    width = int(seqs.items.max(initial=2)) + 1
    # one int64 key per (customer, product): sorting keys is far faster than unique rows
    keys = np.unique(owner[real] * width + (seqs.items[real].astype(np.int64) - 2))
    counts = np.bincount(keys // width, minlength=len(seqs))
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    return indptr, (keys % width).astype(np.int32)
