"""Orchestration: resolve -> discover -> fingerprint -> versions -> rules -> grade.

:class:`Auditor` runs one audit: it batches the targets, discovers each batch's ports, sends
each host through its pipeline (:mod:`.host`) and runs ``-sV`` for the hosts in waves, within
the per-host deadlines and the scan's rate. It keeps every finished host as it goes, so a run
cut short (Ctrl-C, a crashed nmap) can still report what it found: call
:meth:`Auditor.report` with ``complete=False``. The probes it runs are one injected
:class:`~.probeset.ProbeSet`; everything it hands to rules, grading and renderers is a plain
value.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import dns.asyncresolver
import httpx

from .. import __version__
from ..errors import ProbeFailed
from ..nmap.scanner import DiscoveryResult, Scanner, VersionInfo
from ..observations import AddressFamily, HostObservation, NameResolution, ProbeAttempt, ProbeStatus
from ..ports import PortSet
from ..probes.dns import resolve_names
from ..probes.http import HttpProbeSettings
from ..report import HostReport, Report, SkippedAddress, unaudited_targets
from ..targets import TargetPlan, non_global_reason
from ..text import plural
from ..timing import DiscoveryPolicy, discovery_policy
from ..upnp import Inventory
from .host import (
    HostAudit,
    HostProber,
    SsdpAnswers,
    address_family,
    correlate_upnp,
    failed_host,
    judge,
    unaudited_host,
)
from .probeset import ProbeSet, default_probes

# Seconds to wait, after the first host of a batch finishes its HTTP stage, for others to join
# its -sV run: long enough to gather the hosts that answer at once, short against a timeout.
_WAVE_LINGER = 0.5
# Waves whose -sV runs may overlap: a later wave does not wait for an earlier wave's nmap (a
# wave of tarpits would otherwise hold the next one past its deadline), within this bound.
_VERSION_WAVES = 4
# nmap checks --host-timeout between -sV probes only (a silent port costs its 6 s banner wait
# whatever is left): an nmap still running this long after the deadline is killed.
_NMAP_GRACE = 1.0

SSDP_PORT = 1900

__all__ = [
    "AuditRun",
    "AuditSettings",
    "Auditor",
    "NullProgress",
    "ProbeSet",
    "Progress",
    "ResolvedTargets",
    "RunBookkeeping",
    "Scanner",
    "default_probes",
    "inventory_scope",
    "resolve_targets",
    "unaudited_host",
    "utc_now",
]


class Progress(Protocol):
    """Receives progress; the CLI draws it on stderr. Calls come from the event loop thread."""

    def phase(self, text: str) -> None: ...

    def start(self, total_hosts: int) -> None: ...

    def advance(self, hosts: int = 1, done: Sequence[HostReport] = ()) -> None:
        """``hosts`` more hosts are finished; ``done`` holds their reports when known (the
        display names each host and its grade)."""


class NullProgress:
    """Progress that shows nothing."""

    def phase(self, text: str) -> None:
        pass

    def start(self, total_hosts: int) -> None:
        pass

    def advance(self, hosts: int = 1, done: Sequence[HostReport] = ()) -> None:
        pass


@dataclass(frozen=True)
class AuditSettings:
    """How a run scans. ``udp`` None means "when possible" (root); ``batch_size`` addresses
    share one nmap discovery run and ``parallel_batches`` of those run at once; ``discovery``
    paces nmap (the scanner is built with it: ``NmapScanner(policy=settings.discovery)``)."""

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
    discovery: DiscoveryPolicy = field(default_factory=discovery_policy)

    @property
    def ssdp(self) -> bool:
        """Whether the unprivileged SSDP probe runs (1900/udp in the port set, UPnP not off)."""
        return self.upnp and SSDP_PORT in self.ports.udp

    @property
    def nmap_ports(self) -> PortSet:
        """The ports nmap scans: 1900/udp is left to the SSDP probe, which needs no root."""
        return PortSet(self.ports.tcp, tuple(p for p in self.ports.udp if p != SSDP_PORT))


@dataclass(frozen=True)
class ResolvedTargets:
    """The addresses a run audits, each with the names that led to it (``hosts``, in plan
    order: direct addresses first, then those of names), the resolution of every name
    (``names``) and the resolved addresses the policy kept out (``skipped``)."""

    hosts: Mapping[str, tuple[str, ...]]
    names: tuple[NameResolution, ...] = ()
    skipped: tuple[SkippedAddress, ...] = ()

    @property
    def addresses(self) -> list[str]:
        return list(self.hosts)

    def subset(self, addresses: Sequence[str]) -> ResolvedTargets:
        """Only ``addresses`` (each must be one of ``hosts``), with the resolutions of the
        names that led to them; no skipped addresses (they belong to the whole run)."""
        hosts = {a: self.hosts[a] for a in addresses}
        wanted = {name for names in hosts.values() for name in names}
        return ResolvedTargets(hosts, tuple(n for n in self.names if n.name in wanted))


async def resolve_targets(
    plan: TargetPlan,
    resolver: dns.asyncresolver.Resolver,
    progress: Progress | None = None,
) -> ResolvedTargets:
    """Resolve the plan's names (A and AAAA) and apply the policy to what they resolve to:
    excluded and (without ``allow_private``) non-global addresses are skipped with the
    reason. Per-name failures are recorded on the resolutions, never raised."""
    targets: dict[str, list[str]] = {a: [] for a in plan.addresses}
    names: list[NameResolution] = []
    skipped: list[SkippedAddress] = []
    if plan.hostnames:
        (progress or NullProgress()).phase("resolving names")
        names = await resolve_names(plan.hostnames, resolver)
    for resolution in names:
        for address in resolution.addresses:
            ip = ipaddress.ip_address(address)
            reason = non_global_reason(ip)
            if plan.exclusions.excludes_address(ip):
                skipped.append(SkippedAddress(address, resolution.name, "excluded"))
            elif reason and not plan.allow_private:
                skipped.append(
                    SkippedAddress(
                        address,
                        resolution.name,
                        f"not a public address: {reason}; --allow-private scans it",
                    )
                )
            else:
                targets.setdefault(address, []).append(resolution.name)
    return ResolvedTargets({a: tuple(n) for a, n in targets.items()}, tuple(names), tuple(skipped))


def inventory_scope(inventory: Inventory | None, addresses: Sequence[str]) -> tuple[set[str], str]:
    """The addresses an inside inventory describes, and a note for the report ("" if none):
    its router's external address when that is a target, else (CGNAT, a changed address)
    every target. Decided over the whole run, never per block of it."""
    if inventory is None:
        return set(), ""
    external = inventory.external_address
    if external is not None and external in addresses:
        return {external}, ""
    return set(addresses), (
        f"the UPnP inventory's external address ({inventory.external_address or 'unknown'}) "
        "is not among the targets (CGNAT or a new address?): its mappings were compared "
        "with every host"
    )


class AuditRun(Protocol):
    """One run as a scan session drives it (``session.run_session``): an :class:`Auditor`,
    or a ``cluster.ClusterAudit`` spreading the run over a Dask cluster.

    ``run()`` audits everything and returns the report (run errors inside it); ``report``
    gives what is known at any time (``complete=False`` after an interruption); ``on_host``,
    when set before ``run()``, is called with each host as it is done; ``errors`` takes
    the session's own run errors."""

    @property
    def started_at(self) -> datetime: ...

    @property
    def settings(self) -> AuditSettings: ...

    on_host: Callable[[HostReport], None] | None
    errors: list[str]
    progress: Progress

    async def run(self) -> Report: ...

    def report(self, *, complete: bool) -> Report: ...


