"""Renderers: a report (or a diff of two) as text, in every output format, and the registry
that names them.

Pure. :data:`REPORT_FORMATS` maps each ``--format`` name a report can be written in to its
renderer, :data:`DIFF_FORMATS` each one a diff can be written in; the commands ask
:func:`render_report` and :func:`render_diff` and know no renderer themselves. Whatever a
format needs beyond the report comes in as a value: the HTML page's trend chart and "changes
since" section (``trend``, ``diff``), which the CLI reads from the history, and the run's id in
the history for JSON Lines (``run_id``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from ..codec import to_dict
from ..diff import ReportDiff
from ..report import Report
from ._fit import DEFAULT_WIDTH
from .diff import render_diff_json, render_diff_markdown, render_diff_table
from .html import TrendPoint, render_html
from .jsonl import render_jsonl
from .markdown import render_markdown
from .sarif import render_sarif
from .table import render_csv, render_table

__all__ = [
    "DEFAULT_WIDTH",
    "DIFF_FORMATS",
    "REPORT_FORMATS",
    "TrendPoint",
    "render_diff",
    "render_json",
    "render_report",
]


def render_json(report: Report) -> str:
    """The report document (:func:`~exposure_audit.codec.to_dict`) as indented ASCII JSON."""
    return json.dumps(to_dict(report), indent=2, ensure_ascii=True) + "\n"


# The order is the order --help lists them in: the three plain formats first, as ever.
REPORT_FORMATS: Mapping[str, Callable[[Report], str]] = {
    "csv": render_csv,
    "json": render_json,
    "table": render_table,
    "html": render_html,
    "markdown": render_markdown,
    "sarif": render_sarif,
    "jsonl": render_jsonl,
}
"""Format name -> the function that renders a report in it (the HTML page without trend or
diff: :func:`render_report` passes those)."""

DIFF_FORMATS: Mapping[str, Callable[[ReportDiff], str]] = {
    "table": render_diff_table,
    "json": render_diff_json,
    "markdown": render_diff_markdown,
}
"""Format name -> the function that renders a diff in it."""


def render_report(
    report: Report,
    fmt: str,
    *,
    trend: Sequence[TrendPoint] = (),
    diff: ReportDiff | None = None,
    compared: bool = False,
    width: int = DEFAULT_WIDTH,
    run_id: int | None = None,
) -> str:
    """Render ``report`` in ``fmt`` (a key of :data:`REPORT_FORMATS`; ``KeyError`` for another).

    ``trend`` is drawn by the HTML page only (its trend chart). ``diff``, the changes since an
    earlier run, is shown by the HTML page (its "changes since" section) and the table (right
    after the verdict); ``compared`` tells the table the user asked for them, so that without
    a ``diff`` it says there was no earlier run to compare with. ``width`` is the table's
    width in terminal cells (the CLI decides it: the terminal's, else 80). ``run_id`` (the history's
    id of the run) is carried by JSON Lines only, as is each finding's change since the ``diff``'s
    earlier run. The other formats show the report alone.
    """
    if fmt == "html":
        return render_html(report, trend=trend, diff=diff)
    if fmt == "jsonl":
        return render_jsonl(report, run_id, diff)
    if fmt == "table":
        return render_table(report, width=width, diff=diff, compared=compared)
    return REPORT_FORMATS[fmt](report)


def render_diff(diff: ReportDiff, fmt: str, *, width: int = DEFAULT_WIDTH) -> str:
    """Render ``diff`` in ``fmt`` (a key of :data:`DIFF_FORMATS`; ``KeyError`` for another);
    ``width`` is the table's width in terminal cells."""
    if fmt == "table":
        return render_diff_table(diff, width=width)
    return DIFF_FORMATS[fmt](diff)
