"""Notification messages: whether a run has something to say, and saying it.

Pure. :func:`should_notify` applies the notification policy to a run and its diff against the
previous run; :func:`compose` turns them into a :class:`Message` carrying the same content in
four shapes: an e-mail subject and plain-text body, a JSON payload for webhooks, a
Slack-compatible ``{"text": ...}`` payload, and a Markdown body for chat services (Apprise,
which turns it into each service's own format). :mod:`exposure_audit.history.notify` and
:mod:`exposure_audit.history.apprise_notify` deliver them.

Every string that came from a target (titles and the change descriptions built from banners)
goes through :func:`~exposure_audit.text.printable`; the Slack text is additionally escaped
the way Slack asks (``&``, ``<``, ``>``), so a banner cannot ping ``<!channel>`` or forge a
link; in the Markdown body target text has every Markdown and HTML control character
backslash-escaped and a zero-width space after each ``@`` (no link, image, markup or
``@everyone`` mention can come from a banner).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..diff import CoverageShortfall, FindingChange, ReportDiff, ServiceKey
from ..findings import Finding, Severity
from ..report import Report
from ..text import printable

__all__ = ["NOTIFY_POLICIES", "SCHEMA", "Message", "compose", "should_notify"]

SCHEMA = "exposure-audit-notification/1"

NOTIFY_POLICIES = ("always", "change", "new")
"""``always``: after every run. ``change``: when the diff has changes (and on a first run).
``new``: when a new or worsened counting finding reaches the minimum severity. Whatever the
policy, a run that covered nothing or fewer hosts than its baseline is notified."""

_Describe = Callable[[FindingChange], list[str]]

_MAX_LISTED = 50
"""Findings listed per section in the text and Slack bodies (the JSON payload lists all):
Slack cuts messages at 40,000 characters and nobody reads the 51st line of an e-mail."""


@dataclass(frozen=True)
class Message:
    """One notification in every shape a channel needs.

    ``subject`` is one line with no target-supplied text; ``text`` is the plain-text e-mail
    body; ``payload`` is the JSON-able webhook body (schema :data:`SCHEMA`); ``slack`` is
    ``{"text": ...}`` for Slack-compatible incoming webhooks; ``markdown`` is the chat body
    (CommonMark; the subject is its title, sent apart).
    """

    subject: str
    text: str
    payload: dict[str, Any]
    slack: dict[str, str]
    markdown: str = ""


def should_notify(
    policy: str,
    diff: ReportDiff | None,
    report: Report,
    min_severity: Severity,
    shortfall: CoverageShortfall | None = None,
) -> bool:
    """Whether a run with this ``diff`` against the previous run (None: first run) calls for a
    notification under ``policy`` (one of :data:`NOTIFY_POLICIES`).

    A run with a coverage ``shortfall`` (it audited nothing, or fewer hosts than its baseline)
    is always notified: a weekly job whose name stopped resolving must not stay quiet. Under
    ``new`` a finding counts when it is new or its severity went up
    (:meth:`ReportDiff.worsened`, the rule ``--fail-on-new`` uses too), it reaches
    ``min_severity`` and it is not under a live acceptance; on a first run every finding is new.
    Raises ``ValueError`` for an unknown policy (shortfall or not).
    """
    if policy not in NOTIFY_POLICIES:
        choices = ", ".join(NOTIFY_POLICIES)
        raise ValueError(f"unknown notification policy {policy!r} (choose from {choices})")
    if shortfall is not None or policy == "always":
        return True
    if policy == "change":
        return diff is None or diff.has_changes
    # policy == "new"
    if diff is None:
        candidates: Iterable[Finding] = report.findings()
    else:
        candidates = (c.after for c in diff.worsened() if c.after is not None)
    return any(f.counts and f.severity >= min_severity for f in candidates)


def compose(
    report: Report,
    diff: ReportDiff | None,
    shortfall: CoverageShortfall | None = None,
    *,
    run_id: int | None = None,
) -> Message:
    """The notification for ``report``, compared with the previous run by ``diff`` (None when
    there was no previous run: every finding of the report is then listed as new).

    ``shortfall``: the run audited nothing or fewer hosts than its baseline; the subject says
    so first, the text opens with :meth:`CoverageShortfall.describe` (each target's reason,
    the addresses not audited) and the payload carries it under ``coverage``. Findings the run
    did not re-check are listed apart from resolved ones, with why.

    ``run_id`` is this run's id in the history (None when it is not stored): the payload's
    ``run``, on a first run too (a diff names its own new run)."""
    new, resolved, changed = _sections(report, diff)
    subject = _subject(report, diff, new, resolved, changed, shortfall)
    text = _text(report, diff, new, resolved, changed, shortfall)
    return Message(
        subject=subject,
        text=text,
        payload=_payload(report, diff, new, resolved, changed, shortfall, run_id),
        slack={"text": _slack_escape(f"{subject}\n\n{text}")},
        markdown=_markdown(report, diff, new, resolved, changed, shortfall),
    )


def _sections(
    report: Report, diff: ReportDiff | None
) -> tuple[list[FindingChange], list[FindingChange], list[FindingChange]]:
    if diff is not None:
        return list(diff.new), list(diff.resolved), list(diff.changed)
    # First run: everything is new, worst first, in the report's order otherwise.
    findings = sorted(report.findings(), key=lambda f: -f.severity)
    firsts = [FindingChange(f.id, f.rule, f.address, f.port, f.protocol, None, f) for f in findings]
    return firsts, [], []


# --- subject ------------------------------------------------------------------------------


def _subject(
    report: Report,
    diff: ReportDiff | None,
    new: Sequence[FindingChange],
    resolved: Sequence[FindingChange],
    changed: Sequence[FindingChange],
    shortfall: CoverageShortfall | None,
) -> str:
    grade = f"grade {report.grade.value}"
    # No target-supplied text here: the reasons (names) are in the body only.
    if shortfall is not None and shortfall.nothing:
        return f"exposure-audit: {grade}: audit covered nothing"
    if diff is None:
        summary = f"{_plural(len(new), 'finding')} (first run)"
    else:
        if diff.old_grade != report.grade:
            grade += f" (was {diff.old_grade.value})"
        parts = [
            f"{len(new)} new" if new else "",
            f"{len(resolved)} resolved" if resolved else "",
            f"{len(changed)} changed" if changed else "",
            f"{len(diff.not_rechecked)} not re-checked" if diff.not_rechecked else "",
        ]
        summary = ", ".join(p for p in parts if p) or (
            "changes in hosts or services" if diff.has_changes else "no change"
        )
    if shortfall is not None:
        summary = (
            f"audit covered fewer hosts ({shortfall.audited} of {shortfall.expected}); {summary}"
        )
    tail = ", INCOMPLETE run" if _incomplete(report) else ""
    return f"exposure-audit: {grade}: {summary}{tail}"


# --- plain text ---------------------------------------------------------------------------


def _text(
    report: Report,
    diff: ReportDiff | None,
    new: Sequence[FindingChange],
    resolved: Sequence[FindingChange],
    changed: Sequence[FindingChange],
    shortfall: CoverageShortfall | None,
) -> str:
    lines = [_run_line(report, diff), ""]
    if shortfall is not None:
        lines.append(printable(shortfall.describe()))
        lines.append("This run is not used as the baseline of later comparisons.")
        lines.append("")
    grade = f"Grade: {report.grade.value}"
    if diff is not None and diff.old_grade != report.grade:
        grade += f" (was {diff.old_grade.value})"
    lines.append(grade)
    if diff is not None and diff.not_rechecked:
        lines.append(
            f"  The grade covers only what this run looked at: "
            f"{_plural(len(diff.not_rechecked), 'earlier finding')} not re-checked."
        )
    lines.append("Findings: " + _counts_line(report))
    lines.extend(_completeness_lines(report))
    lines.append("")
    if diff is None:
        lines.append("First run: there is no previous run to compare with, so every finding")
        lines.append("is listed as new.")
        lines.append("")
        lines.extend(_section("New ({n}):", new, _describe_new))
    else:
        lines.extend(_section("New ({n}):", new, _describe_new))
        lines.extend(_section("Changed ({n}):", changed, _describe_changed))
        lines.extend(_section("Resolved ({n}):", resolved, _describe_resolved))
        rechecked = (
            "Not re-checked ({n}): this run did not look at these (host not audited or "
            "incomplete, port not scanned or not probed, service not identified); "
            "not counted as resolved:"
        )
        lines.extend(_section(rechecked, diff.not_rechecked, _describe_unresolved))
        confirmed = (
            "Not confirmed ({n}): this run looked but got no clear answer (port filtered, "
            "probe timed out or failed); not counted as resolved:"
        )
        lines.extend(_section(confirmed, diff.not_confirmed, _describe_unresolved))
        lines.extend(_host_lines(diff))
        lines.append(f"Unchanged: {_plural(len(diff.unchanged), 'finding')}.")
        if not diff.has_changes:
            lines.append("Nothing changed since the previous run.")
    return "\n".join(lines).rstrip() + "\n"


def _run_line(report: Report, diff: ReportDiff | None) -> str:
    finished = report.finished_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    line = f"exposure-audit {report.tool_version}, run finished {finished}"
    if diff is not None and diff.new_run is not None:
        line += f" (run {diff.new_run}"
        line += f", compared with run {diff.old_run})" if diff.old_run is not None else ")"
    elif diff is not None and diff.old_run is not None:
        line += f" (compared with run {diff.old_run})"
    return line


def _counts_line(report: Report) -> str:
    counts = ", ".join(f"{n} {label}" for label, n in report.severity_counts().items())
    accepted = report.accepted_count()
    if accepted:
        counts += f"; {_plural(accepted, 'accepted risk')} not counted"
    return counts


def _incomplete(report: Report) -> bool:
    return not report.complete or bool(report.incomplete_hosts())


def _completeness_lines(report: Report) -> list[str]:
    if not _incomplete(report):
        return ["Run: complete"]
    lines = ["Run: INCOMPLETE: what could not be tested is not known to be safe."]
    if not report.complete:
        lines.append("  The run was cut short.")
    hosts = [printable(h.address) for h in report.incomplete_hosts()]
    if hosts:
        lines.append("  Hosts not fully tested: " + ", ".join(hosts))
    return lines


def _section(title: str, changes: Sequence[FindingChange], describe: _Describe) -> list[str]:
    """``title`` with the count, then up to :data:`_MAX_LISTED` described entries."""
    if not changes:
        return []
    lines = [title.format(n=len(changes))]
    for change in changes[:_MAX_LISTED]:
        lines.extend(describe(change))
    if len(changes) > _MAX_LISTED:
        lines.append(f"  ... and {len(changes) - _MAX_LISTED} more (see the full report)")
    lines.append("")
    return lines


def _describe_new(change: FindingChange) -> list[str]:
    finding = change.after
    assert finding is not None  # a new finding has an "after"
    return [
        f"  - {_headline(change, finding)}",
        f"    Remediation: {printable(finding.remediation)}",
    ]


def _describe_changed(change: FindingChange) -> list[str]:
    finding = change.after or change.before
    assert finding is not None  # a changed finding exists on both sides
    lines = [f"  - {_headline(change, finding)}"]
    if change.changes:
        lines.append("    Changed: " + "; ".join(printable(c) for c in change.changes))
    lines.append(f"    Remediation: {printable(finding.remediation)}")
    return lines


def _describe_resolved(change: FindingChange) -> list[str]:
    finding = change.before or change.after
    assert finding is not None
    return [f"  - {_headline(change, finding)}"]


def _describe_unresolved(change: FindingChange) -> list[str]:
    """A finding not resolved: its headline as last seen, and why it was not."""
    lines = _describe_resolved(change)
    if change.changes:
        lines.append("    Why: " + "; ".join(printable(c) for c in change.changes))
    return lines


def _headline(change: FindingChange, finding: Finding) -> str:
    text = (
        f"{finding.severity.label.upper()} {printable(change.rule)} "
        f"{_where(change.address, change.port, change.protocol)}: {printable(finding.title)}"
    )
    return text + _acceptance_note(finding)


def _where(address: str, port: int, protocol: str) -> str:
    if port == 0:
        return f"{printable(address)} (host)"
    return f"{printable(address)} port {port}/{printable(protocol)}"


def _acceptance_note(finding: Finding) -> str:
    acceptance = finding.acceptance
    if acceptance is None:
        return ""
    if acceptance.expired:
        return f" [acceptance expired {acceptance.expires.isoformat()}]"
    return f" [accepted until {acceptance.expires.isoformat()}]"


def _host_lines(diff: ReportDiff) -> list[str]:
    lines: list[str] = []
    if diff.hosts_appeared:
        lines.append("Hosts appeared: " + ", ".join(printable(h) for h in diff.hosts_appeared))
    if diff.hosts_vanished:
        lines.append("Hosts vanished: " + ", ".join(printable(h) for h in diff.hosts_vanished))
    if diff.services_appeared:
        lines.append("Services appeared: " + _services(diff.services_appeared))
    if diff.services_vanished:
        lines.append("Services vanished: " + _services(diff.services_vanished))
    lines.extend(
        f"Service reachability changed: {_where(c.address, c.port, c.protocol)} "
        f"{printable(c.describe())}"
        for c in diff.services_changed
    )
    if lines:
        lines.append("")
    return lines


def _services(services: Sequence[ServiceKey]) -> str:
    return ", ".join(_where(a, p, proto) for a, p, proto in services)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --- JSON payload -------------------------------------------------------------------------


def _payload(
    report: Report,
    diff: ReportDiff | None,
    new: Sequence[FindingChange],
    resolved: Sequence[FindingChange],
    changed: Sequence[FindingChange],
    shortfall: CoverageShortfall | None,
    run_id: int | None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool_version": report.tool_version,
        "finished_at": report.finished_at.isoformat().replace("+00:00", "Z"),
        "run": run_id if diff is None or diff.new_run is None else diff.new_run,
        "compared_with": None if diff is None else diff.old_run,
        "first_run": diff is None,
        "grade": report.grade.value,
        "previous_grade": None if diff is None else diff.old_grade.value,
        "counts": report.severity_counts(),
        "accepted": report.accepted_count(),
        "complete": not _incomplete(report),
        "incomplete_hosts": [printable(h.address) for h in report.incomplete_hosts()],
        "has_changes": True if diff is None else diff.has_changes,
        "new": [_entry(c, c.after) for c in new],
        "resolved": [_entry(c, c.before) for c in resolved],
        "changed": [_entry(c, c.after) for c in changed],
        "not_confirmed": [] if diff is None else [_unresolved(c) for c in diff.not_confirmed],
        "not_rechecked": [] if diff is None else [_unresolved(c) for c in diff.not_rechecked],
        "coverage": _coverage(shortfall),
        "unchanged": 0 if diff is None else len(diff.unchanged),
        "hosts_appeared": [] if diff is None else [printable(h) for h in diff.hosts_appeared],
        "hosts_vanished": [] if diff is None else [printable(h) for h in diff.hosts_vanished],
        "services_appeared": [] if diff is None else _service_dicts(diff.services_appeared),
        "services_vanished": [] if diff is None else _service_dicts(diff.services_vanished),
        **_reachability_changes(diff),
    }


def _reachability_changes(diff: ReportDiff | None) -> dict[str, Any]:
    """``services_changed``, only when a run audited from vantages has some: else as before."""
    if diff is None or not diff.services_changed:
        return {}
    return {
        "services_changed": [
            {
                **_service_dicts([c.key])[0],
                "reachable_from_before": [printable(v) for v in c.before],
                "reachable_from_after": [printable(v) for v in c.after],
                "untested_from": [printable(v) for v in c.untested],
            }
            for c in diff.services_changed
        ]
    }


def _entry(change: FindingChange, preferred: Finding | None) -> dict[str, Any]:
    finding = preferred or change.after or change.before
    assert finding is not None
    entry: dict[str, Any] = {
        "id": change.id,
        "rule": change.rule,
        "address": printable(change.address),
        "port": change.port,
        "protocol": change.protocol,
        "severity": finding.severity.label,
        "title": printable(finding.title),
        "remediation": printable(finding.remediation),
        "accepted": finding.acceptance is not None and not finding.acceptance.expired,
    }
    if change.before is not None and change.after is not None:
        entry["severity_before"] = change.before.severity.label
        entry["changes"] = [printable(c) for c in change.changes]
    return entry


def _unresolved(change: FindingChange) -> dict[str, Any]:
    """A not re-checked or not confirmed entry: the finding as last seen, and why."""
    return {**_entry(change, change.before), "reasons": [printable(c) for c in change.changes]}


def _coverage(shortfall: CoverageShortfall | None) -> dict[str, Any] | None:
    """``coverage``: null when the run covered its baseline's hosts, else what fell short."""
    if shortfall is None:
        return None
    return {
        "covered": "nothing" if shortfall.nothing else "fewer_hosts",
        "text": printable(shortfall.describe()),
        "hosts": shortfall.audited,
        "baseline_run": shortfall.baseline_run,
        "baseline_hosts": shortfall.expected,
        "missing": [printable(a) for a in shortfall.missing],
        "not_audited": [
            {"target": printable(t.target), "reason": printable(t.reason)}
            for t in shortfall.not_audited
        ],
    }


