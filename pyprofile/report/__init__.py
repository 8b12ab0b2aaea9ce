"""One self-contained HTML report of a warehouse's customer profiles, with plots.

:func:`build_report` reads the feature and ``ml`` tables through the :class:`Warehouse` API,
draws each plot with matplotlib (SVG, embedded as base64 ``data:`` images) and writes a single
HTML file with inline CSS and no JavaScript, so it opens offline in any browser and has nothing
that could fail at view time. Every section is optional: when its table is missing the section
says so in one line, and the rest of the report is still written.

Aggregations (counts, means, the RFM grid, per-segment recommendations) run in SQL over whole
tables; distributions are drawn from a seeded sample of at most ``sample_rows`` rows.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import PyprofileError
from pyprofile.warehouse import Warehouse, qualified, quote

__all__ = ["ReportSummary", "SectionResult", "build_report", "lift_table", "rfm_grid"]

FEATURES = "features.customer_features"
SEGMENTS = "ml.customer_segments"
PROFILES = "ml.segment_profiles"
SYNTHETIC = "ml.synthetic_customers"
QUALITY = "ml.synthetic_quality"
SCORES = "ml.customer_scores"
RECOMMENDATIONS = "ml.recommendations"
REGISTRY = "ml.model_registry"
PRODUCT_TABLES = ("staging.stg_shop__products", "raw.products")

# Columns compared between real and synthetic customers, in order of preference.
SYNTH_NUMERIC = (
    "recency_days",
    "order_count",
    "monetary_amount",
    "avg_order_amount",
    "tenure_days",
    "age",
    "session_count",
    "return_rate",
    "discount_share",
)
SYNTH_CATEGORICAL = ("rfm_segment", "region", "channel", "income_band", "gender")
# the CLI command that writes each table
_MAKERS = {
    FEATURES: "features",
    SEGMENTS: "segment",
    SYNTHETIC: "synth",
    SCORES: "score",
    RECOMMENDATIONS: "recommend",
}
WORST_COLUMNS = 12  # column-shape scores shown: the lowest ones

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
INK, MUTED, GRID, ACCENT, SYNTH = "#1f2937", "#6b7280", "#e5e7eb", "#4e79a7", "#f28e2b"


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SectionResult:
    """What happened to one section: rendered with ``plots`` images, or skipped for ``reason``."""

    key: str
    title: str
    rendered: bool
    plots: int = 0
    reason: str | None = None


@dataclass
class ReportSummary:
    """The written file, the fate of every section and the aggregates behind the main plots
    (``data``: segment_sizes, rfm_grid, rfm_segments, churn_lift, top_recommendations)."""

    path: Path
    sections: list[SectionResult] = field(default_factory=list)
    size_bytes: int = 0
    data: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def rendered(self) -> list[str]:
        return [s.key for s in self.sections if s.rendered]

    @property
    def skipped(self) -> dict[str, str]:
        return {s.key: s.reason or "" for s in self.sections if not s.rendered}

    @property
    def plots(self) -> int:
        return sum(s.plots for s in self.sections)


class _Skip(Exception):
    """Raised by a section that cannot be drawn; the message is shown in its place."""


# --------------------------------------------------------------------------- pure helpers
def rfm_grid(
    frame: pd.DataFrame,
    *,
    r: str = "r_score",
    f: str = "f_score",
    m: str = "monetary_amount",
) -> pd.DataFrame:
    """Customers and mean spend per (recency score, frequency score) cell; rows without scores
    (customers who never bought) are left out. Columns: r_score, f_score, customers, mean_spend."""
    data = frame[[r, f, m]].dropna(subset=[r, f])
    grid = (
        data.groupby([r, f])
        .agg(customers=(m, "size"), mean_spend=(m, "mean"))
        .reset_index()
        .rename(columns={r: "r_score", f: "f_score"})
    )
    grid[["r_score", "f_score"]] = grid[["r_score", "f_score"]].astype("int64")
    return grid.sort_values(["r_score", "f_score"], ignore_index=True)


def lift_table(y_true: Any, score: Any, bins: int = 10) -> pd.DataFrame:
    """Lift by score bin (bin 1 = highest scores): rows are sorted by descending score (stable
    for ties) and cut into ``bins`` groups of equal size (the first ``n % bins`` get one more).

    Columns: bin, customers, positives, rate, lift (rate / overall rate), cumulative_lift,
    cumulative_gain (share of all positives captured by bins 1..b)."""
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    if y.shape != s.shape or y.size == 0:
        raise PyprofileError(f"lift needs as many labels as scores, got {y.size} and {s.size}")
    bins = max(1, min(int(bins), y.size))
    order = np.argsort(-s, kind="mergesort")
    groups = np.array_split(y[order], bins)
    base = y.mean()
    customers = np.array([g.size for g in groups])
    positives = np.array([g.sum() for g in groups])
    rate = positives / customers
    cum_rate = np.cumsum(positives) / np.cumsum(customers)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "bin": np.arange(1, bins + 1),
                "customers": customers,
                "positives": positives,
                "rate": rate,
                "lift": rate / base,
                "cumulative_lift": cum_rate / base,
                "cumulative_gain": np.cumsum(positives) / positives.sum(),
            }
        )


# --------------------------------------------------------------------------- plotting
_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": INK,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlecolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "svg.fonttype": "path",  # glyphs as paths: identical rendering without the font installed
    "svg.hashsalt": "pyprofile-report",  # stable ids: the same warehouse gives the same file
}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig) -> str:
    """The figure as an <img> with a base64 SVG data URI."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None}, dpi=110)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" src="data:image/svg+xml;base64,{data}" alt="">'


def _plot(alt: str, width: float, height: float, draw: Callable[[Any], None]) -> str:
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(width, height)
        draw(fig)
        tag = _svg(fig)
    return tag.replace('alt=""', f'alt="{html.escape(alt)}"')


def _bars_height(n: int, per_bar: float = 0.38) -> float:
    """Figure height (inches) for a horizontal bar chart of ``n`` bars."""
    return per_bar * n + 1.3


