"""A run's report with its "changes since" the baseline, in every format, for ``scan
--compare`` and ``report RUN --compare``; and the one-line verdict a command prints on stderr
when its report goes to a file.

Pure: text in, text out. How each format carries the changes:

- ``table``: the report with ``changes since run N:`` and the diff table right after its
  verdict (:func:`~exposure_audit.render.table.render_table`);
- ``markdown``: the report, then a ``## Changes since run N`` section (the diff's Markdown);
- ``json``: the report document with a ``diff`` key (the diff document, null with no
  baseline);
- ``html``: the page's own "changes since" section;
- ``csv``: a last column ``change`` (``new``, ``changed`` or ``unchanged`` on each finding
  row, empty on the run's note rows), then one row per resolved finding (``resolved``);
- ``sarif``: each result's ``baselineState`` (``new``, ``updated``, ``unchanged``; SARIF 2.1.0
  section 3.27.24) and the run's ``properties.comparedWithRun`` and ``properties.resolved``
  (the ids of the resolved findings).

Without a baseline (a first run), every format says so: the table and Markdown in a line, the
JSON with ``"diff": null``, CSV and SARIF by leaving the changes out (``comparedWithRun``
null).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from ...codec import to_dict
from ...diff import FindingChange, ReportDiff
from ...render import DEFAULT_WIDTH, TrendPoint, render_diff, render_report
from ...render.diff import diff_to_dict
from ...report import Report
from ...text import csv_cell

__all__ = ["render_compared", "verdict"]

_NO_BASELINE = "no earlier complete run to compare with"


def render_compared(
    report: Report,
    fmt: str,
    diff: ReportDiff | None,
    *,
    trend: Sequence[TrendPoint] = (),
    run_id: int | None = None,
    width: int = DEFAULT_WIDTH,
) -> str:
    """``report`` in ``fmt`` with the changes of ``diff`` (None: there is no baseline);
    ``run_id`` is the history's id of the run, for JSON Lines (whose lines carry their own
    change); ``width`` is the table's width in terminal cells."""
    if fmt == "table":
        return render_report(report, "table", diff=diff, compared=True, width=width)
    if fmt == "html":
        return render_report(report, "html", trend=trend, diff=diff)
    if fmt == "json":
        doc = to_dict(report)
        doc["diff"] = diff_to_dict(diff) if diff is not None else None
        return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"
    if fmt == "jsonl":
        return render_report(report, fmt, run_id=run_id, diff=diff)
    text = render_report(report, fmt, run_id=run_id)
    if fmt == "markdown":
        if diff is None:
            return text + f"\n## Changes\n\n_{_NO_BASELINE[0].upper()}{_NO_BASELINE[1:]}._\n"
        since = f" since run {diff.old_run}" if diff.old_run is not None else ""
        return text + f"\n## Changes{since}\n\n" + render_diff(diff, "markdown")
    if fmt == "csv":
        return _csv_with_changes(text, diff)
    if fmt == "sarif":
        return _sarif_with_changes(text, diff)
    return text


def _states(diff: ReportDiff) -> dict[str, str]:
    """Finding id -> how it changed, for the findings of the new run."""
    return {finding_id: state for finding_id, (state, _) in diff.states().items()}


def _csv_with_changes(text: str, diff: ReportDiff | None) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return text
    header = rows[0]
    states = _states(diff) if diff is not None else {}
    id_column = header.index("id") if "id" in header else None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, "change"])
    for row in rows[1:]:
        finding_id = row[id_column] if id_column is not None and id_column < len(row) else ""
        writer.writerow([*row, states.get(finding_id, "") if finding_id else ""])
    for change in diff.resolved if diff is not None else ():
        writer.writerow([*_resolved_cells(header, change), "resolved"])
    return out.getvalue()


def _resolved_cells(header: Sequence[str], change: FindingChange) -> list[str]:
    before = change.before
    values = {
        "address": change.address,
        "port": str(change.port),
        "protocol": change.protocol,
        "rule": change.rule,
        "id": change.id,
    }
    if before is not None:
        values |= {
            "severity": before.severity.label,
            "title": before.title,
            "evidence": before.evidence,
            "remediation": before.remediation,
        }
    # csv_cell: the old run's text came from targets too (formula injection)
    return [csv_cell(values.get(column, "")) for column in header]


def _sarif_with_changes(text: str, diff: ReportDiff | None) -> str:
    doc: dict[str, Any] = json.loads(text)
    states = _states(diff) if diff is not None else {}
    sarif_state = {"new": "new", "changed": "updated", "unchanged": "unchanged"}
    for run in doc.get("runs", []):
        properties = run.setdefault("properties", {})
        properties["comparedWithRun"] = diff.old_run if diff is not None else None
        properties["resolved"] = [c.id for c in diff.resolved] if diff is not None else []
        if diff is None:
            continue
        for result in run.get("results", []):
            ids = set(result.get("fingerprints", {}).values())
            state = next((states[i] for i in ids if i in states), None)
            if state is not None:
                result["baselineState"] = sarif_state[state]
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


def verdict(report: Report, diff: ReportDiff | None = None, *, compared: bool = False) -> str:
    """The run in one line, for stderr when the report went to a file: ``grade F, 2 hosts:
    1 critical, 1 high (1 accepted); since run 4: 1 new, 2 resolved; incomplete``. With
    ``compared`` and no ``diff``: ``no earlier complete run to compare with``."""
    hosts = len(report.hosts)
    line = f"grade {report.grade.value}, {hosts} host{'' if hosts == 1 else 's'}"
    counts = [f"{n} {label}" for label, n in report.severity_counts().items() if n]
    line += ": " + (", ".join(counts) if counts else "no findings")
    accepted = report.accepted_count()
    if accepted:
        line += f" ({accepted} accepted)"
    if diff is not None:
        parts = [
            f"{len(diff.new)} new" if diff.new else "",
            f"{len(diff.changed)} changed" if diff.changed else "",
            f"{len(diff.resolved)} resolved" if diff.resolved else "",
        ]
        line += f"; since run {diff.old_run}: " + (", ".join(p for p in parts if p) or "no change")
    elif compared:
        line += f"; {_NO_BASELINE}"
    if report.audited_nothing:
        line += "; nothing was audited"
    elif not report.complete:
        line += "; incomplete"
    return line
