"""The history's runs as the HTML report's trend chart: the CLI reads them from the store and
passes them to :func:`exposure_audit.render.render_report` (the render layer never reads the
history itself)."""

from __future__ import annotations

from collections.abc import Sequence

from ...history.store import RunSummary
from ...render import TrendPoint

__all__ = ["trend_of"]


def trend_of(runs: Sequence[RunSummary]) -> list[TrendPoint]:
    """Trend points for the HTML chart, from the history's run summaries."""
    return [TrendPoint(r.id, r.started_at, r.grade, r.counts, complete=r.complete) for r in runs]
