"""The lab's HTTP/1.1 server, plain or over TLS, answering from a :class:`~.sites.Site`.

Bounded: a request head may not exceed :data:`MAX_HEAD` bytes and must arrive within
:data:`IO_TIMEOUT` seconds, request bodies are capped too; junk gets the product's 400 and a
closed connection, never a traceback.

TLS is done by hand with ``ssl.MemoryBIO`` instead of ``asyncio.start_server(ssl=...)``:
asyncio's SSL transport drops OpenSSL's pending alert when a handshake fails, and nmap -sV
then cannot name the port (``commplex-link?`` instead of ``ssl/http``,
docs/reference/performance.md section 4). Here the alert is always flushed before closing, and
plain HTTP on the TLS port gets what nginx or Apache answer to it (their "plain HTTP request
was sent to HTTPS port" 400), which is also what nmap recognises fastest.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from typing import Protocol

from .sites import Reply, Request, Site

__all__ = ["IO_TIMEOUT", "MAX_BODY", "MAX_HEAD", "serve_http"]

MAX_HEAD = 16 * 1024
MAX_BODY = 16 * 1024
IO_TIMEOUT = 10.0
_MAX_REQUESTS = 100
_CHUNK = 64 * 1024

_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION = re.compile(rb"HTTP/1\.[01]")
_HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class _Stream(Protocol):
    async def read(self) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class _PlainStream:
    """The connection as is. ``read`` returns b"" at EOF."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self) -> bytes:
        return await self._reader.read(_CHUNK)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()


