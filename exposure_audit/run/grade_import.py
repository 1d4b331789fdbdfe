"""Grading an nmap run made elsewhere: ``exposure-audit grade --nmap-xml FILE [--probe]``.

Teams with nmap pipelines get grades without changing them. The XML is read by
:mod:`~exposure_audit.nmap.xml`; then:

- **Without probing** (:func:`grade_nmap_run`, or ``probe=False``) nothing touches the network:
  nmap's ports, service names, products and versions are judged by the scan's rules. SVC001 and
  SVC002 fire on nmap's service names (Telnet, SMB, FTP, SSH, ...); the DSM, TLS and UPnP rules
  need what only the probes see, so they stay silent, and the report's notes say so. An open
  TCP port nmap did not identify (no ``-sV`` match: only its port-table name, such as ``upnp``
  on 5000 or ``commplex-link`` on 5001) is unidentified (UNK001/UNK002), so its host is not A.
- **With probing** (``probe=True``) the run is replayed through the scan's own
  :class:`~exposure_audit.run.audit.Auditor`: :class:`NmapReplay` answers its discovery and ``-sV``
  questions from the XML instead of running nmap, and everything after is what a scan does: the
  HTTP/TLS and DSM fingerprint of every open TCP port, nmap's version info only for the ports that
  did not speak HTTP, the UPnP probes (SSDP when the nmap run covered 1900/udp, the IGD
  description on the usual description ports), UPnP correlation, rules and grades. Probing
  connects to the addresses in the XML, so the scan policy applies: non-public addresses need
  ``allow_private`` (:class:`~exposure_audit.errors.TargetError` otherwise).

Hosts nmap reported down, or cut with ``--host-timeout``, are incomplete (graded ``?`` when
nothing was found): not tested is not safe. A run nmap did not finish makes the report incomplete.
A run that lists no host audited nothing: its report is ``?`` with the XML in ``not_audited``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import dns.asyncresolver

from .. import __version__
from ..nmap.scanner import DiscoveryRequest, DiscoveryResult, Scanner, VersionInfo
from ..nmap.xml import NmapHost, NmapRun, host_observation, parse_nmap_xml
from ..report import Report, UnauditedTarget
from ..targets import parse_item, plan_targets
from ..upnp import Inventory
from .audit import Auditor, AuditSettings, Progress, utc_now
from .correlate import apply_mappings
from .host import judge

__all__ = ["NmapReplay", "grade_nmap_run", "grade_nmap_xml"]

_NO_PROBE_NOTE = (
    "graded on nmap's own observations only: the DSM, TLS and UPnP rules need the HTTP/TLS and "
    "UPnP probes (grade --probe), so a DSM login, its version or a default certificate on these "
    "ports is not judged; open ports nmap did not identify are reported unidentified "
    "(UNK001/UNK002): grade --probe verifies them"
)
_NO_VERSIONS_NOTE = (
    "nmap ran without version detection (-sV): service names are nmap's port-table guesses, "
    "not what answered"
)


@dataclass(frozen=True)
class NmapReplay(Scanner):
    """A :class:`~exposure_audit.nmap.scanner.Scanner` that answers from a finished nmap run.

    ``discover`` gives each address nmap's port list (states and service names, as a scan's
    discovery has them) and whether ``--host-timeout`` cut it; ``versions`` gives nmap's
    ``-sV`` answer (name, product, version, extrainfo) for the open TCP ports asked about.
    Nothing is run; the deadlines are nmap's, already spent.
    """

    run: NmapRun

    def _hosts(self) -> dict[str, NmapHost]:
        return {h.address: h for h in self.run.hosts}

    async def _discover(self, request: DiscoveryRequest) -> dict[str, DiscoveryResult]:
        hosts = self._hosts()
        found: dict[str, DiscoveryResult] = {}
        for address in request.addresses:
            host = hosts.get(address)
            if host is None:
                found[address] = DiscoveryResult(address, timed_out=True)
                continue
            services = tuple(
                dataclasses.replace(s, product="", version="", banner="", unidentified="")
                for s in host.services
            )
            found[address] = DiscoveryResult(address, services, host.timed_out)
        return found

    async def versions(
        self, targets: Mapping[str, Sequence[int]], *, host_timeout: float
    ) -> tuple[dict[tuple[str, int], VersionInfo], set[str]]:
        hosts = self._hosts()
        found: dict[tuple[str, int], VersionInfo] = {}
        for address, wanted in targets.items():
            host = hosts.get(address)
            for service in host.services if host else ():
                if service.protocol == "tcp" and service.state == "open" and service.port in wanted:
                    found[(address, service.port)] = VersionInfo(
                        service.service,
                        service.product,
                        service.version,
                        service.banner,
                        identified=not service.unidentified,
                        cpes=service.cpe,
                    )
        return found, set()


def _inventory_for(run: NmapRun, inventory: Inventory | None) -> tuple[set[str], list[str]]:
    """Which hosts an inside inventory describes (as the scan decides it), and a note."""
    if inventory is None:
        return set(), []
    addresses = [h.address for h in run.hosts]
    if inventory.external_address in addresses:
        return {inventory.external_address}, []
    note = (
        f"the UPnP inventory's external address ({inventory.external_address or 'unknown'}) "
        "is not in the nmap run (CGNAT or a new address?): its mappings were compared with "
        "every host"
    )
    return set(addresses), [note]


def _notes(run: NmapRun, *, probed: str | None) -> list[str]:
    notes = [run.describe()]
    if not run.version_detection:
        notes.append(_NO_VERSIONS_NOTE)
    notes.append(probed or _NO_PROBE_NOTE)
    return notes


def _not_audited(run: NmapRun) -> tuple[UnauditedTarget, ...]:
    """An nmap run that lists no host grades nothing: the report says so, under the XML's
    name (the targets nmap was given are not known here)."""
    return () if run.hosts else (UnauditedTarget(run.source, "the nmap XML lists no host"),)


def grade_nmap_run(
    run: NmapRun, *, now: datetime | None = None, inventory: Inventory | None = None
) -> Report:
    """Grade what nmap saw, probing nothing (no network, no nmap): rules, grades, one report.

    ``inventory`` (an inside UPnP inventory) ties open ports to mappings as a scan does. The
    report's times are nmap's when it recorded them, ``now`` otherwise.
    """
    now = now or utc_now()
    described, notes = _inventory_for(run, inventory)
    hosts = []
    for host in run.hosts:
        observation = host_observation(host)
        if inventory is not None and host.address in described:
            observation = apply_mappings(observation, inventory.mappings, "inventory")
        hosts.append(judge(observation, now))
    return Report(
        tool_version=__version__,
        started_at=run.started_at or now,
        finished_at=run.finished_at or now,
        ports=run.ports,
        hosts=tuple(hosts),
        errors=run.errors,
        complete=run.complete,
        notes=tuple(_notes(run, probed=None) + notes),
        not_audited=_not_audited(run),
    )


async def grade_nmap_xml(
    xml: bytes | str,
    *,
    source: str,
    probe: bool = False,
    settings: AuditSettings | None = None,
    allow_private: bool = False,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Report:
    """Grade an nmap ``-oX`` document (``source`` names it in errors and notes).

    With ``probe`` the HTTP/TLS, DSM and UPnP probes run against the open ports nmap listed, as
    in a scan (see the module docstring). From ``settings`` the probes use ``http``,
    ``host_timeout``, ``upnp``, ``ssdp_wait`` and ``inventory``; the port set is always the
    nmap run's. Without ``probe`` only ``inventory`` is used and nothing is contacted.

    Raises :class:`~exposure_audit.nmap.xml.NmapXmlError` for a file that is not a readable
    nmap run, and (``probe`` only) :class:`~exposure_audit.errors.TargetError` for a non-public
    address without ``allow_private``; both are usage errors.
    """
    run = parse_nmap_xml(xml, source)
    inventory = settings.inventory if settings else None
    if not probe:
        return grade_nmap_run(run, now=clock(), inventory=inventory)
    up = [h for h in run.hosts if h.state == "up"]
    plan = plan_targets(
        [parse_item(h.address, f"{source}: host {h.address}") for h in up],
        allow_private=allow_private,
        max_hosts=max(1, len(up)),
    )
    base = settings or AuditSettings(ports=run.ports)
    auditor = Auditor(
        plan,
        dataclasses.replace(base, ports=run.ports, version_detection=True, udp=None),
        scanner=NmapReplay(run),
        resolver=dns.asyncresolver.Resolver(configure=False),  # no names to resolve
        udp_possible=(True, ""),  # nmap already scanned whatever UDP the XML holds
        progress=progress,
        clock=clock,
    )
    probed = await auditor.run()
    by_address = {h.address: h for h in probed.hosts}
    now = clock()
    hosts = []
    for host in run.hosts:
        report = by_address.get(host.address)
        if report is None:  # down in nmap's eyes: not probed, incomplete
            hosts.append(judge(host_observation(host), now))
            continue
        observation = dataclasses.replace(
            report.observation,
            hostnames=host.hostnames,
            notes=report.observation.notes + host.notes,
        )
        hosts.append(dataclasses.replace(report, observation=observation))
    when = probed.started_at.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return dataclasses.replace(
        probed,
        started_at=run.started_at or probed.started_at,
        hosts=tuple(hosts),
        errors=run.errors + probed.errors,
        complete=probed.complete and run.complete,
        not_audited=_not_audited(run),
        notes=tuple(
            _notes(
                run,
                probed=f"HTTP/TLS, DSM and UPnP probes ran from {when} on the open ports nmap "
                "listed; the other observations are nmap's, from the time of its run",
            )
        )
        + probed.notes,
    )
