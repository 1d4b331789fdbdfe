"""Renderers for a :class:`~exposure_audit.diff.ReportDiff`: table (terminal), JSON, Markdown
(tickets and chat).

Pure functions. Text that came from a target reaches the change descriptions (product
versions, DSM versions from banners), so everything shown in the table goes through
:func:`~exposure_audit.text.printable`, and the Markdown also escapes the characters that
would make links, emphasis or HTML of it. The JSON (``"schema": "exposure-audit-diff/1"``)
escapes everything non-ASCII; its entries reuse the report's finding objects
(:func:`~exposure_audit.codec.finding_dict`) for ``before`` and ``after``.
"""

from __future__ import annotations

import json
from typing import Any

from ..codec import finding_dict
from ..diff import FindingChange, ReportDiff, ServiceKey
from ..findings import Finding
from ..text import md_text, printable
from ._fit import DEFAULT_WIDTH, clip, fit_table, wrap
from ._view import (
    DIFF_SECTIONS,
    acceptance_state,
    appeared_or_vanished,
    change_finding,
    diff_entries,
    diff_runs,
    endpoint,
    reachability_changes,
)

__all__ = [
    "DIFF_SCHEMA",
    "diff_to_dict",
    "render_diff_json",
    "render_diff_markdown",
    "render_diff_table",
]

DIFF_SCHEMA = "exposure-audit-diff/1"

_NOTES = {
    "not_rechecked": (
        "not resolved: the new run did not look at these (host not audited or incomplete, port "
        "not scanned or not probed, service not identified)"
    ),
    "not_confirmed": (
        "not resolved: the new run could not test these (port filtered, probe timed out or failed)"
    ),
}


def _acceptance_mark(finding: Finding) -> str:
    """`` (accepted)``, `` (acceptance expired)``, or nothing."""
    state = acceptance_state(finding)
    return f" ({state})" if state else ""


def _change_dict(change: FindingChange) -> dict[str, Any]:
    finding = change_finding(change)
    return {
        "id": change.id,
        "rule": change.rule,
        "address": change.address,
        "port": change.port,
        "protocol": change.protocol,
        "severity": finding.severity.label,
        "title": finding.title,
        "changes": list(change.changes),
        "before": finding_dict(change.before) if change.before is not None else None,
        "after": finding_dict(change.after) if change.after is not None else None,
    }


def _service_dict(key: ServiceKey) -> dict[str, Any]:
    address, port, protocol = key
    return {"address": address, "port": port, "protocol": protocol}


def diff_to_dict(diff: ReportDiff) -> dict[str, Any]:
    """The versioned JSON document (``"schema": "exposure-audit-diff/1"``).

    Top-level lists ``new``, ``resolved``, ``changed``, ``unchanged``, ``not_rechecked`` and
    ``not_confirmed`` hold one object per finding id (``id``, ``rule``, ``address``, ``port``,
    ``protocol``, ``severity``, ``title``, ``changes``, ``before``, ``after``: the report's
    finding objects, null on the side where the finding is absent). ``services_changed``
    (present only when not empty: runs audited from vantages) lists open services whose
    per-vantage reachability changed, with ``reachable_from_before``, ``reachable_from_after``
    and ``untested_from``.
    """
    doc: dict[str, Any] = {
        "schema": DIFF_SCHEMA,
        "old_run": diff.old_run,
        "new_run": diff.new_run,
        "old_grade": diff.old_grade.value,
        "new_grade": diff.new_grade.value,
        "has_changes": diff.has_changes,
    }
    for section in ("new", "resolved", "changed", "unchanged", "not_rechecked", "not_confirmed"):
        doc[section] = [_change_dict(c) for c in diff_entries(diff, section)]
    doc["hosts_appeared"] = list(diff.hosts_appeared)
    doc["hosts_vanished"] = list(diff.hosts_vanished)
    doc["services_appeared"] = [_service_dict(k) for k in diff.services_appeared]
    doc["services_vanished"] = [_service_dict(k) for k in diff.services_vanished]
    if diff.services_changed:  # only runs audited from vantages have them: else as before
        doc["services_changed"] = [
            {
                **_service_dict(c.key),
                "reachable_from_before": list(c.before),
                "reachable_from_after": list(c.after),
                "untested_from": list(c.untested),
            }
            for c in diff.services_changed
        ]
    return doc


def render_diff_json(diff: ReportDiff) -> str:
    return json.dumps(diff_to_dict(diff), indent=2, ensure_ascii=True) + "\n"


