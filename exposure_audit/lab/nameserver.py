"""An authoritative DNS server for the lab's names, over UDP and TCP on one loopback port.

The zone is a mapping from a name to its records, ``(type, value)`` pairs with type ``A``,
``AAAA`` or ``CNAME``::

    {"nas.example.net": (("CNAME", "syno43.example.net"),),
     "syno43.example.net": (("A", "127.77.0.10"),)}

The server is authoritative for every *origin*: the last two labels of each name
(``example.net``, ``myds.me``), each with an SOA at its apex. Answers:

* A/AAAA/ANY for a name with a CNAME: the CNAME, then the target's records, followed for up to
  8 links while the target is in the zone; NXDOMAIN when the chain ends at an unknown name.
* a known name without the asked type: NOERROR, no answer, the SOA in authority (NODATA).
* an unknown name under an origin: NXDOMAIN with the SOA.
* a name outside every origin, another class, or several questions: REFUSED / FORMERR;
  opcodes other than QUERY: NOTIMP. Unparseable packets are dropped (UDP) or end the TCP
  connection.

Every record has TTL :data:`TTL`. Built on dnspython (``dns.message``, ``dns.rrset``).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["TTL", "Zone", "ZoneRecords", "answer", "compile_zone", "start_nameserver"]

TTL = 60
_MAX_CHAIN = 8
_IO_TIMEOUT = 10.0

Zone = Mapping[str, Sequence[tuple[str, str]]]

_TYPES = {"A": dns.rdatatype.A, "AAAA": dns.rdatatype.AAAA, "CNAME": dns.rdatatype.CNAME}


class ZoneRecords:
    """A zone parsed once into dnspython rrsets keyed by absolute name, plus its origins."""

    def __init__(self, zone: Zone) -> None:
        self.names: dict[dns.name.Name, dict[dns.rdatatype.RdataType, dns.rrset.RRset]] = {}
        self.origins: dict[dns.name.Name, dns.rrset.RRset] = {}
        for text, records in zone.items():
            name = dns.name.from_text(text)
            by_type = self.names.setdefault(name, {})
            for rtype, value in records:
                if rtype not in _TYPES:
                    raise ValueError(f"{text}: record type {rtype!r} is not one of A, AAAA, CNAME")
                rdtype = _TYPES[rtype]
                rrset = by_type.get(rdtype)
                if rrset is None:
                    rrset = by_type[rdtype] = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
                    rrset.update_ttl(TTL)
                rdata = dns.rdata.from_text(
                    dns.rdataclass.IN, rdtype, value, dns.name.root, relativize=False
                )
                rrset.add(rdata, TTL)
            if dns.rdatatype.CNAME in by_type and len(by_type) > 1:
                raise ValueError(f"{text}: a CNAME cannot coexist with other records")
            origin = name.split(3)[1] if len(name) > 3 else name
            if origin not in self.origins:
                self.origins[origin] = dns.rrset.from_text(
                    origin,
                    TTL,
                    "IN",
                    "SOA",
                    f"ns1.{origin} hostmaster.{origin} 2024010101 3600 600 604800 {TTL}",
                )

    def origin_of(self, name: dns.name.Name) -> dns.name.Name | None:
        return next((o for o in self.origins if name.is_subdomain(o)), None)

    def exists(self, name: dns.name.Name) -> bool:
        return name in self.names or name in self.origins


def compile_zone(zone: Zone) -> ZoneRecords:
    """Parse ``zone``; ``ValueError`` for an unknown type, a bad value or CNAME plus data."""
    return ZoneRecords(zone)


def answer(records: ZoneRecords, wire: bytes, *, max_size: int = 65535) -> bytes | None:
    """The wire-format reply to the query in ``wire``; None when it cannot be parsed.

    ``max_size`` is the transport's limit (512 or the client's EDNS size on UDP); a longer
    reply is sent truncated (TC) with no records.
    """
    try:
        query = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, IndexError, struct.error):
        return None
    if query.flags & dns.flags.QR:
        return None  # a response is never answered (no reflection loops)
    reply = dns.message.make_response(query)
    if query.opcode() != dns.opcode.QUERY:
        reply.set_rcode(dns.rcode.NOTIMP)
        return reply.to_wire()
    if len(query.question) != 1:
        reply.set_rcode(dns.rcode.FORMERR)
        return reply.to_wire()
    question = query.question[0]
    origin = records.origin_of(question.name)
    if question.rdclass != dns.rdataclass.IN or origin is None:
        reply.set_rcode(dns.rcode.REFUSED)
        return reply.to_wire()
    reply.flags |= dns.flags.AA
    _resolve(records, reply, question.name, question.rdtype, origin)
    try:
        return reply.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        reply.answer.clear()
        reply.authority.clear()
        reply.flags |= dns.flags.TC
        return reply.to_wire()


def _resolve(
    records: ZoneRecords,
    reply: dns.message.Message,
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    origin: dns.name.Name,
) -> None:
    for _ in range(_MAX_CHAIN):
        if not records.exists(name):
            reply.set_rcode(dns.rcode.NXDOMAIN)
            reply.authority.append(records.origins[origin])
            return
        by_type = records.names.get(name, {})
        cname = by_type.get(dns.rdatatype.CNAME)
        if cname is not None and rdtype != dns.rdatatype.CNAME:
            reply.answer.append(cname)
            target = cname[0].target
            next_origin = records.origin_of(target)
            if next_origin is None:
                return  # the chain leaves our zones: the client resolves the rest
            name, origin = target, next_origin
            continue
        found = [rrset for t, rrset in by_type.items() if rdtype in (t, dns.rdatatype.ANY)]
        if name in records.origins and rdtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
            found.insert(0, records.origins[name])
        reply.answer.extend(found)
        if not found:
            # NODATA, also at the end of a CNAME chain: the SOA for negative caching.
            reply.authority.append(records.origins[origin])
        return


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, records: ZoneRecords) -> None:
        self.records = records
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # 3.11's selector datagram transport does not subclass DatagramTransport; it has
        # its methods.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.transport is None:
            return
        limit = 512
        try:
            query = dns.message.from_wire(data)
            if query.edns >= 0:
                limit = max(512, min(query.payload, 4096))
        except (dns.exception.DNSException, ValueError, IndexError, struct.error):
            return
        wire = answer(self.records, data, max_size=limit)
        if wire is not None:
            self.transport.sendto(wire, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors from clients that went away: nothing to do


async def _serve_tcp(
    records: ZoneRecords, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        for _ in range(100):
            async with asyncio.timeout(_IO_TIMEOUT):
                prefix = await reader.readexactly(2)
                wire = await reader.readexactly(struct.unpack(">H", prefix)[0])
            reply = answer(records, wire)
            if reply is None:
                return
            writer.write(struct.pack(">H", len(reply)) + reply)
            await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, OSError):
        pass
    finally:
        writer.close()


_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
_Serve = Callable[[_Handler, socket.socket], Awaitable[asyncio.Server]]


async def _start_server(handler: _Handler, sock: socket.socket) -> asyncio.Server:
    return await asyncio.start_server(handler, sock=sock)


async def start_nameserver(
    zone: Zone,
    host: str = "127.0.0.1",
    *,
    serve: _Serve = _start_server,
    attempts: int = 20,
) -> tuple[int, asyncio.DatagramTransport, asyncio.Server]:
    """Bind UDP and TCP on the same ephemeral port of ``host`` (IPv4) and serve ``zone``.

    ``serve`` starts the TCP server on the bound, listening socket (the lab passes its own,
    which tracks connections so it can end them at shutdown). Returns the port, the UDP
    transport and the TCP server: close both to stop. Raises ``ValueError`` for a bad zone,
    ``OSError`` when no port free for both protocols was found in ``attempts`` tries.
    """
    records = compile_zone(zone)
    loop = asyncio.get_running_loop()
    last_error: OSError | None = None
    for _ in range(attempts):
        transport, _protocol = await loop.create_datagram_endpoint(
            lambda: _UdpServer(records), local_addr=(host, 0)
        )
        port = int(transport.get_extra_info("sockname")[1])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:  # the TCP side of that port is taken: try another port
            sock.close()
            transport.close()
            last_error = exc
            continue
        return port, transport, await serve(functools.partial(_serve_tcp, records), sock)
    raise OSError(f"no port free for both UDP and TCP on {host}: {last_error}")
