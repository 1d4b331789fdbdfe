"""The report: a run's hosts with their findings and grades, the names it resolved, the
addresses it skipped and why, and the run's own errors. Plain values, built by the audit and
read by the renderers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from .findings import Finding, Severity
from .grading import Grade, grade_run
from .observations import HostObservation, HostStatus, NameResolution
from .ports import PortSet

__all__ = ["HostReport", "Report", "SkippedAddress"]


@dataclass(frozen=True)
class HostReport:
    """One audited address: what was observed, what the rules found, and its grade."""

    observation: HostObservation
    findings: tuple[Finding, ...]
    grade: Grade

    @property
    def address(self) -> str:
        return self.observation.address


@dataclass(frozen=True)
class SkippedAddress:
    """An address a name resolved to that the policy kept out of the scan."""

    address: str
    name: str
    reason: str


@dataclass(frozen=True)
class Report:
    """Everything one run learned. ``complete`` is False when the run was cut short.

    ``vantages`` names the vantage points (sorted) the run audited from
    (``exposure_audit.vantage.merge_vantages``); empty for a run from one place.
    """

    tool_version: str
    started_at: datetime
    finished_at: datetime
    ports: PortSet
    hosts: tuple[HostReport, ...]
    names: tuple[NameResolution, ...] = ()
    skipped: tuple[SkippedAddress, ...] = ()
    errors: tuple[str, ...] = ()
    complete: bool = True
    notes: tuple[str, ...] = field(default=())
    vantages: tuple[str, ...] = ()

    @property
    def grade(self) -> Grade:
        return grade_run(h.grade for h in self.hosts)

    def findings(self) -> list[Finding]:
        return [f for h in self.hosts for f in h.findings]

    def severity_counts(self) -> dict[str, int]:
        """Counting findings by severity (accepted risks left out; see ``accepted_count``)."""
        counts = Counter(f.severity for f in self.findings() if f.counts)
        return {s.label: counts.get(s, 0) for s in sorted(Severity, reverse=True)}

    def worst_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings() if f.counts), default=None)

    def accepted_count(self) -> int:
        return sum(1 for f in self.findings() if not f.counts)

    def incomplete_hosts(self) -> list[HostReport]:
        return [h for h in self.hosts if h.observation.status is HostStatus.INCOMPLETE]

    def hosts_by_risk(self) -> list[HostReport]:
        """Hosts worst grade first, then by address order of the run."""
        order = {h.address: i for i, h in enumerate(self.hosts)}
        return sorted(self.hosts, key=lambda h: (-h.grade.rank, order[h.address]))
