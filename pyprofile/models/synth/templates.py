"""Session shapes: the event-type sequence and timing of real sessions, without who, what or
when, replayed for synthetic orders and browsing sessions.

A template is one real session reduced to its events' types, their offsets in seconds (from
the order a purchase session ends in, or from a browsing session's first event) and a *role*
per product event: the k-th product of the session's order ("line k"), the j-th other product
seen ("other j"), or none. No customer, product or date is kept. A synthetic order of L
distinct products replays a purchase template of L lines (the nearest smaller L when none
exists, its line events repeated for the extra lines) with its own products in the line roles and freshly drawn products in the others; its
whole timing is stretched by one random factor. So the view -> cart -> checkout -> purchase
funnel, repeated views of a product and the session lengths are those of real sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyprofile.models.synth.activity import Indexed, Sessions

NONE, LINE, OTHER = 0, 1, 2
JITTER = 0.15  # log-normal sd of the per-session time stretch


@dataclass
class Templates:
    kind: np.ndarray  # per template: 1 purchase, 0 browsing
    lines: np.ndarray  # distinct products of the order (purchase templates)
    others: np.ndarray  # "other" product slots
    start: np.ndarray  # first event in the event arrays
    length: np.ndarray
    ev_type: np.ndarray
    ev_offset: np.ndarray
    ev_role: np.ndarray
    ev_rank: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(vars(self))


def roles(ix: Indexed, sessions: Sessions) -> pd.DataFrame:
    """Events in session/time order with their session, role and rank."""
    order = sessions.order
    ev = pd.DataFrame(
        {
            "s": sessions.e_session[order],
            "t": ix.e_sec[order],
            "type": ix.e_type[order],
            "p": ix.e_prod[order],
        }
    )
    o = sessions.s_order[ev["s"].to_numpy()]
    pairs = np.unique(ix.i_order.astype(np.int64) * (len(ix.p_cat) + 1) + ix.i_prod)
    key = np.where(o >= 0, o * (len(ix.p_cat) + 1) + ev["p"].to_numpy(), -1)
    in_line = (o >= 0) & (ev["p"].to_numpy() >= 0) & np.isin(key, pairs)
    ev["role"] = np.where(ev["p"] < 0, NONE, np.where(in_line, LINE, OTHER))
    firsts = ev[ev["role"] > 0].drop_duplicates(["s", "p"])
    firsts = firsts.assign(rank=firsts.groupby(["s", "role"]).cumcount())
    ev = ev.merge(firsts[["s", "p", "rank"]], on=["s", "p"], how="left")
    ev["rank"] = ev["rank"].fillna(0).astype(np.int64)
    return ev


def fit_templates(
    ix: Indexed, sessions: Sessions, rng: np.random.Generator, max_per_kind: int
) -> Templates:
    """At most ``max_per_kind`` purchase and browsing templates, drawn at random."""
    ev = roles(ix, sessions)
    n_sessions = len(sessions.s_start)
    order = sessions.s_order
    anchor = np.where(order >= 0, ix.o_sec[np.maximum(order, 0)], sessions.s_start)
    keep = np.zeros(n_sessions, dtype=bool)
    for kind in (order >= 0, order < 0):
        ids = np.flatnonzero(kind)
        if len(ids) > max_per_kind:
            ids = rng.choice(ids, max_per_kind, replace=False)
        keep[ids] = True
    ev = ev[keep[ev["s"].to_numpy()]]
    sess = np.flatnonzero(keep)
    new_id = np.full(n_sessions, -1)
    new_id[sess] = np.arange(len(sess))
    s = new_id[ev["s"].to_numpy()]
    length = np.bincount(s, minlength=len(sess))
    order_lines = np.bincount(
        np.unique(ix.i_order.astype(np.int64) * (len(ix.p_cat) + 1) + ix.i_prod)
        // (len(ix.p_cat) + 1),
        minlength=len(ix.o_sec),
    )
    other_rank = np.where(ev["role"].to_numpy() == OTHER, ev["rank"].to_numpy() + 1, 0)
    others = np.zeros(len(sess), np.int64)
    np.maximum.at(others, s, other_rank)
    return Templates(
        kind=(order[sess] >= 0).astype(np.int64),
        lines=np.where(order[sess] >= 0, order_lines[np.maximum(order[sess], 0)], 0),
        others=others,
        start=np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64),
        length=length.astype(np.int64),
        ev_type=ev["type"].to_numpy(np.int64),
        ev_offset=(ev["t"].to_numpy() - anchor[ev["s"].to_numpy()]).astype(np.int64),
        ev_role=ev["role"].to_numpy(np.int64),
        ev_rank=ev["rank"].to_numpy(np.int64),
    )


def choose(t: Templates, kind: int, lines: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A template per session: purchase templates with the session's number of lines (or the
    nearest smaller number that has templates), browsing templates uniformly."""
    ids = np.flatnonzero(t.kind == kind)
    if not len(ids) or not len(lines):
        return np.full(len(lines), -1, np.int64)
    ids = ids[np.argsort(t.lines[ids], kind="stable")]
    sorted_lines = t.lines[ids]
    lo = np.searchsorted(sorted_lines, lines, "left")
    hi = np.searchsorted(sorted_lines, lines, "right")
    missing = hi == lo
    fallback = sorted_lines[np.maximum(lo - 1, 0)]
    target = np.where(missing, fallback, lines)
    lo = np.searchsorted(sorted_lines, target, "left")
    hi = np.searchsorted(sorted_lines, target, "right")
    pick = lo + np.floor(rng.random(len(lines)) * (hi - lo)).astype(np.int64)
    return ids[np.minimum(pick, len(ids) - 1)]


