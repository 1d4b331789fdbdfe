"""One host's audit after discovery: web fingerprints, UPnP, what ``-sV`` should see, judging.

A host in flight is a :class:`HostAudit`, made from what discovery found. :class:`HostProber`
fingerprints its open TCP ports over HTTP/TLS (a host that accepts every port, a tarpit, is
sampled instead: :func:`accepts_everything`), then reads its UPnP. The Auditor's wave runs
``-sV`` on :meth:`HostAudit.version_ports`, the open ports HTTP/TLS did not identify.
:meth:`HostAudit.observe` turns it all into a :class:`~exposure_audit.observations.
HostObservation`, :func:`correlate_upnp` ties it to UPnP mappings and :func:`judge` makes the
:class:`~exposure_audit.report.HostReport`.

What a cut leaves behind. Every probe of a host runs within the host's deadline: when it comes,
the probes still running are abandoned, what they saw before is kept, the host is incomplete,
an attempt names the stage that was cut (``discovery``, ``http``, ``upnp``, ``versions``), and
every open port nothing identified says why (``HostAudit.cut``, "the host deadline came").
:meth:`HostAudit.interrupt` does the same for a run interrupted before the host was finished.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

import httpx

from ..grading import grade_host
from ..mgmt import load_catalog
from ..nmap.scanner import DiscoveryResult, VersionInfo
from ..observations import (
    AddressFamily,
    HostObservation,
    HostStatus,
    ProbeAttempt,
    ProbeStatus,
    ServiceObservation,
    SsdpReply,
    UpnpObservation,
)
from ..ports import default_ports, is_management_port
from ..probes.http import HttpProbeSettings, PortFingerprint
from ..probes.upnp import IgdReadResult
from ..report import HostReport
from ..rules import evaluate_host
from ..upnp import Inventory
from .correlate import apply_mappings
from .probeset import UpnpProber, WebFingerprinter
from .slots import HostSlots

__all__ = [
    "DEADLINE_CUT",
    "IGD_PORTS",
    "PORTS_AT_ONCE",
    "RUN_PORTS_AT_ONCE",
    "HostAudit",
    "HostProber",
    "SsdpAnswers",
    "accepts_everything",
    "address_family",
    "correlate_upnp",
    "failed_host",
    "judge",
    "mission_order",
    "spread",
    "unaudited_host",
]

DEADLINE_CUT = "the host deadline came"
INTERRUPTED = "the run was interrupted"

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

# Web fingerprinting at once: ports of one host (a host answering on thousands of ports works
# through them in mission_order, its management ports first), and ports of the whole run,
# handed out round robin over the hosts (run/slots.py), so such a host never pushes the others
# past their deadlines. A port is a connection or two at a time (a few more on a DSM or
# management page). Measured in docs/performance.md ("Crowded hosts").
PORTS_AT_ONCE = 64
RUN_PORTS_AT_ONCE = 128

# The SSDP replies of a batch's addresses, as one search of the whole batch gathers them.
SsdpAnswers = dict[str, tuple[SsdpReply, ...]]


@dataclass
class HostAudit:
    """One address in flight: what discovery gave, then what its probes added.

    ``deadline`` is a ``time.monotonic()`` instant; ``hidden`` are open TCP ports not reported
    one by one (an accept-everything host); ``cut`` says what stopped the probes that did not
    finish; ``finished`` is set once the host is reported, so it never is twice."""

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
    hidden: frozenset[int] = frozenset()
    finished: bool = False
    cut: str = DEADLINE_CUT

    def remaining(self) -> float:
        """Seconds left before the host's deadline (0 once it has passed)."""
        return max(0.0, self.deadline - time.monotonic())

    def open_tcp_ports(self) -> list[int]:
        """The open TCP ports discovery found, in its order."""
        return [s.port for s in self.discovery.services if _open_tcp(s)]

    def version_ports(self) -> list[int]:
        """The open TCP ports ``-sV`` should look at: reported one by one, and neither
        speaking HTTP/TLS nor silent (see :func:`_wants_versions`)."""
        return [
            s.port
            for s in self.discovery.services
            if _open_tcp(s) and s.port not in self.hidden and _wants_versions(self, s.port)
        ]

    def versions_missed(self, reason: str) -> None:
        """``-sV`` did not finish for this host (``reason``): it is incomplete."""
        self.incomplete = True
        self.attempts.append(ProbeAttempt("versions", ProbeStatus.TIMED_OUT, reason))

    def interrupt(self) -> None:
        """The run was interrupted before this host was finished: what was seen is kept, the
        host is incomplete and says where it was cut."""
        self.incomplete = True
        self.cut = INTERRUPTED
        probed = len(self.fingerprints)
        self.attempts.append(
            ProbeAttempt(
                "audit",
                ProbeStatus.SKIPPED,
                f"the run was interrupted before this host was finished ({probed} "
                "port(s) fingerprinted by then)",
            )
        )

    def observe(
        self,
        versions: dict[tuple[str, int], VersionInfo],
        udp_attempt: ProbeAttempt | None,
        *,
        version_detection: bool = True,
    ) -> HostObservation:
        """What was seen of the host: discovery's services (less the hidden ones) with their
        HTTP/TLS fingerprints, else ``versions`` (``-sV``); every open TCP port nothing
        identified says why. ``udp_attempt`` says UDP was left out, when it was."""
        services: list[ServiceObservation] = []
        attempts = list(self.attempts)
        for service in self.discovery.services:
            if service.protocol == "tcp" and service.port in self.hidden:
                continue
            observed, said = self._observe_service(
                service, versions, version_detection=version_detection
            )
            services.append(observed)
            attempts += said
        if udp_attempt is not None:
            attempts.append(udp_attempt)
        return HostObservation(
            address=self.address,
            family=address_family(self.address),
            hostnames=self.hostnames,
            services=tuple(services),
            status=HostStatus.INCOMPLETE if self.incomplete else HostStatus.COMPLETE,
            attempts=tuple(attempts),
            errors=tuple(self.errors),
            notes=tuple(self.notes),
            upnp=self._upnp_observation(),
        )

    def _observe_service(
        self,
        service: ServiceObservation,
        versions: dict[tuple[str, int], VersionInfo],
        *,
        version_detection: bool,
    ) -> tuple[ServiceObservation, list[ProbeAttempt]]:
        """One discovered service with what HTTP/TLS or ``-sV`` said of it, and the attempts
        that go with it (a probe that did not complete; why nothing identified it)."""
        attempts: list[ProbeAttempt] = []
        fp = self.fingerprints.get(service.port) if service.protocol == "tcp" else None
        if fp is not None:
            if fp.attempt.status not in (ProbeStatus.COMPLETED, ProbeStatus.UNIDENTIFIED):
                attempts.append(fp.attempt)
            if fp.http is not None:
                service = dataclasses.replace(
                    service, service=fp.http.scheme, http=fp.http, tls=fp.tls
                )
                if fp.nmap is not None:
                    # What -sV would call it, from the answer already read (no -sV here).
                    service = dataclasses.replace(
                        service,
                        product=fp.nmap.product or "",
                        version=fp.nmap.version or "",
                        banner=fp.nmap.info or "",
                        cpe=fp.nmap.cpes,
                    )
        info = versions.get((self.address, service.port)) if service.protocol == "tcp" else None
        if info is not None and service.http is None:
            service = dataclasses.replace(
                service,
                service=info.service or service.service,
                product=info.product,
                version=info.version,
                banner=info.extrainfo,
                cpe=info.cpes,
            )
        if _open_tcp(service):
            why = _unidentified(fp, info, version_detection=version_detection, cut=self.cut)
            service = dataclasses.replace(service, unidentified=why)
            if why:
                attempts.append(
                    ProbeAttempt("identify", ProbeStatus.UNIDENTIFIED, why, service.port)
                )
        return service, attempts

    def _upnp_observation(self) -> UpnpObservation | None:
        if not self.ssdp and self.igd is None:
            return None
        igd = self.igd
        return UpnpObservation(
            ssdp=self.ssdp,
            igd=igd.description if igd else None,
            control_url=igd.control_url if igd else None,
            mappings_readable=igd.mappings_readable if igd else False,
            mappings=igd.mappings if igd else (),
            external_address=igd.external_address if igd else None,
        )