def _service_dicts(services: Sequence[ServiceKey]) -> list[dict[str, Any]]:
    return [{"address": printable(a), "port": p, "protocol": proto} for a, p, proto in services]


# --- Slack --------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters; see
    https://api.slack.com/reference/surfaces/formatting#escaping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- Markdown (chat) ----------------------------------------------------------------------

# Target text never starts a line here (a bullet or a label comes first), so the characters
# that matter only there (#, -, +, digits with a dot) need no escape.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~])")


def _md(text: str) -> str:
    """Target text made inert in Markdown: printable, every control character of Markdown and
    HTML backslash-escaped, and ``@`` kept from starting a mention (a zero-width space)."""
    return _MD_SPECIAL.sub(r"\\\1", printable(text)).replace("@", "@\u200b")


def _markdown(
    report: Report,
    diff: ReportDiff | None,
    new: Sequence[FindingChange],
    resolved: Sequence[FindingChange],
    changed: Sequence[FindingChange],
    shortfall: CoverageShortfall | None,
) -> str:
    """The message for chat: the verdict first, then what changed, each finding one bullet."""
    blocks: list[str] = []
    if shortfall is not None:
        blocks.append(
            f"**{_md(shortfall.describe())}**  \nThis run is not used as the baseline of later "
            "comparisons."
        )
    grade = f"**Grade {report.grade.value}**"
    if diff is not None and diff.old_grade != report.grade:
        grade += f" (was {diff.old_grade.value})"
    verdict = [grade + " \u00b7 findings: " + _counts_line(report)]
    if _incomplete(report):
        verdict.append("**Run INCOMPLETE**: what could not be tested is not known to be safe.")
        hosts = [_md(h.address) for h in report.incomplete_hosts()]
        if hosts:
            verdict.append("Hosts not fully tested: " + ", ".join(hosts))
    if diff is not None and diff.not_rechecked:
        verdict.append(
            f"The grade covers only what this run looked at: "
            f"{_plural(len(diff.not_rechecked), 'earlier finding')} not re-checked."
        )
    blocks.append("  \n".join(verdict))
    if diff is None:
        blocks.append("_First run: every finding is listed as new._")
    blocks.extend(_md_section("New", new, _md_new))
    blocks.extend(_md_section("Changed", changed, _md_changed))
    blocks.extend(_md_section("Resolved", resolved, _md_resolved))
    if diff is not None:
        blocks.extend(
            _md_section(
                "Not re-checked",
                diff.not_rechecked,
                _md_unresolved,
                "this run did not look at these; not counted as resolved",
            )
        )
        blocks.extend(
            _md_section(
                "Not confirmed",
                diff.not_confirmed,
                _md_unresolved,
                "this run looked but got no clear answer; not counted as resolved",
            )
        )
        if not diff.has_changes:
            blocks.append("Nothing changed since the previous run.")
    blocks.append(f"_{_md(_run_line(report, diff))}_")
    return "\n\n".join(blocks) + "\n"