def _money(x: float) -> str:
    """Compact amount: 1.2M, 34.5k, 678, 9.5."""
    if x is None or not np.isfinite(x):
        return "n/a"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:,.1f}{unit}"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def _colors(keys: Sequence[Any]) -> dict[Any, str]:
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}


# --------------------------------------------------------------------------- context
class _Context:
    """Warehouse access with the lookups several sections share."""

    def __init__(self, wh: Warehouse, sample_rows: int, random_state: int):
        self.wh = wh
        self.sample_rows = sample_rows
        self.random_state = random_state
        self._exists: dict[str, bool] = {}
        self._segments: pd.DataFrame | None = None
        self.data: dict[str, pd.DataFrame] = {}

    def exists(self, name: str) -> bool:
        if name not in self._exists:
            self._exists[name] = self.wh.exists(name)
        return self._exists[name]

    def need(self, name: str, columns: Sequence[str] = ()) -> dict[str, str]:
        """The table's columns, or skip the section saying which table/column is missing."""
        if not self.exists(name):
            hint = (
                f" (run `pyprofile {_MAKERS[name]}` or `pyprofile run`)" if name in _MAKERS else ""
            )
            raise _Skip(f"table {name} does not exist yet{hint}")
        cols = self.wh.columns(name)
        missing = [c for c in columns if c not in cols]
        if missing:
            raise _Skip(f"table {name} has no column {', '.join(missing)}")
        if self.wh.count(name) == 0:
            raise _Skip(f"table {name} is empty")
        return cols

    def frame(self, sql: str) -> pd.DataFrame:
        return self.wh.query(sql).to_pandas()

    def sample(self, name: str, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
        """Up to ``sample_rows`` rows (seeded reservoir sample) and the table's row count."""
        total = self.wh.count(name)
        cols = ", ".join(quote(c) for c in columns)
        sql = f"select {cols} from {qualified(name)}"
        if total > self.sample_rows:
            sql += (
                f" using sample reservoir({int(self.sample_rows)} rows)"
                f" repeatable ({int(self.random_state)})"
            )
        return self.frame(sql), total

    def segments(self) -> pd.DataFrame:
        """segment_id, segment_name, customers per learned segment (ordered by id); may be empty."""
        if self._segments is None:
            self._segments = pd.DataFrame(columns=["segment_id", "segment_name", "customers"])
            if self.exists(SEGMENTS) and {"segment_id", "segment_name"} <= set(
                self.wh.columns(SEGMENTS)
            ):
                self._segments = self.frame(
                    f"select segment_id, min(segment_name) as segment_name, count(*) as customers "
                    f"from {qualified(SEGMENTS)} group by segment_id order by segment_id"
                )
        return self._segments

    def segment_colors(self) -> dict[Any, str]:
        return _colors(list(self.segments()["segment_name"]))

    def version(self, name: str) -> str | None:
        if not self.exists(name) or "model_version" not in self.wh.columns(name):
            return None
        return self.wh.scalar(f"select max(model_version) from {qualified(name)}")


# --------------------------------------------------------------------------- sections
def _header(ctx: _Context) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Key numbers (label, value) and model versions (table, version)."""
    numbers: list[tuple[str, str]] = []
    if ctx.exists(FEATURES):
        cols = ctx.wh.columns(FEATURES)
        numbers.append(("customers", f"{ctx.wh.count(FEATURES):,}"))
        if "monetary_amount" in cols:
            revenue = ctx.wh.scalar(f"select sum(monetary_amount) from {qualified(FEATURES)}")
            numbers.append(("revenue", _money(float(revenue or 0.0))))
        if "has_purchased" in cols:
            buyers = ctx.wh.scalar(
                f"select count(*) from {qualified(FEATURES)} where has_purchased"
            )
            numbers.append(("buyers", f"{int(buyers):,}"))
        if "as_of_date" in cols:
            as_of = ctx.wh.scalar(f"select max(as_of_date) from {qualified(FEATURES)}")
            numbers.append(("as of", str(as_of)))
    segments = ctx.segments()
    numbers.append(("segments", str(len(segments)) if len(segments) else "n/a"))
    if ctx.exists(SCORES) and "clv_12m" in ctx.wh.columns(SCORES):
        clv = ctx.wh.scalar(f"select sum(clv_12m) from {qualified(SCORES)}")
        numbers.append(("predicted 12-month value", _money(float(clv or 0.0))))
    versions = [
        (name, v)
        for name in (SEGMENTS, SYNTHETIC, SCORES, RECOMMENDATIONS)
        if (v := ctx.version(name)) is not None
    ]
    return numbers, versions


def _section_segments(ctx: _Context) -> tuple[str, int]:
    ctx.need(SEGMENTS, ["customer_id", "segment_id", "segment_name"])
    seg = ctx.segments()
    total = int(seg["customers"].sum())
    ctx.data["segment_sizes"] = seg
    colors = ctx.segment_colors()
    profiles = pd.DataFrame()
    if ctx.exists(PROFILES) and "segment_id" in ctx.wh.columns(PROFILES):
        profiles = ctx.frame(f"select * from {qualified(PROFILES)} order by segment_id")
    stats = _segment_stats(ctx)

    def draw(fig):
        ax = fig.add_subplot()
        order = seg.sort_values("customers")
        bars = ax.barh(
            order["segment_name"].astype(str),
            order["customers"],
            color=[colors[n] for n in order["segment_name"]],
        )
        for bar, n in zip(bars, order["customers"], strict=True):
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f"  {int(n):,} ({n / total:.0%})",
                va="center",
                color=INK,
                fontsize=9,
            )
        ax.set_xlabel("customers")
        ax.set_title("Segment sizes")
        ax.grid(axis="y", visible=False)
        ax.set_xlim(0, order["customers"].max() * 1.25)

    plot = _plot("bar chart of segment sizes", 9, _bars_height(len(seg), 0.45), draw)
    cards = []
    for row in seg.itertuples(index=False):
        prof = (
            profiles[profiles["segment_id"] == row.segment_id].iloc[0]
            if len(profiles) and (profiles["segment_id"] == row.segment_id).any()
            else None
        )
        cards.append(_persona_card(row, prof, total, colors[row.segment_name], stats))
    body = plot + f'<div class="personas">{"".join(cards)}</div>'
    if profiles.empty:
        body += _note(f"{PROFILES} is missing: persona descriptions are not shown.")
    return body, 1


_SEGMENT_STATS = {
    FEATURES: (("monetary_amount", "avg spend"), ("order_count", "avg orders")),
    SCORES: (("churn_probability", "churn risk"), ("clv_12m", "avg 12m value")),
}
# persona facts shown on the cards, in this order; other short text columns follow
_PROFILE_FACTS = {
    "top_features": "stands out on",
    "favourite_categories": "favourite categories",
    "dominant_rfm_segment": "typical RFM segment",
}
_PROFILE_SKIP = {
    "segment_id",
    "segment_name",
    "size",
    "share",
    "description",
    "model_version",
    "facts",
    "dominant_rfm_share",
}


def _segment_stats(ctx: _Context) -> pd.DataFrame:
    """Mean spend, orders, churn probability and CLV per segment, from the tables present."""
    selects, joins = [], []
    for i, (table, wanted) in enumerate(_SEGMENT_STATS.items()):
        if not ctx.exists(table) or "customer_id" not in (cols := ctx.wh.columns(table)):
            continue
        alias = f"t{i}"
        selects += [
            f"avg({alias}.{quote(c)}) as {quote(label)}" for c, label in wanted if c in cols
        ]
        joins.append(f"left join {qualified(table)} {alias} using (customer_id)")
    if not selects:
        return pd.DataFrame(columns=["segment_id"])
    return ctx.frame(
        f"select s.segment_id, {', '.join(selects)} from {qualified(SEGMENTS)} s "
        f"{' '.join(joins)} group by s.segment_id"
    )


def _persona_card(row, prof, total: int, color: str, stats: pd.DataFrame) -> str:
    share = row.customers / total if total else float("nan")
    facts = _stat_facts(stats, row.segment_id)
    desc = ""
    if prof is not None:
        if isinstance(prof.get("description"), str):
            desc = _description(prof["description"], str(row.segment_name))
        facts += [
            (k, v) for k, v in _profile_facts(prof) if not (desc and k == "stands out on")
        ]  # the description already names (and quantifies) the standout features
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts[:8])
    return (
        f'<div class="persona" style="border-top-color:{color}">'
        f'<div class="persona-head"><span class="dot" style="background:{color}"></span>'
        f"<h3>{html.escape(str(row.segment_name))}</h3></div>"
        f'<div class="persona-size">{int(row.customers):,} customers · {share:.0%}</div>'
        f"{desc}<dl>{rows}</dl></div>"
    )


def _description(text: str, name: str) -> str:
    """The persona text: its first informative sentence, the rest folded under "more"."""
    sentences = [x for x in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip()) if x]
    if len(sentences) > 1 and sentences[0].lower().startswith(name.lower()):
        sentences = sentences[1:]  # "<name>: N customers (x% of the base)." repeats the header
    head = f"<p>{html.escape(sentences[0])}</p>" if sentences else ""
    if len(sentences) > 1:
        rest = html.escape(" ".join(sentences[1:]))
        head += f"<details><summary>more</summary><p>{rest}</p></details>"
    return head


def _stat_facts(stats: pd.DataFrame, segment_id: Any) -> list[tuple[str, str]]:
    hit = stats[stats["segment_id"] == segment_id]
    if hit.empty:
        return []
    out = []
    for col, v in hit.iloc[0].items():
        if col == "segment_id" or v is None or not np.isfinite(v):
            continue
        out.append((col, f"{v:.0%}" if col == "churn risk" else _money(v)))
    return out


def _profile_facts(prof: pd.Series) -> list[tuple[str, str]]:
    out = []
    for key, label in _PROFILE_FACTS.items():
        value = prof.get(key)
        if isinstance(value, str) and value:
            pct = prof.get("dominant_rfm_share") if key == "dominant_rfm_segment" else None
            if isinstance(pct, float | np.floating) and math.isfinite(pct):
                value = f"{value} ({pct:.0%})"
            out.append((label, value.replace("_", " ")))
    for key, value in prof.items():
        if key in _PROFILE_SKIP or key in _PROFILE_FACTS or key.startswith(("z_", "mean_")):
            continue
        if isinstance(value, str) and value and len(value) <= 80:
            out.append((str(key).replace("_", " "), value))
    return out


def _section_rfm(ctx: _Context) -> tuple[str, int]:
    cols = ctx.need(FEATURES, ["r_score", "f_score", "monetary_amount"])
    grid = ctx.frame(
        f"select cast(r_score as integer) as r_score, cast(f_score as integer) as f_score, "
        f"count(*) as customers, avg(monetary_amount) as mean_spend "
        f"from {qualified(FEATURES)} where r_score is not null and f_score is not null "
        f"group by 1, 2 order by 1, 2"
    )
    if grid.empty:
        raise _Skip(f"table {FEATURES} has no customer with R and F scores (no purchases)")
    ctx.data["rfm_grid"] = grid
    body = _plot("RFM grid heat map", 9, 5.6, lambda fig: _draw_rfm(fig, grid))
    plots = 1
    if "rfm_segment" in cols:
        seg = ctx.frame(
            f"select rfm_segment, count(*) as customers, avg(monetary_amount) as mean_spend "
            f"from {qualified(FEATURES)} where rfm_segment is not null "
            f"group by 1 order by 2 desc"
        )
        if len(seg):
            ctx.data["rfm_segments"] = seg
            draw = partial(_draw_rfm_segments, seg=seg)
            body += _plot("RFM segment sizes", 9, _bars_height(len(seg)), draw)
            plots += 1
    return body, plots


def _draw_rfm(fig, grid: pd.DataFrame) -> None:
    r_vals = list(range(1, int(max(grid["r_score"].max(), 5)) + 1))
    f_vals = list(range(1, int(max(grid["f_score"].max(), 5)) + 1))
    counts = np.zeros((len(f_vals), len(r_vals)))
    spend = np.full((len(f_vals), len(r_vals)), np.nan)
    for row in grid.itertuples(index=False):
        counts[row.f_score - 1, row.r_score - 1] = row.customers
        spend[row.f_score - 1, row.r_score - 1] = row.mean_spend
    ax = fig.add_subplot()
    im = ax.imshow(counts, origin="lower", cmap="Blues", aspect="auto")
    top = counts.max() or 1.0
    for i in range(len(f_vals)):
        for j in range(len(r_vals)):
            n = int(counts[i, j])
            color = "white" if counts[i, j] > 0.55 * top else INK
            label = f"{n:,}\n{_money(spend[i, j])} avg" if n else "0"
            ax.text(j, i, label, ha="center", va="center", fontsize=8.5, color=color)
    ax.set_xticks(range(len(r_vals)), [str(v) for v in r_vals])
    ax.set_yticks(range(len(f_vals)), [str(v) for v in f_vals])
    ax.set_xlabel("recency score (5 = bought most recently)")
    ax.set_ylabel("frequency score (5 = buys most often)")
    ax.set_title("RFM grid: customers and mean spend per cell")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="customers", shrink=0.85)


def _draw_rfm_segments(fig, seg: pd.DataFrame) -> None:
    ax = fig.add_subplot()
    order = seg.iloc[::-1]
    bars = ax.barh(order["rfm_segment"].astype(str), order["customers"], color=ACCENT)
    for bar, n, m in zip(bars, order["customers"], order["mean_spend"], strict=True):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f"  {int(n):,} · {_money(m)} avg",
            va="center",
            fontsize=8.5,
            color=INK,
        )
    ax.set_xlim(0, order["customers"].max() * 1.3)
    ax.set_xlabel("customers")
    ax.set_title("Named RFM segments")
    ax.grid(axis="y", visible=False)


def _section_map(ctx: _Context) -> tuple[str, int]:
    ctx.need(SEGMENTS, ["segment_name", "map_x", "map_y"])
    data, total = ctx.sample(SEGMENTS, ["segment_id", "segment_name", "map_x", "map_y"])
    data = data.dropna(subset=["map_x", "map_y"]).sort_values("segment_id", kind="stable")
    if data.empty:
        raise _Skip(f"table {SEGMENTS} has no map coordinates")
    colors = ctx.segment_colors()

    numbers = {name: i + 1 for i, name in enumerate(colors)}

    def draw(fig):
        ax = fig.add_subplot()
        groups = list(data.groupby("segment_name", sort=False))
        for name, part in groups:
            ax.scatter(
                part["map_x"],
                part["map_y"],
                s=7,
                alpha=0.55,
                color=colors.get(name, ACCENT),
                label=f"{numbers.get(name, '?')}  {name}",
                linewidths=0,
                rasterized=True,  # thousands of points: one embedded bitmap, not SVG paths
            )
        for name, part in groups:  # a numbered badge at each segment's median point
            ax.annotate(
                str(numbers.get(name, "?")),
                (part["map_x"].median(), part["map_y"].median()),
                ha="center",
                va="center",
                fontsize=9,
                fontweight="bold",
                color="white",
                bbox={"boxstyle": "circle,pad=0.3", "fc": colors.get(name, ACCENT), "ec": INK},
            )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
        ax.set_title("Segment map (2-D projection of the customer embedding)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=2.5, fontsize=9)

    note = "" if total <= len(data) else f" (a sample of {len(data):,} of {total:,} customers)"
    body = _plot("scatter map of customers coloured by segment", 10, 6, draw)
    return body + _note(f"Each dot is a customer{note}; nearby dots have similar profiles."), 1


def _section_synthetic(ctx: _Context) -> tuple[str, int]:
    scols = ctx.need(SYNTHETIC, [])
    fcols = ctx.need(FEATURES, [])
    numeric = [c for c in SYNTH_NUMERIC if c in scols and c in fcols][:6]
    categorical = [c for c in SYNTH_CATEGORICAL if c in scols and c in fcols][:3]
    if not numeric and not categorical:
        raise _Skip(f"{SYNTHETIC} and {FEATURES} share none of the compared columns")
    real, _ = ctx.sample(FEATURES, numeric + categorical)
    synth, _ = ctx.sample(SYNTHETIC, numeric + categorical)
    panels = numeric + categorical
    ncols = 3
    nrows = math.ceil(len(panels) / ncols)

    def draw(fig):
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, col in zip(axes, panels, strict=False):
            if col in numeric:
                _draw_numeric_compare(ax, real[col], synth[col])
            else:
                _draw_categorical_compare(ax, real[col], synth[col])
            ax.set_title(col.replace("_", " "), fontsize=10)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        handles = [_patch(ACCENT, "real customers"), _patch(SYNTH, "synthetic customers")]
        fig.legend(handles=handles, loc="outside upper center", ncols=2)

    body = _plot("real vs synthetic distributions", 11, 2.8 * nrows + 0.6, draw)
    plots = 1
    quality = _quality_rows(ctx)
    if quality is None:
        body += _note(f"{QUALITY} is missing: no quality scores to show.")
    else:
        tiles, shapes = quality
        body = _tiles(tiles) + body
        if len(shapes):
            worst = shapes.head(WORST_COLUMNS).iloc[::-1]
            draw = partial(_draw_shapes, shapes=worst, total=len(shapes))
            body += _plot("quality score per column", 9, _bars_height(len(worst), 0.3), draw)
            plots += 1
    return body, plots


def _patch(color: str, label: str):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, alpha=0.6, label=label)


def _bin_edges(values: np.ndarray, bins: int = 30) -> tuple[np.ndarray, bool]:
    """Histogram edges over the 0.5-99.5th percentiles, and whether they are logarithmic.

    Non-negative heavy-tailed values (99.5th percentile over 20x the median) get log-spaced
    edges (below 1 a single bin); integer values get edges between integers, none empty."""
    lo, hi = (float(v) for v in np.nanpercentile(values, [0.5, 99.5]))
    hi = max(hi, lo + 1.0)
    integer = bool(np.all(values == np.round(values)))
    log = lo >= 0 and hi > 20 * max(float(np.median(values)), 1.0)
    if log:
        edges = np.geomspace(max(lo, 1.0), hi, bins)
        if lo < 1.0:
            edges = np.concatenate([[lo], edges])
        if integer:
            edges = np.unique(np.round(edges - 0.5)) + 0.5
            edges = np.concatenate([[lo - 0.5], edges[edges > lo - 0.5]])
    elif integer:
        step = max(1.0, math.ceil((hi - lo) / bins))
        edges = np.arange(lo - 0.5, hi + step, step)
    else:
        edges = np.linspace(lo, hi, bins + 1)
    return edges, log


def _compact(value: float) -> str:
    if value >= 1000:
        return _money(value).replace(".0", "")
    return f"{value:g}"


def _draw_numeric_compare(ax, real: pd.Series, synth: pd.Series) -> None:
    r = pd.to_numeric(real, errors="coerce").dropna().to_numpy(dtype=float)
    s = pd.to_numeric(synth, errors="coerce").dropna().to_numpy(dtype=float)
    both = np.concatenate([r, s])
    if both.size == 0:
        ax.text(0.5, 0.5, "no values", ha="center", transform=ax.transAxes)
        return
    edges, log = _bin_edges(both)
    if log:  # a narrow linear part below 1, logarithmic above; ticks at 0 and powers of ten
        from matplotlib.ticker import NullLocator

        ax.set_xscale("symlog", linthresh=1.0, linscale=0.25)
        powers = 10.0 ** np.arange(1, math.floor(math.log10(edges[-1])) + 1)
        ticks = ([0.0] if edges[0] < 1 else []) + list(powers)
        ax.set_xticks(ticks, [_compact(t) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    for values, style in (
        (r, {"alpha": 0.45, "color": ACCENT}),
        (s, {"histtype": "step", "lw": 1.8, "color": SYNTH}),
    ):
        if values.size:  # share of customers per bin, so both samples are comparable
            weights = np.full(values.size, 1.0 / values.size)
            ax.hist(np.clip(values, edges[0], edges[-1]), bins=edges, weights=weights, **style)
    ax.set_yticks([])


def _draw_categorical_compare(ax, real: pd.Series, synth: pd.Series) -> None:
    r = real.astype("string").fillna("(null)").value_counts(normalize=True)
    s = synth.astype("string").fillna("(null)").value_counts(normalize=True)
    levels = list(r.index[:8])
    x = np.arange(len(levels))
    ax.bar(x - 0.2, [r.get(k, 0.0) for k in levels], width=0.4, color=ACCENT, alpha=0.8)
    ax.bar(x + 0.2, [s.get(k, 0.0) for k in levels], width=0.4, color=SYNTH, alpha=0.8)
    ax.set_xticks(x, [str(k)[:12] for k in levels], rotation=35, ha="right", fontsize=8)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")


def _quality_rows(ctx: _Context) -> tuple[list[tuple[str, str]], pd.DataFrame] | None:
    if not ctx.exists(QUALITY):
        return None
    q = ctx.frame(f"select * from {qualified(QUALITY)}")
    if q.empty:
        return None
    if "created_at" in q.columns and "model_version" in q.columns:
        latest = q.sort_values("created_at")["model_version"].iloc[-1]
        q = q[q["model_version"] == latest]

    def score(group: str, metric: str) -> float | None:
        hit = q[(q["metric_group"] == group) & (q["metric"] == metric)]
        return float(hit["score"].iloc[0]) if len(hit) else None

    tiles = [
        ("quality score", _pct(score("overall", "QualityScore"))),
        ("column shapes", _pct(score("column_shapes", "mean"))),
        ("column pair trends", _pct(score("column_pair_trends", "mean"))),
    ]
    dcr_s, dcr_h = score("privacy", "dcr_synthetic_median"), score("privacy", "dcr_holdout_median")
    if dcr_s is not None and dcr_h is not None:
        tiles.append(("distance to real: synthetic / holdout", f"{dcr_s:.2f} / {dcr_h:.2f}"))
    copies = score("privacy", "exact_copy_share_synthetic")
    if copies is not None:
        tiles.append(("exact copies of real rows", f"{copies:.1%}"))
    tstr, trtr = score("utility", "tstr_auc"), score("utility", "trtr_auc")
    if tstr is not None and trtr is not None:
        tiles.append(("AUC trained on synthetic / real", f"{tstr:.3f} / {trtr:.3f}"))
    shapes = q[(q["metric_group"] == "column_shapes") & q["column_1"].notna()]
    shapes = shapes[["column_1", "metric", "score"]].dropna().sort_values("score", kind="stable")
    return tiles, shapes


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.0%}"


def _draw_shapes(fig, shapes: pd.DataFrame, total: int) -> None:
    ax = fig.add_subplot()
    colors = [
        "#e15759" if v < 0.7 else ("#edc948" if v < 0.85 else "#59a14f") for v in shapes["score"]
    ]
    ax.barh(shapes["column_1"].astype(str), shapes["score"], color=colors)
    ax.set_xlim(0, 1)
    ax.set_xlabel("similarity of real and synthetic distributions (1 = identical)")
    what = (
        f"the {len(shapes)} least well matched of {total} columns"
        if total > len(shapes)
        else "every column"
    )
    ax.set_title(f"Column shape score: {what}")
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", labelsize=8)


def _section_churn(ctx: _Context) -> tuple[str, int]:
    cols = ctx.need(SCORES, ["customer_id", "churn_probability"])
    data, total = ctx.sample(SCORES, ["churn_probability"])
    p = pd.to_numeric(data["churn_probability"], errors="coerce").dropna().to_numpy(dtype=float)
    if p.size == 0:
        raise _Skip(f"table {SCORES} has no churn probability")
    lift, lift_note = _holdout_lift(ctx)
    if lift is not None:
        ctx.data["churn_lift"] = lift
    reasons = pd.DataFrame()
    if "churn_reason_1" in cols:
        reasons = ctx.frame(
            f"select churn_reason_1 as reason, count(*) as customers from {qualified(SCORES)} "
            f"where churn_probability >= 0.5 and churn_reason_1 is not null "
            f"group by 1 order by 2 desc, 1 limit 8"
        )
    at_risk = ctx.wh.scalar(
        f"select count(*) from {qualified(SCORES)} where churn_probability >= 0.5"
    )
    n_panels = 1 + (lift is not None) + (len(reasons) > 0)

    def draw(fig):
        widths = [1.0] * n_panels
        if len(reasons):
            widths[-1] = 1.3  # room for the reason labels
        axes = fig.subplots(1, n_panels, squeeze=False, width_ratios=widths).ravel()
        ax = axes[0]
        ax.hist(p, bins=np.linspace(0, 1, 26), color="#e15759", alpha=0.85)
        ax.axvline(0.5, color=INK, lw=1, ls="--")
        ax.set_xlabel("churn probability")
        ax.set_ylabel("customers")
        ax.set_title("Churn-score distribution")
        i = 1
        if lift is not None:
            ax = axes[i]
            i += 1
            ax.bar(lift["bin"], lift["lift"], color=ACCENT, label="lift per decile")
            ax.plot(
                lift["bin"],
                lift["cumulative_lift"],
                color="#f28e2b",
                marker="o",
                label="cumulative",
            )
            ax.axhline(1.0, color=INK, lw=1, ls="--")
            ax.set_xticks(lift["bin"])
            ax.set_xlabel("score decile (1 = highest churn score)")
            ax.set_ylabel("lift over random")
            ax.set_title("Churn lift chart (held-out customers)")
            ax.legend(fontsize=8)
        if len(reasons):
            ax = axes[i]
            order = reasons.iloc[::-1]
            labels = [textwrap.fill(str(r), 24, break_long_words=False) for r in order["reason"]]
            ax.barh(labels, order["customers"], color="#b07aa1")
            ax.set_xlabel("customers at risk (p >= 0.5)")
            ax.set_title("Main churn reason of at-risk customers")
            ax.grid(axis="y", visible=False)
            ax.tick_params(axis="y", labelsize=8)

    body = _tiles(
        [
            ("customers at risk (p >= 0.5)", f"{int(at_risk):,} of {int(total):,}"),
            ("mean churn probability", f"{float(np.mean(p)):.1%}"),
        ]
    )
    body += _plot("churn score distribution and lift chart", 4.2 * n_panels + 0.6, 4, draw)
    if lift_note:
        body += _note(lift_note)
    return body, 1


def _holdout_lift(ctx: _Context) -> tuple[pd.DataFrame | None, str]:
    """Decile lift of the churn model on its own held-out rows of the training table.

    The scoring bundle's version in ml.customer_scores names the churn model in the registry;
    the model's held-out split (a seeded stratified split of the training table) is rebuilt and
    scored. When that fails, the reason is returned instead."""
    if not ctx.exists(REGISTRY):
        return None, f"No lift chart: {REGISTRY} does not exist."
    try:
        from sklearn.model_selection import train_test_split

        from pyprofile import registry
        from pyprofile.propensity import PropensityModel

        bundle = registry.load_model(ctx.wh, "customer_scores", ctx.version(SCORES))
        churn_version = bundle.params.get("components", {}).get("churn")
        table = bundle.params.get("training_table", "features.customer_training")
        record = registry.load_model(ctx.wh, "churn", churn_version)
        label = record.params.get("label", "churned")
        if not ctx.exists(table) or label not in ctx.wh.columns(table):
            return None, f"No lift chart: training table {table} with label {label} is missing."
        model = PropensityModel.from_arrays(*registry.unpack(record.artifact))
        frame = ctx.wh.read(table).to_pandas()
        y = pd.to_numeric(frame[label]).to_numpy(dtype=float)
        params = model.get_params()
        _, test = train_test_split(
            np.arange(y.size),
            test_size=params["test_fraction"],
            stratify=y,
            random_state=params["random_state"],
        )
        test = np.sort(test)
        prob = model.predict_proba(frame.iloc[test])[:, 1]
        table_ = lift_table(y[test], prob)
    except Exception as exc:  # the lift is a bonus: never lose the report over it
        return None, f"No lift chart: {type(exc).__name__}: {exc}"
    note = (
        f"Lift measured on {len(test):,} held-out customers of {table} "
        f"(churn model {record.version}, label {label})"
    )
    logged = record.metrics.get("top_decile_lift")
    if isinstance(logged, int | float) and math.isfinite(logged):
        same = math.isclose(float(table_["lift"].iloc[0]), float(logged), rel_tol=1e-6)
        note += (
            "; its top-decile lift matches the registry's"
            if same
            else f"; the registry logged a top-decile lift of {logged:.2f} for a different split"
        )
    return table_, note + "."


def _section_clv(ctx: _Context) -> tuple[str, int]:
    cols = ctx.need(SCORES, ["clv_12m"])
    extra = [c for c in ("p_alive",) if c in cols]
    data, _ = ctx.sample(SCORES, ["clv_12m", *extra])
    clv = pd.to_numeric(data["clv_12m"], errors="coerce").dropna().to_numpy(dtype=float)
    if clv.size == 0:
        raise _Skip(f"table {SCORES} has no CLV values (no customer with purchases)")
    alive = (
        pd.to_numeric(data["p_alive"], errors="coerce").dropna().to_numpy(dtype=float)
        if extra
        else np.array([])
    )
    n_panels = 2 + (alive.size > 0)

    def draw(fig):
        axes = fig.subplots(1, n_panels).ravel()
        ax = axes[0]
        pos = clv[clv > 0]
        if pos.size:
            lo, hi = np.percentile(pos, [0.5, 99.9])
            edges = np.geomspace(max(lo, 1e-2), max(hi, lo * 1.01, 1e-2 * 1.01), 31)
            ax.hist(np.clip(pos, edges[0], edges[-1]), bins=edges, color="#59a14f", alpha=0.85)
            ax.set_xscale("log")
        ax.set_xlabel("predicted 12-month value (log scale)")
        ax.set_ylabel("customers")
        ax.set_title("CLV distribution")
        ax = axes[1]
        sorted_ = np.sort(np.clip(clv, 0, None))[::-1]
        cum = np.cumsum(sorted_) / max(sorted_.sum(), 1e-12)
        share = np.arange(1, sorted_.size + 1) / sorted_.size
        ax.plot(share * 100, cum * 100, color="#59a14f", lw=2)
        ax.plot([0, 100], [0, 100], color=MUTED, ls="--", lw=1)
        k = max(1, int(math.ceil(0.2 * sorted_.size)))
        ax.annotate(
            f"top 20% hold {cum[k - 1]:.0%}",
            (20, cum[k - 1] * 100),
            xytext=(35, cum[k - 1] * 100 - 25),
            arrowprops={"arrowstyle": "->", "color": INK},
            fontsize=9,
        )
        ax.set_xlabel("% of customers (highest value first)")
        ax.set_ylabel("% of predicted value")
        ax.set_title("Value concentration")
        if alive.size:
            ax = axes[2]
            ax.hist(alive, bins=np.linspace(0, 1, 26), color="#76b7b2", alpha=0.9)
            ax.set_xlabel("P(alive)")
            ax.set_ylabel("customers")
            ax.set_title("Probability the customer is still active")

    stats = ctx.frame(
        f"select sum(clv_12m) as total, avg(clv_12m) as mean, median(clv_12m) as median, "
        f"count(*) - count(clv_12m) as missing from {qualified(SCORES)}"
    ).iloc[0]
    body = _tiles(
        [
            ("total predicted 12-month value", _money(float(stats["total"]))),
            ("mean per customer", _money(float(stats["mean"]))),
            ("median per customer", _money(float(stats["median"]))),
        ]
    )
    body += _plot("CLV distribution", 4.2 * n_panels + 0.6, 4, draw)
    if int(stats["missing"]):
        body += _note(
            f"{int(stats['missing']):,} customers without a purchase have no CLV and are left "
            "out of the value plots and figures."
        )
    return body, 1


def _section_recommendations(ctx: _Context) -> tuple[str, int]:
    ctx.need(RECOMMENDATIONS, ["customer_id", "product_id", "rank"])
    group_sql, source = _grouping(ctx)
    top = ctx.frame(
        f"with r as (select r.customer_id, r.product_id, {group_sql} as grp "
        f"from {qualified(RECOMMENDATIONS)} r {source} where r.rank <= 3), "
        f"c as (select grp, product_id, count(*) as customers from r group by 1, 2), "
        f"t as (select grp, count(distinct customer_id) as total from r group by 1) "
        f"select c.grp, c.product_id, c.customers, t.total from c join t using (grp) "
        f"qualify row_number() over (partition by c.grp order by c.customers desc, "
        f"cast(c.product_id as varchar)) <= 5 order by c.grp, c.customers desc"
    )
    if top.empty:
        raise _Skip(f"table {RECOMMENDATIONS} has no rows with rank <= 3")
    labels = _product_labels(ctx, top["product_id"].unique())
    top["label"] = [labels.get(p, str(p)) for p in top["product_id"]]
    ctx.data["top_recommendations"] = top
    groups = list(dict.fromkeys(top["grp"]))
    known = list(ctx.segment_colors()) if "segment" in source else []
    groups.sort(key=lambda g: (known.index(g) if g in known else len(known), str(g)))
    top_share = float((top["customers"] / top["total"]).max())
    colors = ctx.segment_colors() if "segment" in source else {}
    ncols = 2 if len(groups) > 1 else 1
    nrows = math.ceil(len(groups) / ncols)

    def draw(fig):
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, grp in zip(axes, groups, strict=False):
            part = top[top["grp"] == grp].iloc[::-1]
            share = part["customers"] / part["total"]
            bars = ax.barh(part["label"], share, color=colors.get(grp, ACCENT))
            for bar, v in zip(bars, share, strict=True):
                y = bar.get_y() + bar.get_height() / 2
                ax.text(v, y, f" {v:.0%}", va="center", fontsize=8, color=INK)
            ax.set_xlim(0, top_share * 1.15)
            ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
            title = textwrap.shorten(str(grp), 44, placeholder="...")
            ax.set_title(f"{title}\n{int(part['total'].iloc[0]):,} customers", fontsize=10)
            ax.grid(axis="y", visible=False)
            ax.tick_params(axis="y", labelsize=8)
        for ax in axes[len(groups) :]:
            ax.set_visible(False)
        fig.supxlabel("share of the group's customers with the product in their top 3", fontsize=9)

    body = _plot("top recommended products per segment", 11, 2.4 * nrows + 0.5, draw)
    what = "learned segment" if "segment" in source else ("RFM segment" if source else "all")
    return body + _note(f"Grouped by {what}; product labels are id · category · brand."), 1


def _grouping(ctx: _Context) -> tuple[str, str]:
    """SQL expression and join that put each recommended customer in a group."""
    if len(ctx.segments()):
        return (
            "coalesce(s.segment_name, 'unsegmented')",
            f"left join {qualified(SEGMENTS)} s using (customer_id) /* segment */",
        )
    if ctx.exists(FEATURES) and "rfm_segment" in ctx.wh.columns(FEATURES):
        return (
            "coalesce(f.rfm_segment, 'no purchase')",
            f"left join {qualified(FEATURES)} f using (customer_id)",
        )
    return "'all customers'", ""


def _product_labels(ctx: _Context, ids: Sequence[Any]) -> dict[Any, str]:
    for table in PRODUCT_TABLES:
        if not ctx.exists(table):
            continue
        cols = ctx.wh.columns(table)
        if "product_id" not in cols:
            continue
        extra = [c for c in ("product_name", "name", "category", "brand") if c in cols]
        frame = ctx.frame(
            f"select product_id{''.join(', ' + quote(c) for c in extra)} from {qualified(table)}"
        )
        frame = frame[frame["product_id"].isin(list(ids))]
        out = {}
        for row in frame.itertuples(index=False):
            parts = [str(row[0])] + [str(v) for v in row[1:] if v is not None and v == v]
            out[row[0]] = " · ".join(parts)[:40]
        return out
    return {}


# --------------------------------------------------------------------------- HTML
SECTIONS: tuple[tuple[str, str, str, Callable[[_Context], tuple[str, int]]], ...] = (
    (
        "segments",
        "Segments and personas",
        "Who the learned segments are, and how many customers each holds.",
        _section_segments,
    ),
    (
        "rfm",
        "RFM grid",
        "Recency x frequency scores: customers per cell and their mean spend.",
        _section_rfm,
    ),
    (
        "segment_map",
        "Segment map",
        "Every customer on a 2-D map of the learned embedding, coloured by segment.",
        _section_map,
    ),
    (
        "synthetic",
        "Synthetic customers",
        "How closely the GAN's synthetic customers follow the real ones.",
        _section_synthetic,
    ),
    (
        "churn",
        "Churn risk",
        "Predicted churn probability, and how well the score ranks real churners.",
        _section_churn,
    ),
    ("clv", "Customer lifetime value", "Predicted value over the next 12 months.", _section_clv),
    (
        "recommendations",
        "Recommended products",
        "The products recommended most often, per segment.",
        _section_recommendations,
    ),
)


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _tiles(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div class="tile"><div class="value">{html.escape(v)}</div>'
        f'<div class="label">{html.escape(k)}</div></div>'
        for k, v in items
    )
    return f'<div class="tiles">{cells}</div>'


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#1f2937;
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{background:linear-gradient(120deg,#1e3a5f,#4e79a7);color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 4px;font-size:26px}
header .sub{opacity:.8;font-size:13px}
header .tiles{margin-top:18px}
header .tile{background:rgba(255,255,255,.12);border:none}
header .tile .value{color:#fff}
header .tile .label{color:rgba(255,255,255,.8)}
.versions{margin-top:12px;font-size:12px;opacity:.85}
.versions code{background:rgba(255,255,255,.15);padding:1px 6px;border-radius:4px;margin-right:10px}
nav{background:#fff;border-bottom:1px solid #e5e7eb;padding:10px 40px;font-size:13px}
nav a{color:#4e79a7;text-decoration:none;margin-right:18px}
main{max-width:1180px;margin:0 auto;padding:24px 24px 48px}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);
 padding:22px 26px;margin-bottom:22px}
section h2{margin:0 0 2px;font-size:20px}
section .lead{margin:0 0 14px;color:#6b7280;font-size:14px}
section.skipped{background:#fafafa;box-shadow:none;border:1px dashed #d1d5db;padding:14px 26px}
section.skipped .why{margin:4px 0 0;color:#6b7280;font-size:14px}
img.plot{display:block;max-width:100%;height:auto;margin:10px auto}
.note{color:#6b7280;font-size:13px;margin:6px 0 0}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0 10px}
.tile{border:1px solid #e5e7eb;border-radius:8px;padding:10px 16px;min-width:150px}
.tile .value{font-size:22px;font-weight:700;color:#1f2937}
.tile .label{font-size:12px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
.personas{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:14px;
 margin-top:12px}
.persona{border:1px solid #e5e7eb;border-top:5px solid #4e79a7;border-radius:8px;padding:12px 14px}
.persona-head{display:flex;align-items:center;gap:8px}
.persona h3{margin:0;font-size:16px}
.persona .dot{width:10px;height:10px;border-radius:50%;display:inline-block}
.persona-size{color:#6b7280;font-size:13px;margin:2px 0 6px}
.persona p{margin:6px 0;font-size:14px}
.persona dl{display:grid;grid-template-columns:8.5em 1fr;gap:2px 10px;margin:8px 0 0;font-size:13px}
.persona dt{color:#6b7280}
.persona dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.persona details{font-size:13px;color:#4b5563}
.persona summary{cursor:pointer;color:#4e79a7}
footer{color:#9ca3af;font-size:12px;text-align:center;padding:0 0 30px}
"""


def _page(title: str, numbers, versions, parts: list[str], generated: str) -> str:
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name, _, _ in SECTIONS)
    vers = "".join(f"{html.escape(t)} <code>{html.escape(str(v))}</code>" for t, v in versions)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1>"
        f'<div class="sub">Generated {html.escape(generated)} by pyprofile</div>'
        f"{_tiles(numbers)}"
        + (f'<div class="versions">model versions: {vers}</div>' if versions else "")
        + f"</header><nav>{nav}</nav><main>{''.join(parts)}</main>"
        "<footer>pyprofile report · self-contained: plots are embedded images, no scripts, "
        "no network</footer></body></html>\n"
    )


