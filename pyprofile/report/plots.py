"""The report's matplotlib drawings, rendered as SVG ``data:`` URIs.

:func:`render` draws one figure under the report's rcParams and returns it as a plot block
(``kind``, ``alt``, ``src``) for the template. Glyphs are paths and ids are salted with a fixed
string, so the same data gives the same bytes. The ``draw_*`` functions each fill a figure.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.report.formatting import compact, money

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
RC = {
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


# --------------------------------------------------------------------------- rendering
def render(alt: str, width: float, height: float, draw: Callable[[Any], None]) -> dict[str, str]:
    """Draw a ``width`` x ``height`` inch figure with ``draw(fig)``; returns the plot block
    ``{"kind": "plot", "alt": alt, "src": "data:image/svg+xml;base64,..."}``."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, dpi=110)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return {"kind": "plot", "alt": alt, "src": f"data:image/svg+xml;base64,{data}"}


def bars_height(n: int, per_bar: float = 0.38) -> float:
    """Figure height (inches) for a horizontal bar chart of ``n`` bars."""
    return per_bar * n + 1.3


def colors(keys: Sequence[Any]) -> dict[Any, str]:
    """One palette colour per key, in order."""
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}


def _patch(color: str, label: str):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, alpha=0.6, label=label)


# --------------------------------------------------------------------------- segments
def draw_segment_sizes(fig, seg: pd.DataFrame, palette: dict[Any, str]) -> None:
    """Horizontal bars of customers per segment, labelled with count and share."""
    total = seg["customers"].sum()
    ax = fig.add_subplot()
    order = seg.sort_values("customers")
    bars = ax.barh(
        order["segment_name"].astype(str),
        order["customers"],
        color=[palette[n] for n in order["segment_name"]],
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


def draw_segment_map(fig, data: pd.DataFrame, palette: dict[Any, str]) -> None:
    """Customers on the 2-D map, coloured by segment, a numbered badge at each median."""
    numbers = {name: i + 1 for i, name in enumerate(palette)}
    ax = fig.add_subplot()
    groups = list(data.groupby("segment_name", sort=False))
    for name, part in groups:
        ax.scatter(
            part["map_x"],
            part["map_y"],
            s=7,
            alpha=0.55,
            color=palette.get(name, ACCENT),
            label=f"{numbers.get(name, '?')}  {name}",
            linewidths=0,
            rasterized=True,  # thousands of points: one embedded bitmap, not SVG paths
        )
    for name, part in groups:
        ax.annotate(
            str(numbers.get(name, "?")),
            (part["map_x"].median(), part["map_y"].median()),
            ha="center",
            va="center",
            fontsize=9,
            fontweight="bold",
            color="white",
            bbox={"boxstyle": "circle,pad=0.3", "fc": palette.get(name, ACCENT), "ec": INK},
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.spines[:].set_visible(False)
    ax.set_title("Segment map (2-D projection of the customer embedding)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=2.5, fontsize=9)


# --------------------------------------------------------------------------- RFM
def draw_rfm_grid(fig, grid: pd.DataFrame) -> None:
    """Heat map of customers per (R, F) cell, each cell labelled with count and mean spend."""
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
            label = f"{n:,}\n{money(spend[i, j])} avg" if n else "0"
            ax.text(j, i, label, ha="center", va="center", fontsize=8.5, color=color)
    ax.set_xticks(range(len(r_vals)), [str(v) for v in r_vals])
    ax.set_yticks(range(len(f_vals)), [str(v) for v in f_vals])
    ax.set_xlabel("recency score (5 = bought most recently)")
    ax.set_ylabel("frequency score (5 = buys most often)")
    ax.set_title("RFM grid: customers and mean spend per cell")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="customers", shrink=0.85)


def draw_rfm_segments(fig, seg: pd.DataFrame) -> None:
    """Horizontal bars of customers per named RFM segment, labelled with mean spend."""
    ax = fig.add_subplot()
    order = seg.iloc[::-1]
    bars = ax.barh(order["rfm_segment"].astype(str), order["customers"], color=ACCENT)
    for bar, n, m in zip(bars, order["customers"], order["mean_spend"], strict=True):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f"  {int(n):,} · {money(m)} avg",
            va="center",
            fontsize=8.5,
            color=INK,
        )
    ax.set_xlim(0, order["customers"].max() * 1.3)
    ax.set_xlabel("customers")
    ax.set_title("Named RFM segments")
    ax.grid(axis="y", visible=False)


# --------------------------------------------------------------------------- synthetic
def draw_synthetic(fig, real: pd.DataFrame, synth: pd.DataFrame, numeric, categorical) -> None:
    """One panel per compared column (3 per row): real vs synthetic distributions."""
    panels = [*numeric, *categorical]
    axes = fig.subplots(math.ceil(len(panels) / 3), 3, squeeze=False).ravel()
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


def bin_edges(values: np.ndarray, bins: int = 30) -> tuple[np.ndarray, bool]:
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


def _draw_numeric_compare(ax, real: pd.Series, synth: pd.Series) -> None:
    r = pd.to_numeric(real, errors="coerce").dropna().to_numpy(dtype=float)
    s = pd.to_numeric(synth, errors="coerce").dropna().to_numpy(dtype=float)
    both = np.concatenate([r, s])
    if both.size == 0:
        ax.text(0.5, 0.5, "no values", ha="center", transform=ax.transAxes)
        return
    edges, log = bin_edges(both)
    if log:  # a narrow linear part below 1, logarithmic above; ticks at 0 and powers of ten
        from matplotlib.ticker import NullLocator

        ax.set_xscale("symlog", linthresh=1.0, linscale=0.25)
        powers = 10.0 ** np.arange(1, math.floor(math.log10(edges[-1])) + 1)
        ticks = ([0.0] if edges[0] < 1 else []) + list(powers)
        ax.set_xticks(ticks, [compact(t) for t in ticks])
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


def draw_column_shapes(fig, shapes: pd.DataFrame, total: int) -> None:
    """Column shape score per column (red below 0.7, yellow below 0.85, else green)."""
    ax = fig.add_subplot()
    bar_colors = [
        "#e15759" if v < 0.7 else ("#edc948" if v < 0.85 else "#59a14f") for v in shapes["score"]
    ]
    ax.barh(shapes["column_1"].astype(str), shapes["score"], color=bar_colors)
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


# --------------------------------------------------------------------------- churn
def churn_layout(panels: int) -> tuple[int, int]:
    """(rows, columns) of the churn figure: one row, or 2 x 2 for four panels."""
    return (2, 2) if panels == 4 else (1, panels)


def draw_churn(fig, p: np.ndarray, reasons: pd.DataFrame, lift, calibration) -> None:
    """Score histogram, main reasons of at-risk customers, then the held-out lift chart and
    calibration plot side by side; panels without data are left out."""
    panels: list[Callable[[Any], None]] = [lambda ax: _draw_churn_histogram(ax, p)]
    if len(reasons):
        panels.append(lambda ax: _draw_churn_reasons(ax, reasons))
    if lift is not None:
        panels.append(lambda ax: _draw_lift(ax, lift))
    if calibration is not None:
        panels.append(lambda ax: _draw_calibration(ax, calibration))
    rows, cols = churn_layout(len(panels))
    widths = [1.0] * cols
    if rows == 1 and len(reasons):
        widths[1] = 1.3  # room for the reason labels
    axes = fig.subplots(rows, cols, squeeze=False, width_ratios=widths).ravel()
    for ax, draw in zip(axes, panels, strict=True):
        draw(ax)


def _draw_churn_histogram(ax, p: np.ndarray) -> None:
    ax.hist(p, bins=np.linspace(0, 1, 26), color="#e15759", alpha=0.85)
    ax.axvline(0.5, color=INK, lw=1, ls="--")
    ax.set_xlabel("churn probability")
    ax.set_ylabel("customers")
    ax.set_title("Churn-score distribution")


def _draw_churn_reasons(ax, reasons: pd.DataFrame) -> None:
    order = reasons.iloc[::-1]
    labels = [textwrap.fill(str(r), 24, break_long_words=False) for r in order["reason"]]
    ax.barh(labels, order["customers"], color="#b07aa1")
    ax.set_xlabel("customers at risk (p >= 0.5)")
    ax.set_title("Main churn reason of at-risk customers")
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", labelsize=8)


def _draw_lift(ax, lift: pd.DataFrame) -> None:
    ax.bar(lift["bin"], lift["lift"], color=ACCENT, label="lift per decile")
    ax.plot(lift["bin"], lift["cumulative_lift"], color=SYNTH, marker="o", label="cumulative")
    ax.axhline(1.0, color=INK, lw=1, ls="--")
    ax.set_xticks(lift["bin"])
    ax.set_xlabel("score decile (1 = highest churn score)")
    ax.set_ylabel("lift over random")
    ax.set_title("Churn lift chart (held-out customers)")
    ax.legend(fontsize=8)


def _draw_calibration(ax, table: pd.DataFrame) -> None:
    ax.plot([0, 1], [0, 1], color=MUTED, lw=1, ls="--", label="perfectly calibrated")
    sizes = 12 + 120 * table["customers"] / max(float(table["customers"].max()), 1.0)
    ax.plot(table["mean_predicted"], table["observed_rate"], color=ACCENT, lw=1.5)
    ax.scatter(
        table["mean_predicted"],
        table["observed_rate"],
        s=sizes,
        color=ACCENT,
        zorder=3,
        label="probability bin (size: customers)",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("mean predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration (held-out customers)")
    ax.legend(fontsize=8, loc="upper left")


# --------------------------------------------------------------------------- CLV
def draw_clv(fig, clv: np.ndarray, alive: np.ndarray) -> None:
    """CLV histogram (log scale), value concentration curve and, when known, P(alive)."""
    axes = fig.subplots(1, 2 + (alive.size > 0)).ravel()
    _draw_clv_histogram(axes[0], clv)
    _draw_concentration(axes[1], clv)
    if alive.size:
        ax = axes[2]
        ax.hist(alive, bins=np.linspace(0, 1, 26), color="#76b7b2", alpha=0.9)
        ax.set_xlabel("P(alive)")
        ax.set_ylabel("repeat buyers")
        ax.set_title("Still active? (repeat buyers)")


def draw_lifetime_check(fig, table) -> None:
    """BG/NBD on the holdout window: mean predicted vs actual purchases per frequency."""
    ax = fig.subplots(1, 1)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["predicted"], width=0.4, color=ACCENT, label="predicted (BG/NBD)")
    ax.bar(x + 0.2, table["actual"], width=0.4, color=SYNTH, label="actual")
    ax.set_xticks(x, [str(f) for f in table["frequency"]])
    ax.set_xlabel("repeat purchase days before the window")
    ax.set_ylabel("purchase days in the window, mean")
    ax.set_title("BG/NBD holdout check")
    ax.legend(fontsize=8)


def _draw_clv_histogram(ax, clv: np.ndarray) -> None:
    pos = clv[clv > 0]
    if pos.size:
        lo, hi = np.percentile(pos, [0.5, 99.9])
        edges = np.geomspace(max(lo, 1e-2), max(hi, lo * 1.01, 1e-2 * 1.01), 31)
        ax.hist(np.clip(pos, edges[0], edges[-1]), bins=edges, color="#59a14f", alpha=0.85)
        ax.set_xscale("log")
    ax.set_xlabel("predicted 12-month value (log scale)")
    ax.set_ylabel("customers")
    ax.set_title("CLV distribution")


def _draw_concentration(ax, clv: np.ndarray) -> None:
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


# --------------------------------------------------------------------------- recommendations
def draw_recommendations(fig, top: pd.DataFrame, groups: list, palette: dict[Any, str]) -> None:
    """One panel per group (2 per row): share of its customers with each product in their top 3."""
    ncols = 2 if len(groups) > 1 else 1
    axes = fig.subplots(math.ceil(len(groups) / ncols), ncols, squeeze=False).ravel()
    top_share = float((top["customers"] / top["total"]).max())
    for ax, grp in zip(axes, groups, strict=False):
        part = top[top["grp"] == grp].iloc[::-1]
        share = part["customers"] / part["total"]
        bars = ax.barh(part["label"], share, color=palette.get(grp, ACCENT))
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
