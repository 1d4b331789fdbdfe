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
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import dns.asyncresolver
import httpx

from .. import __version__
from ..errors import ProbeFailed
from ..grading import grade_host
from ..nmap.scanner import DiscoveryResult, Scanner, VersionInfo
from ..observations import (
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
from ..ports import PortSet, default_ports
from ..probes.dns import resolve_names
from ..probes.http import HttpProbeSettings, PortFingerprint, fingerprint_port, make_client
from ..probes.upnp import IgdReadResult, probe_description_ports, probe_ssdp, read_igd
from ..report import HostReport, Report, SkippedAddress, unaudited_targets
from ..rules import evaluate_host
from ..targets import TargetPlan, non_global_reason
from ..timing import DiscoveryPolicy, discovery_policy
from ..upnp import Inventory
from .correlate import apply_mappings

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

_DEADLINE = "the host deadline came"

# Ports where UPnP description servers usually listen, probed for a device description when
# found open (see exposure_audit/data/ports.json for the sources).
IGD_PORTS = frozenset({1900, 2189, 2869, 5000, 5431, 49000, 49152, 52869})

# "Everything open" (docs/hostile.md): a host where at least _ALL_OPEN_SHARE of _ALL_OPEN_MIN
# or more scanned TCP ports accept, or every one of _ALL_OPEN_SMALL or more, is a tarpit, a
# honeypot or a firewall answering for whatever is behind it. A spread sample of its ports
# (and those of the default set) is probed first; when the sample answers alike, the ports
# are not reported one by one, only those that answered differently.
_ALL_OPEN_MIN = 50
_ALL_OPEN_SHARE = 0.9
_ALL_OPEN_SMALL = 20
_ALL_OPEN_SAMPLE = 8

__all__ = [
    "AuditRun",
    "AuditSettings",
    "Auditor",
    "NullProgress",
    "Progress",
    "ResolvedTargets",
    "Scanner",
    "inventory_scope",
    "resolve_targets",
    "unaudited_host",
]


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


def unaudited_host(
    address: str, hostnames: tuple[str, ...], error: str, *, now: datetime
) -> HostReport:
    """The report of a host whose audit failed outright (``error`` says why): incomplete,
    judged and graded on nothing, so "could not test" never reads as "safe"."""
    observation = _failed_host(address, hostnames, error)
    findings = evaluate_host(observation, now)
    return HostReport(observation, findings, grade_host(findings, observation))


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

    async def run(self) -> Report: ...

    def report(self, *, complete: bool) -> Report: ...


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
    hidden: frozenset[int] = frozenset()  # open TCP ports not reported one by one
    finished: bool = False  # reported (Auditor._finish): never twice
    cut: str = _DEADLINE  # what stopped probes that did not finish

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
        scanner: Scanner,
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

    async def _audit(
        self, resolved: ResolvedTargets, scope: Collection[str] | None = None
    ) -> Report:
        self._versions_gate = asyncio.Semaphore(_VERSION_WAVES)  # this run's event loop
        self.names, self.skipped = list(resolved.names), list(resolved.skipped)
        targets = dict(resolved.hosts)
        self._order = list(targets)
        if scope is None:
            found, note = inventory_scope(self.settings.inventory, list(targets))
            self.notes += [note] if note else []
            self._inventory_addresses = found
        else:
            self._inventory_addresses = set(scope)
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
        # The policy's rate is the scan's total: nmap runs going at once share it.
        self._concurrent = max(1, min(self.settings.parallel_batches, len(batches)))
        async with make_client(self.settings.http) as client:
            await asyncio.gather(
                *(self._audit_batch(b, targets, client, udp=udp, gate=gate) for b in batches)
            )
        return self.report(complete=True)

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

    async def _audit_batch(
        self,
        batch: Sequence[str],
        targets: dict[str, tuple[str, ...]],
        client: httpx.AsyncClient,
        *,
        udp: bool,
        gate: asyncio.Semaphore,
    ) -> None:
        """Discover a batch's ports within ``gate`` (the nmap runs going at once), then probe
        its hosts outside it: the next batch's discovery starts while this one's HTTP/TLS and
        -sV stages run, so on a filtered perimeter (where discovery is the waiting) the run
        costs its discovery plus the last batch's probes, not the sum of every batch's."""
        ssdp: asyncio.Task[dict[str, tuple[SsdpReply, ...]]] | None = None
        try:
            async with gate:
                deadline = time.monotonic() + self.settings.host_timeout
                self.progress.phase(f"discovering ports on {len(batch)} hosts")
                if self.settings.ssdp:
                    # One bounded wait for the whole batch, running while nmap discovers.
                    ssdp = asyncio.create_task(probe_ssdp(batch, wait=self.settings.ssdp_wait))
                found = await self.scanner.discover(
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
            self._finish_interrupted(work)

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
            try:
                work.fingerprints[port] = await fingerprint_port(
                    client, work.address, port, hostname=hostname, settings=self.settings.http
                )
            except Exception as exc:  # a probe bug must not lose the host: say so, go on
                reason = f"the HTTP probe failed: {type(exc).__name__}: {exc}"
                attempt = ProbeAttempt("http", ProbeStatus.ERROR, reason[:300], port)
                work.fingerprints[port] = PortFingerprint(None, None, attempt)

        everything_open = _accepts_everything(len(ports), len(self.settings.nmap_ports.tcp))
        try:
            async with asyncio.timeout(work.remaining()):
                if everything_open:
                    await self._sample_everything_open(work, ports, probe)
                else:
                    await asyncio.gather(*(probe(p) for p in ports))
        except TimeoutError:
            work.incomplete = True
            missing = sorted(set(ports) - set(work.fingerprints))
            listed = ", ".join(map(str, missing[:20]))
            listed += f", ... ({len(missing)} in all)" if len(missing) > 20 else ""
            work.attempts.append(
                ProbeAttempt("http", ProbeStatus.TIMED_OUT, f"host deadline reached on [{listed}]")
            )
        if self.settings.upnp:
            await self._upnp_host(work, client, ssdp, [p for p in ports if p not in work.hidden])

    async def _sample_everything_open(
        self, work: _HostWork, ports: list[int], probe: Callable[[int], Awaitable[None]]
    ) -> None:
        """Probe a spread sample of a host that accepts (nearly) every port, and the ports of
        the default set; if the sample answers alike, report only the ports that answered
        differently, else probe every port as usual. Until the sample is in (the deadline may
        cut it), no port is reported one by one."""
        scanned = len(self.settings.nmap_ports.tcp)
        count = f"all {scanned}" if len(ports) == scanned else f"{len(ports)} of {scanned}"
        work.hidden = frozenset(ports)
        work.incomplete = True
        sample = _spread(ports, _ALL_OPEN_SAMPLE)
        usual = set(default_ports().tcp)
        known = [p for p in ports if p in usual and p not in sample]
        head = (
            f"{count} scanned TCP ports accepted connections: a tarpit, a "
            "honeypot or a firewall accepting everything"
        )
        work.notes.append(f"{head}; its ports are not reported one by one")
        await asyncio.gather(*(probe(p) for p in (*sample, *known)))
        answers = {_signature(work.fingerprints.get(p)) for p in sample}
        if len(answers) > 1:
            # The sample differs: a real host with many services. Probe and report them all.
            work.hidden = frozenset()
            work.incomplete = work.discovery.timed_out
            work.notes.pop()
            await asyncio.gather(*(probe(p) for p in ports if p not in work.fingerprints))
            return
        common = answers.pop()
        shown = sorted(p for p in known if _signature(work.fingerprints.get(p)) != common)
        work.hidden = frozenset(ports) - set(shown)
        differ = f"; {', '.join(map(str, shown))} answered differently and are reported"
        work.notes[-1] = (
            f"{head}; {len(sample)} sampled ports gave the same answer ({_describe(common)}), "
            f"so the ports are not reported one by one{differ if shown else ''}"
        )
        work.attempts.append(
            ProbeAttempt(
                "http",
                ProbeStatus.SKIPPED,
                f"{len(work.hidden)} open ports not probed one by one: the host accepts every port",
            )
        )

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
        """Finish at once the hosts -sV has nothing to ask of, then run -sV for the others
        and finish them: a host never waits on a neighbour's nmap (nor is lost with it when
        the run is interrupted)."""
        asking = [w for w in hosts if self.settings.version_detection and _version_ports(w)]
        now = self.clock()
        for w in hosts:
            if all(w is not a for a in asking):
                self._finish_work(w, {}, now)
        if not asking:
            return
        async with self._versions_gate:
            versions = await self._versions(asking)
        now = self.clock()
        for w in asking:
            self._finish_work(w, versions, now)

    def _finish_work(
        self, work: _HostWork, versions: dict[tuple[str, int], VersionInfo], now: datetime
    ) -> None:
        if work.finished:
            return
        work.finished = True
        observation = _observe(
            work, versions, self._udp_skipped, version_detection=self.settings.version_detection
        )
        self._finish(observation, now)

    def _finish_interrupted(self, work: Sequence[_HostWork]) -> None:
        """Report the hosts of a batch that the run's interruption left unfinished: what was
        seen is kept, the host is incomplete and says where it was cut."""
        now = self.clock()
        for w in work:
            if w.finished:
                continue
            w.incomplete = True
            w.cut = "the run was interrupted"
            probed = len(w.fingerprints)
            w.attempts.append(
                ProbeAttempt(
                    "audit",
                    ProbeStatus.SKIPPED,
                    f"the run was interrupted before this host was finished ({probed} "
                    "port(s) fingerprinted by then)",
                )
            )
            self._finish_work(w, {}, now)

    async def _versions(self, hosts: list[_HostWork]) -> dict[tuple[str, int], VersionInfo]:
        """-sV on the open ports of ``hosts`` that did not speak HTTP/TLS, within the earliest
        of their deadlines. A host whose deadline passed before -sV could start is incomplete."""
        wanted = {w.address: _version_ports(w) for w in hosts}
        late = [w for w in hosts if wanted[w.address] and w.remaining() <= 0]
        for w in late:
            w.incomplete = True
            w.attempts.append(
                ProbeAttempt("versions", ProbeStatus.TIMED_OUT, "host deadline reached before -sV")
            )
        residual = {w.address: wanted[w.address] for w in hosts if w.remaining() > 0}
        residual = {address: ports for address, ports in residual.items() if ports}
        if not residual:
            return {}
        self.progress.phase("detecting service versions")
        budget = min(w.remaining() for w in hosts if w.address in residual)
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
        for w in hosts:
            if w.address in cut:
                w.incomplete = True
                w.attempts.append(
                    ProbeAttempt("versions", ProbeStatus.TIMED_OUT, "host deadline reached")
                )
        return versions

    async def _versions_group(
        self, group: dict[str, list[int]], budget: float
    ) -> tuple[dict[tuple[str, int], VersionInfo], set[str]]:
        try:
            async with asyncio.timeout(budget + _NMAP_GRACE):
                return await self.scanner.versions(group, host_timeout=budget)
        except TimeoutError:
            return {}, set(group)
        except ProbeFailed as exc:
            self.errors.append(str(exc))
            return {}, set(group)

    def _name_notes(self, hostnames: tuple[str, ...]) -> list[str]:
        domains = {n.name: n.synology_domain for n in self.names if n.synology_domain}
        return [
            f"{name} is a Synology DDNS/QuickConnect name ({domains[name]}): the owner "
            "published this box for remote access"
            for name in hostnames
            if name in domains
        ]

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
        host = HostReport(observation, findings, grade_host(findings, observation))
        self.hosts.append(host)
        if self.on_host is not None:
            # The history store records each host as it finishes: an interrupted run keeps it.
            self.on_host(host)
        self.progress.advance()


def _family(address: str) -> AddressFamily:
    return AddressFamily.IPV6 if ":" in address else AddressFamily.IPV4


def _open_tcp(service: ServiceObservation) -> bool:
    return service.protocol == "tcp" and service.state == "open"


def _version_ports(work: _HostWork) -> list[int]:
    """The open TCP ports of a host that -sV should look at (see :func:`_wants_versions`)."""
    return [
        s.port
        for s in work.discovery.services
        if _open_tcp(s) and s.port not in work.hidden and _wants_versions(work, s.port)
    ]


def _wants_versions(work: _HostWork, port: int) -> bool:
    """Whether -sV should look at the port: it did not speak HTTP/TLS, and it is not silent
    (a port that sent nothing to TLS, to an HTTP request or as a first banner answers none of
    -sV's probes either: each would only wait its timeout, ~50 s for nothing)."""
    fingerprint = work.fingerprints.get(port)
    if fingerprint is None:
        return True
    return fingerprint.http is None and not fingerprint.silent


def _accepts_everything(open_ports: int, scanned: int) -> bool:
    """Whether a host's open TCP ports look like "everything open" (see _ALL_OPEN_MIN)."""
    if scanned >= _ALL_OPEN_MIN and open_ports >= _ALL_OPEN_SHARE * scanned:
        return True
    return scanned >= _ALL_OPEN_SMALL and open_ports == scanned


def _spread(ports: Sequence[int], count: int) -> list[int]:
    """``count`` ports spread evenly over ``ports`` (all of them when there are fewer)."""
    if len(ports) <= count:
        return list(ports)
    return list(dict.fromkeys(ports[(2 * i + 1) * len(ports) // (2 * count)] for i in range(count)))


_Signature = tuple[str | int | bool | None, ...]


def _signature(fingerprint: PortFingerprint | None) -> _Signature:
    """What a port answered, for telling an accept-everything host's ports apart."""
    http = fingerprint.http if fingerprint is not None else None
    if http is None:
        return ("none",)
    return (http.scheme, http.status_code, http.server, http.title, http.dsm is not None, http.srm)


def _describe(signature: _Signature) -> str:
    if signature == ("none",):
        return "no HTTP or TLS answer"
    scheme, status, server, title = signature[:4]
    parts = [f"{scheme} {status}"]
    parts += [f"Server {server}"] if server else []
    parts += [f"title {title}"] if title else []
    return ", ".join(parts)


def _failed_host(address: str, hostnames: tuple[str, ...], error: str) -> HostObservation:
    return HostObservation(
        address=address,
        family=_family(address),
        hostnames=hostnames,
        status=HostStatus.INCOMPLETE,
        attempts=(ProbeAttempt("discovery", ProbeStatus.ERROR, error),),
        errors=(error,),
    )


def _unidentified(
    fingerprint: PortFingerprint | None,
    info: VersionInfo | None,
    *,
    version_detection: bool,
    cut: str,
) -> str:
    """Why nothing identified what answers on an open TCP port; "" when HTTP/TLS or -sV did.
    ``cut`` says what stopped the probes that did not finish (the deadline, an interrupt)."""
    if fingerprint is not None and fingerprint.http is not None:
        return ""
    if info is not None and info.identified:
        return ""
    if fingerprint is None:
        return f"{cut} before the port's probes finished"
    if fingerprint.silent:
        return f"{fingerprint.attempt.reason}; -sV not run (it would wait on every probe)"
    if info is None:
        if not version_detection:
            return "answered, but not HTTP or TLS; version detection (-sV) was off"
        if cut != _DEADLINE:
            return f"answered, but not HTTP or TLS; {cut} before -sV could tell"
        return "answered, but not HTTP or TLS; -sV gave no answer for it"
    if info.service == "tcpwrapped" or fingerprint.hung_up:
        return (
            "it hangs up without a byte on HTTP, TLS and nmap -sV's probes: nothing identifies it"
        )
    return "unknown bytes: it answered, but neither HTTP/TLS nor nmap -sV recognised the answer"


def _observe(
    work: _HostWork,
    versions: dict[tuple[str, int], VersionInfo],
    udp_attempt: ProbeAttempt | None,
    *,
    version_detection: bool = True,
) -> HostObservation:
    services: list[ServiceObservation] = []
    attempts = list(work.attempts)
    for service in work.discovery.services:
        if service.protocol == "tcp" and service.port in work.hidden:
            continue
        fp = work.fingerprints.get(service.port) if service.protocol == "tcp" else None
        if fp is not None:
            if fp.attempt.status not in (ProbeStatus.COMPLETED, ProbeStatus.UNIDENTIFIED):
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
        if _open_tcp(service):
            why = _unidentified(fp, info, version_detection=version_detection, cut=work.cut)
            service = dataclasses.replace(service, unidentified=why)
            if why:
                attempts.append(
                    ProbeAttempt("identify", ProbeStatus.UNIDENTIFIED, why, service.port)
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
