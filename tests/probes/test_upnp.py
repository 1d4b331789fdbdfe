"""The UPnP probe against real servers on loopback: SSDP responders (several replies, a flood,
a spoofed source), and IGD HTTP servers that record every request (read-only SOAP only, the
mapping table, hostile descriptions and endless answers, LOCATIONs naming other hosts).

Every packet stays on 127.0.0.0/8: each server binds its own 127.77.x.y address.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exposure_audit.observations import PortMapping
from exposure_audit.probes.http import HttpProbeSettings, make_client
from exposure_audit.probes.upnp import (
    IgdReadResult,
    discover_lan_igds,
    probe_description_ports,
    probe_ssdp,
    read_igd,
    search_ssdp,
    take_inventory,
)
from exposure_audit.upnp import READ_ONLY_ACTIONS, Inventory, build_msearch

DATA = Path(__file__).resolve().parents[1] / "data" / "upnp"
WANIP2 = "urn:schemas-upnp-org:service:WANIPConnection:2"


def capture(name: str) -> bytes:
    return (DATA / name).read_bytes()


ENTRIES = [capture(f"miniupnpd231_GetGenericPortMappingEntry_{i}.xml") for i in range(3)]
MAPPINGS = (
    PortMapping(32400, "TCP", "192.168.50.20", 32400, "", 604800),
    PortMapping(5001, "TCP", "192.168.50.10", 5001, "DSM HTTPS", 604800),
    PortMapping(5000, "TCP", "192.168.50.10", 5000, "DSM HTTP", 604800),
)


# ============================================================================ SSDP responder


@dataclass
class Responder:
    """A UDP SSDP responder on one loopback address, in a thread.

    ``answer(datagram)`` gives the datagrams to send back; ``spoof`` sends them from another
    loopback address instead (a source the probe did not ask).
    """

    host: str
    port: int
    answer: Callable[[bytes], list[bytes]]
    spoof: str | None = None
    received: list[bytes] = field(default_factory=list)


@contextlib.contextmanager
def responders(
    *specs: tuple[str, Callable[[bytes], list[bytes]], str | None],
) -> Iterator[list[Responder]]:
    """Start one responder per (host, answer, spoof) on one shared free UDP port."""
    sockets: list[socket.socket] = []
    port = 0
    for host, _, _ in specs:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        sock.settimeout(0.05)
        sockets.append(sock)
    running = [Responder(host, port, answer, spoof) for host, answer, spoof in specs]
    stop = threading.Event()

    def serve(sock: socket.socket, responder: Responder) -> None:
        out = sock
        if responder.spoof is not None:
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.bind((responder.spoof, 0))
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            responder.received.append(data)
            for datagram in responder.answer(data):
                with contextlib.suppress(OSError):
                    out.sendto(datagram, peer)
        if out is not sock:
            out.close()

    threads = [
        threading.Thread(target=serve, args=(s, r), daemon=True)
        for s, r in zip(sockets, running, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        yield running
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        for sock in sockets:
            sock.close()


def real_miniupnpd(_: bytes) -> list[bytes]:
    return [capture(f"miniupnpd231_ssdp_all_{i:02d}.txt") for i in range(13)]


def synology(_: bytes) -> list[bytes]:
    return [capture("synology_ssdp_reply.txt")]


def flood(count: int) -> Callable[[bytes], list[bytes]]:
    sent = [False]

    def answer(_: bytes) -> list[bytes]:
        if sent[0]:
            return []
        sent[0] = True
        return [
            b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:%d::upnp:rootdevice\r\n"
            b"SERVER: Linux UPnP/1.0 MiniUPnPd/1.0\r\nLOCATION: http://10.0.0.1:5000/\r\n\r\n" % i
            for i in range(count)
        ]

    return answer


def test_ssdp_replies_from_several_addresses_are_gathered_in_one_bounded_wait() -> None:
    # Given two answering addresses and a silent one, all asked at once
    with responders(("127.77.1.1", real_miniupnpd, None), ("127.77.1.2", synology, None)) as (a, b):
        silent = "127.77.1.3"
        started = time.monotonic()
        # When the probe waits 0.8 s for all of them together
        replies = asyncio.run(probe_ssdp([a.host, b.host, silent], port=a.port, wait=0.8))
        elapsed = time.monotonic() - started
    # Then each address has its own distinct replies, and the silent one an empty tuple
    assert elapsed < 1.5
    assert set(replies) == {a.host, b.host, silent}
    assert len(replies[a.host]) == 13  # 3 tries x 2 search targets x 13 answers, merged
    assert {r.responder for r in replies[a.host]} == {a.host}
    assert {r.location for r in replies[a.host]} == {"http://192.168.50.1:2189/rootDesc.xml"}
    assert [r.server for r in replies[b.host]] == ["Synology/DSM/192.168.1.5"]
    assert replies[silent] == ()


def test_each_address_gets_both_searches_on_every_try() -> None:
    with responders(("127.77.1.4", synology, None)) as (a,):
        asyncio.run(probe_ssdp([a.host], port=a.port, tries=3, wait=0.6))
        received = list(a.received)
    assert sorted(received) == sorted(
        [build_msearch("ssdp:all"), build_msearch("upnp:rootdevice")] * 3
    )


def test_a_flood_of_ten_thousand_replies_is_capped_and_the_wait_still_bounded() -> None:
    with responders(("127.77.1.5", flood(10_000), None)) as (a,):
        started = time.monotonic()
        replies = asyncio.run(
            probe_ssdp([a.host], port=a.port, wait=1.0, max_replies_per_address=32)
        )
        elapsed = time.monotonic() - started
    assert len(replies[a.host]) == 32
    assert len({r.usn for r in replies[a.host]}) == 32
    assert elapsed < 2.5


def test_a_flood_of_one_reply_repeated_ten_thousand_times_is_bounded_too() -> None:
    def same(_: bytes) -> list[bytes]:
        return [capture("miniupnpd10_ssdp_reply.txt")] * 10_000

    with responders(("127.77.1.12", same, None), ("127.77.1.13", synology, None)) as (a, b):
        started = time.monotonic()
        replies = asyncio.run(probe_ssdp([a.host, b.host], port=a.port, wait=0.8))
        elapsed = time.monotonic() - started
    assert len(replies[a.host]) == 1 and len(replies[b.host]) == 1
    assert elapsed < 2


def test_a_hundred_addresses_are_all_heard_in_the_same_single_wait() -> None:
    hosts = [f"127.77.6.{i}" for i in range(1, 101)]
    with responders(*((host, synology, None) for host in hosts)) as running:
        started = time.monotonic()
        replies = asyncio.run(probe_ssdp(hosts, port=running[0].port, wait=0.8))
        elapsed = time.monotonic() - started
    assert all(len(replies[host]) == 1 for host in hosts)
    assert elapsed < 1.6


def test_replies_from_an_address_that_was_not_asked_are_ignored() -> None:
    # Given a responder that answers from another loopback address than the one asked
    with responders(("127.77.1.6", real_miniupnpd, "127.77.1.7")) as (a,):
        search = asyncio.run(search_ssdp([a.host], port=a.port, wait=0.6))
    assert a.received  # it was asked
    assert search.replies == {a.host: ()}
    assert search.ignored >= 13


def test_an_address_given_twice_is_asked_once_and_non_addresses_are_refused() -> None:
    with responders(("127.77.1.8", synology, None)) as (a,):
        replies = asyncio.run(probe_ssdp([a.host, a.host], port=a.port, tries=1, wait=0.4))
        received = len(a.received)
    assert list(replies) == [a.host] and len(replies[a.host]) == 1
    assert received == 2  # one try, two search targets
    with pytest.raises(ValueError, match="not an IP address"):
        asyncio.run(probe_ssdp(["nas.example.org"], wait=0.1))


def test_ipv6_loopback_is_asked_from_its_own_socket() -> None:
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with responders(("::1", synology, None)) as (a,):
        replies = asyncio.run(probe_ssdp(["0:0:0:0:0:0:0:1", "127.77.1.9"], port=a.port, wait=0.5))
    assert [r.responder for r in replies["0:0:0:0:0:0:0:1"]] == ["::1"]
    assert replies["127.77.1.9"] == ()


def test_lan_discovery_searches_for_an_internet_gateway_device() -> None:
    def igd(_: bytes) -> list[bytes]:
        return [capture("miniupnpd231_ssdp_igd1.txt")]

    with responders(("127.77.1.10", igd, None)) as (a,):
        replies = asyncio.run(discover_lan_igds(wait=0.5, group=a.host, port=a.port))
        received = list(a.received)
    assert received and all(
        b"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" in d for d in received
    )
    assert [r.st for r in replies] == ["urn:schemas-upnp-org:device:InternetGatewayDevice:1"]


def test_lan_discovery_without_a_route_returns_nothing_and_does_not_raise() -> None:
    # The "group" is a loopback address nobody listens on: no answer, no exception.
    assert asyncio.run(discover_lan_igds(wait=0.2, group="127.77.1.11", port=9)) == []


# ============================================================================ IGD HTTP server


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    soap_action: str | None
    body: bytes


Route = Callable[[Seen, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class HttpServer:
    host: str
    port: int
    seen: list[Seen] = field(default_factory=list)


@contextlib.contextmanager
def http_server(host: str, route: Route, port: int = 0) -> Iterator[HttpServer]:
    """An HTTP/1.1 server on ``host:port`` in its own thread; records every request."""
    server = HttpServer(host, port)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(method, path, headers.get("soapaction"), body)
            server.seen.append(seen)
            await route(seen, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        srv = await asyncio.start_server(on_connect, host, port)
        server.port = srv.sockets[0].getsockname()[1]
        started.set()
        await stop.wait()
        srv.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield server
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


async def respond(writer: asyncio.StreamWriter, status: int, body: bytes, extra: str = "") -> None:
    reason = {200: "OK", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}[status]
    writer.write(
        (
            f'HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml; charset="utf-8"\r\n'
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            "Server: Debian/6.18.44-fc-v595 UPnP/1.1 MiniUPnPd/2.3.1\r\n"
            f"{extra}\r\n"
        ).encode()
        + body
    )
    await writer.drain()


@dataclass
class FakeIgd:
    """A miniupnpd-like IGD: the recorded description and SOAP answers, adjustable."""

    description: bytes = field(default_factory=lambda: capture("miniupnpd231_igd2_rootDesc.xml"))
    description_path: str = "/rootDesc.xml"
    entries: list[bytes] = field(default_factory=lambda: list(ENTRIES))
    end_fault: bytes = field(default_factory=lambda: capture("miniupnpd231_fault_713.xml"))
    entry_answer: Route | None = None

    async def __call__(self, seen: Seen, writer: asyncio.StreamWriter) -> None:
        if seen.method == "GET" and seen.path == self.description_path:
            await respond(writer, 200, self.description)
        elif seen.method == "POST" and seen.soap_action:
            action = seen.soap_action.strip('"').rsplit("#", 1)[-1]
            if action == "GetExternalIPAddress":
                await respond(writer, 200, capture("miniupnpd231_GetExternalIPAddress.xml"))
            elif action == "GetGenericPortMappingEntry":
                if self.entry_answer is not None:
                    await self.entry_answer(seen, writer)
                    return
                index = int(re.search(rb"<NewPortMappingIndex>(\d+)<", seen.body).group(1))  # type: ignore[union-attr]
                if index < len(self.entries):
                    await respond(writer, 200, self.entries[index])
                else:
                    await respond(writer, 500, self.end_fault)
            else:
                await respond(writer, 500, capture("fault_606.xml"))
        else:
            await respond(writer, 404, b"")


def read(location: str, public: str, **options: float) -> IgdReadResult:
    async def run() -> IgdReadResult:
        async with make_client(HttpProbeSettings()) as client:
            return await read_igd(client, location, public_address=public, **options)  # type: ignore[arg-type]

    return asyncio.run(run())


def assert_read_only(seen: list[Seen]) -> None:
    """Only GETs without SOAPAction, and POSTs of a read-only action, ever reached the server."""
    for request in seen:
        if request.method == "GET":
            assert request.soap_action is None and request.body == b""
            continue
        assert request.method == "POST", request
        assert request.soap_action is not None
        action = request.soap_action.strip('"').rsplit("#", 1)[-1]
        assert action in READ_ONLY_ACTIONS, action
        assert action.encode() in request.body


def soap_actions(seen: list[Seen]) -> list[str]:
    return [s.soap_action.strip('"').rsplit("#", 1)[-1] for s in seen if s.soap_action]


def test_the_mapping_table_is_read_read_only_until_fault_713() -> None:
    # Given a miniupnpd-like IGD with three mappings, reached at the target's address
    with http_server("127.77.2.1", FakeIgd()) as igd:
        # When the probe follows a LOCATION naming the router's LAN address
        result = read(f"http://192.168.50.1:{igd.port}/rootDesc.xml", igd.host)
    # Then the description, control URL, external address and all three entries are read
    assert result.url == f"http://127.77.2.1:{igd.port}/rootDesc.xml"
    assert result.description is not None
    assert result.description.friendly_name == "Lab IGD router"
    assert result.control_url == f"http://127.77.2.1:{igd.port}/ctl/IPConn"
    assert result.external_address == "203.0.113.10"
    assert result.mappings == MAPPINGS
    assert result.mappings_readable
    assert result.errors == ()
    # And only read-only actions were ever sent, indices 0..3 in order
    assert_read_only(igd.seen)
    assert soap_actions(igd.seen) == ["GetExternalIPAddress"] + ["GetGenericPortMappingEntry"] * 4
    indices = [re.search(rb"Index>(\d+)<", s.body) for s in igd.seen if b"Index>" in s.body]
    assert [int(m.group(1)) for m in indices if m] == [0, 1, 2, 3]
    assert all(
        s.soap_action == f'"{WANIP2}#{a}"'
        for s, a in zip([s for s in igd.seen if s.soap_action], soap_actions(igd.seen), strict=True)
    )


def test_a_location_naming_another_host_is_fetched_from_the_target_only() -> None:
    # Given an IGD on the target and a bystander on another address, same port
    target_igd = FakeIgd()
    with (
        http_server("127.77.2.4", target_igd) as igd,
        http_server("127.77.2.3", FakeIgd(), port=igd.port) as bystander,
    ):
        # whose description names the bystander as its control URL host too
        target_igd.description = capture("miniupnpd231_igd1_rootDesc.xml").replace(
            b"<controlURL>/ctl/IPConn</controlURL>",
            b"<controlURL>http://127.77.2.3:%d/ctl/IPConn</controlURL>" % igd.port,
        )
        # When a LOCATION names the bystander
        result = read(f"http://127.77.2.3:{igd.port}/rootDesc.xml", igd.host)
    # Then everything was asked of the target, and the bystander saw nothing
    assert result.url == f"http://127.77.2.4:{igd.port}/rootDesc.xml"
    assert result.control_url == f"http://127.77.2.4:{igd.port}/ctl/IPConn"
    assert result.mappings == MAPPINGS
    assert bystander.seen == []
    assert_read_only(igd.seen)


def test_an_empty_table_is_readable_and_empty() -> None:
    with http_server("127.77.2.5", FakeIgd(entries=[])) as igd:
        result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host)
    assert result.mappings_readable and result.mappings == () and result.errors == ()


def test_fault_714_also_ends_the_table() -> None:
    with http_server("127.77.2.6", FakeIgd(end_fault=capture("fault_714.xml"))) as igd:
        result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host)
    assert result.mappings == MAPPINGS and result.mappings_readable and result.errors == ()


def test_an_igd_refusing_the_enumeration_is_not_readable_and_says_why() -> None:
    async def refuse(_: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 500, capture("fault_606.xml"))

    with http_server("127.77.2.7", FakeIgd(entry_answer=refuse)) as igd:
        result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host)
    assert not result.mappings_readable
    assert result.control_url is not None  # the control URL answered, but refused
    assert any("UPnP error 606 Action not authorized" in e for e in result.errors)


def test_an_endless_soap_answer_is_cut_at_the_cap() -> None:
    async def endless(_: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<s:Envelope>")
        chunk = b"<x>" * 20_000
        for _round in range(10_000):  # 600 MB if anyone read it all
            writer.write(chunk)
            await writer.drain()

    with http_server("127.77.2.8", FakeIgd(entry_answer=endless)) as igd:
        started = time.monotonic()
        result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host, timeout=5.0)
        elapsed = time.monotonic() - started
    assert elapsed < 4
    assert result.mappings == () and not result.mappings_readable
    assert any("larger than 65536 bytes" in e for e in result.errors)


def test_a_trickling_soap_answer_is_cut_by_the_timeout() -> None:
    async def trickle(_: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _byte in range(1000):
            writer.write(b"<")
            await writer.drain()
            await asyncio.sleep(0.05)

    with http_server("127.77.2.9", FakeIgd(entry_answer=trickle)) as igd:
        started = time.monotonic()
        result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host, timeout=0.7)
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert any("no complete answer within 0.7 s" in e for e in result.errors)


def test_the_whole_read_stops_at_its_budget_with_what_it_has() -> None:
    slow = FakeIgd(
        entries=[ENTRIES[i % 3].replace(b">5000<", b">%d<" % (6000 + i)) for i in range(500)]
    )

    async def slowly(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.1)
        index = int(re.search(rb"<NewPortMappingIndex>(\d+)<", seen.body).group(1))  # type: ignore[union-attr]
        await respond(writer, 200, slow.entries[index])

    slow.entry_answer = slowly
    with http_server("127.77.2.10", slow) as igd:
        started = time.monotonic()
        result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host, budget=1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 2
    assert 2 <= len(result.mappings) < 20 and result.mappings_readable
    assert any("budget" in e for e in result.errors)


def test_an_igd_repeating_one_entry_forever_is_stopped() -> None:
    with http_server("127.77.2.11", FakeIgd(entries=[ENTRIES[2]] * 1000)) as igd:
        result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host)
    assert result.mappings == (MAPPINGS[2],)
    assert any("repeats the previous entry" in e for e in result.errors)


def test_the_enumeration_stops_at_max_entries() -> None:
    entries = [ENTRIES[2].replace(b">5000<", b">%d<" % (10000 + i)) for i in range(100)]
    with http_server("127.77.2.12", FakeIgd(entries=entries)) as igd:

        async def run() -> IgdReadResult:
            async with make_client(HttpProbeSettings()) as client:
                return await read_igd(
                    client,
                    f"http://10.0.0.1:{igd.port}/rootDesc.xml",
                    public_address=igd.host,
                    max_entries=5,
                )

        result = asyncio.run(run())
    assert len(result.mappings) == 5
    assert any("stopped after 5 entries" in e for e in result.errors)


@pytest.mark.parametrize(
    "document",
    ["billion_laughs", "external_entity", "external_dtd", "parameter_entity"],
)
def test_hostile_descriptions_are_refused_and_nothing_else_is_fetched(document: str) -> None:
    # Given a canary server the hostile document points its entities and DTD at
    with http_server("127.77.2.13", FakeIgd(description=b"")) as canary:
        hostile = (
            capture(f"hostile/{document}.xml")
            .replace(b"file:///etc/passwd", b"http://127.77.2.13:%d/leak" % canary.port)
            .replace(b"http://192.0.2.66/", b"http://127.77.2.13:%d/" % canary.port)
        )
        with http_server("127.77.2.14", FakeIgd(description=hostile)) as igd:
            started = time.monotonic()
            result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host)
            elapsed = time.monotonic() - started
    assert elapsed < 2
    assert result.description is None and result.control_url is None
    assert any("DTD" in e for e in result.errors)
    assert [s.method for s in igd.seen] == ["GET"]  # the description, nothing after it
    assert canary.seen == []  # no entity, no DTD was fetched


def test_a_nas_description_is_read_but_no_soap_is_sent() -> None:
    synology = FakeIgd(
        description=capture("synology_desc-DSM-eth0.xml"),
        description_path="/ssdp/desc-DSM-eth0.xml",
    )
    with http_server("127.77.2.15", synology) as nas:
        result = read(f"http://192.168.1.5:{nas.port}/ssdp/desc-DSM-eth0.xml", nas.host)
    assert result.description is not None and result.description.manufacturer == "Synology"
    assert result.control_url is None and result.errors == ()
    assert [s.method for s in nas.seen] == ["GET"]


def test_a_redirect_is_not_followed() -> None:
    async def redirect(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 302, b"", f"Location: http://127.77.2.17:{seen.path}\r\n")

    with (
        http_server("127.77.2.16", redirect) as igd,
        http_server("127.77.2.17", FakeIgd(), port=igd.port) as other,
    ):
        result = read(f"http://10.0.0.1:{igd.port}/rootDesc.xml", igd.host)
    assert result.description is None
    assert any("HTTP 302" in e for e in result.errors)
    assert other.seen == []


def test_unusable_locations_and_closed_ports_give_errors_not_exceptions() -> None:
    for location in ("ftp://10.0.0.1/x", "rootDesc.xml", "http://10.0.0.1:0/"):
        result = read(location, "127.77.2.18")
        assert result.url is None and result.errors
    with socket.socket() as closed:
        closed.bind(("127.77.2.18", 0))
        port = closed.getsockname()[1]
    result = read(f"http://10.0.0.1:{port}/rootDesc.xml", "127.77.2.18", timeout=2.0)
    assert result.description is None
    assert result.errors and "description not fetched" in result.errors[0]


# ============================================================================ description ports


def test_description_ports_find_the_igd_and_the_nas_and_skip_the_rest() -> None:
    async def web(seen: Seen, writer: asyncio.StreamWriter) -> None:
        if seen.path == "/":
            await respond(writer, 200, b"<html>hello</html>")
        else:
            await respond(
                writer, 200, b"<!doctype html><html><title>Not a description</title></html>"
            )

    synology = FakeIgd(
        description=capture("synology_desc-DSM-eth0.xml"),
        description_path="/ssdp/desc-DSM-eth0.xml",
    )
    with (
        http_server("127.77.3.1", FakeIgd()) as igd,
        http_server("127.77.3.1", synology) as nas,
        http_server("127.77.3.1", web) as site,
        socket.socket() as closed,
    ):
        closed.bind(("127.77.3.1", 0))
        closed_port = closed.getsockname()[1]

        async def run() -> list[IgdReadResult]:
            async with make_client(HttpProbeSettings()) as client:
                return await probe_description_ports(
                    client, "127.77.3.1", [igd.port, nas.port, site.port, closed_port], timeout=2.0
                )

        started = time.monotonic()
        results = asyncio.run(run())
        elapsed = time.monotonic() - started
    assert elapsed < 4
    by_url = {r.url: r for r in results}
    assert set(by_url) == {
        f"http://127.77.3.1:{igd.port}/rootDesc.xml",
        f"http://127.77.3.1:{nas.port}/ssdp/desc-DSM-eth0.xml",
    }
    gateway = by_url[f"http://127.77.3.1:{igd.port}/rootDesc.xml"]
    assert gateway.mappings == MAPPINGS and gateway.mappings_readable
    assert by_url[f"http://127.77.3.1:{nas.port}/ssdp/desc-DSM-eth0.xml"].control_url is None
    assert_read_only(igd.seen + nas.seen + site.seen)
    assert all(s.method == "GET" for s in site.seen)


def test_a_hostile_description_found_on_a_port_is_reported() -> None:
    hostile = FakeIgd(description=capture("hostile/billion_laughs.xml"))
    with http_server("127.77.3.2", hostile) as igd:

        async def run() -> list[IgdReadResult]:
            async with make_client(HttpProbeSettings()) as client:
                return await probe_description_ports(client, igd.host, [igd.port])

        (result,) = asyncio.run(run())
    assert result.description is None and any("DTD" in e for e in result.errors)
    assert [s.path for s in igd.seen] == ["/rootDesc.xml"]


# ============================================================================ inside inventory


def test_an_inventory_from_a_given_igd_url_has_the_whole_table() -> None:
    with http_server("127.77.4.1", FakeIgd()) as igd:

        async def run() -> Inventory:
            async with make_client(HttpProbeSettings()) as client:
                return await take_inventory(client, f"http://{igd.host}:{igd.port}/rootDesc.xml")

        inventory = asyncio.run(run())
    assert inventory.igd_url == f"http://127.77.4.1:{igd.port}/rootDesc.xml"
    assert inventory.external_address == "203.0.113.10"
    assert inventory.mappings == MAPPINGS
    assert inventory.errors == ()
    assert inventory.taken_at.endswith("+00:00")
    assert_read_only(igd.seen)


def test_an_inventory_finds_its_igd_by_ssdp_and_pins_the_control_url_to_it() -> None:
    with http_server("127.77.4.2", FakeIgd()) as igd:

        def answer(_: bytes) -> list[bytes]:
            return [
                capture("miniupnpd231_ssdp_igd1.txt").replace(
                    b"http://192.168.50.1:2189/", b"http://127.77.4.2:%d/" % igd.port
                )
            ]

        with responders(("127.77.4.3", answer, None)) as (ssdp,):

            async def run() -> Inventory:
                async with make_client(HttpProbeSettings()) as client:
                    return await take_inventory(
                        client, None, wait=0.5, ssdp_group=ssdp.host, ssdp_port=ssdp.port
                    )

            inventory = asyncio.run(run())
    assert inventory.igd_url == f"http://127.77.4.2:{igd.port}/rootDesc.xml"
    assert inventory.mappings == MAPPINGS


def test_an_inventory_without_an_igd_says_so() -> None:
    async def run() -> Inventory:
        async with make_client(HttpProbeSettings()) as client:
            return await take_inventory(
                client, None, wait=0.2, ssdp_group="127.77.4.4", ssdp_port=9
            )

    inventory = asyncio.run(run())
    assert inventory.igd_url is None and inventory.mappings == ()
    assert any("no IGD answered" in e for e in inventory.errors)