def _md_section(
    title: str,
    changes: Sequence[FindingChange],
    describe: Callable[[FindingChange], str],
    note: str = "",
) -> list[str]:
    if not changes:
        return []
    head = f"**{title} ({len(changes)})**" + (f": {note}" if note else "")
    lines = [describe(c) for c in changes[:_MAX_LISTED]]
    if len(changes) > _MAX_LISTED:
        lines.append(f"- ... and {len(changes) - _MAX_LISTED} more (see the full report)")
    return [head + "\n\n" + "\n".join(lines)]


def _md_headline(change: FindingChange, finding: Finding) -> str:
    where = _md(_where(change.address, change.port, change.protocol))
    return (
        f"- **{finding.severity.label.upper()}** `{_md_code(change.rule)}` {where}: "
        f"{_md(finding.title)}{_md(_acceptance_note(finding))}"
    )


def _md_code(text: str) -> str:
    """A rule id in a code span: printable, never a backtick (which would end the span)."""
    return printable(text).replace("`", "'")


def _md_new(change: FindingChange) -> str:
    finding = change.after
    assert finding is not None
    return f"{_md_headline(change, finding)}  \n  _Fix:_ {_md(finding.remediation)}"


def _md_changed(change: FindingChange) -> str:
    finding = change.after or change.before
    assert finding is not None
    line = _md_headline(change, finding)
    if change.changes:
        line += "  \n  _Changed:_ " + "; ".join(_md(c) for c in change.changes)
    return line


def _md_resolved(change: FindingChange) -> str:
    finding = change.before or change.after
    assert finding is not None
    return _md_headline(change, finding)


def _md_unresolved(change: FindingChange) -> str:
    line = _md_resolved(change)
    if change.changes:
        line += "  \n  _Why:_ " + "; ".join(_md(c) for c in change.changes)
    return line
