"""The report's sections: each reads its data (:mod:`~pyprofile.report.data`), draws its plots
(:mod:`~pyprofile.report.plots`) and returns plain blocks for the template.

A block is a dict with a ``kind``: ``tiles`` (items: [(label, value)]), ``plot`` (alt, src),
``note`` (text), ``table`` (columns, rows of text) or ``personas`` (cards). A section that
cannot be drawn raises :class:`~pyprofile.report.data.Skip`; the aggregates behind the main plots go into the
``aggregates`` dict it is given (they become :attr:`ReportSummary.data`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.report.data import (
    AT_RISK,
    Skip,
    Source,
    at_risk_customers,
    churn_evaluation,
    churn_probabilities,
    churn_reasons,
    clv_totals,
    clv_values,
    key_numbers,
    lifetime_checks,
    map_points,
    model_versions,
    one_time_buyers,
    pipeline_steps,
    recommendation_grouping,
    recommender_evaluation,
    rfm_cells,
    rfm_segments,
    segment_profiles,
    segment_selection,
    segment_sizes,
    segment_stats,
    synthetic_quality,
    synthetic_sample,
    top_recommendations,
)
from pyprofile.report.formatting import money, pct
from pyprofile.report.plots import (
    bars_height,
    churn_layout,
    colors,
    draw_churn,
    draw_clv,
    draw_column_shapes,
    draw_lifetime_check,
    draw_recommendations,
    draw_rfm_grid,
    draw_rfm_segments,
    draw_segment_map,
    draw_segment_sizes,
    draw_synthetic,
    render,
)
from pyprofile.warehouse import tables

Block = dict[str, Any]
Aggregates = dict[str, pd.DataFrame]

WORST_COLUMNS = 12  # column-shape scores shown: the lowest ones
FACTS_SHOWN = 8  # facts per persona card
# persona facts shown on the cards, in this order; other short text columns follow
PROFILE_FACTS = {
    "top_features": "stands out on",
    "favourite_categories": "favourite categories",
    "dominant_rfm_segment": "typical RFM segment",
}
PROFILE_SKIP = {
    "segment_id",
    "segment_name",
    "size",
    "share",
    "description",
    "model_version",
    "facts",
    "dominant_rfm_share",
}


def tiles(items: list[tuple[str, str]]) -> Block:
    return {"kind": "tiles", "items": items}


def note(text: str) -> Block:
    return {"kind": "note", "text": text}


def table(columns: list[str], rows: list[list[str]]) -> Block:
    return {"kind": "table", "columns": columns, "rows": rows}


# --------------------------------------------------------------------------- header
def header(src: Source) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Key numbers (label, value) and model versions (table, version) for the page header."""
    count = "{:,}".format
    shown: dict[str, tuple[str, Callable[[Any], str]]] = {
        "customers": ("customers", count),
        "revenue": ("revenue", money),
        "buyers": ("buyers", count),
        "as_of": ("as of", str),
        "segments": ("segments", lambda v: "n/a" if v is None else str(v)),
        "clv_12m": ("predicted 12-month value", money),
    }
    raw = key_numbers(src)
    numbers = [(label, fmt(raw[key])) for key, (label, fmt) in shown.items() if key in raw]
    return numbers, [(table, str(version)) for table, version in model_versions(src)]


# --------------------------------------------------------------------------- segments
def steps(src: Source, aggregates: Aggregates) -> list[Block]:
    """Every ml step: done, skipped (and why), or not run; a part skipped is said too."""
    rows = pipeline_steps(src)
    if all(r["status"] == "not run" for r in rows):
        first = next(iter(tables.RUN_LOGS.values()))
        raise Skip(
            f"table {first} and the other ml run logs do not exist yet (run `pyprofile run`)"
        )
    aggregates["steps"] = pd.DataFrame(rows)
    items = [(r["step"], r["status"]) for r in rows]
    blocks = [tiles(items)]
    for r in rows:
        if r.get("message"):
            blocks.append(note(f"{r['step']} ({r['status']}): {r['message']}"))
    return blocks


def segments(src: Source, aggregates: Aggregates) -> list[Block]:
    seg = segment_sizes(src)
    aggregates["segment_sizes"] = seg
    palette = colors(list(seg["segment_name"]))
    profiles = segment_profiles(src)
    draw = partial(draw_segment_sizes, seg=seg, palette=palette)
    blocks = [
        render("bar chart of segment sizes", 9, bars_height(len(seg), 0.45), draw),
        {"kind": "personas", "cards": persona_cards(seg, profiles, segment_stats(src), palette)},
    ]
    if profiles.empty:
        blocks.append(
            note(f"{tables.SEGMENT_PROFILES} is missing: persona descriptions are not shown.")
        )
    chosen, said = segment_selection(src)
    if chosen:
        c, b = chosen["chosen"], chosen["baseline"]
        blocks.append(
            tiles(
                [
                    (f"chosen: {c['method']}, k = {c['k']}", _criteria(c)),
                    (f"baseline: k-means, k = {b['k']}", _criteria(b)),
                    ("agreement with the baseline (ARI)", f"{chosen['agreement_ari']:.2f}"),
                ]
            )
        )
    blocks.append(note(said))
    return blocks


