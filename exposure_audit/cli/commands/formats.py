"""Every report format the commands offer, in one place: the plain renderers of
:mod:`exposure_audit.render.table` plus the ones that need more than the report (the HTML page takes
the history's trend and the diff)."""

from __future__ import annotations

from collections.abc import Sequence

from ...diff import ReportDiff
from ...history.store import RunSummary
from ...render.html import TrendPoint, render_html
from ...render.markdown import render_markdown
from ...render.sarif import render_sarif
from ...render.table import FORMATS, render
from ...report import Report

__all__ = ["REPORT_FORMATS", "render_report", "trend_of"]

REPORT_FORMATS: tuple[str, ...] = (*sorted(FORMATS), "html", "markdown", "sarif")


def trend_of(runs: Sequence[RunSummary]) -> list[TrendPoint]:
    """Trend points for the HTML chart, from the history's run summaries."""
    return [TrendPoint(r.id, r.started_at, r.grade, r.counts, complete=r.complete) for r in runs]


def render_report(
    report: Report,
    fmt: str,
    *,
    trend: Sequence[TrendPoint] = (),
    diff: ReportDiff | None = None,
) -> str:
    """Render ``report`` in ``fmt`` (one of :data:`REPORT_FORMATS`)."""
    if fmt == "html":
        return render_html(report, trend=trend, diff=diff)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "sarif":
        return render_sarif(report)
    return render(report, fmt)
