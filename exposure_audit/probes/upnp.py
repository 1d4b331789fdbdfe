"""UPnP over the network: SSDP M-SEARCH, IGD device descriptions and read-only SOAP.

From outside, :func:`probe_ssdp` sends unicast M-SEARCHes to every target address at once and
waits once for all of them; :func:`read_igd` fetches the description a reply's LOCATION names,
rewritten to the target's own address, and reads the mapping table through the IGD's control
URL with ``GetGenericPortMappingEntry`` (index 0, 1, ... until the fault that ends the table);
:func:`probe_description_ports` looks for a description at the usual paths on open ports.
Inside the LAN, :func:`discover_lan_igds` and :func:`take_inventory` do the same for the
router that answers the multicast search.

What the scanner never does: call a SOAP action that changes state (the pure
:func:`~exposure_audit.upnp.soap_request` cannot build one), contact any host but the target
(every URL a device names is pinned to the target's address), follow redirects, or read an
unbounded answer (bodies are capped, every request and every read has a deadline). Network
trouble never raises: it is recorded in ``errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..observations import IgdDescription, PortMapping, SsdpReply
from ..text import printable
from ..upnp import (
    END_OF_TABLE_FAULTS,
    IGD_SEARCH_TARGET,
    MAX_DESCRIPTION_BYTES,
    MAX_SOAP_BYTES,
    SEARCH_TARGETS,
    SSDP_MULTICAST_ADDRESS,
    SSDP_PORT,
    Inventory,
    UpnpParseError,
    build_msearch,
    description_paths,
    parse_description,
    parse_external_ip,
    parse_port_mapping_entry,
    parse_soap_fault,
    parse_ssdp_reply,
    rewrite_location,
    soap_request,
    wan_connection_service,
)
from .http import _describe, _read_capped

__all__ = [
    "IgdReadResult",
    "SsdpSearch",
    "discover_lan_igds",
    "probe_description_ports",
    "probe_ssdp",
    "read_igd",
    "search_ssdp",
    "take_inventory",
]

_MAX_ERRORS = 16
# The client sockets bind every local address on an ephemeral port: unicast answers come back
# to it from the target, multicast answers from anywhere on the LAN (sources are filtered).
_ANY_IPV4 = "0.0.0.0"  # noqa: S104 - a client socket for SSDP answers, never a listener
_ANY_IPV6 = "::"
_MAX_LAN_RESPONDERS = 64
_SEND_BURST = 16  # addresses asked between two pauses
_SEND_PAUSE = 0.002  # seconds: 1,000 addresses cost 0.13 s per try
_RECEIVE_BUFFER = 1 << 21
_REPLIES_PER_LAN_RESPONDER = 16

# ============================================================================ SSDP


@dataclass(frozen=True)
class SsdpSearch:
    """The outcome of one SSDP search.

    ``replies`` has a key for every address asked (an empty tuple: no answer). ``errors`` are
    socket failures (no IPv6, unreachable network); ``ignored`` counts datagrams from addresses
    that were not asked, which are dropped unread.
    """

    replies: dict[str, tuple[SsdpReply, ...]]
    errors: tuple[str, ...] = ()
    ignored: int = 0


class _Collector(asyncio.DatagramProtocol):
    """Keeps the distinct replies of each source, up to a cap, and drops everything else.

    ``targets`` None accepts any source (LAN discovery), up to ``_MAX_LAN_RESPONDERS``. A
    source that floods is cut off after ``raw_cap`` datagrams without parsing them.
    """

    def __init__(self, targets: frozenset[str] | None, cap: int, raw_cap: int) -> None:
        self.targets = targets
        self.cap = cap
        self.raw_cap = raw_cap
        self.replies: dict[str, dict[tuple[str, str, str, str], SsdpReply]] = {}
        self.received: dict[str, int] = {}
        self.ignored = 0
        self.errors: list[str] = []
        self.full = 0
        self.all_full = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        source = _normalise(str(addr[0]))
        if source is None or (self.targets is not None and source not in self.targets):
            self.ignored += 1
            return
        if (
            self.targets is None
            and source not in self.replies
            and len(self.replies) >= _MAX_LAN_RESPONDERS
        ):
            self.ignored += 1
            return
        count = self.received.get(source, 0) + 1
        self.received[source] = count
        bucket = self.replies.setdefault(source, {})
        if count > self.raw_cap or len(bucket) >= self.cap:
            return
        reply = parse_ssdp_reply(data, source)
        if reply is None:
            return
        key = (reply.st, reply.usn, reply.location, reply.server)
        if key in bucket:
            return
        bucket[key] = reply
        if len(bucket) == self.cap:
            self.full += 1
            if self.targets is not None and self.full >= len(self.targets):
                self.all_full.set()

    def error_received(self, exc: Exception) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"SSDP socket: {_describe(exc)}")


async def search_ssdp(
    addresses: Sequence[str],
    *,
    port: int = SSDP_PORT,
    tries: int = 3,
    wait: float = 2.0,
    max_replies_per_address: int = 32,
) -> SsdpSearch:
    """Send unicast M-SEARCHes to every address and collect the answers (see :func:`probe_ssdp`).

    Raises ValueError when an address is not an IP address (a caller's bug, not the network's).
    """
    wanted: dict[str, list[str]] = {}
    for address in addresses:
        normal = _normalise(address)
        if normal is None:
            raise ValueError(f"{address!r} is not an IP address")
        wanted.setdefault(normal, []).append(address)
    collector = _Collector(
        frozenset(wanted), max_replies_per_address, max(64, 16 * max_replies_per_address)
    )
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    transports: list[tuple[asyncio.DatagramTransport, list[str]]] = []
    try:
        for family, wildcard in ((socket.AF_INET, _ANY_IPV4), (socket.AF_INET6, _ANY_IPV6)):
            members = [a for a in wanted if _family(a) == family]
            if not members:
                continue
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: collector, local_addr=(wildcard, 0), family=family
                )
            except OSError as exc:
                errors.append(f"SSDP: no {_family_name(family)} socket: {_describe(exc)}")
                continue
            _enlarge_receive_buffer(transport)
            transports.append((transport, members))
        messages = [build_msearch(st) for st in SEARCH_TARGETS]
        start = loop.time()
        spacing = wait / (tries + 1)
        for attempt in range(max(tries, 1)):
            sent = 0
            for transport, members in transports:
                for address in members:
                    for message in messages:
                        _send(transport, message, (address, port), errors)
                    sent += 1
                    if sent % _SEND_BURST == 0:
                        # Answers to a burst arrive as a burst: pace the sends so the socket
                        # buffer is drained between them instead of overflowing.
                        await asyncio.sleep(_SEND_PAUSE)
            if attempt < tries - 1:
                await _wait_for(collector.all_full, start + (attempt + 1) * spacing - loop.time())
            if collector.all_full.is_set():
                break
        await _wait_for(collector.all_full, start + wait - loop.time())
    finally:
        for transport, _ in transports:
            transport.close()
    replies: dict[str, tuple[SsdpReply, ...]] = {}
    for normal, originals in wanted.items():
        found = tuple(collector.replies.get(normal, {}).values())
        for original in originals:
            replies[original] = found
    return SsdpSearch(replies, tuple(errors + collector.errors), collector.ignored)


async def probe_ssdp(
    addresses: Sequence[str],
    *,
    port: int = SSDP_PORT,
    tries: int = 3,
    wait: float = 2.0,
    max_replies_per_address: int = 32,
) -> dict[str, tuple[SsdpReply, ...]]:
    """Ask every address for its UPnP devices with unicast SSDP M-SEARCHes; needs no root.

    One UDP socket per address family sends ``ssdp:all`` and ``upnp:rootdevice`` searches to
    ``address:port`` for all addresses, ``tries`` times spaced over ``wait`` seconds, and the
    whole search then waits once, about ``wait`` seconds in total, however many addresses
    there are (sooner when every address has filled its cap). Only datagrams whose source is
    one of the addresses count; duplicates (the retries' answers) are merged and each address
    keeps at most ``max_replies_per_address`` distinct replies.

    Returns a tuple of replies for every address given (empty: no answer, which is not proof
    of absence: UDP may be filtered). Never raises for network trouble; see
    :func:`search_ssdp` for the socket errors.
    """
    search = await search_ssdp(
        addresses,
        port=port,
        tries=tries,
        wait=wait,
        max_replies_per_address=max_replies_per_address,
    )
    return search.replies


async def discover_lan_igds(
    *,
    wait: float = 2.0,
    tries: int = 2,
    group: str = SSDP_MULTICAST_ADDRESS,
    port: int = SSDP_PORT,
) -> list[SsdpReply]:
    """Find the LAN's Internet Gateway Devices with a multicast M-SEARCH (the inside view).

    Sends ``ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1`` to ``group:port``
    (239.255.255.250:1900, TTL 2 as UDA asks) ``tries`` times and keeps every answer for
    ``wait`` seconds: it talks to the LAN by design. ``group`` may be a unicast address (tests
    use a loopback responder). Never raises for network trouble: a host with no route to the
    group (a namespace without a default route) gets an empty list.
    """
    replies, _ = await _discover(wait=wait, tries=tries, group=group, port=port)
    return replies


async def _discover(
    *, wait: float, tries: int, group: str, port: int
) -> tuple[list[SsdpReply], list[str]]:
    collector = _Collector(None, _REPLIES_PER_LAN_RESPONDER, 16 * _REPLIES_PER_LAN_RESPONDER)
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: collector,
            local_addr=(_ANY_IPV4, 0),
            family=socket.AF_INET,
        )
    except OSError as exc:
        return [], [f"SSDP discovery: no socket: {_describe(exc)}"]
    try:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        message = build_msearch(IGD_SEARCH_TARGET)
        start = loop.time()
        for attempt in range(max(tries, 1)):
            _send(transport, message, (group, port), errors)
            if attempt < tries - 1:
                await asyncio.sleep(
                    max(0.0, start + (attempt + 1) * wait / (tries + 1) - loop.time())
                )
        await asyncio.sleep(max(0.0, start + wait - loop.time()))
    finally:
        transport.close()
    replies = [reply for bucket in collector.replies.values() for reply in bucket.values()]
    return replies, errors + collector.errors


def _enlarge_receive_buffer(transport: asyncio.DatagramTransport) -> None:
    # Best effort: the kernel caps it at net.core.rmem_max (4 MiB here, 208 KiB on some hosts).
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)


def _send(
    transport: asyncio.DatagramTransport,
    message: bytes,
    target: tuple[str, int],
    errors: list[str],
) -> None:
    try:
        transport.sendto(message, target)
    except (OSError, ValueError, RuntimeError) as exc:
        if len(errors) < _MAX_ERRORS:
            errors.append(f"SSDP send to {target[0]}: {_describe(exc)}")


async def _wait_for(event: asyncio.Event, timeout: float) -> None:
    if timeout <= 0 or event.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def _normalise(address: str) -> str | None:
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped.compressed
    return parsed.compressed


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _family_name(family: int) -> str:
    return "IPv6" if family == socket.AF_INET6 else "IPv4"


# ============================================================================ IGD over HTTP


@dataclass(frozen=True)
class IgdReadResult:
    """What one IGD description URL gave.

    ``url`` is the description URL actually fetched (LOCATION rewritten to the target's
    address; None when LOCATION was unusable). ``description`` is None when nothing parsable
    came back. ``control_url`` is the WAN connection service's control URL, pinned to the same
    address, or None when the device has none (a NAS, a media server). ``mappings_readable`` is
    True when the control URL answered the enumeration: entries, or the fault that ends an
    empty table. ``errors`` say what failed (a parse error, a fault, a timeout).
    """

    url: str | None
    description: IgdDescription | None = None
    control_url: str | None = None
    mappings: tuple[PortMapping, ...] = ()
    mappings_readable: bool = False
    external_address: str | None = None
    errors: tuple[str, ...] = ()


class _Reader:
    """One IGD conversation: every URL pinned to ``pin``, every answer capped and timed."""

    def __init__(self, client: httpx.AsyncClient, pin: str, timeout: float) -> None:
        self.client = client
        self.pin = pin
        self.timeout = timeout
        self.description: IgdDescription | None = None
        self.control_url: str | None = None
        self.mappings: list[PortMapping] = []
        self.readable = False
        self.external: str | None = None
        self.errors: list[str] = []

    def note(self, url: str, reason: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"upnp {printable(url, 200)}: {reason}")

    def result(self, url: str | None) -> IgdReadResult:
        return IgdReadResult(
            url=url,
            description=self.description,
            control_url=self.control_url,
            mappings=tuple(self.mappings),
            mappings_readable=self.readable,
            external_address=self.external,
            errors=tuple(self.errors),
        )

    async def exchange(
        self,
        method: str,
        url: str,
        cap: int,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> tuple[int, bytes] | str:
        """One request; (status, body read up to ``cap`` + 1 bytes) or why there is none."""
        try:
            async with asyncio.timeout(self.timeout):
                request = self.client.build_request(
                    method, url, headers=headers, content=content, timeout=self.timeout
                )
                response = await self.client.send(request, stream=True, follow_redirects=False)
                try:
                    body = await _read_capped(response, cap + 1)
                finally:
                    await response.aclose()
        except TimeoutError:
            return f"no complete answer within {self.timeout:g} s"
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            httpx.StreamError,
            OSError,
            ValueError,
            zlib.error,
        ) as exc:
            return _describe(exc)
        return response.status_code, body

    async def fetch_description(self, url: str) -> bool:
        outcome = await self.exchange("GET", url, MAX_DESCRIPTION_BYTES)
        if isinstance(outcome, str):
            self.note(url, f"description not fetched: {outcome}")
            return False
        status, body = outcome
        if status != 200:
            self.note(url, f"description not served (HTTP {status})")
            return False
        try:
            self.description = parse_description(body, url)
        except UpnpParseError as exc:
            self.note(url, f"description refused: {exc}")
            return False
        return True

    async def read_table(self, max_entries: int) -> None:
        assert self.description is not None
        service = wan_connection_service(self.description)
        if service is None:
            return  # not a gateway: nothing to enumerate
        control = rewrite_location(service.control_url, self.pin)
        if control is None:
            self.note(service.control_url, "control URL is not an http URL; not contacted")
            return
        self.control_url = control
        await self._external_address(control, service.service_type)
        for index in range(max_entries):
            headers, body = soap_request(
                service.service_type,
                "GetGenericPortMappingEntry",
                {"NewPortMappingIndex": str(index)},
            )
            outcome = await self.exchange("POST", control, MAX_SOAP_BYTES, headers, body)
            what = f"GetGenericPortMappingEntry({index})"
            if isinstance(outcome, str):
                self.note(control, f"{what}: {outcome}")
                return
            status, data = outcome
            if status == 200:
                try:
                    entry = parse_port_mapping_entry(data)
                except UpnpParseError as exc:
                    self.note(control, f"{what}: {exc}")
                    return
                if self.mappings and entry == self.mappings[-1]:
                    self.note(control, f"{what} repeats the previous entry; enumeration stopped")
                    return
                self.mappings.append(entry)
                self.readable = True
                continue
            fault = _fault(data)
            if fault is not None and fault[0] in END_OF_TABLE_FAULTS:
                self.readable = True  # the normal end of the table (713 SpecifiedArrayIndexInvalid)
                return
            self.note(control, f"{what}: {_refusal(status, fault)}")
            return
        self.note(control, f"stopped after {max_entries} entries; the table may hold more")

    async def _external_address(self, control: str, service_type: str) -> None:
        headers, body = soap_request(service_type, "GetExternalIPAddress")
        outcome = await self.exchange("POST", control, MAX_SOAP_BYTES, headers, body)
        if isinstance(outcome, str):
            self.note(control, f"GetExternalIPAddress: {outcome}")
            return
        status, data = outcome
        if status != 200:
            self.note(control, f"GetExternalIPAddress: {_refusal(status, _fault(data))}")
            return
        try:
            self.external = parse_external_ip(data)
        except UpnpParseError as exc:
            self.note(control, f"GetExternalIPAddress: {exc}")


async def read_igd(
    client: httpx.AsyncClient,
    location: str,
    *,
    public_address: str,
    max_entries: int = 256,
    timeout: float = 10.0,
    budget: float = 60.0,
) -> IgdReadResult:
    """Read the IGD a LOCATION names, from outside, without changing anything.

    ``location`` is rewritten to ``public_address`` (port and path kept) and fetched with a GET
    (capped at 256 KiB, no redirects). When the description has a WAN connection service,
    its control URL is pinned to ``public_address`` too, so no third party is ever contacted;
    then GetExternalIPAddress, and GetGenericPortMappingEntry for index 0, 1, ... until the
    fault that ends the table (713/714), any other fault or error, or ``max_entries``. Each
    request has ``timeout`` seconds, each answer 64 KiB; the whole read stops after ``budget``
    seconds with what it has.

    Never raises for network trouble or hostile answers (XML bombs, external entities,
    endless bodies): they end up in ``errors``. Raises ValueError when ``public_address`` is not
    an address or host name.
    """
    url = rewrite_location(location, public_address)
    reader = _Reader(client, public_address, timeout)
    if url is None:
        reader.note(location, "LOCATION is not an http URL; not fetched")
        return reader.result(None)
    return await _bounded(reader, url, max_entries, budget, fetch=True)


async def probe_description_ports(
    client: httpx.AsyncClient,
    address: str,
    ports: Sequence[int],
    *,
    max_entries: int = 256,
    timeout: float = 5.0,
    budget: float = 30.0,
) -> list[IgdReadResult]:
    """Look for a UPnP description on open TCP ports, and read the IGD behind it.

    On every port (at once), the usual description paths (:func:`~exposure_audit.upnp.
    description_paths`, from ``upnp_description_paths.json`` with their sources) are tried in
    order with plain-HTTP GETs; the first that answers 200 with a device description is read as
    :func:`read_igd` does. A port that does not answer HTTP at all is left after its first try.
    Returns one result per port where a description was found (or where a hostile one was
    refused); ports with nothing are left out. Never raises for network trouble.
    """
    host = f"[{address}]" if ":" in address else address
    loop = asyncio.get_running_loop()

    async def find(reader: _Reader, port: int) -> str | None:
        """The URL of the first description on ``port`` (set on ``reader``), else None."""
        for path in description_paths():
            url = f"http://{host}:{port}{path}"
            outcome = await reader.exchange("GET", url, MAX_DESCRIPTION_BYTES)
            if isinstance(outcome, str):
                return None  # no HTTP on this port (refused, silent, reset)
            status, body = outcome
            if status != 200:
                continue
            try:
                reader.description = parse_description(body, url)
            except UpnpParseError as exc:
                if _looks_like_xml(body):
                    reader.note(url, f"description refused: {exc}")
                    return url
                continue  # a web page, not a description
            return url
        return None

    async def one(port: int) -> IgdReadResult | None:
        reader = _Reader(client, address, timeout)
        deadline = loop.time() + budget
        try:
            async with asyncio.timeout_at(deadline):
                url = await find(reader, port)
        except TimeoutError:
            return None
        if url is None:
            return None
        if reader.description is None:
            return reader.result(url)  # a hostile description, refused
        return await _bounded(reader, url, max_entries, deadline - loop.time(), fetch=False)

    results = await asyncio.gather(*(one(port) for port in dict.fromkeys(ports)))
    return [r for r in results if r is not None]


async def take_inventory(
    client: httpx.AsyncClient,
    igd_url: str | None,
    *,
    wait: float = 2.0,
    max_entries: int = 1024,
    timeout: float = 10.0,
    budget: float = 120.0,
    ssdp_group: str = SSDP_MULTICAST_ADDRESS,
    ssdp_port: int = SSDP_PORT,
) -> Inventory:
    """Read the LAN's IGD, read-only: its external address and whole mapping table.

    With ``igd_url`` None, the IGD is found by :func:`discover_lan_igds` (``wait`` seconds; the
    ``ssdp_*`` arguments exist for tests); the first description with a WAN connection service
    is used. Its control URL is pinned to the description's own host. ``taken_at`` is now (UTC).
    Never raises for network trouble: an inventory whose ``igd_url`` is None found no IGD, and
    ``errors`` says why.
    """
    taken_at = datetime.now(UTC).isoformat(timespec="seconds")
    errors: list[str] = []
    if igd_url is None:
        replies, found_errors = await _discover(
            wait=wait, tries=2, group=ssdp_group, port=ssdp_port
        )
        errors += found_errors
        candidates = list(dict.fromkeys(r.location for r in replies if r.location))
        if not candidates:
            errors.append(
                f"no IGD answered an SSDP search for {IGD_SEARCH_TARGET} within {wait:g} s"
            )
    else:
        candidates = [igd_url]
    for location in candidates:
        host = _url_host(location)
        if host is None:
            errors.append(f"upnp {printable(location, 200)}: not an http URL; not fetched")
            continue
        try:
            result = await read_igd(
                client,
                location,
                public_address=host,
                max_entries=max_entries,
                timeout=timeout,
                budget=budget,
            )
        except ValueError:  # a LOCATION host that is neither an address nor a host name
            errors.append(f"upnp {printable(location, 200)}: unusable host; not fetched")
            continue
        errors += result.errors
        if result.control_url is None:
            if result.description is not None:
                errors.append(f"upnp {printable(result.url or location, 200)}: not a gateway")
            continue
        return Inventory(
            igd_url=result.url,
            external_address=result.external_address,
            mappings=result.mappings,
            taken_at=taken_at,
            errors=tuple(errors),
        )
    return Inventory(None, None, (), taken_at, tuple(errors))


async def _bounded(
    reader: _Reader, url: str, max_entries: int, budget: float, *, fetch: bool
) -> IgdReadResult:
    try:
        async with asyncio.timeout(budget):
            if fetch and not await reader.fetch_description(url):
                return reader.result(url)
            await reader.read_table(max_entries)
    except TimeoutError:
        reader.note(url, f"stopped after the {budget:g} s budget; results may be incomplete")
    return reader.result(url)


def _fault(data: bytes) -> tuple[int | None, str] | None:
    try:
        return parse_soap_fault(data)
    except UpnpParseError:
        return None


def _refusal(status: int, fault: tuple[int | None, str] | None) -> str:
    if fault is None:
        return f"HTTP {status}"
    code, description = fault
    number = "?" if code is None else str(code)
    return f"HTTP {status}, UPnP error {number} {printable(description, 80)}".rstrip()


def _looks_like_xml(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<?xml", b"<root", b"<!doctype root")) or b"<!entity" in head


def _url_host(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname
