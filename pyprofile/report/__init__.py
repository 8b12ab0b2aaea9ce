"""One self-contained HTML report of a warehouse's customer profiles, with plots.

:func:`build_report` reads the feature and ``ml`` tables through the :class:`Warehouse` API
(:mod:`~pyprofile.report.data`), draws each plot with matplotlib as an SVG embedded as a base64
``data:`` image (:mod:`~pyprofile.report.plots`) and renders one HTML file from a Jinja2
template (``template.html.j2``) with inline CSS and no JavaScript, so it opens offline in any
browser and has nothing that could fail at view time. Every section is optional: when its
table is missing the section says so in one line, and the rest of the report is still written.

Aggregations (counts, means, the RFM grid, per-segment recommendations) run in SQL over whole
tables; distributions are drawn from a seeded sample of at most ``sample_rows`` rows. The churn
lift chart and calibration plot show the tables saved in the model registry when the churn
model was trained, on its own held-out customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pyprofile.models.metrics import lift_table
from pyprofile.report.data import Skip, Source, rfm_grid
from pyprofile.report.page import render_page
from pyprofile.report.sections import SECTIONS, header
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.snapshot import reader_path

__all__ = ["ReportSummary", "SectionResult", "build_report", "lift_table", "rfm_grid"]


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
    (``data``: segment_sizes, rfm_grid, rfm_segments, churn_lift, churn_calibration,
    top_recommendations)."""

    path: Path
    sections: list[SectionResult] = field(default_factory=list)
    size_bytes: int = 0
    data: dict[str, pd.DataFrame] = field(default_factory=dict)
    source: Path | None = None  # the file read (the snapshot when published); None: a Warehouse

    @property
    def rendered(self) -> list[str]:
        return [s.key for s in self.sections if s.rendered]

    @property
    def skipped(self) -> dict[str, str]:
        return {s.key: s.reason or "" for s in self.sections if not s.rendered}

    @property
    def plots(self) -> int:
        return sum(s.plots for s in self.sections)


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
    and the RFM grid are computed in SQL over whole tables. A path is read through its
    published snapshot when there is one (:func:`~pyprofile.warehouse.snapshot.reader_path`),
    else opened read-only (it must exist); an open :class:`Warehouse` or connection is used as
    is."""
    owned = not isinstance(wh, Warehouse)
    source = reader_path(wh) if isinstance(wh, str | Path) else None
    wh = Warehouse.open(source if source is not None else wh, read_only=source is not None)
    try:
        summary = _build(wh, Path(out_path), title, sample_rows, random_state)
    finally:
        if owned:
            wh.close()
    summary.source = source
    return summary


def _build(
    wh: Warehouse, out: Path, title: str, sample_rows: int, random_state: int
) -> ReportSummary:
    src = Source(wh, sample_rows=sample_rows, random_state=random_state)
    numbers, versions = header(src)
    aggregates: dict[str, pd.DataFrame] = {}
    pages, results = [], []
    for section in SECTIONS:
        page = {"key": section.key, "title": section.title, "lead": section.lead}
        try:
            blocks = section.build(src, aggregates)
        except Skip as skip:
            pages.append({**page, "rendered": False, "reason": str(skip), "blocks": []})
            results.append(SectionResult(section.key, section.title, False, 0, str(skip)))
            continue
        plots = sum(block["kind"] == "plot" for block in blocks)
        pages.append({**page, "rendered": True, "reason": None, "blocks": blocks})
        results.append(SectionResult(section.key, section.title, True, plots, None))
    text = render_page(
        title=title,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        numbers=numbers,
        versions=versions,
        sections=pages,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return ReportSummary(
        path=out, sections=results, size_bytes=len(text.encode("utf-8")), data=aggregates
    )
