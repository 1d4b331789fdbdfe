"""Grades: A (nothing above info) to F (critical), from a host's findings.

A host whose probes could not finish is graded on what was found, and never better than that:
when nothing was found on an incomplete host its grade is ``?`` (unknown), not A, because
"could not test" is not "safe". The run's grade is the worst host's, ``?`` ranking between A
and B (worse than a clean host, better than any real finding).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from .findings import Finding, Severity
from .observations import HostStatus

__all__ = ["Grade", "grade_host", "grade_run"]


class Grade(StrEnum):
    A = "A"
    UNKNOWN = "?"
    B = "B"
    C = "C"
    D = "D"
    F = "F"

    @property
    def rank(self) -> int:
        return list(Grade).index(self)


_BY_SEVERITY = {
    Severity.INFO: Grade.A,
    Severity.LOW: Grade.B,
    Severity.MEDIUM: Grade.C,
    Severity.HIGH: Grade.D,
    Severity.CRITICAL: Grade.F,
}


def grade_host(findings: Iterable[Finding], status: HostStatus) -> Grade:
    """Grade one host from its counting findings' worst severity (accepted risks do not count);
    ``?`` for an incomplete clean host."""
    worst = max((f.severity for f in findings if f.counts), default=Severity.INFO)
    grade = _BY_SEVERITY[worst]
    if grade is Grade.A and status is HostStatus.INCOMPLETE:
        return Grade.UNKNOWN
    return grade


def grade_run(grades: Iterable[Grade]) -> Grade:
    """The worst of the hosts' grades; A for a run with no hosts."""
    return max(grades, key=lambda g: g.rank, default=Grade.A)
