"""Reading nmap's own XML output (``nmap -oX``) into observations, to grade a run made elsewhere.

Pure: bytes in, plain values out; nothing is resolved, connected to or run. The document is
parsed once, with :mod:`defusedxml` (entity declarations and external references refused), and
read the way python-nmap's ``PortScanner.analyse_nmap_xml_scan`` reads it for the probes (port,
state, service name, product, version, extrainfo; ``tests/test_nmap_import.py`` checks the two
agree on a recorded capture), plus what python-nmap drops: hosts cut by ``--host-timeout``
(``timedout="true"``), IPv6 addresses of dual records, host names, hosts reported down, the
scanned port set and nmap's own exit status. python-nmap itself is not used here: it imports
``subprocess``, which no pure module may, and it parses with the standard, undefended
ElementTree and fails with ``AttributeError`` on a document without ``<runstats>``.

Errors: :class:`NmapXmlError` (a :class:`~exposure_audit.errors.UsageError`) names the source and
what is wrong with it:

- more than :data:`MAX_XML_BYTES`, or empty;
- not well-formed XML (binary junk; a truncated file: "ends early", with line and column);
- an entity declaration or external reference (an "XML bomb", XXE): nmap never writes one;
- not nmap's: the root element is not ``<nmaprun>`` or its ``scanner`` is not ``nmap``;
- a host with no IP address, or an address or port number that does not parse.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..errors import PortSpecError, UsageError
from ..observations import (
    AddressFamily,
    HostObservation,
    HostStatus,
    ProbeAttempt,
    ProbeStatus,
    ServiceObservation,
)
from ..ports import PortSet, parse_ports

__all__ = [
    "MAX_XML_BYTES",
    "NmapHost",
    "NmapRun",
    "NmapXmlError",
    "host_observation",
    "parse_nmap_xml",
]

# nmap writes roughly 1 KiB per host with a few ports: this is room for a /16 with -sV, and a
# bound on what a hostile file can make the parser hold.
MAX_XML_BYTES = 256 * 1024 * 1024

_PROTOCOLS = ("tcp", "udp")
_VERSION_FLAG = re.compile(r"(?:^|\s)-(?:sV|A)(?:\s|$)")


class NmapXmlError(UsageError):
    """An nmap XML file that cannot be graded; ``source`` names it, ``problem`` says why."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


@dataclass(frozen=True)
class NmapHost:
    """One address of an nmap run as nmap reported it.

    ``state`` is nmap's host state (``up``, ``down``, ``unknown``) and ``reason`` its reason
    (``user-set`` under ``-Pn``). ``services`` holds every port nmap listed (closed ones too);
    ``timed_out`` is set when ``--host-timeout`` cut the host short (nmap then lists no ports).
    """

    address: str
    family: AddressFamily
    state: str
    reason: str = ""
    hostnames: tuple[str, ...] = ()
    services: tuple[ServiceObservation, ...] = ()
    timed_out: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NmapRun:
    """An nmap run read from its XML.

    ``ports`` is the port set nmap was asked to scan (its ``<scaninfo>``; the ports listed by
    the hosts when there is none). ``finished`` is False when the document has no
    ``<runstats>`` (nmap did not get to the end); ``errors`` says why a run is incomplete (no
    ``<runstats>``, or nmap's own error message). ``version_detection`` says whether ``-sV``
    ran: without it service names are nmap's port-table guesses.
    """

    source: str
    nmap_version: str
    args: str
    started_at: datetime | None
    finished_at: datetime | None
    ports: PortSet
    hosts: tuple[NmapHost, ...]
    version_detection: bool
    finished: bool = True
    errors: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return self.finished and not self.errors

    def describe(self) -> str:
        """One line for the report's notes: where the observations came from."""
        when = self.started_at.isoformat().replace("+00:00", "Z") if self.started_at else "?"
        return (
            f"graded from nmap XML {self.source} (nmap {self.nmap_version or '?'}, "
            f"started {when}): {self.args or 'command line not recorded'}"
        )