@dataclass(frozen=True)
class HostProber:
    """Probes hosts after discovery, over one run's HTTP ``client``: ``web`` fingerprints
    their open TCP ports with the ``http`` settings, ``upnp`` (None: UPnP is off) reads their
    IGD. ``scanned_tcp`` is how many TCP ports discovery scanned (for "everything open").
    ``slots`` are the ports the whole run fingerprints at once, shared by its hosts in turn.
    """

    web: WebFingerprinter
    upnp: UpnpProber | None
    client: httpx.AsyncClient
    http: HttpProbeSettings
    scanned_tcp: int
    slots: HostSlots = field(default_factory=lambda: HostSlots(RUN_PORTS_AT_ONCE))

    async def probe(self, host: HostAudit, ssdp: asyncio.Task[SsdpAnswers] | None) -> None:
        """Fingerprint the host's open TCP ports, then read its UPnP (the batch's ``ssdp``
        search, its IGD), each within the host's deadline. Never raises for what a host does:
        a cut or failed probe is an attempt on the host, which is then incomplete."""
        if host.discovery.timed_out:
            host.incomplete = True
            host.attempts.append(
                ProbeAttempt("discovery", ProbeStatus.TIMED_OUT, "host deadline reached")
            )
        ports = host.open_tcp_ports()
        await self._fingerprint_ports(host, ports)
        if self.upnp is not None:
            open_ports = [p for p in ports if p not in host.hidden]
            await self._read_upnp(host, self.upnp, ssdp, open_ports)

    async def _fingerprint_ports(self, host: HostAudit, ports: list[int]) -> None:
        """Fingerprint ``ports`` (or sample them: an accept-everything host) until the deadline;
        the ports it cut are listed in an ``http`` attempt. Whatever the host serves, the
        deadline holds: what was fingerprinted by then is kept."""
        everything_open = accepts_everything(len(ports), self.scanned_tcp)
        try:
            async with asyncio.timeout(host.remaining()):
                if everything_open:
                    await self._sample_everything_open(host, ports)
                else:
                    await self._fingerprint_all(host, ports)
        except TimeoutError:
            host.incomplete = True
            missing = sorted(set(ports) - set(host.fingerprints))
            listed = ", ".join(map(str, missing[:20]))
            listed += f", ... ({len(missing)} in all)" if len(missing) > 20 else ""
            host.attempts.append(
                ProbeAttempt("http", ProbeStatus.TIMED_OUT, f"host deadline reached on [{listed}]")
            )

    async def _fingerprint_all(self, host: HostAudit, ports: Iterable[int]) -> None:
        """Fingerprint ``ports`` in :func:`mission_order`, at most :data:`PORTS_AT_ONCE` of
        this host at once, each within one of the run's ``slots`` (hosts take turns, so a host
        with thousands of ports waits its turn like the others). Cancelled (the deadline), it
        leaves no probe running."""
        ordered = mission_order(ports)
        queue = iter(ordered)

        async def worker() -> None:
            for port in queue:  # the workers share the queue: each port is taken once
                async with self.slots.taken(host.address):
                    await self._fingerprint(host, port)

        await asyncio.gather(*(worker() for _ in range(min(PORTS_AT_ONCE, len(ordered)))))

    async def _fingerprint(self, host: HostAudit, port: int) -> None:
        hostname = host.hostnames[0] if host.hostnames else None
        try:
            host.fingerprints[port] = await self.web(
                self.client, host.address, port, hostname=hostname, settings=self.http
            )
        except Exception as exc:  # a probe bug must not lose the host: say so, go on
            reason = f"the HTTP probe failed: {type(exc).__name__}: {exc}"
            attempt = ProbeAttempt("http", ProbeStatus.ERROR, reason[:300], port)
            host.fingerprints[port] = PortFingerprint(None, None, attempt)

    async def _sample_everything_open(self, host: HostAudit, ports: list[int]) -> None:
        """Probe a spread sample of a host that accepts (nearly) every port, and the ports of
        the default set; if the sample answers alike, report only the ports that answered
        differently, else probe every port as usual. Until the sample is in (the deadline may
        cut it), no port is reported one by one."""
        scanned = self.scanned_tcp
        count = f"all {scanned}" if len(ports) == scanned else f"{len(ports)} of {scanned}"
        host.hidden = frozenset(ports)
        host.incomplete = True
        sample = spread(ports, _ALL_OPEN_SAMPLE)
        usual = set(default_ports().tcp)
        known = [p for p in ports if p in usual and p not in sample]
        head = (
            f"{count} scanned TCP ports accepted connections: a tarpit, a "
            "honeypot or a firewall accepting everything"
        )
        host.notes.append(f"{head}; its ports are not reported one by one")
        await self._fingerprint_all(host, (*sample, *known))
        answers = {_signature(host.fingerprints.get(p)) for p in sample}
        if len(answers) > 1:
            # The sample differs: a real host with many services. Probe and report them all.
            host.hidden = frozenset()
            host.incomplete = host.discovery.timed_out
            host.notes.pop()
            pending = [p for p in ports if p not in host.fingerprints]
            await self._fingerprint_all(host, pending)
            return
        _hide_alike_ports(host, ports, sample, known, head, answers.pop())

    async def _read_upnp(
        self,
        host: HostAudit,
        upnp: UpnpProber,
        ssdp: asyncio.Task[SsdpAnswers] | None,
        open_ports: list[int],
    ) -> None:
        """SSDP replies for this address, then its IGD description and mapping table (read-only),
        from the LOCATION rewritten to this address or from the usual description ports. Cut by
        the deadline, nothing of it is kept but an ``upnp`` attempt."""
        try:
            async with asyncio.timeout(host.remaining()):
                if ssdp is not None:
                    host.ssdp = (await asyncio.shield(ssdp)).get(host.address, ())
                results = await self._read_igds(host, upnp, open_ports)
        except TimeoutError:
            host.incomplete = True
            host.attempts.append(
                ProbeAttempt("upnp", ProbeStatus.TIMED_OUT, "host deadline reached")
            )
            return
        found = [r for r in results if r.description is not None]
        host.igd = found[0] if found else None
        for result in results:
            host.errors.extend(result.errors)

    async def _read_igds(
        self, host: HostAudit, upnp: UpnpProber, open_ports: list[int]
    ) -> list[IgdReadResult]:
        """The IGD reads of a host: each SSDP LOCATION until one gives a description, else
        the usual description ports among ``open_ports``."""
        results: list[IgdReadResult] = []
        for location in dict.fromkeys(r.location for r in host.ssdp if r.location):
            results.append(await upnp.read_igd(self.client, location, public_address=host.address))
            if results[-1].description is not None:
                break
        if not any(r.description for r in results):
            candidates = sorted(p for p in open_ports if p in IGD_PORTS)
            if candidates:
                results += await upnp.find_descriptions(self.client, host.address, candidates)
        return results