def _criteria(c: dict[str, Any]) -> str:
    stability = c.get("stability")
    shown = "n/a" if stability is None else f"{stability:.2f}"
    return f"silhouette {c['silhouette']:.3f} · stability {shown}"


def persona_cards(
    seg: pd.DataFrame, profiles: pd.DataFrame, stats: pd.DataFrame, palette: dict[Any, str]
) -> list[dict[str, Any]]:
    """One card per segment: name, colour, size and share, persona text and facts."""
    total = int(seg["customers"].sum())
    cards = []
    for row in seg.itertuples(index=False):
        match = profiles[profiles["segment_id"] == row.segment_id] if len(profiles) else profiles
        prof = match.iloc[0] if len(match) else None
        share = row.customers / total if total else float("nan")
        facts = stat_facts(stats, row.segment_id)
        lead, more = None, None
        if prof is not None:
            if isinstance(prof.get("description"), str):
                lead, more = description(prof["description"], str(row.segment_name))
            # the description already names (and quantifies) the standout features
            facts += [(k, v) for k, v in profile_facts(prof) if not (lead and k == "stands out on")]
        cards.append(
            {
                "name": str(row.segment_name),
                "color": palette[row.segment_name],
                "customers": f"{int(row.customers):,}",
                "share": f"{share:.0%}",
                "lead": lead,
                "more": more,
                "facts": facts[:FACTS_SHOWN],
            }
        )
    return cards


def description(text: str, name: str) -> tuple[str | None, str | None]:
    """The persona text's first informative sentence, and the rest (folded under "more")."""
    sentences = [x for x in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip()) if x]
    if len(sentences) > 1 and sentences[0].lower().startswith(name.lower()):
        sentences = sentences[1:]  # "<name>: N customers (x% of the base)." repeats the header
    lead = sentences[0] if sentences else None
    more = " ".join(sentences[1:]) if len(sentences) > 1 else None
    return lead, more


def stat_facts(stats: pd.DataFrame, segment_id: Any) -> list[tuple[str, str]]:
    """The segment's means (avg spend, churn risk, ...) as (label, formatted value)."""
    hit = stats[stats["segment_id"] == segment_id]
    if hit.empty:
        return []
    out = []
    for col, v in hit.iloc[0].items():
        if col == "segment_id" or v is None or not np.isfinite(v):
            continue
        out.append((col, f"{v:.0%}" if col == "churn risk" else money(v)))
    return out


def profile_facts(prof: pd.Series) -> list[tuple[str, str]]:
    """The persona's named facts, then its other short text columns."""
    out = []
    for key, label in PROFILE_FACTS.items():
        value = prof.get(key)
        if isinstance(value, str) and value:
            share = prof.get("dominant_rfm_share") if key == "dominant_rfm_segment" else None
            if isinstance(share, float | np.floating) and math.isfinite(share):
                value = f"{value} ({share:.0%})"
            out.append((label, value.replace("_", " ")))
    for key, value in prof.items():
        if key in PROFILE_SKIP or key in PROFILE_FACTS or key.startswith(("z_", "mean_")):
            continue
        if isinstance(value, str) and value and len(value) <= 80:
            out.append((str(key).replace("_", " "), value))
    return out


def segment_map(src: Source, aggregates: Aggregates) -> list[Block]:
    points, total = map_points(src)
    palette = colors(list(src.segments()["segment_name"]))
    draw = partial(draw_segment_map, data=points, palette=palette)
    sample = (
        "" if total <= len(points) else f" (a sample of {len(points):,} of {total:,} customers)"
    )
    return [
        render("scatter map of customers coloured by segment", 10, 6, draw),
        note(f"Each dot is a customer{sample}; nearby dots have similar profiles."),
    ]


# --------------------------------------------------------------------------- RFM
def rfm(src: Source, aggregates: Aggregates) -> list[Block]:
    grid = rfm_cells(src)
    aggregates["rfm_grid"] = grid
    blocks = [render("RFM grid heat map", 9, 5.6, partial(draw_rfm_grid, grid=grid))]
    seg = rfm_segments(src)
    if len(seg):
        aggregates["rfm_segments"] = seg
        draw = partial(draw_rfm_segments, seg=seg)
        blocks.append(render("RFM segment sizes", 9, bars_height(len(seg)), draw))
    return blocks


