"""Run a lab: every listener and the DNS server in one background thread with its own loop.

The caller's thread stays free, so a blocking scanner in it, or nmap in a subprocess, can
talk to the lab while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import ipaddress
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self, cast

from . import banners
from ._http import serve_http
from .certificates import server_context
from .model import LabHost, LabService
from .nameserver import Zone, compile_zone, start_nameserver
from .sites import SITES

__all__ = ["Lab"]

_log = logging.getLogger("exposure_audit.lab")

_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


class Lab:
    """Loopback servers imitating ``hosts``, plus a DNS server for ``zone``.

    ``hosts`` and ``zone`` (see :mod:`exposure_audit.lab.nameserver`) are kept as given.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`): entering returns
    once every listener accepts connections; leaving closes listeners and open connections
    and joins the thread. A lab can be started again after it stopped.

    A service on a port below 1024 that cannot be bound because the process lacks the
    privilege, or on an IPv6 address when the host has no IPv6 loopback, is left out and
    described in :attr:`skipped`; any other bind failure (the port is taken, the address is not
    configured) raises ``OSError`` from :meth:`start` with the lab fully stopped.

    The constructor raises ``ValueError`` for an unknown site or banner, an (address, port)
    used by two services, or a bad zone.
    """

    def __init__(self, hosts: Iterable[LabHost], zone: Zone | None = None) -> None:
        self.hosts: tuple[LabHost, ...] = tuple(hosts)
        self.zone: Zone = dict(zone or {})
        compile_zone(self.zone)  # fail now on a bad zone, not in the lab's thread
        self._check_hosts()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._resolver: str | None = None
        self._skipped: list[str] = []
        self._listening: list[tuple[str, int]] = []
        self._servers: list[asyncio.Server] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._connections: set[asyncio.Task[Any]] = set()
        self._open_transports: set[asyncio.Transport] = set()

    # -- public API ---------------------------------------------------------------------

    @property
    def resolver(self) -> str:
        """``"127.0.0.1:PORT"`` of the lab's DNS server (UDP and TCP); only while running."""
        if self._resolver is None:
            raise RuntimeError("the lab is not running")
        return self._resolver

    @property
    def skipped(self) -> tuple[str, ...]:
        """Services not started, one human-readable line each (empty when all run)."""
        return tuple(self._skipped)

    @property
    def running(self) -> bool:
        return self._resolver is not None

    def addresses(self) -> tuple[str, ...]:
        """Each host's primary address, in host order (extra addresses are not included)."""
        return tuple(h.address for h in self.hosts)

    def host(self, name: str) -> LabHost:
        """The host called ``name``; ``KeyError`` if there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def listening(self) -> tuple[tuple[str, int], ...]:
        """Every (address, port) that accepted connections at start, in start order."""
        return tuple(self._listening)

    def start(self) -> None:
        """Start every server; return when all listen. See the class for what raises."""
        if self._thread is not None:
            raise RuntimeError("the lab is already running")
        self._ready.clear()
        self._startup_error = None
        self._skipped, self._listening = [], []
        for profile in self._tls_profiles():
            server_context(profile)  # sign and load here: errors surface in the caller
        self._thread = threading.Thread(
            target=self._thread_main, name="exposure-audit-lab", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"the lab did not start within {_START_TIMEOUT:.0f} s")
        if self._startup_error is not None:
            error = self._startup_error
            self._join()
            raise error

    def stop(self) -> None:
        """Stop every server and connection and join the thread; a no-op when not running."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            # RuntimeError: the loop closed between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
        self._join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def describe(self) -> dict[str, object]:
        """The running lab as JSON-able data: ``resolver``, ``hosts`` (name, address,
        extra_addresses, role, ports actually listening on the primary address,
        expect_grade, expect_dsm, expect_console) and ``skipped``. ``RuntimeError`` when not
        running."""
        listening = set(self._listening)
        return {
            "resolver": self.resolver,
            "hosts": [
                {
                    "name": h.name,
                    "address": h.address,
                    "extra_addresses": list(h.extra_addresses),
                    "role": h.role,
                    "ports": [p for p in h.ports if (h.address, p) in listening],
                    "expect_grade": h.expect_grade,
                    "expect_dsm": h.expect_dsm,
                    "expect_console": dataclasses.asdict(h.expect_console)
                    if h.expect_console
                    else None,
                }
                for h in self.hosts
            ],
            "skipped": list(self._skipped),
        }

    # -- inside ---------------------------------------------------------------------------

    def _check_hosts(self) -> None:
        seen: dict[tuple[str, int], str] = {}
        for host in self.hosts:
            for service in host.services:
                _check_service(service)
                for address in (host.address, *host.extra_addresses):
                    key = (str(ipaddress.ip_address(address)), service.port)
                    if key in seen:
                        raise ValueError(
                            f"{address}:{service.port} is used by both {seen[key]} and {host.name}"
                        )
                    seen[key] = host.name

    def _tls_profiles(self) -> set[str]:
        return {
            SITES[s.site].certificate for h in self.hosts for s in h.services if s.kind == "https"
        }

    def _join(self) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                raise RuntimeError(f"the lab thread did not stop within {_STOP_TIMEOUT:.0f} s")
        self._thread = None
        self._resolver = None

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_quiet)
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the starting thread, or logged
            if not self._ready.is_set():
                self._startup_error = exc
            else:
                _log.debug("lab event loop failed", exc_info=True)
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._loop = None
                self._stop_event = None
                self._ready.set()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        try:
            await self._start_all()
        except BaseException as exc:
            self._startup_error = exc
            await self._close_all()
            self._ready.set()
            return
        self._ready.set()
        await self._stop_event.wait()
        await self._close_all()

    async def _start_all(self) -> None:
        port, udp, tcp = await start_nameserver(
            self.zone, "127.0.0.1", serve=lambda h, sock: self._serve(self._track(h), sock)
        )
        self._transports.append(udp)
        self._servers.append(tcp)
        for host in self.hosts:
            for service in host.services:
                handler = self._track(self._handler(host, service))
                for address in (host.address, *host.extra_addresses):
                    await self._listen(host, service, address, handler)
        self._resolver = f"127.0.0.1:{port}"

    async def _listen(
        self, host: LabHost, service: LabService, address: str, handler: _Handler
    ) -> None:
        what = (
            f"{_hostport(address, service.port)}/tcp ({host.name}: {service.kind} {service.site})"
        )
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            if family == socket.AF_INET6:
                self._skipped.append(f"{what}: no IPv6 on this host ({exc.strerror})")
                return
            raise
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address, service.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EACCES, errno.EPERM) and service.port < 1024:
                self._skipped.append(f"{what}: ports below 1024 need root")
                return
            if family == socket.AF_INET6 and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                self._skipped.append(f"{what}: no IPv6 loopback on this host")
                return
            raise OSError(exc.errno, f"lab cannot listen on {what}: {exc.strerror}") from exc
        self._servers.append(await self._serve(handler, sock))
        self._listening.append((address, service.port))

    async def _serve(self, handler: _Handler, sock: socket.socket) -> asyncio.Server:
        """``asyncio.start_server`` on a bound socket, recording every accepted transport so
        that :meth:`_close_all` can close connections whose handler never got to run."""
        loop = asyncio.get_running_loop()
        open_transports = self._open_transports

        def factory() -> asyncio.StreamReaderProtocol:
            reader = asyncio.StreamReader(limit=banners.MAX_INPUT)
            return _TrackedProtocol(open_transports, reader, handler)

        return await loop.create_server(factory, sock=sock)

    def _handler(self, host: LabHost, service: LabService) -> _Handler:
        if service.kind in ("http", "https"):
            site = SITES[service.site]
            tls = server_context(site.certificate) if service.kind == "https" else None
            return functools.partial(serve_http, site=site, hostname=host.name, tls=tls)
        if service.kind == "banner":
            return banners.BANNERS[service.site]
        return banners.serve_silent

    def _track(self, handler: _Handler) -> _Handler:
        """``handler`` as a tracked connection: cancelled at stop, errors swallowed, always
        closed."""

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._connections.add(task)
            try:
                await handler(reader, writer)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                pass  # the client went away or stalled: normal for scanners
            except Exception:
                _log.debug("lab connection handler failed", exc_info=True)
            finally:
                if task is not None:
                    self._connections.discard(task)
                writer.close()

        return tracked

    async def _close_all(self) -> None:
        # Stop accepting, but let connections asyncio already accepted finish attaching to
        # their server before closing it: on 3.11 an accept task that runs after
        # Server.close() fails an assertion in Server._attach() and leaks the socket.
        loop = asyncio.get_running_loop()
        for server in self._servers:
            for listener in server.sockets:
                loop.remove_reader(listener.fileno())
        for _ in range(5):
            await asyncio.sleep(0)
        for server in self._servers:
            server.close()  # connections still in the kernel's backlog are reset
        for transport in self._transports:
            transport.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        # A connection accepted just before the stop may still be inside asyncio's accept
        # task, or have a handler task that has not started (cancelling it then would skip
        # its cleanup). Let such steps run, close the sockets directly, end what is left;
        # repeat until nothing is.
        for _ in range(10):
            for _ in range(3):
                await asyncio.sleep(0)
            for transport in list(self._open_transports):
                transport.abort()
            rest = asyncio.all_tasks() - {asyncio.current_task()}
            if not rest and not self._open_transports:
                break
            for task in rest:
                task.cancel()
            if rest:
                await asyncio.wait(rest, timeout=5)
        for server in self._servers:
            await server.wait_closed()
        self._servers, self._transports = [], []
        self._connections.clear()
        self._open_transports.clear()
        self._resolver = None


class _TrackedProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that keeps its transport in ``open_transports`` while connected."""

    def __init__(
        self,
        open_transports: set[asyncio.Transport],
        reader: asyncio.StreamReader,
        handler: _Handler,
    ) -> None:
        super().__init__(reader, handler)
        self._open_transports = open_transports
        self._own_transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server's transports are always Transports (they can be aborted).
        self._own_transport = cast(asyncio.Transport, transport)
        self._open_transports.add(self._own_transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._own_transport is not None:
            self._open_transports.discard(self._own_transport)
        super().connection_lost(exc)


def _check_service(service: LabService) -> None:
    """``ValueError`` when ``service`` names a site or banner that does not exist."""
    if service.kind in ("http", "https"):
        if service.site not in SITES:
            raise ValueError(f"unknown site {service.site!r}; known: {', '.join(SITES)}")
    elif service.kind == "banner" and service.site not in banners.BANNERS:
        raise ValueError(f"unknown banner {service.site!r}; known: {', '.join(banners.BANNERS)}")


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Clients of a lab reset connections and abandon handshakes all the time; asyncio's
    # default handler would print each one. Keep them at debug level, off stdout.
    _log.debug("lab event loop: %s", context.get("message"), exc_info=context.get("exception"))
