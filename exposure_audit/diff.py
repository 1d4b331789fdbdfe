"""Diff of two reports by stable finding id: new, resolved, changed, unchanged, not confirmed.

Pure. :func:`diff_reports` is the only entry point; the result is plain values that renderers
(``render_diff``) and notifications turn into text.

A finding of the old run that the new run lacks is *resolved* only when the new run could
have seen it: its host was scanned to the end, its port was not ``filtered`` and no probe timed
out or failed on it. Otherwise it is *not confirmed* (the issue's "a port seen once as
unreachable after timeouts is not resolved"), with the reason in ``changes``, so a flapping
port does not spam the weekly mail. Open services that vanished are held to the same test.
"""

from __future__ import annotations

from dataclasses import dataclass

from .findings import Finding
from .grading import Grade
from .observations import HostStatus, ProbeStatus, ServiceObservation
from .report import HostReport, Report

__all__ = ["FindingChange", "ReachabilityChange", "ReportDiff", "ServiceKey", "diff_reports"]

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
class ReportDiff:
    """What changed between an old and a new run.

    ``not_confirmed``: findings of the old run missing from a new run that could not have seen
    them (host incomplete or not scanned, port filtered, a probe timed out or failed on the
    port: a timeout, not a fix) — neither resolved nor unchanged, so a flapping port does not
    spam; ``changes`` says why. They do not count in :attr:`has_changes`.

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

    def worsened(self) -> list[FindingChange]:
        """New findings and changed ones whose severity went up."""
        return [c for c in (*self.new, *self.changed) if c.worsened]


def diff_reports(
    old: Report, new: Report, *, old_run: int | None = None, new_run: int | None = None
) -> ReportDiff:
    """Compare two runs by stable finding id; ``old_run``/``new_run`` are the store's run ids.

    Every finding of either run lands in exactly one of ``new``, ``resolved``, ``changed``,
    ``unchanged`` and ``not_confirmed``. A finding present in both runs is ``changed`` when its
    severity, the DSM version/build/update or the product/version of its service, its host's
    grade or its acceptance changed. Each list is sorted worst severity first, then by address,
    protocol, port and rule. Accepted findings are diffed like any other (``after`` keeps its
    acceptance). Hosts are compared by address, services (open ports) by address, port and
    protocol. When both runs were audited from vantages, an open service of both whose
    ``reachable_from`` changed is in ``services_changed``, except that a vantage missing from
    the new ``reachable_from`` only counts if it scanned the service in the new run (not a
    vantage the host lacks, not in ``untested_from``). Pure; never raises.
    """
    old_findings = _by_id(old)
    new_findings = _by_id(new)
    new_hosts = {h.address: h for h in new.hosts}
    old_hosts = {h.address: h for h in old.hosts}

    added: list[FindingChange] = []
    resolved: list[FindingChange] = []
    changed: list[FindingChange] = []
    unchanged: list[FindingChange] = []
    not_confirmed: list[FindingChange] = []
    for fid, (after, new_host) in new_findings.items():
        if fid not in old_findings:
            added.append(_change(None, after, _acceptance_changes(None, after)))
            continue
        before, old_host = old_findings[fid]
        changes = _finding_changes(before, after, old_host, new_host)
        (changed if changes else unchanged).append(_change(before, after, changes))
    for fid, (before, _) in old_findings.items():
        if fid in new_findings:
            continue
        host = new_hosts.get(before.address)
        doubt = _doubt(before, host)
        if doubt is not None:
            not_confirmed.append(_change(before, None, (doubt,)))
        else:
            resolved.append(_change(before, None, _gone(before, host)))

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
        hosts_appeared=tuple(a for a in new_hosts if a not in old_hosts),
        hosts_vanished=tuple(a for a in old_hosts if a not in new_hosts),
        services_appeared=tuple(k for k in new_services if k not in old_services),
        services_vanished=tuple(
            k
            for k in old_services
            if k not in new_services and _service_doubt(k, new_hosts.get(k[0])) is None
        ),
        services_changed=_reachability_changes(old, new) if old.vantages and new.vantages else (),
    )


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


def _sort_key(change: FindingChange) -> tuple[int, str, str, int, str, str]:
    finding = change.after if change.after is not None else change.before
    assert finding is not None
    return (-finding.severity, change.address, change.protocol, change.port, change.rule, change.id)


def _sorted(changes: list[FindingChange]) -> tuple[FindingChange, ...]:
    return tuple(sorted(changes, key=_sort_key))


def _service(host: HostReport, port: int, protocol: str) -> ServiceObservation | None:
    for service in host.observation.services:
        if service.port == port and service.protocol == protocol:
            return service
    return None


def _finding_changes(
    before: Finding, after: Finding, old_host: HostReport, new_host: HostReport
) -> tuple[str, ...]:
    changes: list[str] = []
    if before.severity != after.severity:
        changes.append(f"severity {before.severity.label} -> {after.severity.label}")
    if after.port:
        old_service = _service(old_host, before.port, before.protocol)
        new_service = _service(new_host, after.port, after.protocol)
        old_dsm, new_dsm = _dsm_text(old_service), _dsm_text(new_service)
        if old_dsm != new_dsm:
            changes.append(f"DSM {old_dsm} -> {new_dsm}")
        changes.extend(_product_changes(old_service, new_service))
    if old_host.grade != new_host.grade:
        changes.append(f"host grade {old_host.grade.value} -> {new_host.grade.value}")
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
    # HTTP services carry no nmap product (-sV runs only where HTTP did not answer).
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


def _doubt(finding: Finding, host: HostReport | None) -> str | None:
    """Why a finding missing from the new run may still be there; None when it is gone."""
    if finding.port == 0:
        return _host_doubt(finding.address, host)
    return _service_doubt((finding.address, finding.port, finding.protocol), host)


def _host_doubt(address: str, host: HostReport | None) -> str | None:
    if host is None:
        return f"host {address} not scanned in the new run"
    if host.observation.status is HostStatus.INCOMPLETE:
        cut = next(
            (a for a in host.observation.attempts if a.status is not ProbeStatus.COMPLETED), None
        )
        why = f" ({cut.probe} {_status(cut.status)})" if cut is not None else ""
        return f"host {address} incomplete in the new run{why}"
    return None


def _status(status: ProbeStatus) -> str:
    return status.value.replace("_", " ")


def _service_doubt(key: ServiceKey, host: HostReport | None) -> str | None:
    """Why an open service missing from the new run may still be open; None when it is not."""
    address, port, protocol = key
    doubt = _host_doubt(address, host)
    if doubt is not None or host is None:
        return doubt
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
