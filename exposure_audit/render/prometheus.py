"""A run as Prometheus metrics, in the text exposition format (version 0.0.4) that
node_exporter's textfile collector reads (``--metrics FILE``; ``docs/integrations.md``).

Pure: :func:`render_metrics` returns the text; the CLI writes it atomically. Every metric is a
gauge (the file describes the latest run; nothing in it only ever goes up, so no ``_total``),
named ``exposure_audit_*`` with its unit as a suffix where it has one (``_seconds``), labels in
snake case. No sample carries a timestamp (the textfile collector refuses them).

Grades as numbers, the grade-point scale (higher is better)::

    A 4    B 3    C 2    D 1    F 0    ? NaN (and *_grade_unknown 1)

``?`` (not everything could be seen) is no grade at all, so it is NaN, never a number an alert
could compare as good; ``exposure_audit_host_grade_unknown`` is 1 for it and 0 otherwise, so
an alert can select it. The metrics:

================================================  ========================================
``exposure_audit_build_info{version}``            1
``exposure_audit_last_run_timestamp_seconds``     when the run ended (Unix time)
``exposure_audit_last_run_duration_seconds``      how long it took
``exposure_audit_last_run_complete``              1, or 0 for a cut or interrupted run
``exposure_audit_hosts_audited``                  hosts audited
``exposure_audit_hosts_incomplete``               of those, hosts not fully tested
``exposure_audit_targets_not_audited``            targets of which nothing was audited
``exposure_audit_grade``                          the run's grade (its worst host's)
``exposure_audit_grade_unknown``                  1 when that is ``?``
``exposure_audit_host_grade{address}``            each host's grade
``exposure_audit_host_grade_unknown{address}``    1 when it is ``?``
``exposure_audit_findings{severity}``             counting findings by severity (every
                                                  severity, 0 included)
``exposure_audit_host_findings{address,rule,...}``  counting findings per host, rule and
                                                  severity (only the ones there are)
``exposure_audit_accepted_findings``              findings under a live acceptance
``exposure_audit_new_findings{severity}``         new or worsened counting findings since
                                                  the previous complete run (every finding
                                                  on a first run); absent when the run was
                                                  compared with nothing (no history)
================================================  ========================================

Accepted risks do not count (as for grades and exit codes). Label values from targets are
escaped as the format asks (``\\``, ``"``, line feed) after :func:`~exposure_audit.text.printable`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..diff import ReportDiff
from ..findings import Finding, Severity
from ..grading import Grade
from ..report import Report
from ..text import printable

__all__ = ["GRADE_POINTS", "PREFIX", "render_metrics"]

PREFIX = "exposure_audit_"

GRADE_POINTS: dict[Grade, float] = {
    Grade.A: 4.0,
    Grade.B: 3.0,
    Grade.C: 2.0,
    Grade.D: 1.0,
    Grade.F: 0.0,
    Grade.UNKNOWN: math.nan,
}
"""A grade as the number the metrics carry (the grade-point scale; ``?`` is NaN)."""

_Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Family:
    name: str
    help: str
    samples: Sequence[tuple[_Labels, float]]


def render_metrics(
    report: Report,
    *,
    diff: ReportDiff | None = None,
    first_run: bool = False,
    version: str | None = None,
) -> str:
    """The metrics of ``report`` as Prometheus text.

    ``diff`` (against the previous complete run) gives ``exposure_audit_new_findings``; with
    none, ``first_run`` True counts every finding as new (the history had no earlier run) and
    False leaves the metric out (the run was compared with nothing). ``version`` is the tool's
    (default: the report's)."""
    families = [
        _Family(
            "build_info",
            "The exposure-audit version that wrote this file.",
            [((("version", version or report.tool_version),), 1)],
        ),
        _single(
            "last_run_timestamp_seconds",
            "When the last run ended, in seconds since the Unix epoch.",
            report.finished_at.timestamp(),
        ),
        _single(
            "last_run_duration_seconds",
            "How long the last run took, in seconds.",
            max(0.0, (report.finished_at - report.started_at).total_seconds()),
        ),
        _single(
            "last_run_complete",
            "1 when the last run finished, 0 when it was cut short or interrupted.",
            1 if report.complete and not report.interrupted else 0,
        ),
        _single("hosts_audited", "Hosts the last run audited.", len(report.hosts)),
        _single(
            "hosts_incomplete",
            "Hosts the last run audited but could not test fully.",
            len(report.incomplete_hosts()),
        ),
        _single(
            "targets_not_audited",
            "Targets of which the last run audited nothing (unresolved, excluded, skipped).",
            len(report.not_audited),
        ),
        _single("grade", _GRADE_HELP.format(what="The last run's grade"), _points(report.grade)),
        _single(
            "grade_unknown",
            "1 when the last run's grade is ? (not everything could be seen).",
            _unknown(report.grade),
        ),
        _Family(
            "host_grade",
            _GRADE_HELP.format(what="Each audited host's grade"),
            [((("address", h.address),), _points(h.grade)) for h in report.hosts],
        ),
        _Family(
            "host_grade_unknown",
            "1 when a host's grade is ? (not everything could be seen), else 0.",
            [((("address", h.address),), _unknown(h.grade)) for h in report.hosts],
        ),
        _Family(
            "findings",
            "Findings of the last run by severity (accepted risks not counted).",
            _by_severity(report.findings()),
        ),
        _Family(
            "host_findings",
            "Findings of the last run per host, rule and severity (accepted risks not counted).",
            _per_host(report.findings()),
        ),
        _single(
            "accepted_findings",
            "Findings of the last run under a live accepted risk.",
            report.accepted_count(),
        ),
    ]
    new = _new_findings(report, diff, first_run)
    if new is not None:
        families.append(
            _Family(
                "new_findings",
                "New or worsened findings since the previous complete run, by severity "
                "(accepted risks not counted; every finding on a first run).",
                _by_severity(new),
            )
        )
    return "".join(_family_text(f) for f in families)


_GRADE_HELP = "{what} as grade points: A 4, B 3, C 2, D 1, F 0; NaN for ? (see *_grade_unknown)."


def _single(name: str, help_text: str, value: float) -> _Family:
    return _Family(name, help_text, [((), value)])


def _points(grade: Grade) -> float:
    return GRADE_POINTS[grade]


def _unknown(grade: Grade) -> int:
    return 1 if grade is Grade.UNKNOWN else 0


def _by_severity(findings: Iterable[Finding]) -> list[tuple[_Labels, float]]:
    counts = Counter(f.severity for f in findings if f.counts)
    return [((("severity", s.label),), counts.get(s, 0)) for s in sorted(Severity, reverse=True)]


def _per_host(findings: Iterable[Finding]) -> list[tuple[_Labels, float]]:
    counts = Counter((f.address, f.rule, f.severity) for f in findings if f.counts)
    return [
        ((("address", address), ("rule", rule), ("severity", severity.label)), n)
        for (address, rule, severity), n in counts.items()
    ]


def _new_findings(report: Report, diff: ReportDiff | None, first_run: bool) -> list[Finding] | None:
    if diff is not None:
        return [c.after for c in diff.worsened() if c.after is not None]
    return report.findings() if first_run else None


def _family_text(family: _Family) -> str:
    name = PREFIX + family.name
    lines = [f"# HELP {name} {_escape_help(family.help)}", f"# TYPE {name} gauge"]
    for labels, value in family.samples:
        lines.append(f"{name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: _Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_label(printable(value))}"' for key, value in labels)
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