class _TlsStream:
    """TLS over an asyncio stream pair through memory BIOs; OpenSSL's output is always sent.

    ``read`` returns b"" at EOF, clean (close_notify) or not.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ssl.SSLContext,
        first: bytes,
    ) -> None:
        self._reader, self._writer = reader, writer
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._incoming.write(first)

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _feed(self) -> bool:
        data = await self._reader.read(_CHUNK)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    async def handshake(self) -> bool:
        """Complete the server handshake; False when the client went away or it failed.

        On failure the alert OpenSSL queued is sent first, as nginx does.
        """
        while True:
            try:
                self._obj.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._feed():
                    return False
            except ssl.SSLError:
                with contextlib.suppress(OSError):
                    await self._flush()
                return False
            else:
                await self._flush()
                return True

    async def read(self) -> bytes:
        while True:
            try:
                return self._obj.read(_CHUNK)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._feed():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def write(self, data: bytes) -> None:
        self._obj.write(data)
        await self._flush()

    async def close(self) -> None:
        # Send close_notify and do not wait for the client's, as nginx does.
        with contextlib.suppress(ssl.SSLError, ValueError):
            self._obj.unwrap()
        with contextlib.suppress(OSError):
            await self._flush()
        self._writer.close()


class _Reader:
    """Buffered reads of request heads and bodies from a stream, within the caps."""

    def __init__(self, stream: _Stream, prefix: bytes = b"") -> None:
        self.stream = stream
        self.buffer = bytearray(prefix)

    async def head(self, skip_blank_lines: bool) -> bytes | None:
        """The next request head including its blank line; None at EOF before any byte.

        Raises ``ValueError`` when the head exceeds :data:`MAX_HEAD` or the stream ends
        inside it.
        """
        while True:
            if skip_blank_lines:
                while self.buffer[:2] == b"\r\n" or self.buffer[:1] == b"\n":
                    del self.buffer[: 2 if self.buffer[:1] == b"\r" else 1]
            end = _head_end(self.buffer)
            if end is not None and end > MAX_HEAD:
                raise ValueError("request head too large")
            if end is not None:
                head = bytes(self.buffer[:end])
                del self.buffer[:end]
                return head
            if len(self.buffer) > MAX_HEAD:
                raise ValueError("request head too large")
            data = await self.stream.read()
            if not data:
                if self.buffer:
                    raise ValueError("connection closed inside the request head")
                return None
            self.buffer += data

    async def discard(self, length: int) -> None:
        while len(self.buffer) < length:
            data = await self.stream.read()
            if not data:
                raise ValueError("connection closed inside the request body")
            self.buffer += data
        del self.buffer[:length]


def _head_end(buffer: bytearray) -> int | None:
    crlf, lf = buffer.find(b"\r\n\r\n"), buffer.find(b"\n\n")
    ends = [i + 4 for i in (crlf,) if i >= 0] + [i + 2 for i in (lf,) if i >= 0]
    return min(ends) if ends else None


def _parse(head: bytes, scheme: str, local: str, hostname: str) -> tuple[Request | None, bytes]:
    """The request in ``head``, or None and its raw request line when it does not parse."""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    request_line = lines[0]
    parts = request_line.split(b" ")
    if (
        len(parts) != 3
        or not _METHOD.fullmatch(parts[0])
        or not parts[1]
        or not _VERSION.fullmatch(parts[2])
    ):
        return None, request_line
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            return None, request_line
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    host = next((v for k, v in headers if k.lower() == "host"), "") or local
    return (
        Request(
            method=parts[0].decode("latin-1"),
            target=parts[1].decode("latin-1"),
            version=parts[2].decode("latin-1"),
            headers=tuple(headers),
            head=head,
            scheme=scheme,
            authority=host,
            hostname=hostname,
        ),
        request_line,
    )


def _keep_alive(request: Request, site: Site, reply: Reply) -> bool:
    if reply.close or not site.flavor.keep_alive:
        return False
    connection = (request.header("Connection") or "").lower()
    if request.version == "HTTP/1.1":
        return "close" not in connection
    return "keep-alive" in connection


def _serialize(site: Site, version: str, reply: Reply, *, head_only: bool, keep: bool) -> bytes:
    if reply.bare:
        return reply.body
    headers = site.flavor.header_block(reply, length=len(reply.body), keep_alive=keep)
    lines = b"".join(
        f"{name}: {value}\r\n".encode("latin-1") if value else f"{name}:\r\n".encode("latin-1")
        for name, value in headers
    )
    body = b"" if head_only else reply.body
    return site.flavor.status_line(version, reply.status) + lines + b"\r\n" + body


async def _answer_and_close(stream: _Stream, site: Site, version: str, reply: Reply) -> None:
    await stream.write(_serialize(site, version, reply, head_only=False, keep=False))


async def _converse(
    stream: _Stream,
    reader: _Reader,
    site: Site,
    *,
    scheme: str,
    local: str,
    hostname: str,
    plain_on_tls: bool,
) -> None:
    """Answer requests on one connection until it closes, errs, idles or hits the cap."""
    flavor = site.flavor
    for _ in range(_MAX_REQUESTS):
        try:
            async with asyncio.timeout(IO_TIMEOUT):
                head = await reader.head(flavor.skip_blank_lines)
        except TimeoutError:
            return  # nginx's client_header_timeout: close without a word
        except ValueError:  # too large, or cut off
            await _answer_and_close(stream, site, "HTTP/1.1", flavor.error(400))
            return
        if head is None:
            return
        request, request_line = _parse(head, scheme, local, hostname)
        if request is None:
            version, reply = flavor.bad_request(request_line)
            await _answer_and_close(stream, site, version, reply)
            return
        if plain_on_tls:
            await _answer_and_close(stream, site, request.version, flavor.plain_on_tls(request))
            return
        length = request.header("Content-Length")
        if length is not None and not length.isdigit():
            await _answer_and_close(stream, site, request.version, flavor.error(400, request))
            return
        if length is not None and int(length) > MAX_BODY:
            await _answer_and_close(stream, site, request.version, flavor.error(413, request))
            return
        if length is not None:
            async with asyncio.timeout(IO_TIMEOUT):
                await reader.discard(int(length))
        reply = site.respond(request)
        # A chunked body is not read: answer, then close rather than parse what follows.
        chunked = request.header("Transfer-Encoding") is not None
        keep = _keep_alive(request, site, reply) and not chunked
        await stream.write(
            _serialize(site, request.version, reply, head_only=request.method == "HEAD", keep=keep)
        )
        if not keep:
            return


async def serve_http(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    site: Site,
    *,
    hostname: str,
    tls: ssl.SSLContext | None,
) -> None:
    """Serve one accepted connection for ``site`` until it ends; always closes ``writer``.

    With ``tls``, a first byte that opens a TLS record (0x16) or an SSLv2 hello (high bit)
    starts a handshake; anything else is plain HTTP on the TLS port and gets the product's
    answer to that. Network errors, timeouts and junk end the connection quietly.
    """
    sockname = writer.get_extra_info("sockname")
    local = _authority(sockname)
    stream: _Stream = _PlainStream(reader, writer)
    try:
        if tls is None:
            await _converse(
                stream,
                _Reader(stream),
                site,
                scheme="http",
                local=local,
                hostname=hostname,
                plain_on_tls=False,
            )
            return
        async with asyncio.timeout(IO_TIMEOUT):
            first = await reader.read(_CHUNK)
        if not first:
            return
        if first[0] == 0x16 or first[0] & 0x80:
            tls_stream = _TlsStream(reader, writer, tls, first)
            stream = tls_stream
            async with asyncio.timeout(IO_TIMEOUT):
                if not await tls_stream.handshake():
                    return
            await _converse(
                stream,
                _Reader(stream),
                site,
                scheme="https",
                local=local,
                hostname=hostname,
                plain_on_tls=False,
            )
        else:
            await _converse(
                stream,
                _Reader(stream, first),
                site,
                scheme="https",
                local=local,
                hostname=hostname,
                plain_on_tls=True,
            )
    except (OSError, TimeoutError, ssl.SSLError, ValueError):
        pass  # a client that resets, stalls or sends junk mid-body: drop it, log nothing
    finally:
        try:
            await stream.close()
        except (OSError, RuntimeError):
            writer.close()


def _authority(sockname: object) -> str:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), int(sockname[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return "localhost"
