"""Diff of two reports by stable finding id: new, resolved, changed, unchanged, not re-checked,
not confirmed; and whether a run covered as many hosts as the run it is compared with.

Pure. :func:`diff_reports` and :func:`coverage_shortfall` are the entry points; the results are
plain values that renderers (``render_diff``), notifications and the history store use.

A finding of the old run that the new run lacks is *resolved* only when the new run looked
where it was and did not see it. Otherwise, with the reason in ``changes``, it is

* *not re-checked* when the new run did not look: its host is not among the new run's hosts,
  its port and protocol are not in the new run's port set, its host is incomplete (a host cut
  short proves no absence), its port was not probed (UDP skipped, ports of a host that accepts
  every port not probed one by one), or its port is open but nothing identified the service;
* *not confirmed* when the new run looked and got no clear answer: the port ``filtered``, a
  probe timed out or failed on it, or the port not seen while a host-wide probe timed out
  (the issue's "a port seen once as unreachable after timeouts is not resolved").

The rules are tried in that order; the first that holds gives the reason. Open services that
vanished are held to the same test. Neither list counts as a change, so a flapping port or a
narrower scan does not spam the weekly mail.

Both lists *carry over*: :attr:`ReportDiff.carried` holds their findings, as last seen, for the
history to keep with the new run, and the next diff takes them back (``carried=``) as part of
its old side. A later run that sees such a finding again compares it with the carried one
(unchanged or changed, never new); one that again could not look keeps it not re-checked (or
not confirmed); only a run that looked and did not see it resolves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .findings import Finding
from .grading import Grade
from .observations import HostStatus, ProbeStatus, ServiceObservation
from .ports import PortSet
from .report import HostReport, Report, UnauditedTarget

__all__ = [
    "CarriedFinding",
    "CoverageShortfall",
    "FindingChange",
    "ReachabilityChange",
    "ReportDiff",
    "ServiceKey",
    "coverage_shortfall",
    "diff_reports",
]

ServiceKey = tuple[str, int, str]
"""(address, port, protocol) of a service."""


@dataclass(frozen=True)
class FindingChange:
    """One finding id across two runs. ``before`` is None for a new finding, ``after`` for a
    resolved one; ``changes`` says in words what changed (``"severity high -> critical"``,
    ``"DSM 6.2.4-25556 -> 7.2.2-72806"``, ``"product version 8.2p1 -> 9.6p1"``,
    ``"host grade D -> F"``); empty for unchanged findings."""

    id: str
    rule: str
    address: str
    port: int
    protocol: str
    before: Finding | None
    after: Finding | None
    changes: tuple[str, ...] = ()

    @property
    def worsened(self) -> bool:
        """New, or its severity went up."""
        if self.after is None:
            return False
        return self.before is None or self.after.severity > self.before.severity


@dataclass(frozen=True)
class ReachabilityChange:
    """An open service of two runs audited from vantage points whose ``reachable_from``
    changed (a vantage now reaches it, or one that reached it now scanned it and did not).
    ``before``/``after`` are the two runs' ``reachable_from``; ``untested`` the new run's
    ``untested_from`` (vantages that could not tell this time)."""

    address: str
    port: int
    protocol: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    untested: tuple[str, ...] = ()

    @property
    def key(self) -> ServiceKey:
        return (self.address, self.port, self.protocol)

    def describe(self) -> str:
        """``reachable from eu -> eu, us``, ``... (not tested from ap)``."""
        text = f"reachable from {_vantage_list(self.before)} -> {_vantage_list(self.after)}"
        if self.untested:
            text += f" (not tested from {', '.join(self.untested)})"
        return text


def _vantage_list(vantages: tuple[str, ...]) -> str:
    return ", ".join(vantages) or "no vantage"


@dataclass(frozen=True)
class CarriedFinding:
    """A finding a run did not re-check (or could not confirm), kept for the next diff.

    ``finding`` is the finding as last seen, in run ``seen_in`` (None when the run is not
    known: reports diffed outside a history); ``service`` is its service then (None for a
    host-level finding, or when that run did not report the port) and ``host_grade`` its
    host's grade then, so that a run seeing it again compares like with like. ``reason`` says
    why the carrying run did not re-check it.
    """

    finding: Finding
    seen_in: int | None
    host_grade: Grade
    service: ServiceObservation | None = None
    reason: str = ""


@dataclass(frozen=True)
class ReportDiff:
    """What changed between an old and a new run.

    ``not_rechecked``: findings of the old side missing from a new run that did not look at
    them (host not audited or incomplete, port not in the port set, not probed, or open but
    unidentified); ``not_confirmed``: missing from a new run that looked and got no clear
    answer (port filtered, a probe timed out or failed on the port: a timeout, not a fix).
    Neither is resolved nor unchanged; ``changes`` says why (and ``last seen in run N`` for a
    finding carried from before the old run). They do not count in :attr:`has_changes`.

    ``carried``: the findings of both lists as last seen, for the history to keep with the new
    run and hand to the next diff (see the module docstring).

    ``services_changed``: open services of both runs whose per-vantage reachability changed
    (both runs audited from vantages); per-vantage changes are changes.
    """

    old_run: int | None
    new_run: int | None
    old_grade: Grade
    new_grade: Grade
    new: tuple[FindingChange, ...] = ()
    resolved: tuple[FindingChange, ...] = ()
    changed: tuple[FindingChange, ...] = ()
    unchanged: tuple[FindingChange, ...] = ()
    not_confirmed: tuple[FindingChange, ...] = ()
    not_rechecked: tuple[FindingChange, ...] = ()
    carried: tuple[CarriedFinding, ...] = ()
    hosts_appeared: tuple[str, ...] = ()
    hosts_vanished: tuple[str, ...] = ()
    services_appeared: tuple[ServiceKey, ...] = ()
    services_vanished: tuple[ServiceKey, ...] = ()
    services_changed: tuple[ReachabilityChange, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(
            self.new
            or self.resolved
            or self.changed
            or self.hosts_appeared
            or self.hosts_vanished
            or self.services_appeared
            or self.services_vanished
            or self.services_changed
            or self.old_grade != self.new_grade
        )

    def states(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Each finding of the new run by id: ``new``, ``changed`` or ``unchanged``, and what
        changed in words (empty unless changed)."""
        states = {c.id: ("unchanged", c.changes) for c in self.unchanged}
        states.update({c.id: ("changed", c.changes) for c in self.changed})
        states.update({c.id: ("new", c.changes) for c in self.new})
        return states

    def worsened(self) -> list[FindingChange]:
        """New findings and changed ones whose severity went up."""
        return [c for c in (*self.new, *self.changed) if c.worsened]