# --------------------------------------------------------------------------- synthetic
def synthetic(src: Source, aggregates: Aggregates) -> list[Block]:
    sample = synthetic_sample(src)
    rows = math.ceil((len(sample.numeric) + len(sample.categorical)) / 3)
    draw = partial(
        draw_synthetic,
        real=sample.real,
        synth=sample.synthetic,
        numeric=sample.numeric,
        categorical=sample.categorical,
    )
    blocks = [render("real vs synthetic distributions", 11, 2.8 * rows + 0.6, draw)]
    quality = synthetic_quality(src)
    if quality is None:
        return [*blocks, note(f"{tables.SYNTHETIC_QUALITY} is missing: no quality scores to show.")]
    shapes = column_shapes(quality)
    if len(shapes):
        worst = shapes.head(WORST_COLUMNS).iloc[::-1]
        draw = partial(draw_column_shapes, shapes=worst, total=len(shapes))
        blocks.append(render("quality score per column", 9, bars_height(len(worst), 0.3), draw))
    return [tiles(quality_tiles(quality)), *blocks]


def quality_tiles(q: pd.DataFrame) -> list[tuple[str, str]]:
    """Headline quality scores of a synthetic run: overall, shapes, pairs, privacy, utility."""

    def score(group: str, metric: str) -> float | None:
        hit = q[(q["metric_group"] == group) & (q["metric"] == metric)]
        return float(hit["score"].iloc[0]) if len(hit) else None

    items = [
        ("quality score", pct(score("overall", "QualityScore"))),
        ("column shapes", pct(score("column_shapes", "mean"))),
        ("column pair trends", pct(score("column_pair_trends", "mean"))),
    ]
    dcr_s, dcr_h = score("privacy", "dcr_synthetic_median"), score("privacy", "dcr_holdout_median")
    if dcr_s is not None and dcr_h is not None:
        items.append(("distance to real: synthetic / holdout", f"{dcr_s:.2f} / {dcr_h:.2f}"))
    copies = score("privacy", "exact_copy_share_synthetic")
    if copies is not None:
        items.append(("exact copies of real rows", f"{copies:.1%}"))
    tstr, trtr = score("utility", "tstr_auc"), score("utility", "trtr_auc")
    if tstr is not None and trtr is not None:
        items.append(("AUC trained on synthetic / real", f"{tstr:.3f} / {trtr:.3f}"))
    epsilon, delta = score("privacy", "dp_epsilon"), score("privacy", "dp_delta")
    guarantee = "none" if epsilon is None else f"ε = {epsilon:.3g}, δ = {delta:.3g}"
    items.append(("differential privacy", guarantee))
    return items


def column_shapes(q: pd.DataFrame) -> pd.DataFrame:
    """column_1, metric, score of each per-column shape score, lowest first."""
    shapes = q[(q["metric_group"] == "column_shapes") & q["column_1"].notna()]
    return shapes[["column_1", "metric", "score"]].dropna().sort_values("score", kind="stable")


# --------------------------------------------------------------------------- churn
def churn(src: Source, aggregates: Aggregates) -> list[Block]:
    p, total = churn_probabilities(src)
    evaluation = churn_evaluation(src)
    if evaluation.lift is not None:
        aggregates["churn_lift"] = evaluation.lift
    if evaluation.calibration is not None:
        aggregates["churn_calibration"] = evaluation.calibration
    reasons = churn_reasons(src)
    shown = {
        "churn score distribution": True,
        "main churn reasons": len(reasons) > 0,
        "held-out lift chart": evaluation.lift is not None,
        "held-out calibration plot": evaluation.calibration is not None,
    }
    rows, cols = churn_layout(sum(shown.values()))
    draw = partial(
        draw_churn, p=p, reasons=reasons, lift=evaluation.lift, calibration=evaluation.calibration
    )
    alt = ", ".join(name for name, present in shown.items() if present)
    blocks = [
        tiles(
            [
                (
                    f"customers at risk (p >= {AT_RISK:g})",
                    f"{at_risk_customers(src):,} of {total:,}",
                ),
                ("mean churn probability", f"{float(np.mean(p)):.1%}"),
            ]
        ),
        render(alt, 4.2 * cols + 0.6, 4 * rows, draw),
    ]
    if evaluation.note:
        blocks.append(note(evaluation.note))
    return blocks


