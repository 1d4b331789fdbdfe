"""The hostile-server corpus: real servers on loopback, each with one hostile behaviour.

Every case binds its own address in 127.90.0.0/16 (other suites use 127.66/77/78/79/88), and all
of them run in one event loop on one background thread. :data:`CASES` lists them with what the
scanner must show; ``docs/hostile.md`` is the same list for readers. Tests start the corpus with
:class:`Corpus` (a context manager) and look servers up by case name.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .certs import odd_certificate, server_context

__all__ = [
    "CASES",
    "EVERYTHING_OPEN_PORTS",
    "INJECTION",
    "Case",
    "Corpus",
    "Hits",
    "answer",
    "hold",
    "page",
]

DATA = Path(__file__).resolve().parents[1] / "data" / "upnp"

# What the injection cases put in titles, Server headers and banners: terminal escapes (CSI,
# OSC, 8-bit CSI), NUL, invalid UTF-8, bidi overrides and isolates, HTML/JS, CSV formulas.
INJECTION = (
    b"=HYPERLINK(\"http://evil.example/\")|' /C calc'!A0 \x1b[2J\x1b[31mRED\x1b]0;pwned\x07 "
    b"\x00NUL \xff\xfe\xc3( \xe2\x80\xaegnp.exe\xe2\x81\xa6 <script>alert('xss')</script> "
    b"&lt;script&gt;alert(2)&lt;/script&gt; &#27;[1m"
)
# The first 1,000 ports of this range all accept on the "everything open" host.
EVERYTHING_OPEN_PORTS = range(20000, 21000)
# Fixed ports: the UPnP description probe only tries the usual IGD ports, SSDP is 1900/udp.
IGD_PORT = 2869
IGD_PORT_2 = 49152
SSDP_PORT = 1900

# Blocks of third octets: a corpus uses 127.90.(offset + 0..3).x, offset a multiple of _BLOCK.
_BLOCK = 4
_BLOCKS = 60

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Hits"], Awaitable[None]]


@dataclass
class Hits:
    """What one case's servers saw: connections and the request heads that came in."""

    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    datagrams: int = 0


@dataclass(frozen=True)
class Case:
    """One hostile server: ``handler`` serves each TCP connection (after the TLS handshake when
    ``tls`` makes a context). ``ports`` are fixed ports, or one ephemeral port by default."""

    name: str
    address: str
    handler: Handler | None
    expect: str
    tls: Callable[[], ssl.SSLContext] | None = None
    ports: Sequence[int] = (0,)
    ssdp_flood: int = 0


# ============================================================================ handlers


async def read_head(reader: asyncio.StreamReader, hits: Hits) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    hits.requests.append(head)
    return head


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits) -> None:
    """Accept and never answer (and never read: the client's bytes sit in the buffer)."""
    await asyncio.sleep(3600)


def _drip(head: bytes, body: bytes, every: float = 2.0) -> Handler:
    """Send ``head`` at once, then ``body`` one byte every ``every`` seconds."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits
    ) -> None:
        await read_head(reader, hits)
        writer.write(head)
        await writer.drain()
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every)

    return handler


def _answer(raw: bytes) -> Handler:
    """Read one request head and send ``raw`` as it is."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits
    ) -> None:
        await read_head(reader, hits)
        writer.write(raw)
        await writer.drain()

    return handler


def _page(title: bytes, extra: bytes = b"", content_type: bytes = b"text/html") -> bytes:
    """A 200 response with a small page titled ``title``; ``extra`` are more header lines."""
    body = b"<html><head><title>" + title + b"</title></head><body>x</body></html>"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
        content_type,
        len(body),
    )
    return head + extra + b"Connection: close\r\n\r\n" + body


def _stream(head: bytes, chunk: Callable[[], bytes]) -> Handler:
    """Send ``head``, then ``chunk()`` again and again until the client goes away."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits
    ) -> None:
        await read_head(reader, hits)
        writer.write(head)
        while True:
            writer.write(chunk())
            await writer.drain()

    return handler


def _bomb_blocks(wbits: int) -> tuple[bytes, bytes]:
    """A compressed prefix (the title) and a block that inflates to 1 MiB of zeros; after a full
    flush every block is byte-identical, so repeating it forever is a valid, endless stream."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    prefix = packer.compress(b"<title>bomb</title>") + packer.flush(zlib.Z_FULL_FLUSH)
    zeros = b"\0" * (1 << 20)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    assert first == block
    return prefix, block


def _bomb(encoding: bytes, wbits: int) -> Handler:
    prefix, block = _bomb_blocks(wbits)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: " + encoding + b"\r\n"
        b"Connection: close\r\n\r\n" + prefix
    )
    return _stream(head, lambda: block * 16)