def diff_reports(
    old: Report,
    new: Report,
    *,
    old_run: int | None = None,
    new_run: int | None = None,
    carried: Sequence[CarriedFinding] = (),
) -> ReportDiff:
    """Compare two runs by stable finding id; ``old_run``/``new_run`` are the store's run ids.

    The old side is ``old``'s findings plus ``carried``: the findings the old run itself did
    not re-check (its own diff's :attr:`ReportDiff.carried`, kept in the history); a carried
    finding whose id ``old`` holds is dropped (the old run saw it). Every finding of either
    side lands in exactly one of ``new``, ``resolved``, ``changed``, ``unchanged``,
    ``not_rechecked`` and ``not_confirmed`` (the module docstring says which). A finding
    present on both sides is ``changed`` when its severity, the DSM version/build/update or the
    product/version of its service, its host's grade or its acceptance changed (a carried
    finding is compared with its service and host grade as last seen). Each list is sorted
    worst severity first, then by address, protocol, port and rule. Accepted findings are
    diffed like any other (``after`` keeps its acceptance). Hosts are compared by address,
    services (open ports) by address, port and protocol. When both runs were audited from
    vantages, an open service of both whose ``reachable_from`` changed is in
    ``services_changed``, except that a vantage missing from the new ``reachable_from`` only
    counts if it scanned the service in the new run (not a vantage the host lacks, not in
    ``untested_from``). Pure; never raises.
    """
    old_findings = _old_side(old, carried)
    new_findings = _by_id(new)
    new_hosts = {h.address: h for h in new.hosts}
    old_hosts = {h.address: h for h in old.hosts}

    added: list[FindingChange] = []
    resolved: list[FindingChange] = []
    changed: list[FindingChange] = []
    unchanged: list[FindingChange] = []
    not_confirmed: list[FindingChange] = []
    not_rechecked: list[FindingChange] = []
    carry: list[CarriedFinding] = []
    for fid, (after, new_host) in new_findings.items():
        if fid not in old_findings:
            added.append(_change(None, after, _acceptance_changes(None, after)))
            continue
        was = old_findings[fid]
        new_service = _service(new_host, after.port, after.protocol) if after.port else None
        changes = _finding_changes(was, after, new_service, new_host.grade)
        (changed if changes else unchanged).append(_change(was.finding, after, changes))
    for fid, was in old_findings.items():
        if fid in new_findings:
            continue
        before = was.finding
        host = new_hosts.get(before.address)
        since = () if was.seen_in is None else (f"last seen in run {was.seen_in}",)
        absence = _absence(before.address, before.port, before.protocol, host, new.ports)
        if absence is None:
            resolved.append(_change(before, None, _gone(before, host) + since))
            continue
        section, reason = absence
        (not_rechecked if section == _NOT_RECHECKED else not_confirmed).append(
            _change(before, None, (reason, *since))
        )
        seen_in = was.seen_in if was.seen_in is not None else old_run
        carry.append(CarriedFinding(before, seen_in, was.host_grade, was.service, reason))

    old_services = _open_services(old)
    new_services = _open_services(new)
    return ReportDiff(
        old_run=old_run,
        new_run=new_run,
        old_grade=old.grade,
        new_grade=new.grade,
        new=_sorted(added),
        resolved=_sorted(resolved),
        changed=_sorted(changed),
        unchanged=_sorted(unchanged),
        not_confirmed=_sorted(not_confirmed),
        not_rechecked=_sorted(not_rechecked),
        carried=tuple(sorted(carry, key=lambda c: _finding_key(c.finding))),
        hosts_appeared=tuple(a for a in new_hosts if a not in old_hosts),
        hosts_vanished=tuple(a for a in old_hosts if a not in new_hosts),
        services_appeared=tuple(k for k in new_services if k not in old_services),
        services_vanished=tuple(
            k
            for k in old_services
            if k not in new_services
            and _absence(*k, host=new_hosts.get(k[0]), ports=new.ports) is None
        ),
        services_changed=_reachability_changes(old, new) if old.vantages and new.vantages else (),
    )


@dataclass(frozen=True)
class _Before:
    """A finding of the diff's old side, with what it is compared against: its service and
    host grade when it was seen, and the run that saw it when that is not the old run."""

    finding: Finding
    service: ServiceObservation | None
    host_grade: Grade
    seen_in: int | None = None


def _old_side(old: Report, carried: Sequence[CarriedFinding]) -> dict[str, _Before]:
    side = {
        fid: _Before(f, _service(h, f.port, f.protocol) if f.port else None, h.grade)
        for fid, (f, h) in _by_id(old).items()
    }
    for c in carried:
        side.setdefault(c.finding.id, _Before(c.finding, c.service, c.host_grade, c.seen_in))
    return side


def _reachability_changes(old: Report, new: Report) -> tuple[ReachabilityChange, ...]:
    before = {
        (h.address, s.port, s.protocol): s
        for h in old.hosts
        for s in h.observation.services
        if s.state == "open"
    }
    changes = []
    for host in new.hosts:
        obs = host.observation
        for service in obs.open_services():
            was = before.get((obs.address, service.port, service.protocol))
            if was is None:
                continue
            gained = set(service.reachable_from) - set(was.reachable_from)
            # A vantage that no longer reaches the service must have scanned it this time.
            lost = set(obs.unreachable_from(service)) & set(was.reachable_from)
            if gained or lost:
                changes.append(
                    ReachabilityChange(
                        obs.address,
                        service.port,
                        service.protocol,
                        was.reachable_from,
                        service.reachable_from,
                        service.untested_from,
                    )
                )
    return tuple(changes)


def _by_id(report: Report) -> dict[str, tuple[Finding, HostReport]]:
    # Ids are unique within a run (rule, address, protocol, port); keep the first otherwise.
    found: dict[str, tuple[Finding, HostReport]] = {}
    for host in report.hosts:
        for finding in host.findings:
            found.setdefault(finding.id, (finding, host))
    return found


def _open_services(report: Report) -> dict[ServiceKey, None]:
    # A dict, not a set: keeps the run's order so the output is stable.
    return {
        (h.address, s.port, s.protocol): None
        for h in report.hosts
        for s in h.observation.services
        if s.state == "open"
    }


def _change(
    before: Finding | None, after: Finding | None, changes: tuple[str, ...]
) -> FindingChange:
    some = after if after is not None else before
    assert some is not None
    return FindingChange(
        id=some.id,
        rule=some.rule,
        address=some.address,
        port=some.port,
        protocol=some.protocol,
        before=before,
        after=after,
        changes=changes,
    )


def _finding_key(finding: Finding) -> tuple[int, str, str, int, str, str]:
    return (
        -finding.severity,
        finding.address,
        finding.protocol,
        finding.port,
        finding.rule,
        finding.id,
    )


def _sort_key(change: FindingChange) -> tuple[int, str, str, int, str, str]:
    finding = change.after if change.after is not None else change.before
    assert finding is not None
    return _finding_key(finding)


def _sorted(changes: list[FindingChange]) -> tuple[FindingChange, ...]:
    return tuple(sorted(changes, key=_sort_key))


