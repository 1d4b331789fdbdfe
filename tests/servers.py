"""Small hostile or recording servers on loopback for probe tests, each in its own thread.

``serve(handler)`` runs ``handler(reader, writer)`` for every connection on 127.0.0.1 and an
ephemeral port, optionally behind TLS, and records what the clients sent.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    host: str
    port: int = 0
    requests: list[bytes] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


async def read_request(reader: asyncio.StreamReader, server: Server) -> bytes:
    data = await reader.readuntil(b"\r\n\r\n")
    server.requests.append(data)
    return data


@contextmanager
def serve(
    handler: Handler, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> Iterator[Server]:
    server = Server(host)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None

    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: server.sni.append(name)  # type: ignore[assignment, misc]

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer, server)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        srv = await asyncio.start_server(on_connect, host, 0, ssl=tls)
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