def parse_nmap_xml(data: bytes | str, source: str) -> NmapRun:
    """Read nmap's ``-oX`` output. ``source`` names it in errors and notes (a file name).

    Raises :class:`NmapXmlError` for anything that is not a readable nmap run (see the module
    docstring). Hosts keep nmap's order; an address listed twice is merged (the later port
    entries win).
    """
    root = _parse(data, source)
    hosts: dict[str, NmapHost] = {}
    for number, element in enumerate(root.findall("host"), 1):
        host = _host(element, number, source)
        earlier = hosts.get(host.address)
        hosts[host.address] = host if earlier is None else _merge(earlier, host)
    finished = root.find("runstats/finished")
    errors: list[str] = []
    if finished is None:
        errors.append("the nmap run did not finish (no <runstats> in the XML)")
    elif finished.get("exit") == "error":
        errors.append(f"nmap exited with an error: {finished.get('errormsg') or 'no message'}")
    args = root.get("args") or ""
    return NmapRun(
        source=source,
        nmap_version=root.get("version") or "",
        args=args,
        started_at=_epoch(root.get("start")),
        finished_at=_epoch(finished.get("time")) if finished is not None else None,
        ports=_scanned_ports(root, hosts.values(), source),
        hosts=tuple(hosts.values()),
        version_detection=bool(_VERSION_FLAG.search(args))
        or any(s.get("method") == "probed" for s in root.iter("service")),
        finished=finished is not None,
        errors=tuple(errors),
    )


def host_observation(host: NmapHost) -> HostObservation:
    """What nmap saw of one host, as the audit's observation: a host nmap reported down, or cut
    with ``--host-timeout``, is incomplete (not tested is not safe)."""
    attempts: list[ProbeAttempt] = []
    if host.state != "up":
        attempts.append(
            ProbeAttempt(
                "discovery",
                ProbeStatus.SKIPPED,
                f"nmap reported the host {host.state or 'unknown'}"
                + (f" ({host.reason})" if host.reason else "")
                + " and scanned none of its ports",
            )
        )
    if host.timed_out:
        attempts.append(
            ProbeAttempt(
                "discovery",
                ProbeStatus.TIMED_OUT,
                "nmap's --host-timeout cut the host short; only the ports it listed are graded",
            )
        )
    status = HostStatus.INCOMPLETE if attempts else HostStatus.COMPLETE
    attempts += [
        ProbeAttempt("identify", ProbeStatus.UNIDENTIFIED, s.unidentified, s.port)
        for s in host.services
        if s.unidentified
    ]
    return HostObservation(
        address=host.address,
        family=host.family,
        hostnames=host.hostnames,
        services=host.services,
        status=status,
        attempts=tuple(attempts),
        notes=host.notes,
    )


def _parse(data: bytes | str, source: str) -> Element:
    size = len(data)
    if size > MAX_XML_BYTES:
        raise NmapXmlError(source, f"{size:,} bytes, more than the {MAX_XML_BYTES:,} byte limit")
    if not data.strip():
        raise NmapXmlError(source, "empty: not nmap XML")
    try:
        root: Element = SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise NmapXmlError(
            source,
            f"refused: the XML declares entities or references external ones ({exc}); "
            "nmap never writes them (an XML bomb or XXE attempt?)",
        ) from None
    except LookupError as exc:  # expat: an encoding declaration no codec knows
        raise NmapXmlError(source, f"declares an unknown encoding ({exc})") from None
    except SafeET.ParseError as exc:
        early = "no element found" in str(exc) or "unclosed token" in str(exc)
        what = "ends early (a truncated file?)" if early else "is not well-formed XML"
        raise NmapXmlError(source, f"{what}: {exc}") from None
    if root.tag != "nmaprun":
        raise NmapXmlError(
            source, f"not nmap XML: the root element is <{str(root.tag)[:40]}>, not <nmaprun>"
        )
    scanner = root.get("scanner", "nmap")
    if scanner != "nmap":
        raise NmapXmlError(
            source, f"written by {scanner[:40]!r}, not nmap: only nmap's own -oX output is read"
        )
    return root


def _host(element: Element, number: int, source: str) -> NmapHost:
    address, family = _address(element, number, source)
    status = element.find("status")
    services: dict[tuple[str, int], ServiceObservation] = {}
    ignored: dict[str, int] = {}
    for port in element.findall("ports/port"):
        protocol = port.get("protocol") or ""
        if protocol not in _PROTOCOLS:
            ignored[protocol] = ignored.get(protocol, 0) + 1
            continue
        service = _service(port, protocol, address, source)
        services[(protocol, service.port)] = service
    names = [h.get("name") or "" for h in element.findall("hostnames/hostname")]
    notes = tuple(
        f"{count} {protocol or 'unnamed-protocol'} port(s) in the nmap XML not graded "
        "(only TCP and UDP are)"
        for protocol, count in sorted(ignored.items())
    )
    return NmapHost(
        address=address,
        family=family,
        state=(status.get("state") or "unknown") if status is not None else "unknown",
        reason=(status.get("reason") or "") if status is not None else "",
        hostnames=tuple(dict.fromkeys(n for n in names if n)),
        services=tuple(services[k] for k in sorted(services)),
        timed_out=element.get("timedout") == "true",
        notes=notes,
    )