def build_report(
    wh: Warehouse | str | Path,
    out_path: str | Path,
    *,
    title: str = "Customer profiles",
    sample_rows: int = 20_000,
    random_state: int = 0,
) -> ReportSummary:
    """Write the HTML report for warehouse ``wh`` to ``out_path``; returns which sections were
    rendered and which were skipped (with the reason).

    ``sample_rows`` bounds the rows read for distribution plots (a seeded sample); counts, means
    and the RFM grid are computed in SQL over whole tables. A path is opened read-only (and
    must exist); an open :class:`Warehouse` or connection is used as is."""
    owned = not isinstance(wh, Warehouse)
    wh = Warehouse.open(wh, read_only=isinstance(wh, str | Path))
    try:
        return _build(wh, Path(out_path), title, sample_rows, random_state)
    finally:
        if owned:
            wh.close()


def _build(
    wh: Warehouse, out: Path, title: str, sample_rows: int, random_state: int
) -> ReportSummary:
    ctx = _Context(wh, sample_rows=sample_rows, random_state=random_state)
    numbers, versions = _header(ctx)
    parts: list[str] = []
    results: list[SectionResult] = []
    for key, name, lead, render in SECTIONS:
        try:
            body, plots = render(ctx)
        except _Skip as skip:
            reason = str(skip)
            parts.append(
                f'<section id="{key}" class="skipped"><h2>{html.escape(name)}</h2>'
                f'<p class="why">Not shown: {html.escape(reason)}.</p></section>'
            )
            results.append(SectionResult(key, name, False, 0, reason))
            continue
        parts.append(
            f'<section id="{key}"><h2>{html.escape(name)}</h2>'
            f'<p class="lead">{html.escape(lead)}</p>{body}</section>'
        )
        results.append(SectionResult(key, name, True, plots, None))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = _page(title, numbers, versions, parts, generated)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return ReportSummary(
        path=out, sections=results, size_bytes=len(text.encode("utf-8")), data=ctx.data
    )
