"""Orchestration: resolve -> discover -> fingerprint -> versions -> rules -> grade.

:class:`Auditor` runs one audit. It keeps every finished host as it goes, so a run cut short
(Ctrl-C, a crashed nmap) can still report what it found: call :meth:`Auditor.report` with
``complete=False``. Only this module and the probes touch the outside world; everything it
hands to rules, grading and renderers is a plain value.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import dns.asyncresolver
import httpx

from . import __version__
from .correlate import apply_mappings
from .errors import ProbeFailed
from .grading import grade_host
from .observations import (
    AddressFamily,
    HostObservation,
    HostStatus,
    NameResolution,
    ProbeAttempt,
    ProbeStatus,
    ServiceObservation,
    SsdpReply,
    UpnpObservation,
)
from .ports import PortSet
from .probes.dns import resolve_names
from .probes.http import HttpProbeSettings, PortFingerprint, fingerprint_port, make_client
from .probes.nmap_scan import DiscoveryResult, NmapScanner, VersionInfo
from .probes.upnp import IgdReadResult, probe_description_ports, probe_ssdp, read_igd
from .report import HostReport, Report, SkippedAddress
from .rules import evaluate_host
from .targets import TargetPlan, non_global_reason
from .upnp import Inventory

# Seconds to wait, after the first host of a batch finishes its HTTP stage, for others to join
# its -sV run: long enough to gather the hosts that answer at once, short against a timeout.
_WAVE_LINGER = 0.5

SSDP_PORT = 1900

# Ports where UPnP description servers usually listen, probed for a device description when
# found open (see exposure_audit/data/ports.json for the sources).
IGD_PORTS = frozenset({1900, 2189, 2869, 5000, 5431, 49000, 49152, 52869})

__all__ = ["AuditSettings", "Auditor", "NullProgress", "Progress"]


class Progress(Protocol):
    """Receives progress; the CLI draws it on stderr. Calls come from the event loop thread."""

    def phase(self, text: str) -> None: ...

    def start(self, total_hosts: int) -> None: ...

    def advance(self, hosts: int = 1) -> None: ...


class NullProgress:
    """Progress that shows nothing."""

    def phase(self, text: str) -> None:
        pass

    def start(self, total_hosts: int) -> None:
        pass

    def advance(self, hosts: int = 1) -> None:
        pass


@dataclass(frozen=True)
class AuditSettings:
    """How a run scans. ``udp`` None means "when possible" (root); ``batch_size`` addresses
    share one nmap discovery run and ``parallel_batches`` of those run at once."""

    ports: PortSet
    host_timeout: float = 60.0
    http: HttpProbeSettings = field(default_factory=HttpProbeSettings)
    udp: bool | None = None
    version_detection: bool = True
    batch_size: int = 128
    parallel_batches: int = 4
    upnp: bool = True
    ssdp_wait: float = 2.0
    inventory: Inventory | None = None

    @property
    def ssdp(self) -> bool:
        """Whether the unprivileged SSDP probe runs (1900/udp in the port set, UPnP not off)."""
        return self.upnp and SSDP_PORT in self.ports.udp

    @property
    def nmap_ports(self) -> PortSet:
        """The ports nmap scans: 1900/udp is left to the SSDP probe, which needs no root."""
        return PortSet(self.ports.tcp, tuple(p for p in self.ports.udp if p != SSDP_PORT))


@dataclass
class _HostWork:
    """One address in flight: what discovery gave, then what the HTTP probe added."""

    address: str
    hostnames: tuple[str, ...]
    deadline: float
    discovery: DiscoveryResult
    fingerprints: dict[int, PortFingerprint] = field(default_factory=dict)
    attempts: list[ProbeAttempt] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    incomplete: bool = False
    ssdp: tuple[SsdpReply, ...] = ()
    igd: IgdReadResult | None = None

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class Auditor:
    """Runs one audit of a :class:`TargetPlan`. Probes are injected, so tests can hand in local
    servers; ``udp_possible`` is (allowed, reason) for nmap's UDP scan."""

    def __init__(
        self,
        plan: TargetPlan,
        settings: AuditSettings,
        *,
        scanner: NmapScanner,
        resolver: dns.asyncresolver.Resolver,
        udp_possible: tuple[bool, str] = (False, "UDP scanning not requested"),
        progress: Progress | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_host: Callable[[HostReport], None] | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.scanner = scanner
        self.resolver = resolver
        self.udp_possible = udp_possible
        self.progress: Progress = progress or NullProgress()
        self.clock = clock
        self.on_host = on_host
        self.started_at = clock()
        self.hosts: list[HostReport] = []
        self.names: list[NameResolution] = []
        self.skipped: list[SkippedAddress] = []
        self.errors: list[str] = []
        self.notes: list[str] = []
        self._order: list[str] = []
        self._inventory_addresses: set[str] = set()

    def report(self, *, complete: bool) -> Report:
        """The report of what is known now; hosts keep the order they were given in."""
        order = {a: i for i, a in enumerate(self._order)}
        hosts = sorted(self.hosts, key=lambda h: order.get(h.address, len(order)))
        return Report(
            tool_version=__version__,
            started_at=self.started_at,
            finished_at=self.clock(),
            ports=self.settings.ports,
            hosts=tuple(hosts),
            names=tuple(self.names),
            skipped=tuple(self.skipped),
            errors=tuple(self.errors),
            complete=complete and not self.errors,
            notes=tuple(self.notes),
        )

    async def run(self) -> Report:
        """Audit every target; returns the complete report (or one with run errors)."""
        self.started_at = self.clock()
        targets = await self._targets()
        self._order = list(targets)
        self._inventory_addresses = self._inventory_targets(list(targets))
        self.progress.start(len(targets))
        udp = self._udp_enabled()
        families: dict[AddressFamily, list[str]] = {}
        for address in targets:
            families.setdefault(_family(address), []).append(address)
        batches = [
            addresses[i : i + self.settings.batch_size]
            for addresses in families.values()
            for i in range(0, len(addresses), self.settings.batch_size)
        ]
        gate = asyncio.Semaphore(self.settings.parallel_batches)
        async with make_client(self.settings.http) as client:

            async def one(batch: list[str]) -> None:
                async with gate:
                    await self._audit_batch(batch, targets, client, udp=udp)

            await asyncio.gather(*(one(b) for b in batches))
        return self.report(complete=True)

    def _inventory_targets(self, addresses: list[str]) -> set[str]:
        """The addresses an inside inventory describes: its router's external address when
        that is a target, else (CGNAT, a changed address) every target, with a note."""
        inventory = self.settings.inventory
        if inventory is None:
            return set()
        if inventory.external_address in addresses:
            return {inventory.external_address}
        self.notes.append(
            f"the UPnP inventory's external address ({inventory.external_address or 'unknown'}) "
            "is not among the targets (CGNAT or a new address?): its mappings were compared "
            "with every host"
        )
        return set(addresses)

    def _udp_enabled(self) -> bool:
        if not self.settings.nmap_ports.udp:
            return False
        allowed, reason = self.udp_possible
        if self.settings.udp is False:
            self.notes.append("UDP ports not scanned (turned off)")
            return False
        if not allowed:
            ports = ",".join(map(str, self.settings.nmap_ports.udp))
            self.notes.append(f"UDP ports {ports} skipped: {reason}")
            return False
        return True

    async def _targets(self) -> dict[str, tuple[str, ...]]:
        """Addresses to audit, each with the names that led to it (direct addresses first)."""
        targets: dict[str, list[str]] = {a: [] for a in self.plan.addresses}
        if self.plan.hostnames:
            self.progress.phase("resolving names")
            self.names = await resolve_names(self.plan.hostnames, self.resolver)
        for resolution in self.names:
            for address in resolution.addresses:
                ip = ipaddress.ip_address(address)
                reason = non_global_reason(ip)
                if self.plan.exclusions.excludes_address(ip):
                    self.skipped.append(SkippedAddress(address, resolution.name, "excluded"))
                elif reason and not self.plan.allow_private:
                    self.skipped.append(
                        SkippedAddress(
                            address,
                            resolution.name,
                            f"not a public address: {reason}; --allow-private scans it",
                        )
                    )
                else:
                    targets.setdefault(address, []).append(resolution.name)
        return {a: tuple(names) for a, names in targets.items()}

    async def _audit_batch(
        self,
        batch: Sequence[str],
        targets: dict[str, tuple[str, ...]],
        client: httpx.AsyncClient,
        *,
        udp: bool,
    ) -> None:
        deadline = time.monotonic() + self.settings.host_timeout
        self.progress.phase(f"discovering ports on {len(batch)} hosts")
        ssdp: asyncio.Task[dict[str, tuple[SsdpReply, ...]]] | None = None
        if self.settings.ssdp:
            # One bounded wait for the whole batch, running while nmap discovers.
            ssdp = asyncio.create_task(probe_ssdp(batch, wait=self.settings.ssdp_wait))
        try:
            found = await self.scanner.discover(
                batch, self.settings.nmap_ports, udp=udp, host_timeout=self.settings.host_timeout
            )
        except ProbeFailed as exc:
            if ssdp is not None:
                ssdp.cancel()
            self.errors.append(str(exc))
            for address in batch:
                self._finish(_failed_host(address, targets[address], str(exc)))
            return
        work = [
            _HostWork(
                a,
                targets[a],
                deadline,
                found.get(a, DiscoveryResult(a, timed_out=True)),
                notes=self._name_notes(targets[a]),
            )
            for a in batch
        ]
        self.progress.phase("fingerprinting HTTP/TLS")
        tasks = {asyncio.create_task(self._fingerprint_host(w, client, ssdp)): w for w in work}
        # Hosts finish in waves: whatever is done within a short linger after the first
        # completion shares one -sV run and is reported, while the rest (silent ports, tarpits,
        # slow drips) keep going. Nobody waits for a straggler, and nmap starts once per wave.
        pending: set[asyncio.Task[None]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                more, pending = await asyncio.wait(pending, timeout=_WAVE_LINGER)
                done |= more
            await self._versions_and_finish([tasks[t] for t in done])

    async def _fingerprint_host(
        self,
        work: _HostWork,
        client: httpx.AsyncClient,
        ssdp: asyncio.Task[dict[str, tuple[SsdpReply, ...]]] | None,
    ) -> None:
        if work.discovery.timed_out:
            work.incomplete = True
            work.attempts.append(
                ProbeAttempt("discovery", ProbeStatus.TIMED_OUT, "host deadline reached")
            )
        ports = [s.port for s in work.discovery.services if _open_tcp(s)]
        hostname = work.hostnames[0] if work.hostnames else None

        async def probe(port: int) -> None:
            work.fingerprints[port] = await fingerprint_port(
                client, work.address, port, hostname=hostname, settings=self.settings.http
            )

        try:
            async with asyncio.timeout(work.remaining()):
                await asyncio.gather(*(probe(p) for p in ports))
        except TimeoutError:
            work.incomplete = True
            missing = sorted(set(ports) - set(work.fingerprints))
            work.attempts.append(
                ProbeAttempt("http", ProbeStatus.TIMED_OUT, f"host deadline reached on {missing}")
            )
        if self.settings.upnp:
            await self._upnp_host(work, client, ssdp, ports)

    async def _upnp_host(
        self,
        work: _HostWork,
        client: httpx.AsyncClient,
        ssdp: asyncio.Task[dict[str, tuple[SsdpReply, ...]]] | None,
        open_ports: list[int],
    ) -> None:
        """SSDP replies for this address, then its IGD description and mapping table (read-only),
        from the LOCATION rewritten to this address or from the usual description ports."""
        try:
            async with asyncio.timeout(work.remaining()):
                if ssdp is not None:
                    work.ssdp = (await asyncio.shield(ssdp)).get(work.address, ())
                results: list[IgdReadResult] = []
                for location in dict.fromkeys(r.location for r in work.ssdp if r.location):
                    results.append(await read_igd(client, location, public_address=work.address))
                    if results[-1].description is not None:
                        break
                if not any(r.description for r in results):
                    candidates = sorted(p for p in open_ports if p in IGD_PORTS)
                    if candidates:
                        results += await probe_description_ports(client, work.address, candidates)
        except TimeoutError:
            work.incomplete = True
            work.attempts.append(
                ProbeAttempt("upnp", ProbeStatus.TIMED_OUT, "host deadline reached")
            )
            return
        found = [r for r in results if r.description is not None]
        work.igd = found[0] if found else None
        for result in results:
            work.errors.extend(result.errors)

    async def _versions_and_finish(self, hosts: list[_HostWork]) -> None:
        if not hosts:
            return
        versions: dict[tuple[str, int], VersionInfo] = {}
        if self.settings.version_detection:
            residual = {
                w.address: [
                    s.port
                    for s in w.discovery.services
                    if _open_tcp(s) and _not_web(w.fingerprints.get(s.port))
                ]
                for w in hosts
                if w.remaining() > 0
            }
            if any(residual.values()):
                self.progress.phase("detecting service versions")
                budget = min(w.remaining() for w in hosts if w.address in residual)
                try:
                    versions, cut = await self.scanner.versions(residual, host_timeout=budget)
                except ProbeFailed as exc:
                    self.errors.append(str(exc))
                    cut = set(residual)
                for w in hosts:
                    if w.address in cut:
                        w.incomplete = True
                        w.attempts.append(
                            ProbeAttempt("versions", ProbeStatus.TIMED_OUT, "host deadline reached")
                        )
        now = self.clock()
        for w in hosts:
            self._finish(_observe(w, versions, self._udp_note()), now)

    def _name_notes(self, hostnames: tuple[str, ...]) -> list[str]:
        domains = {n.name: n.synology_domain for n in self.names if n.synology_domain}
        return [
            f"{name} is a Synology DDNS/QuickConnect name ({domains[name]}): the owner "
            "published this box for remote access"
            for name in hostnames
            if name in domains
        ]

    def _udp_note(self) -> ProbeAttempt | None:
        for note in self.notes:
            if note.startswith("UDP ports"):
                return ProbeAttempt("udp", ProbeStatus.SKIPPED, note)
        return None

    def _correlate(self, observation: HostObservation) -> HostObservation:
        """Tie reachable services to UPnP mappings: the table read over the WAN when the router
        gave it, else the inventory taken inside (when it applies to this address)."""
        upnp = observation.upnp
        if upnp is not None and upnp.mappings_readable:
            return apply_mappings(observation, upnp.mappings, "wan")
        inventory = self.settings.inventory
        if inventory is not None and observation.address in self._inventory_addresses:
            return apply_mappings(observation, inventory.mappings, "inventory")
        return observation

    def _finish(self, observation: HostObservation, now: datetime | None = None) -> None:
        observation = self._correlate(observation)
        findings = evaluate_host(observation, now or self.clock())
        host = HostReport(observation, findings, grade_host(findings, observation.status))
        self.hosts.append(host)
        if self.on_host is not None:
            # The history store records each host as it finishes: an interrupted run keeps it.
            self.on_host(host)
        self.progress.advance()


def _family(address: str) -> AddressFamily:
    return AddressFamily.IPV6 if ":" in address else AddressFamily.IPV4


def _open_tcp(service: ServiceObservation) -> bool:
    return service.protocol == "tcp" and service.state == "open"


def _not_web(fingerprint: PortFingerprint | None) -> bool:
    return fingerprint is None or fingerprint.http is None


def _failed_host(address: str, hostnames: tuple[str, ...], error: str) -> HostObservation:
    return HostObservation(
        address=address,
        family=_family(address),
        hostnames=hostnames,
        status=HostStatus.INCOMPLETE,
        attempts=(ProbeAttempt("discovery", ProbeStatus.ERROR, error),),
        errors=(error,),
    )


def _observe(
    work: _HostWork,
    versions: dict[tuple[str, int], VersionInfo],
    udp_attempt: ProbeAttempt | None,
) -> HostObservation:
    services: list[ServiceObservation] = []
    attempts = list(work.attempts)
    for service in work.discovery.services:
        fp = work.fingerprints.get(service.port) if service.protocol == "tcp" else None
        if fp is not None:
            if fp.attempt.status is not ProbeStatus.COMPLETED:
                attempts.append(fp.attempt)
            if fp.http is not None:
                service = dataclasses.replace(
                    service, service=fp.http.scheme, http=fp.http, tls=fp.tls
                )
        info = versions.get((work.address, service.port)) if service.protocol == "tcp" else None
        if info is not None and service.http is None:
            service = dataclasses.replace(
                service,
                service=info.service or service.service,
                product=info.product,
                version=info.version,
                banner=info.extrainfo,
            )
        services.append(service)
    if udp_attempt is not None:
        attempts.append(udp_attempt)
    upnp = None
    if work.ssdp or work.igd is not None:
        igd = work.igd
        upnp = UpnpObservation(
            ssdp=work.ssdp,
            igd=igd.description if igd else None,
            control_url=igd.control_url if igd else None,
            mappings_readable=igd.mappings_readable if igd else False,
            mappings=igd.mappings if igd else (),
            external_address=igd.external_address if igd else None,
        )
    return HostObservation(
        address=work.address,
        family=_family(work.address),
        hostnames=work.hostnames,
        services=tuple(services),
        status=HostStatus.INCOMPLETE if work.incomplete else HostStatus.COMPLETE,
        attempts=tuple(attempts),
        errors=tuple(work.errors),
        notes=tuple(work.notes),
        upnp=upnp,
    )