def _service(host: HostReport, port: int, protocol: str) -> ServiceObservation | None:
    for service in host.observation.services:
        if service.port == port and service.protocol == protocol:
            return service
    return None


def _finding_changes(
    was: _Before, after: Finding, new_service: ServiceObservation | None, new_grade: Grade
) -> tuple[str, ...]:
    before = was.finding
    changes: list[str] = []
    if before.severity != after.severity:
        changes.append(f"severity {before.severity.label} -> {after.severity.label}")
    if after.port:
        old_dsm, new_dsm = _dsm_text(was.service), _dsm_text(new_service)
        if old_dsm != new_dsm:
            changes.append(f"DSM {old_dsm} -> {new_dsm}")
        changes.extend(_product_changes(was.service, new_service))
    if was.host_grade != new_grade:
        changes.append(f"host grade {was.host_grade.value} -> {new_grade.value}")
    changes.extend(_acceptance_changes(before, after))
    return tuple(changes)


def _dsm_text(service: ServiceObservation | None) -> str:
    """``4.3-3810``, ``7.2.2-72806 Update 1``; ``not identified`` without a fingerprint."""
    dsm = service.dsm if service is not None else None
    if dsm is None:
        return "not identified"
    text = dsm.version or "version unknown"
    if dsm.build is not None:
        text += f"-{dsm.build}"
    if dsm.update is not None:
        text += f" Update {dsm.update}"
    return text


def _product_changes(old: ServiceObservation | None, new: ServiceObservation | None) -> list[str]:
    # An HTTP service's product is nmap's name for its answer to "/" (-sV's for the others).
    old_product, old_version = (old.product, old.version) if old else ("", "")
    new_product, new_version = (new.product, new.version) if new else ("", "")
    if old_product != new_product:
        return [f"product {_words(old_product, old_version)} -> {_words(new_product, new_version)}"]
    if old_version != new_version:
        return [f"product version {old_version or 'unknown'} -> {new_version or 'unknown'}"]
    return []


def _words(*parts: str) -> str:
    return " ".join(p for p in parts if p) or "unknown"


def _acceptance_changes(before: Finding | None, after: Finding) -> tuple[str, ...]:
    old = before.acceptance if before is not None else None
    new = after.acceptance
    if old == new:
        return ()
    if new is None:
        return ("acceptance withdrawn",)
    if new.expired:
        return (f"acceptance expired ({new.expires.isoformat()})",)
    return (f"accepted until {new.expires.isoformat()} by {new.owner}",)


_NOT_RECHECKED = "not_rechecked"
_NOT_CONFIRMED = "not_confirmed"


def _absence(
    address: str, port: int, protocol: str, host: HostReport | None, ports: PortSet
) -> tuple[str, str] | None:
    """Why a finding (or open service) at ``address``/``port``/``protocol`` missing from the
    new run may still be there, as (``"not_rechecked"`` or ``"not_confirmed"``, reason);
    None when the new run looked and it is gone. ``port`` 0 is the host itself."""
    rechecked = _not_rechecked(address, port, protocol, host, ports)
    if rechecked is not None:
        return _NOT_RECHECKED, rechecked
    assert host is not None  # a host the new run lacks is never re-checked
    confirmed = _not_confirmed(port, protocol, host) if port else None
    if confirmed is not None:
        return _NOT_CONFIRMED, confirmed
    return None


def _not_rechecked(
    address: str, port: int, protocol: str, host: HostReport | None, ports: PortSet
) -> str | None:
    """Why the new run did not look at the port (or host, for ``port`` 0); None if it did."""
    if host is None:
        return f"host {address} not audited in the new run"
    if port and port not in _scanned(ports, protocol):
        return f"port {port}/{protocol} not in the new run's port set"
    if host.observation.status is HostStatus.INCOMPLETE:
        cut = next(
            (a for a in host.observation.attempts if a.status is not ProbeStatus.COMPLETED), None
        )
        why = f" ({cut.probe} {_status(cut.status)})" if cut is not None else ""
        return f"host {address} incomplete in the new run{why}"
    if not port:
        return None
    service = _service(host, port, protocol)
    if service is not None and service.state == "open" and service.unidentified:
        # The rules that judge a service need to know what it is: absence proves nothing.
        return f"port {port}/{protocol} open but not identified in the new run"
    for attempt in host.observation.attempts:
        if attempt.status is not ProbeStatus.SKIPPED:
            continue
        # A port-wide skip: nmap's UDP scan left out (no root, --no-udp), or the open ports
        # of a host that accepts every port not probed one by one (they are not listed).
        whole = attempt.port is None and (attempt.probe == "udp") == (protocol == "udp")
        if attempt.port == port or (whole and (service is None or service.state != "open")):
            return f"port {port}/{protocol} not probed in the new run ({attempt.reason})"
    return None