def utc_now() -> datetime:
    """The time now, in UTC: a run's clock unless a test hands in its own."""
    return datetime.now(UTC)


class RunBookkeeping:
    """What every kind of :class:`AuditRun` keeps about its run: the ``plan`` and ``settings``
    it runs, the ``resolver`` the plan's names go to, where ``progress`` goes, its ``clock``
    and when it started by it, ``on_host`` (see :class:`AuditRun`), and the run's own
    ``errors`` and ``notes`` so far."""

    def __init__(
        self,
        plan: TargetPlan,
        settings: AuditSettings,
        *,
        resolver: dns.asyncresolver.Resolver,
        progress: Progress | None,
        clock: Callable[[], datetime],
        on_host: Callable[[HostReport], None] | None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.resolver = resolver
        self.progress: Progress = progress or NullProgress()
        self.clock = clock
        self.on_host = on_host
        self.started_at = clock()
        self.errors: list[str] = []
        self.notes: list[str] = []


class Auditor(RunBookkeeping):
    """Runs one audit of a :class:`TargetPlan` with the injected ``probes``, so tests can hand
    in local servers or fakes; ``scanner`` alone is short for ``probes=default_probes(scanner)``
    (the real HTTP/TLS and UPnP probes around that port scanner): give one of the two.
    ``udp_possible`` is (allowed, reason) for nmap's UDP scan."""

    def __init__(
        self,
        plan: TargetPlan,
        settings: AuditSettings,
        *,
        resolver: dns.asyncresolver.Resolver,
        probes: ProbeSet | None = None,
        scanner: Scanner | None = None,
        udp_possible: tuple[bool, str] = (False, "UDP scanning not requested"),
        progress: Progress | None = None,
        clock: Callable[[], datetime] = utc_now,
        on_host: Callable[[HostReport], None] | None = None,
    ) -> None:
        super().__init__(
            plan, settings, resolver=resolver, progress=progress, clock=clock, on_host=on_host
        )
        self.probes = _chosen_probes(probes, scanner)
        self.udp_possible = udp_possible
        self.hosts: list[HostReport] = []
        self.names: list[NameResolution] = []
        self.skipped: list[SkippedAddress] = []
        # Set when UDP ports were left out, so every host's attempts can say so.
        self._udp_skipped: ProbeAttempt | None = None
        self._order: list[str] = []
        self._versions_gate = asyncio.Semaphore(_VERSION_WAVES)
        self._inventory_addresses: set[str] = set()
        self._concurrent = 1

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
            not_audited=unaudited_targets(
                self.names, self.skipped, self.plan.excluded, {h.address for h in hosts}
            ),
        )

    async def run(self) -> Report:
        """Resolve the plan's names, then audit every target; returns the complete report
        (or one with run errors)."""
        self.started_at = self.clock()
        return await self._audit(await resolve_targets(self.plan, self.resolver, self.progress))

    async def audit(
        self, resolved: ResolvedTargets, *, inventory_scope: Collection[str] | None = None
    ) -> Report:
        """Audit targets resolved before (:func:`resolve_targets`; the plan and the resolver
        are not used), as :meth:`run` does after resolving. ``inventory_scope``: the
        addresses the UPnP inventory describes, when a larger run decided it (a block of a
        cluster run); None decides it over ``resolved``."""
        self.started_at = self.clock()
        return await self._audit(resolved, inventory_scope)

    # -- the run: batches, discovery, waves ------------------------------------------------

    async def _audit(
        self, resolved: ResolvedTargets, scope: Collection[str] | None = None
    ) -> Report:
        self._versions_gate = asyncio.Semaphore(_VERSION_WAVES)  # this run's event loop
        self.names, self.skipped = list(resolved.names), list(resolved.skipped)
        targets = dict(resolved.hosts)
        self._order = list(targets)
        self._inventory_addresses = self._inventory_scope(list(targets), scope)
        self.progress.start(len(targets))
        udp = self._udp_enabled()
        batches = self._batches(targets)
        gate = asyncio.Semaphore(self.settings.parallel_batches)
        # The policy's rate is the scan's total: nmap runs going at once share it.
        self._concurrent = max(1, min(self.settings.parallel_batches, len(batches)))
        async with self.probes.http_client(self.settings.http) as client:
            prober = self._host_prober(client)
            await asyncio.gather(
                *(self._audit_batch(b, targets, prober, udp=udp, gate=gate) for b in batches)
            )
        return self.report(complete=True)

    def _inventory_scope(self, addresses: list[str], scope: Collection[str] | None) -> set[str]:
        """The addresses the UPnP inventory describes: ``scope`` when a larger run decided
        it, else decided over ``addresses`` (with a note when that is every one)."""
        if scope is not None:
            return set(scope)
        found, note = inventory_scope(self.settings.inventory, addresses)
        self.notes += [note] if note else []
        return found

    def _batches(self, targets: dict[str, tuple[str, ...]]) -> list[list[str]]:
        """The targets in batches of ``batch_size``, one address family per batch."""
        families: dict[AddressFamily, list[str]] = {}
        for address in targets:
            families.setdefault(address_family(address), []).append(address)
        return [
            addresses[i : i + self.settings.batch_size]
            for addresses in families.values()
            for i in range(0, len(addresses), self.settings.batch_size)
        ]

    def _udp_enabled(self) -> bool:
        if not self.settings.nmap_ports.udp:
            return False
        allowed, reason = self.udp_possible
        if self.settings.udp is False:
            note = "UDP ports not scanned (turned off)"
        elif not allowed:
            ports = ",".join(map(str, self.settings.nmap_ports.udp))
            note = f"UDP ports {ports} skipped: {reason}"
        else:
            return True
        self.notes.append(note)
        self._udp_skipped = ProbeAttempt("udp", ProbeStatus.SKIPPED, note)
        return False

    def _host_prober(self, client: httpx.AsyncClient) -> HostProber:
        return HostProber(
            web=self.probes.web,
            upnp=self.probes.upnp if self.settings.upnp else None,
            client=client,
            http=self.settings.http,
            scanned_tcp=len(self.settings.nmap_ports.tcp),
        )

    async def _audit_batch(
        self,
        batch: Sequence[str],
        targets: dict[str, tuple[str, ...]],
        prober: HostProber,
        *,
        udp: bool,
        gate: asyncio.Semaphore,
    ) -> None:
        """Discover a batch's ports within ``gate`` (the nmap runs going at once), then probe
        its hosts outside it: the next batch's discovery starts while this one's HTTP/TLS and
        -sV stages run, so on a filtered perimeter (where discovery is the waiting) the run
        costs its discovery plus the last batch's probes, not the sum of every batch's."""
        discovered = await self._discover_batch(batch, targets, udp=udp, gate=gate)
        if discovered is not None:
            hosts, ssdp = discovered
            await self._probe_in_waves(hosts, prober, ssdp)

    async def _discover_batch(
        self,
        batch: Sequence[str],
        targets: dict[str, tuple[str, ...]],
        *,
        udp: bool,
        gate: asyncio.Semaphore,
    ) -> tuple[list[HostAudit], asyncio.Task[SsdpAnswers] | None] | None:
        """The batch's hosts as discovery found them, each with its deadline (from when its
        discovery started), and the batch's SSDP search, still running. A failed discovery
        (nmap crashed) is a run error: every host of the batch is reported failed, None."""
        ssdp: asyncio.Task[SsdpAnswers] | None = None
        try:
            async with gate:
                deadline = time.monotonic() + self.settings.host_timeout
                self.progress.phase(f"discovering ports on {plural(len(batch), 'host')}")
                if self.settings.ssdp:
                    # One bounded wait for the whole batch, running while nmap discovers.
                    ssdp = asyncio.create_task(
                        self.probes.upnp.ssdp_replies(batch, wait=self.settings.ssdp_wait)
                    )
                found = await self.probes.scanner.discover(
                    batch,
                    self.settings.nmap_ports,
                    udp=udp,
                    host_timeout=self.settings.host_timeout,
                    concurrent=self._concurrent,
                )
        except ProbeFailed as exc:
            if ssdp is not None:
                ssdp.cancel()
            self.errors.append(str(exc))
            for address in batch:
                self._finish(failed_host(address, targets[address], str(exc)))
            return None
        hosts = [
            HostAudit(
                a,
                targets[a],
                deadline,
                found.get(a, DiscoveryResult(a, timed_out=True)),
                notes=self._name_notes(targets[a]),
            )
            for a in batch
        ]
        return hosts, ssdp

    async def _probe_in_waves(
        self,
        hosts: list[HostAudit],
        prober: HostProber,
        ssdp: asyncio.Task[SsdpAnswers] | None,
    ) -> None:
        """Probe every host of a batch, and finish them in waves as their probes end. When
        interrupted, no probe and no nmap is left running, and every host is still reported
        (:meth:`HostAudit.interrupt`)."""
        self.progress.phase("fingerprinting HTTP/TLS")
        tasks = {asyncio.create_task(prober.probe(h, ssdp)): h for h in hosts}
        # Hosts finish in waves: whatever is done within a short linger after the first
        # completion shares one -sV run and is reported, while the rest (silent ports, tarpits,
        # slow drips) keep going. Nobody waits for a straggler, and nmap starts once per wave;
        # a wave's -sV does not hold the next wave back either.
        pending: set[asyncio.Task[None]] = set(tasks)
        waves: list[asyncio.Task[None]] = []
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if pending:
                    more, pending = await asyncio.wait(pending, timeout=_WAVE_LINGER)
                    done |= more
                wave = [tasks[t] for t in done]
                waves.append(asyncio.create_task(self._versions_and_finish(wave)))
            await asyncio.gather(*waves)
        finally:
            for task in [*pending, *waves]:
                task.cancel()  # interrupted: no probe and no nmap is left running
            await asyncio.gather(*pending, *waves, return_exceptions=True)
            # Interrupted (Ctrl-C, SIGTERM): every host whose discovery finished is reported
            # with what its probes saw by now, incomplete. A normal end finished them all.
            self._finish_interrupted(hosts)

    # -- a wave: -sV, then each host is finished -------------------------------------------

    async def _versions_and_finish(self, hosts: list[HostAudit]) -> None:
        """Finish at once the hosts -sV has nothing to ask of, then run -sV for the others
        and finish them: a host never waits on a neighbour's nmap (nor is lost with it when
        the run is interrupted)."""
        asking = [h for h in hosts if self.settings.version_detection and h.version_ports()]
        now = self.clock()
        for h in hosts:
            if all(h is not a for a in asking):
                self._finish_host(h, {}, now)
        if not asking:
            return
        async with self._versions_gate:
            versions = await self._versions(asking)
        now = self.clock()
        for h in asking:
            self._finish_host(h, versions, now)

    async def _versions(self, hosts: list[HostAudit]) -> dict[tuple[str, int], VersionInfo]:
        """-sV on the open ports of ``hosts`` that did not speak HTTP/TLS, within the earliest
        of their deadlines. A host whose deadline passed before -sV could start, or cut -sV
        short, is incomplete."""
        wanted = {h.address: h.version_ports() for h in hosts}
        late = [h for h in hosts if wanted[h.address] and h.remaining() <= 0]
        for h in late:
            h.versions_missed("host deadline reached before -sV")
        residual = {h.address: wanted[h.address] for h in hosts if h.remaining() > 0}
        residual = {address: ports for address, ports in residual.items() if ports}
        if not residual:
            return {}
        self.progress.phase("detecting service versions")
        budget = min(h.remaining() for h in hosts if h.address in residual)
        # One nmap per port list (as NmapScanner runs them), each killed at the deadline.
        groups: dict[tuple[int, ...], dict[str, list[int]]] = {}
        for address, ports in residual.items():
            groups.setdefault(tuple(sorted(set(ports))), {})[address] = ports
        versions: dict[tuple[str, int], VersionInfo] = {}
        cut: set[str] = set()
        for found, group_cut in await asyncio.gather(
            *(self._versions_group(group, budget) for group in groups.values())
        ):
            versions.update(found)
            cut |= group_cut
        for h in hosts:
            if h.address in cut:
                h.versions_missed("host deadline reached")
        return versions

    async def _versions_group(
        self, group: dict[str, list[int]], budget: float
    ) -> tuple[dict[tuple[str, int], VersionInfo], set[str]]:
        """-sV of one port list, killed ``_NMAP_GRACE`` after ``budget``; the addresses cut
        are all of ``group`` when it was killed or failed (a run error)."""
        try:
            async with asyncio.timeout(budget + _NMAP_GRACE):
                return await self.probes.scanner.versions(group, host_timeout=budget)
        except TimeoutError:
            return {}, set(group)
        except ProbeFailed as exc:
            self.errors.append(str(exc))
            return {}, set(group)

    # -- finishing a host ------------------------------------------------------------------

    def _finish_host(
        self, host: HostAudit, versions: dict[tuple[str, int], VersionInfo], now: datetime
    ) -> None:
        """Report ``host`` with ``versions`` (once: a finished host is never reported again)."""
        if host.finished:
            return
        host.finished = True
        observation = host.observe(
            versions, self._udp_skipped, version_detection=self.settings.version_detection
        )
        self._finish(observation, now)

    def _finish_interrupted(self, hosts: Sequence[HostAudit]) -> None:
        """Report the hosts of a batch that the run's interruption left unfinished: what was
        seen is kept, the host is incomplete and says where it was cut."""
        now = self.clock()
        for host in hosts:
            if not host.finished:
                host.interrupt()
                self._finish_host(host, {}, now)

    def _name_notes(self, hostnames: tuple[str, ...]) -> list[str]:
        domains = {n.name: n.synology_domain for n in self.names if n.synology_domain}
        return [
            f"{name} is a Synology DDNS/QuickConnect name ({domains[name]}): the owner "
            "published this box for remote access"
            for name in hostnames
            if name in domains
        ]

    def _finish(self, observation: HostObservation, now: datetime | None = None) -> None:
        """Judge a host, keep its report, hand it to ``on_host`` and count it done."""
        applies = observation.address in self._inventory_addresses
        observation = correlate_upnp(
            observation, self.settings.inventory, inventory_applies=applies
        )
        host = judge(observation, now or self.clock())
        self.hosts.append(host)
        if self.on_host is not None:
            # The history store records each host as it finishes: an interrupted run keeps it.
            self.on_host(host)
        self.progress.advance(1, (host,))


def _chosen_probes(probes: ProbeSet | None, scanner: Scanner | None) -> ProbeSet:
    """``probes``, or the real probes around ``scanner``: exactly one must be given."""
    if (probes is None) == (scanner is None):
        raise TypeError("an Auditor takes probes= or scanner=, one of the two")
    if probes is not None:
        return probes
    assert scanner is not None
    return default_probes(scanner)