def judge(observation: HostObservation, now: datetime) -> HostReport:
    """The host's report: the rules' findings on ``observation`` at ``now``, and its grade."""
    findings = evaluate_host(observation, now)
    return HostReport(observation, findings, grade_host(findings, observation))


def correlate_upnp(
    observation: HostObservation, inventory: Inventory | None, *, inventory_applies: bool
) -> HostObservation:
    """Tie reachable services to UPnP mappings: the table read over the WAN when the router
    gave it, else the ``inventory`` taken inside (when it applies to this address)."""
    upnp = observation.upnp
    if upnp is not None and upnp.mappings_readable:
        return apply_mappings(observation, upnp.mappings, "wan")
    if inventory is not None and inventory_applies:
        return apply_mappings(observation, inventory.mappings, "inventory")
    return observation


def failed_host(address: str, hostnames: tuple[str, ...], error: str) -> HostObservation:
    """The observation of a host whose discovery failed (``error``): incomplete, nothing seen."""
    return HostObservation(
        address=address,
        family=address_family(address),
        hostnames=hostnames,
        status=HostStatus.INCOMPLETE,
        attempts=(ProbeAttempt("discovery", ProbeStatus.ERROR, error),),
        errors=(error,),
    )


def unaudited_host(
    address: str, hostnames: tuple[str, ...], error: str, *, now: datetime
) -> HostReport:
    """The report of a host whose audit failed outright (``error`` says why): incomplete,
    judged and graded on nothing, so "could not test" never reads as "safe"."""
    return judge(failed_host(address, hostnames, error), now)