# --------------------------------------------------------------------------- CLV
def clv(src: Source, aggregates: Aggregates) -> list[Block]:
    values, alive = clv_values(src)
    totals = clv_totals(src)
    panels = 2 + (alive.size > 0)
    blocks = [
        tiles(
            [
                ("total predicted 12-month value", money(totals["total"])),
                ("mean per customer", money(totals["mean"])),
                ("median per customer", money(totals["median"])),
            ]
        ),
        render(
            "CLV distribution", 4.2 * panels + 0.6, 4, partial(draw_clv, clv=values, alive=alive)
        ),
    ]
    if int(totals["missing"]):
        blocks.append(
            note(
                f"{int(totals['missing']):,} customers without a purchase have no CLV and are "
                "left out of the value plots and figures."
            )
        )
    check, diagnostics = lifetime_checks(src)
    if check is not None:
        aggregates["bgnbd_holdout"] = check
        blocks.append(
            render("BG/NBD holdout check", 7, 3.6, partial(draw_lifetime_check, table=check))
        )
        blocks.append(
            note(
                "Expected purchases in the label window, by how often customers had bought "
                "before it, against what they did: where the bars differ, BG/NBD's "
                "expected purchases and CLV are off for that group."
            )
        )
    blocks += [note(text) for text in diagnostics]
    once = one_time_buyers(src)
    if once is not None and once[1]:
        blocks.append(
            note(
                f"P(alive) is shown for repeat buyers only: {once[0]:,} of {once[1]:,} buyers "
                f"({once[0] / once[1]:.0%}) bought on a single day, and BG/NBD gives each of them "
                "P(alive) = 1 because it cannot see a one-time buyer drop out. Their chance of "
                "buying again is the churn section's answer (purchase = 1 - churn)."
            )
        )
    return blocks


# --------------------------------------------------------------------------- recommendations
def recommendations(src: Source, aggregates: Aggregates) -> list[Block]:
    grouping = recommendation_grouping(src)
    top = top_recommendations(src, grouping)
    aggregates["top_recommendations"] = top
    known = list(src.segments()["segment_name"]) if grouping.kind == "segment" else []
    groups = sorted(
        dict.fromkeys(top["grp"]),
        key=lambda g: (known.index(g) if g in known else len(known), str(g)),
    )
    rows = math.ceil(len(groups) / (2 if len(groups) > 1 else 1))
    draw = partial(draw_recommendations, top=top, groups=groups, palette=colors(known))
    what = {"segment": "learned segment", "rfm": "RFM segment"}.get(grouping.kind, "all")
    blocks = [
        render("top recommended products per segment", 11, 2.4 * rows + 0.5, draw),
        note(f"Grouped by {what}; product labels are id · category · brand."),
    ]
    evaluation = recommender_evaluation(src)
    if evaluation.table is not None:
        aggregates["recommender_evaluation"] = evaluation.table
        blocks.append(evaluation_table(evaluation.table, evaluation.k))
    return blocks + [note(text) for text in evaluation.notes]


def evaluation_table(frame: pd.DataFrame, k: int | None) -> Block:
    """The recommender comparison as a table block (the chosen model marked)."""
    at = f"@{k}" if k else ""
    columns = ["model", "selection NDCG@10", f"held-out NDCG{at}", f"held-out Recall{at}"]

    def number(v: Any) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    rows = [
        [
            f"{r['model']} (chosen)" if r["chosen"] else r["model"],
            number(r["selection_ndcg@10"]),
            number(r["held_out_ndcg"]),
            number(r["held_out_recall"]),
        ]
        for r in frame.to_dict("records")
    ]
    return table(columns, rows)


# --------------------------------------------------------------------------- the list
@dataclass(frozen=True)
class Section:
    key: str
    title: str
    lead: str
    build: Callable[[Source, Aggregates], list[Block]]


SECTIONS = (
    Section(
        "steps",
        "Pipeline steps",
        "What each ml step did in the last build: done, skipped and why.",
        steps,
    ),
    Section(
        "segments",
        "Segments and personas",
        "Who the learned segments are, and how many customers each holds.",
        segments,
    ),
    Section(
        "rfm",
        "RFM grid",
        "Recency x frequency scores: customers per cell and their mean spend.",
        rfm,
    ),
    Section(
        "segment_map",
        "Segment map",
        "Every customer on a 2-D map of the learned embedding, coloured by segment.",
        segment_map,
    ),
    Section(
        "synthetic",
        "Synthetic customers",
        "How closely the GAN's synthetic customers follow the real ones.",
        synthetic,
    ),
    Section(
        "churn",
        "Churn risk",
        "Predicted churn probability, and how well the score ranks and calibrates real churners.",
        churn,
    ),
    Section("clv", "Customer lifetime value", "Predicted value over the next 12 months.", clv),
    Section(
        "recommendations",
        "Recommended products",
        "The products recommended most often, per segment.",
        recommendations,
    ),
)