def _address(element: Element, number: int, source: str) -> tuple[str, AddressFamily]:
    for entry in element.findall("address"):
        kind = entry.get("addrtype")
        if kind not in ("ipv4", "ipv6"):
            continue
        text = entry.get("addr") or ""
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise NmapXmlError(
                source, f"host {number}: address {text[:60]!r} is not an IP address"
            ) from None
        family = AddressFamily.IPV6 if ip.version == 6 else AddressFamily.IPV4
        if family.value != kind:
            raise NmapXmlError(source, f"host {number}: address {text[:60]!r} is not {kind}")
        return ip.compressed, family
    raise NmapXmlError(source, f"host {number}: no IPv4 or IPv6 address")


def _service(port: Element, protocol: str, address: str, source: str) -> ServiceObservation:
    portid = port.get("portid") or ""
    if not (portid.isascii() and portid.isdigit() and int(portid) <= 65535):
        raise NmapXmlError(source, f"host {address}: port {portid[:20]!r} is not a port number")
    state = port.find("state")
    if state is None or not state.get("state"):
        raise NmapXmlError(source, f"host {address}: port {portid}/{protocol} has no state")
    name = product = version = extrainfo = method = ""
    # As python-nmap: the last <service> wins for the name, non-empty attributes stick.
    for service in port.findall("service"):
        name = service.get("name") or ""
        method = service.get("method") or ""
        product = service.get("product") or product
        version = service.get("version") or version
        extrainfo = service.get("extrainfo") or extrainfo
    opened = state.get("state") or ""
    identified = method == "probed" and name not in ("", "tcpwrapped")
    return ServiceObservation(
        port=int(portid),
        protocol=protocol,
        state=opened,
        service=name,
        product=product,
        version=version,
        banner=extrainfo,
        unidentified=""
        if protocol != "tcp" or opened != "open" or identified
        else _unidentified_reason(name, method),
    )


def _unidentified_reason(name: str, method: str) -> str:
    """Why nmap's entry for an open TCP port does not identify it."""
    if name == "tcpwrapped":
        what = "nmap -sV saw the service hang up at once (tcpwrapped)"
    elif method == "probed":
        what = "nmap -sV named no service"
    elif name:
        what = f"nmap did not identify it: {name!r} is only its port-table name"
    else:
        what = "nmap did not identify it"
    return f"{what}; grade --probe verifies what answers"


def _merge(earlier: NmapHost, later: NmapHost) -> NmapHost:
    services = {(s.protocol, s.port): s for s in earlier.services}
    services.update({(s.protocol, s.port): s for s in later.services})
    return NmapHost(
        address=earlier.address,
        family=earlier.family,
        state="up" if "up" in (earlier.state, later.state) else later.state,
        reason=later.reason or earlier.reason,
        hostnames=tuple(dict.fromkeys(earlier.hostnames + later.hostnames)),
        services=tuple(services[k] for k in sorted(services)),
        timed_out=earlier.timed_out or later.timed_out,
        notes=tuple(dict.fromkeys(earlier.notes + later.notes)),
    )


def _scanned_ports(root: Element, hosts: Iterable[NmapHost], source: str) -> PortSet:
    found: dict[str, set[int]] = {p: set() for p in _PROTOCOLS}
    seen_info = False
    for info in root.findall("scaninfo"):
        protocol = info.get("protocol") or ""
        spec = (info.get("services") or "").strip()
        if protocol not in _PROTOCOLS:
            continue
        seen_info = True
        if not spec:
            continue
        try:
            found[protocol].update(parse_ports(spec).tcp)
        except PortSpecError as exc:
            raise NmapXmlError(source, f"<scaninfo> for {protocol}: {exc}") from None
    if not seen_info:
        for host in hosts:
            for service in host.services:
                found[service.protocol].add(service.port)
    return PortSet(tuple(sorted(found["tcp"])), tuple(sorted(found["udp"])))


def _epoch(text: str | None) -> datetime | None:
    """nmap's Unix times; None for a missing or implausible one (the run is still graded)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 11:
        return None
    return datetime.fromtimestamp(int(text), UTC)