def address_family(address: str) -> AddressFamily:
    return AddressFamily.IPV6 if ":" in address else AddressFamily.IPV4


def accepts_everything(open_ports: int, scanned: int) -> bool:
    """Whether a host's open TCP ports look like "everything open" (see _ALL_OPEN_MIN)."""
    if scanned >= _ALL_OPEN_MIN and open_ports >= _ALL_OPEN_SHARE * scanned:
        return True
    return scanned >= _ALL_OPEN_SMALL and open_ports == scanned


def mission_order(ports: Iterable[int]) -> list[int]:
    """``ports`` (each once) in the order that serves the audit's mission first: management
    ports (DSM, SRM, remote administration, UPnP: :func:`~exposure_audit.ports.
    is_management_port`), then the rest of the default set and the management catalog's
    default ports, then every other port; ascending within each. A host answering on
    thousands of ports thus shows its management interfaces before its deadline."""
    known = _known_ports()

    def rank(port: int) -> tuple[int, int]:
        if is_management_port("tcp", port):
            return (0, port)
        return (1 if port in known else 2, port)

    return sorted(dict.fromkeys(ports), key=rank)


@cache
def _known_ports() -> frozenset[int]:
    """The default TCP set and the default ports of the management catalog's products."""
    catalog = {p.port for product in load_catalog() for p in product.ports}
    return frozenset(default_ports().tcp) | catalog