@dataclass
class Replay:
    """Synthetic sessions to fill: template, anchor time, customer, and its order's products
    (``line_start``/``line_count`` into ``line_products``; count 0 for browsing)."""

    template: np.ndarray
    anchor: np.ndarray
    customer: np.ndarray
    line_start: np.ndarray
    line_count: np.ndarray
    line_products: np.ndarray


def replay(t: Templates, r: Replay, draw_products, rng: np.random.Generator) -> dict:
    """Events of the sessions in ``r``: session row, seconds, type code and product row (-1
    for none). ``draw_products(sessions, rng)`` draws one product for each session row given
    (from that session's customer's tastes)."""
    ok = r.template >= 0
    sess = np.flatnonzero(ok)
    tpl = r.template[sess]
    length = t.length[tpl]
    row = np.repeat(sess, length)
    within = np.arange(len(row)) - np.repeat(np.cumsum(length) - length, length)
    idx = np.repeat(t.start[tpl], length) + within
    row, idx, rank = _repeat_lines(t, r, row, idx)
    stretch = np.exp(rng.normal(0.0, JITTER, len(r.template)))
    seconds = r.anchor[row] + np.round(t.ev_offset[idx] * stretch[row]).astype(np.int64)
    role = t.ev_role[idx]
    # one product per "other" slot of each session, shared by all its events in that slot
    slots = np.zeros(len(r.template), np.int64)
    slots[sess] = t.others[tpl]
    slot_start = np.concatenate([[0], np.cumsum(slots)[:-1]])
    slot_products = draw_products(np.repeat(np.arange(len(slots)), slots), rng)
    product = np.full(len(row), -1, np.int64)
    is_other = role == OTHER
    product[is_other] = slot_products[slot_start[row[is_other]] + rank[is_other]]
    is_line = role == LINE
    has_line = is_line & (rank < r.line_count[row])
    product[has_line] = r.line_products[r.line_start[row[has_line]] + rank[has_line]]
    spare = is_line & ~has_line
    if spare.any():
        product[spare] = draw_products(row[spare], rng)
    return {"session": row, "seconds": seconds, "type": t.ev_type[idx], "product": product}


def _repeat_lines(t: Templates, r: Replay, row: np.ndarray, idx: np.ndarray):
    """Events (session row, template event, product rank) with the line events of a template
    of L lines repeated for an order of more lines (``choose`` falls back to a smaller L when
    no real session had as many): line k >= L replays the events of line k mod L, at the same
    times. So every product of an order is viewed and carted in its purchase session."""
    role, rank = t.ev_role[idx], t.ev_rank[idx]
    lines = np.maximum(t.lines[r.template[row]], 1)
    need = np.maximum(-(-r.line_count[row] // lines), 1)
    copies = np.where(role == LINE, need, 1)
    if (copies == 1).all():
        return row, idx, rank
    copy = np.arange(copies.sum()) - np.repeat(np.cumsum(copies) - copies, copies)
    row, idx = np.repeat(row, copies), np.repeat(idx, copies)
    rank = np.repeat(rank, copies) + copy * np.repeat(lines, copies)
    keep = (copy == 0) | (rank < r.line_count[row])
    return row[keep], idx[keep], rank[keep]
