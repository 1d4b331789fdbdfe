"""The report: a run's hosts with their findings and grades, the names it resolved, the
addresses it skipped and why, and the run's own errors. Plain values, built by the audit and
read by the renderers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .findings import Finding, Severity
from .grading import Grade, grade_run
from .observations import HostObservation, HostStatus, NameResolution
from .ports import PortSet

__all__ = ["HostReport", "Report", "SkippedAddress", "UnauditedTarget", "unaudited_targets"]


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
class UnauditedTarget:
    """A target (as given: an address, a range or a name) of which no address was audited, and
    why: the name did not resolve (NXDOMAIN, a resolver timeout), it was excluded, or what it
    resolved to was skipped (not a public address)."""

    target: str
    reason: str


@dataclass(frozen=True)
class Report:
    """Everything one run learned. ``complete`` is False when the run was cut short;
    ``interrupted`` when a signal (Ctrl-C, SIGTERM) cut it.

    ``vantages`` names the vantage points (sorted) the run audited from
    (``exposure_audit.run.vantage.merge_vantages``); empty for a run from one place.
    ``not_audited`` lists the targets of which no address was audited, with the reason: a run
    whose ``hosts`` is empty audited nothing, and says so.
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
    not_audited: tuple[UnauditedTarget, ...] = ()
    interrupted: bool = False

    @property
    def grade(self) -> Grade:
        """The worst host's grade; ``?`` when no host was audited."""
        return grade_run(h.grade for h in self.hosts)

    @property
    def audited_nothing(self) -> bool:
        return not self.hosts

    def run_notes(self) -> list[str]:
        """Every run-level note a renderer must show, in one order and one wording for every
        format: nothing audited, or (when some hosts were) the targets that were not, each
        with its reason; interrupted; then the run's own notes (UDP skipped, stale accepted
        risks, ...)."""
        notes = []
        reasons = "; ".join(f"{t.target}: {t.reason}" for t in self.not_audited)
        if self.audited_nothing:
            notes.append("nothing was audited" + (f" ({reasons})" if reasons else ""))
        elif reasons:
            # A target left out must never read as a clean one: the grade does not cover it.
            notes.append(f"not every target was audited ({reasons})")
        if self.interrupted:
            notes.append("the run was interrupted: what was found before is reported")
        return notes + list(self.notes)

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


def unaudited_targets(
    names: Sequence[NameResolution],
    skipped: Sequence[SkippedAddress],
    excluded: Sequence[str],
    audited: Collection[str],
) -> tuple[UnauditedTarget, ...]:
    """The targets none of whose addresses were ``audited``: each excluded target, and each
    name that resolved to no audited address, with why (its resolution errors, or what
    happened to each address it resolved to)."""
    gone = [UnauditedTarget(target, "excluded") for target in excluded]
    for name in names:
        if any(a in audited for a in name.addresses):
            continue
        reasons = list(name.errors)
        reasons += [f"{s.address} skipped: {s.reason}" for s in skipped if s.name == name.name]
        if not reasons and not name.addresses:
            reasons.append("no A or AAAA record")
        elif not reasons:
            reasons.append("its addresses were not audited")
        gone.append(UnauditedTarget(name.name, "; ".join(reasons)))
    return tuple(gone)