async def _tls_stall(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits
) -> None:
    """Read the ClientHello (or whatever comes), then say nothing."""
    hits.requests.append(await reader.read(4096))
    await asyncio.sleep(3600)


async def _tls_reset(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits
) -> None:
    """Read the ClientHello, start a ServerHello record, then reset the connection."""
    hits.requests.append(await reader.read(4096))
    writer.write(b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03" + b"\x00" * 7)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _location(where: Callable[[Corpus], bytes]) -> Callable[[Corpus], Handler]:
    def make(corpus: Corpus) -> Handler:
        return _answer(
            b"HTTP/1.1 302 Found\r\nLocation: " + where(corpus) + b"\r\nContent-Length: 0\r\n\r\n"
        )

    return make


def _upnp_description(document: bytes) -> Handler:
    """Serve ``document`` as the device description at any path."""
    return _answer(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nServer: Linux/5.4 UPnP/1.1 MiniUPnPd/2.3.1"
        b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(document) + document
    )


async def _everything(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits
) -> None:
    await read_head(reader, hits)
    writer.write(_page(b"Everything", b"Server: tarpit/1.0\r\n"))
    await writer.drain()


# Public names for tests that build their own cases.
answer = _answer
hold = _hold
page = _page

# ============================================================================ the cases


def _a(n: int) -> str:
    return f"127.90.0.{n}"


_ODD = odd_certificate(0x14)
_REFUSED = odd_certificate(0x13)

CASES: tuple[Case, ...] = (
    Case("fast", _a(1), _answer(_page(b"fast")), "complete, web server, at full speed"),
    Case("tarpit", _a(2), _hold, "port open, silent: unidentified, no -sV (UNK002)"),
    Case(
        "drip-head",
        _a(3),
        _drip(b"", b"HTTP/1.1 200 OK\r\nServer: drip\r\n\r\n<title>drip</title>"),
        "no HTTP answer within twice the identify timeout; host incomplete",
    ),
    Case(
        "drip-body",
        _a(4),
        _drip(
            b"HTTP/1.1 200 OK\r\nServer: dripping-body\r\nContent-Length: 99999\r\n\r\n",
            b"<title>" * 100,
            every=0.4,
        ),
        "HTTP 200 with its Server header; body cut at the deadline",
    ),
    Case(
        "endless",
        _a(5),
        _stream(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<title>endless</title>",
            lambda: b"A" * 65536,
        ),
        "title read; body capped at --max-body",
    ),
    Case(
        "huge-length",
        _a(6),
        _answer(
            b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999999\r\nConnection: close\r\n\r\n"
            b"<title>huge length</title>"
        ),
        "title read from what came before the connection closed",
    ),
    Case("gzip-bomb", _a(7), _bomb(b"gzip", 16 + zlib.MAX_WBITS), "title read; inflation capped"),
    Case("deflate-bomb", _a(8), _bomb(b"deflate", -zlib.MAX_WBITS), "raw deflate, capped"),
    Case("zlib-bomb", _a(9), _bomb(b"deflate", zlib.MAX_WBITS), "zlib-wrapped deflate, capped"),
    Case(
        "bad-gzip",
        _a(10),
        _answer(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 26\r\n\r\n"
            b"<title>not gzip</title>\r\n\r\n"
        ),
        "HTTP 200 reported; the broken stream noted (it used to crash the host's probe)",
    ),
    Case(
        "charset-codec",
        _a(11),
        _answer(_page(b"base64", content_type=b"text/html; charset=base64")),
        "a charset that is no text encoding: read as UTF-8 (it used to crash the probe)",
    ),
    Case(
        "redirect-loop",
        _a(12),
        _answer(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n"),
        "stops after --max-redirects, status 302",
    ),
    Case("redirect-host", _a(13), None, "redirect to another host recorded, not followed"),
    Case("redirect-port", _a(14), None, "redirect to another port recorded, not followed"),
    Case(
        "redirect-metadata",
        _a(15),
        _answer(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\n"
            b"Content-Length: 0\r\n\r\n"
        ),
        "redirect to the cloud metadata address recorded, not followed",
    ),
    Case(
        "redirect-garbage",
        _a(16),
        _answer(b"HTTP/1.1 301 Moved\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n"),
        "a Location that is no URL: recorded (httpx used to refuse the whole response)",
    ),
    Case(
        "redirect-long",
        _a(17),
        _answer(
            b"HTTP/1.1 302 Found\r\nLocation: /" + b"a" * 70000 + b"\r\nContent-Length: 0\r\n\r\n"
        ),
        "a same-origin Location too long for a URL: not followed, no crash",
    ),
    Case(
        "garbage-status",
        _a(18),
        _answer(b"HTTX/9.9 two hundred\r\n\r\n\x00\x01\x02"),
        "no HTTP answer (a protocol error), port still reported open",
    ),
    Case(
        "no-colon",
        _a(19),
        _answer(b"HTTP/1.1 200 OK\r\nServer nginx\r\nContent-Length: 0\r\n\r\n"),
        "no HTTP answer (a protocol error)",
    ),
    Case(
        "many-headers",
        _a(20),
        _answer(
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(b"X-%d: y\r\n" % i for i in range(100_000))
            + b"Content-Length: 0\r\n\r\n"
        ),
        "no HTTP answer: 100,000 headers pass the header size limit",
    ),
    Case(
        "nul-header",
        _a(21),
        _answer(b"HTTP/1.1 200 OK\r\nServer: a\x00b\r\nContent-Length: 0\r\n\r\n"),
        "no HTTP answer (NUL in a header)",
    ),
    Case("tls-stall", _a(22), _tls_stall, "no TLS or HTTP answer within the identify timeout"),
    Case("tls-reset", _a(23), _tls_reset, "no TLS or HTTP answer, at once"),
    Case(
        "odd-cert",
        _a(24),
        _answer(_page(b"odd certificate")),
        "https; the certificate's odd fields read, printable, dates in 2090 and 9999",
        tls=lambda: server_context(*_ODD),
    ),
    Case(
        "refused-cert",
        _a(25),
        _answer(_page(b"refused certificate")),
        "https; a certificate cryptography refuses is read leniently",
        tls=lambda: server_context(*_REFUSED),
    ),
    Case(
        "inject-http",
        _a(26),
        _answer(
            _page(
                INJECTION,
                b"Server: "
                + INJECTION.replace(b"\x00", b"").replace(b"\x1b", b"").replace(b"\x07", b"")
                + b"\r\n",
            )
        ),
        "title and Server inert in every output format",
    ),
    Case(
        "inject-c1",
        _a(27),
        _answer(_page(b"\x9b31m8-bit CSI\x9b0m \x85\x8d", b"Server: =cmd \x9b31mred\x9b0m\r\n")),
        "8-bit control characters (C1) escaped in every output format",
    ),
    Case(
        "inject-ssh",
        _a(28),
        None,
        "nmap -sV product/version carrying <script> and a formula: inert in every format",
    ),
    Case(
        "upnp-bomb",
        _a(29),
        _upnp_description((DATA / "hostile" / "billion_laughs.xml").read_bytes()),
        "description refused (DTD), nothing fetched but the description",
        ports=(IGD_PORT,),
    ),
    Case(
        "ssdp-flood",
        _a(30),
        _upnp_description((DATA / "hostile" / "external_entity.xml").read_bytes()),
        "SSDP replies capped; LOCATION pinned to the host; external entity refused",
        ports=(IGD_PORT_2,),
        ssdp_flood=10_000,
    ),
    Case(
        "everything-open",
        "127.90.1.1",
        _everything,
        "one note: every port accepts; services not reported one by one",
        ports=tuple(EVERYTHING_OPEN_PORTS),
    ),
    Case("witness", "127.90.0.99", None, "the target of the redirects: never contacted"),
)

# nmap's OpenSSH-on-Ubuntu match keeps what follows "Ubuntu-" in the version (it turns control
# characters into dots itself, but keeps markup and formula characters).
_SSH_BANNER = (
    b"SSH-2.0-OpenSSH_8.2p1 Ubuntu-=cmd|'/C calc'!A0<script>alert('ssh')</script>\x1b[31m\r\n"
)


async def _ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits) -> None:
    writer.write(_SSH_BANNER)
    await writer.drain()
    await asyncio.sleep(5)


async def _witness(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hits: Hits) -> None:
    await read_head(reader, hits)
    writer.write(_page(b"witness"))
    await writer.drain()


# Handlers that need the corpus (another case's address or port) are made when it starts.
_LATE: dict[str, Callable[[Corpus], Handler]] = {
    "redirect-host": _location(
        lambda c: b"http://%s:%d/" % (c.address("witness").encode(), c.port("witness"))
    ),
    "redirect-port": _location(
        lambda c: b"http://%s:%d/" % (c.address("redirect-port").encode(), c.port("witness", 1))
    ),
    "inject-ssh": lambda c: _ssh,
    "witness": lambda c: _witness,
}


class _SsdpFlood(asyncio.DatagramProtocol):
    """Answers every M-SEARCH with ``count`` distinct replies whose LOCATION names a third
    party (the probe must pin it to the target)."""

    def __init__(self, count: int, hits: Hits) -> None:
        self.count = count
        self.hits = hits
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        self.hits.datagrams += 1
        assert self.transport is not None
        for i in range(self.count):
            self.transport.sendto(
                b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: upnp:rootdevice\r\n"
                b"USN: uuid:%d::upnp:rootdevice\r\nSERVER: Linux UPnP/1.0 MiniUPnPd/1.0\r\n"
                b"LOCATION: http://169.254.169.254:%d/rootDesc.xml\r\n\r\n" % (i, IGD_PORT_2),
                addr,
            )


# ============================================================================ the runtime


class Corpus:
    """Runs the given cases (default: all of them) on a background event loop.

    ``port(name, i)`` is the i-th bound port of a case; ``hits(name)`` what it saw. The witness
    listens on two ports: one on its own address, one on the ``redirect-port`` case's address.

    Some ports are fixed (the IGD ports, SSDP's 1900, the everything-open range), so two test
    runs at once would collide: each corpus shifts the third octet of every address by a block
    of its own (from the process id), and moves on to the next block if a bind is refused.
    ``address(name)`` is the address in use.
    """

    def __init__(self, names: Sequence[str] | None = None, extra: Sequence[Case] = ()) -> None:
        chosen = set(names) if names is not None else {c.name for c in CASES}
        if chosen & {"redirect-host", "redirect-port"}:
            chosen |= {"witness", "redirect-port"} if "redirect-port" in chosen else {"witness"}
        self.cases = {c.name: c for c in CASES if c.name in chosen}
        self.cases.update((c.name, c) for c in extra)
        self._ports: dict[str, list[int]] = {}
        self._hits: dict[str, Hits] = {name: Hits() for name in self.cases}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self.offset = (os.getpid() % _BLOCKS) * _BLOCK

    # ---------------------------------------------------------------- lookups

    def address(self, name: str) -> str:
        return self._shift(self.cases[name].address)

    def _shift(self, address: str) -> str:
        a, b, c, d = address.split(".")
        return f"{a}.{b}.{int(c) + self.offset}.{d}"

    def port(self, name: str, index: int = 0) -> int:
        return self._ports[name][index]

    def ports(self, name: str) -> list[int]:
        return list(self._ports[name])

    def hits(self, name: str) -> Hits:
        return self._hits[name]

    def addresses(self) -> list[str]:
        return [self.address(name) for name in self.cases if name != "witness"]

    def scan_ports(self) -> list[int]:
        """Every TCP port bound by the cases scanned together (the witness's excluded)."""
        return sorted({p for n, ps in self._ports.items() if n != "witness" for p in ps})

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> Corpus:
        self._thread.start()
        for attempt in range(_BLOCKS):
            try:
                asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
                return self
            except OSError as exc:
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
                if exc.errno != errno.EADDRINUSE or attempt == _BLOCKS - 1:
                    self.__exit__()
                    raise
                self.offset = (self.offset + _BLOCK) % (_BLOCKS * _BLOCK)
        raise AssertionError("unreachable")

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._ports.clear()
        # The witness first: the redirect cases name its address and ports.
        order = sorted(
            self.cases.values(), key=lambda c: 0 if c.name not in _LATE else c.name != "witness"
        )
        for case in order:
            handler = _LATE[case.name](self) if case.name in _LATE else case.handler
            assert handler is not None, case.name
            context = case.tls() if case.tls else None
            hits = self._hits[case.name]
            bound = self._ports.setdefault(case.name, [])
            address = self.address(case.name)
            for port in case.ports:
                bound.append(await self._listen(address, port, handler, hits, context))
            if case.name == "witness":
                other = self._shift(_a(14))  # the redirect-port case's address
                bound.append(await self._listen(other, 0, handler, hits, None))
            if case.ssdp_flood:
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda c=case, h=hits: _SsdpFlood(c.ssdp_flood, h),
                    local_addr=(address, SSDP_PORT),
                )
                self._transports.append(transport)

    async def _listen(
        self,
        address: str,
        port: int,
        handler: Handler,
        hits: Hits,
        context: ssl.SSLContext | None,
    ) -> int:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            hits.connections += 1
            try:
                await handler(reader, writer, hits)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
                pass
            except asyncio.CancelledError:
                return  # the corpus is stopping
            finally:
                self._tasks.discard(task)
                with contextlib.suppress(Exception):
                    writer.close()

        server = await asyncio.start_server(
            on_connect, address, port, ssl=context, reuse_address=True, backlog=256, limit=1 << 20
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._transports:
            transport.close()
        self._servers.clear()
        self._transports.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def corpus(names: Sequence[str] | None = None) -> Iterator[Corpus]:
    with Corpus(names) as running:
        yield running