def spread(ports: Sequence[int], count: int) -> list[int]:
    """``count`` ports spread evenly over ``ports`` (all of them when there are fewer)."""
    if len(ports) <= count:
        return list(ports)
    return list(dict.fromkeys(ports[(2 * i + 1) * len(ports) // (2 * count)] for i in range(count)))


def _open_tcp(service: ServiceObservation) -> bool:
    return service.protocol == "tcp" and service.state == "open"


def _wants_versions(host: HostAudit, port: int) -> bool:
    """Whether -sV should look at the port: it did not speak HTTP/TLS, and it is not silent
    (a port that sent nothing to TLS, to an HTTP request or as a first banner answers none of
    -sV's probes either: each would only wait its timeout, ~50 s for nothing)."""
    fingerprint = host.fingerprints.get(port)
    if fingerprint is None:
        return True
    return fingerprint.http is None and not fingerprint.silent


_Signature = tuple[str | int | bool | None, ...]


def _hide_alike_ports(
    host: HostAudit,
    ports: list[int],
    sample: list[int],
    known: list[int],
    head: str,
    common: _Signature,
) -> None:
    """The sample of an accept-everything host answered alike (``common``): hide its ports
    but those of the default set (``known``) that answered differently, and say so."""
    shown = sorted(p for p in known if _signature(host.fingerprints.get(p)) != common)
    host.hidden = frozenset(ports) - set(shown)
    differ = f"; {', '.join(map(str, shown))} answered differently and are reported"
    host.notes[-1] = (
        f"{head}; {len(sample)} sampled ports gave the same answer ({_describe(common)}), "
        f"so the ports are not reported one by one{differ if shown else ''}"
    )
    host.attempts.append(
        ProbeAttempt(
            "http",
            ProbeStatus.SKIPPED,
            f"{len(host.hidden)} open ports not probed one by one: the host accepts every port",
        )
    )


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
        if cut != DEADLINE_CUT:
            return f"answered, but not HTTP or TLS; {cut} before -sV could tell"
        return "answered, but not HTTP or TLS; -sV gave no answer for it"
    if info.service == "tcpwrapped" or fingerprint.hung_up:
        return (
            "it hangs up without a byte on HTTP, TLS and nmap -sV's probes: nothing identifies it"
        )
    return "unknown bytes: it answered, but neither HTTP/TLS nor nmap -sV recognised the answer"