def _runs(diff: ReportDiff) -> str:
    old, new = diff_runs(diff)
    return f"{old} -> {new}"


def _counts(diff: ReportDiff) -> str:
    parts = [f"{len(diff_entries(diff, s))} {title.lower()}" for s, title in DIFF_SECTIONS.items()]
    return ", ".join([*parts, f"{len(diff.unchanged)} unchanged"])


def render_diff_table(diff: ReportDiff, *, width: int = DEFAULT_WIDTH) -> str:
    """The terminal diff, every line at most ``width`` cells: a headline with the grades, then
    one table per non-empty section (worst first), then hosts and services that appeared or
    vanished."""
    lines = wrap(
        f"exposure-audit diff, {_runs(diff)}: grade {diff.old_grade.value} -> "
        f"{diff.new_grade.value}",
        width,
    )
    lines += wrap(_counts(diff), width)
    if not diff.has_changes:
        lines.append("no changes")
    for section, title in DIFF_SECTIONS.items():
        entries = diff_entries(diff, section)
        if not entries:
            continue
        lines.append("")
        lines.append(f"{title.upper()} ({len(entries)})")
        if section in _NOTES:
            lines += wrap(_NOTES[section], width, "   ")
        rows = [
            [
                change_finding(c).severity.label.upper() + _acceptance_mark(change_finding(c)),
                c.rule,
                printable(endpoint(c.address, c.port, c.protocol)),
                printable(change_finding(c).title),
                "; ".join(printable(text) for text in c.changes),
            ]
            for c in entries
        ]
        lines += fit_table(
            ["severity", "rule", "where", "finding", "changes"],
            rows,
            width,
            flexible={3, 4},  # an endpoint is never cut in two
            caps=[None, None, None, 40, 50],
        )
    appeared = appeared_or_vanished(diff)
    reach = reachability_changes(diff)
    if appeared or reach:
        lines.append("")
        for what, subject in appeared:
            lines += wrap(f"{what}: {printable(subject)}", width, "", "  ")
        for where, change in reach:
            lines += wrap(
                f"service reachability changed: {printable(where)} {printable(change)}",
                width,
                "",
                "  ",
            )
    return "\n".join(clip(lines, width)) + "\n"


# Characters that make Markdown markup inline: links and images ([ ]), emphasis (* _ ~),
# code (`), HTML and autolinks (<), tables (|), and the escape itself.
def _md(text: str) -> str:
    """Text from a target made inert in Markdown, as the report's Markdown does it (escaped
    markup and autolink triggers: ``://``, ``www.``, ``@``), at the table's length."""
    return md_text(text, _MD_LIMIT)


_MD_LIMIT = 512  # text.printable's default: remediations are long


def _md_item(change: FindingChange, section: str) -> str:
    finding = change_finding(change)
    where = endpoint(change.address, change.port, change.protocol)
    line = (
        f"- **{finding.severity.label.upper()}**{_acceptance_mark(finding)} `{change.rule}` "
        f"`{where}` {_md(finding.title)}"
    )
    if change.changes:
        line += ": " + "; ".join(_md(text) for text in change.changes)
    if section == "new" and finding.remediation:
        line += f"\n  - Remediation: {_md(finding.remediation)}"
    return line


def render_diff_markdown(diff: ReportDiff) -> str:
    """A compact Markdown summary for a ticket or a chat: headline with the grades, then the
    New, Resolved, Changed, Not re-checked and Not confirmed sections (rule id, address:port,
    severity, title; remediation for new findings; why for the last two), then hosts and
    services that appeared or vanished."""
    lines = [
        f"**exposure-audit**: grade {diff.old_grade.value} -> {diff.new_grade.value} "
        f"({_runs(diff)})",
        "",
        _counts(diff) + ("" if diff.has_changes else "; no changes"),
    ]
    for section, title in DIFF_SECTIONS.items():
        entries = diff_entries(diff, section)
        if not entries:
            continue
        lines.extend(["", f"### {title} ({len(entries)})", ""])
        if section in _NOTES:
            note = _NOTES[section]
            lines.extend([f"_{note[0].upper()}{note[1:]}._", ""])
        lines.extend(_md_item(c, section) for c in entries)
    appeared = appeared_or_vanished(diff)
    reach = reachability_changes(diff)
    if appeared or reach:
        lines.extend(["", "### Hosts and services", ""])
        lines.extend(f"- {what}: `{subject}`" for what, subject in appeared)
        lines.extend(
            f"- service reachability changed: `{where}` {_md(change)}" for where, change in reach
        )
    return "\n".join(lines) + "\n"