def _scanned(ports: PortSet, protocol: str) -> tuple[int, ...]:
    return {"tcp": ports.tcp, "udp": ports.udp}.get(protocol, ())


def _not_confirmed(port: int, protocol: str, host: HostReport) -> str | None:
    """Why the new run, which looked at the port, cannot tell that it is no longer open."""
    service = _service(host, port, protocol)
    if service is not None and "filtered" in service.state:
        return f"port {port}/{protocol} {service.state} in the new run"
    for attempt in host.observation.attempts:
        if attempt.port == port and attempt.status in (ProbeStatus.TIMED_OUT, ProbeStatus.ERROR):
            return (
                f"{attempt.probe} probe {_status(attempt.status)} on port "
                f"{port}/{protocol} in the new run"
            )
    if service is None or service.state != "open":
        for attempt in host.observation.attempts:
            if attempt.port is None and attempt.status is ProbeStatus.TIMED_OUT:
                return (
                    f"port {port}/{protocol} not seen while {attempt.probe} "
                    f"timed out in the new run"
                )
    return None


def _status(status: ProbeStatus) -> str:
    return status.value.replace("_", " ")


def _gone(finding: Finding, host: HostReport | None) -> tuple[str, ...]:
    """The resolved finding's note: its port closed, or nothing (the rule no longer matches)."""
    if host is None or finding.port == 0:
        return ()
    service = _service(host, finding.port, finding.protocol)
    if service is None:
        return (f"port {finding.port}/{finding.protocol} no longer open",)
    if service.state != "open":
        return (f"port {finding.port}/{finding.protocol} {service.state}",)
    return ()


@dataclass(frozen=True)
class CoverageShortfall:
    """A run that audited no host, or fewer hosts than the run it is compared with (its
    baseline): such a run is stored as such, never becomes a baseline, and is notified
    whatever the notification policy.

    ``audited`` hosts this run audited; ``expected`` the baseline's hosts and
    ``baseline_run`` its id (both None when there is no baseline to compare with: only "audited
    nothing" applies then); ``missing`` the baseline's addresses this run did not audit;
    ``not_audited`` this run's targets none of whose addresses were audited, with why.
    """

    audited: int
    expected: int | None = None
    baseline_run: int | None = None
    missing: tuple[str, ...] = ()
    not_audited: tuple[UnauditedTarget, ...] = ()

    @property
    def nothing(self) -> bool:
        """The run audited no host at all."""
        return self.audited == 0

    def describe(self) -> str:
        """``audit covered nothing: nas.example.net: NXDOMAIN`` or ``audit covered fewer hosts
        than run 3: 1 of 2 (not audited: 198.51.100.8)``: one line, for notifications and the
        history."""
        if self.nothing:
            reasons = "; ".join(f"{t.target}: {t.reason}" for t in self.not_audited)
            return "audit covered nothing: " + (reasons or "no target gave an address to audit")
        run = "the previous run" if self.baseline_run is None else f"run {self.baseline_run}"
        text = f"audit covered fewer hosts than {run}: {self.audited} of {self.expected}"
        if self.missing:
            text += f" (not audited: {', '.join(self.missing)})"
        return text


def coverage_shortfall(
    report: Report, baseline: Report | None = None, *, baseline_run: int | None = None
) -> CoverageShortfall | None:
    """How ``report`` fell short of its ``baseline`` (run ``baseline_run``): it audited no
    host, or fewer hosts than the baseline did; None when it did not.

    Give ``baseline`` only when the two runs were asked to audit the same targets: a run whose
    targets were narrowed on purpose is not short of anything (and a baseline that never moved
    on would be compared with for ever). Hosts are counted as the report lists them, an
    incomplete host included (its findings say what it lacks). Pure.
    """
    audited = len(report.hosts)
    if audited == 0:
        return CoverageShortfall(
            audited=0,
            expected=len(baseline.hosts) if baseline is not None else None,
            baseline_run=baseline_run if baseline is not None else None,
            missing=tuple(h.address for h in baseline.hosts) if baseline is not None else (),
            not_audited=report.not_audited,
        )
    if baseline is None or audited >= len(baseline.hosts):
        return None
    seen = {h.address for h in report.hosts}
    return CoverageShortfall(
        audited=audited,
        expected=len(baseline.hosts),
        baseline_run=baseline_run,
        missing=tuple(h.address for h in baseline.hosts if h.address not in seen),
        not_audited=report.not_audited,
    )
