"""Grades: A (nothing above info) to F (critical), from a host's findings. A grade is a lower
bound: what was seen is certain, what was not seen never improves it.

==========  =====================================================================
grade       the host
==========  =====================================================================
F           worst counting finding critical
D           worst counting finding high
C           worst counting finding medium
B           worst counting finding low
A           nothing above info, every probe finished, every open port identified
?           nothing above info, but the audit was cut short (incomplete) or an
            open service could not be identified: unknown, never clean
==========  =====================================================================

The run's grade is the worst host's, ``?`` ranking between A and B (worse than a clean host,
better than any real finding); a run that audited no host is ``?``: it saw nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from .findings import Finding, Severity
from .observations import HostObservation, HostStatus

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


def grade_host(findings: Iterable[Finding], host: HostObservation) -> Grade:
    """Grade one host from its counting findings' worst severity (accepted risks do not count);
    ``?`` instead of A when the host is incomplete or has an unidentified open service."""
    worst = max((f.severity for f in findings if f.counts), default=Severity.INFO)
    grade = _BY_SEVERITY[worst]
    unverified = host.status is HostStatus.INCOMPLETE or bool(host.unidentified_services())
    if grade is Grade.A and unverified:
        return Grade.UNKNOWN
    return grade


def grade_run(grades: Iterable[Grade]) -> Grade:
    """The worst of the hosts' grades; ``?`` for a run with no hosts (nothing was seen)."""
    return max(grades, key=lambda g: g.rank, default=Grade.UNKNOWN)
