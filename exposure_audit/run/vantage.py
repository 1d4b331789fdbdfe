"""Vantage points: one run audited from several places, merged into one report.

Pure. A security team scans its perimeter from several networks (cluster workers started with a
vantage name); each vantage audits the same targets and yields its own
:class:`~exposure_audit.report.Report`. :func:`merge_vantages` unites them into the one report
the renderers, the history and the diff see, recording for every service where it was seen
open (``reachable_from``), where it could not be told (``untested_from``) and, by difference,
where it was scanned and not open. Rule VAN001 judges the difference: the exposure is as wide
as the widest view.

Merging never counts silence as "not reachable": a vantage whose report lacks a host (its block
failed there) is not among the host's ``vantages``, and a vantage whose audit of the host was
incomplete, or that did not scan a port or its protocol, is among ``untested_from``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from ..grading import grade_host
from ..observations import (
    HostObservation,
    HostStatus,
    NameResolution,
    PortMapping,
    ProbeAttempt,
    ProbeStatus,
    ServiceObservation,
)
from ..ports import PortSet
from ..report import HostReport, Report
from ..rules import evaluate_host
from .correlate import apply_mappings

__all__ = ["merge_vantages"]

# Vantage names end up in reports, tables and CSV cells joined by ", " and " ": keep them to
# one plain word (``eu``, ``us-east-1``, ``vantage.fra``).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

_T = TypeVar("_T", bound=Hashable)


def merge_vantages(reports: Mapping[str, Report], *, now: datetime) -> Report:
    """Merge the reports of the same targets audited from each vantage into one report.

    ``reports`` maps a vantage name to that vantage's complete or partial report; its order
    decides precedence. ``now`` is the time the rules judge against (certificate expiry), as
    the audit's clock.

    - Hosts are matched by address: the first report's order, then hosts only later reports
      hold. A host's ``vantages`` are the vantages whose reports hold it, and nothing is
      concluded about the others (the host gets a note saying it was not audited from them).
    - Services are matched by (port, protocol). The merged service is the observation of the
      first vantage that saw it open (else the first vantage's); ``reachable_from`` lists the
      vantages that saw it open, ``untested_from`` those that could not tell (host incomplete
      there, the port or its protocol not scanned there). Its state is open if open from any.
    - A host is incomplete if it was incomplete from any vantage. Its attempts, errors and notes
      are prefixed with their vantage (``[eu] ...``) unless every vantage of the run reported
      the same one (then it is kept once, as it is); UPnP comes from the first vantage that has
      it, and a UPnP forwarding table is correlated again with the merged services.
    - Findings are evaluated again (:func:`~exposure_audit.rules.evaluate_host`, VAN001 among
      them) and the host graded again, as the audit does. Accepted risks are not carried over:
      apply them to the merged report.
    - The run: earliest start, latest finish, the union of the port sets, names merged by name,
      skipped addresses, errors and notes united (prefixed as above), complete only if every
      vantage's report is, ``vantages`` the sorted names.

    Every vantage list in the result is sorted. Raises ``ValueError`` when ``reports`` is empty
    or a vantage name is not one word of letters, digits, ``.``, ``_`` and ``-`` (at most 63
    characters, starting with a letter or digit).
    """
    if not reports:
        raise ValueError("no vantage reports to merge")
    for name in reports:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"bad vantage name {name!r}: one word of letters, digits, '.', '_' and '-'"
            )
    vantages = tuple(reports)
    first = reports[vantages[0]]
    by_address: dict[str, dict[str, HostObservation]] = {}
    for vantage, report in reports.items():
        for host in report.hosts:
            by_address.setdefault(host.address, {}).setdefault(vantage, host.observation)
    hosts = tuple(_merge_host(seen, reports, now) for seen in by_address.values())
    versions = _union(r.tool_version for r in reports.values())
    notes = _united({v: r.notes for v, r in reports.items()}, _prefix_text, len(reports))
    if len(versions) > 1:
        notes.append(
            "the vantages ran different versions: "
            + ", ".join(f"{v} {r.tool_version}" for v, r in reports.items())
        )
    return Report(
        tool_version=first.tool_version,
        started_at=min(r.started_at for r in reports.values()),
        finished_at=max(r.finished_at for r in reports.values()),
        ports=PortSet(
            tuple(sorted({p for r in reports.values() for p in r.ports.tcp})),
            tuple(sorted({p for r in reports.values() for p in r.ports.udp})),
        ),
        hosts=hosts,
        names=_merge_names(reports),
        skipped=tuple(_union(s for r in reports.values() for s in r.skipped)),
        errors=tuple(
            _united({v: r.errors for v, r in reports.items()}, _prefix_text, len(reports))
        ),
        complete=all(r.complete for r in reports.values()),
        notes=tuple(notes),
        vantages=tuple(sorted(vantages)),
    )


def _merge_host(
    seen: Mapping[str, HostObservation], reports: Mapping[str, Report], now: datetime
) -> HostReport:
    """One address as the vantages in ``seen`` (those whose reports hold it) saw it."""
    first = next(iter(seen.values()))
    missing = [v for v in reports if v not in seen]
    notes = _united({v: o.notes for v, o in seen.items()}, _prefix_text, len(reports))
    if missing:
        notes.append(
            f"not audited from {', '.join(sorted(missing))}: no result from "
            f"{'that vantage' if len(missing) == 1 else 'those vantages'}; reachability from "
            "there is unknown"
        )
    status = (
        HostStatus.INCOMPLETE
        if any(o.status is HostStatus.INCOMPLETE for o in seen.values())
        else HostStatus.COMPLETE
    )
    observation = HostObservation(
        address=first.address,
        family=first.family,
        hostnames=tuple(_union(n for o in seen.values() for n in o.hostnames)),
        services=_merge_services(seen, reports),
        status=status,
        attempts=tuple(
            _united({v: o.attempts for v, o in seen.items()}, _prefix_attempt, len(reports))
        ),
        errors=tuple(_united({v: o.errors for v, o in seen.items()}, _prefix_text, len(reports))),
        notes=tuple(notes),
        upnp=next((o.upnp for o in seen.values() if o.upnp is not None), None),
        vantages=tuple(sorted(seen)),
    )
    observation = _correlate(observation, seen)
    findings = evaluate_host(observation, now)
    return HostReport(observation, findings, grade_host(findings, observation))


def _merge_services(
    seen: Mapping[str, HostObservation], reports: Mapping[str, Report]
) -> tuple[ServiceObservation, ...]:
    by_key: dict[tuple[int, str], dict[str, ServiceObservation]] = {}
    for vantage, observation in seen.items():
        for service in observation.services:
            by_key.setdefault((service.port, service.protocol), {}).setdefault(vantage, service)
    merged = []
    for (port, protocol), views in by_key.items():
        open_from = [v for v, s in views.items() if s.state == "open"]
        # A vantage that identified the service tells more than one that could not.
        identified = [v for v in open_from if not views[v].unidentified]
        chosen = views[(identified or open_from)[0]] if open_from else next(iter(views.values()))
        untested = [
            v
            for v, o in seen.items()
            if v not in open_from and not _could_tell(o, reports[v].ports, port, protocol)
        ]
        merged.append(
            replace(
                chosen,
                upnp_mapping=None,
                reachable_from=tuple(sorted(open_from)),
                untested_from=tuple(sorted(untested)),
            )
        )
    return tuple(merged)


def _could_tell(host: HostObservation, ports: PortSet, port: int, protocol: str) -> bool:
    """Whether this vantage's audit of ``host`` would have seen ``port`` open: the host was
    audited to the end, the port was in the vantage's port set and its protocol was scanned."""
    if host.status is HostStatus.INCOMPLETE:
        return False
    scanned = {"tcp": ports.tcp, "udp": ports.udp}.get(protocol)
    if scanned is not None and port not in scanned:
        return False
    for attempt in host.attempts:
        if attempt.status is ProbeStatus.COMPLETED:
            continue
        if attempt.probe == "discovery" or (attempt.probe == "udp" and protocol == "udp"):
            return False
    return True


def _correlate(
    observation: HostObservation, seen: Mapping[str, HostObservation]
) -> HostObservation:
    """Match the UPnP mappings every vantage knew of against the merged services: a mapping is
    unreachable only when no vantage reached its port."""
    tables = [(v, o.forwarding) for v, o in seen.items() if o.forwarding is not None]
    if not tables:
        return observation
    mappings: dict[tuple[int, str], PortMapping] = {}
    for vantage, forwarding in tables:
        known = [s.upnp_mapping for s in seen[vantage].services if s.upnp_mapping is not None]
        for mapping in [*known, *forwarding.mapped_unreachable]:
            mappings.setdefault((mapping.external_port, mapping.protocol.lower()), mapping)
    return apply_mappings(observation, list(mappings.values()), tables[0][1].source)


def _merge_names(reports: Mapping[str, Report]) -> tuple[NameResolution, ...]:
    """One resolution per name: addresses united (GeoDNS may answer each vantage differently),
    errors prefixed with their vantage unless every vantage that resolved the name got them."""
    by_name: dict[str, dict[str, NameResolution]] = {}
    for vantage, report in reports.items():
        for resolution in report.names:
            by_name.setdefault(resolution.name, {}).setdefault(vantage, resolution)
    merged = []
    for name, views in by_name.items():
        first = next(iter(views.values()))
        merged.append(
            NameResolution(
                name=name,
                ipv4=tuple(_union(a for n in views.values() for a in n.ipv4)),
                ipv6=tuple(_union(a for n in views.values() for a in n.ipv6)),
                cname_chain=first.cname_chain,
                errors=tuple(
                    _united({v: n.errors for v, n in views.items()}, _prefix_text, len(reports))
                ),
                synology_domain=next(
                    (n.synology_domain for n in views.values() if n.synology_domain), None
                ),
            )
        )
    return tuple(merged)


def _union(items: Iterable[_T]) -> list[_T]:
    """Unique items in first-seen order."""
    return list(dict.fromkeys(items))


def _prefix_text(vantage: str, text: str) -> str:
    return f"[{vantage}] {text}"


def _prefix_attempt(vantage: str, attempt: ProbeAttempt) -> ProbeAttempt:
    if attempt.status is ProbeStatus.COMPLETED and not attempt.reason:
        return attempt  # says nothing, and the report leaves it out
    reason = f"[{vantage}] {attempt.reason}" if attempt.reason else f"[{vantage}]"
    return replace(attempt, reason=reason)


def _united(
    per_vantage: Mapping[str, Sequence[_T]],
    prefix: Callable[[str, _T], _T],
    everyone: int,
) -> list[_T]:
    """Items of every vantage in vantage order. An item that all ``everyone`` vantages of the
    run have is kept once as it is; any other is prefixed with the vantage it came from.
    Duplicates are dropped."""
    common: set[_T] = set()
    if len(per_vantage) == everyone:
        common = set.intersection(*(set(items) for items in per_vantage.values()))
    united: dict[_T, None] = {}
    for vantage, items in per_vantage.items():
        for item in items:
            united.setdefault(item if item in common else prefix(vantage, item), None)
    return list(united)
