"""Serving the composed management samples (tests/data/mgmt) on loopback, each on its own
address and its own port, as the product would: "/" and every path of the sample answer with
the sample's status, headers and body; anything else is a 404."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from exposure_audit.lab.certificates import server_context


def _answer(status: int, headers: list[list[str]], body: str, head_only: bool) -> bytes:
    data = body.encode()
    lines = [f"HTTP/1.1 {status} X"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not any(name.lower() == "content-type" for name, _ in headers):
        lines.append("Content-Type: text/html; charset=utf-8")
    lines += [f"Content-Length: {len(data)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode() + (b"" if head_only else data)


def _reply(doc: Mapping[str, Any], request: bytes) -> bytes:
    method, target, *_ = [*request.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""]
    if target == "/":
        return _answer(doc["status"], doc["headers"], doc["body"], method == "HEAD")
    answer = doc["paths"].get(target)
    if answer is None:
        return _answer(404, [], "Not Found", method == "HEAD")
    return _answer(answer["status"], answer["headers"], answer["body"], method == "HEAD")


@contextmanager
def serve_samples(placed: Mapping[str, Mapping[str, Any]]) -> Iterator[None]:
    """Serve each sample ``placed[address]`` on ``address`` and the sample's port (TLS with the
    lab's example certificate when its scheme is https) until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: list[asyncio.Event] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        servers = []
        for address, doc in placed.items():

            async def handle(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, doc: Any = doc
            ) -> None:
                try:
                    request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                    writer.write(_reply(doc, request))
                    await writer.drain()
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                    pass
                finally:
                    writer.close()

            tls = server_context("example") if doc["scheme"] == "https" else None
            servers.append(await asyncio.start_server(handle, address, doc["port"], ssl=tls))
        ready.set()
        await stop[0].wait()
        for server in servers:
            server.close()
        # Connections the client left open (a dropped TLS-or-plain attempt) end here, before
        # the loop closes under them.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the sample servers did not start"
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
