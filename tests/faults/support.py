"""What the fault tests share: the real CLI in a subprocess (its stderr read as it comes), fake
``nmap`` programs first on PATH, slow or dead DNS servers, tiny tmpfs mounts, and checks of a
history store from the outside.

Every server binds an address of 127.91.0.0/16 (each test module its own /24), so these tests
can run next to the demo lab and the other suites.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from ..servers import Server, serve

REAL_NMAP = shutil.which("nmap") or "/usr/bin/nmap"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "exposure_audit", *args]


def environment(path: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment with PATH (when given) and ``extra`` replaced."""
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    env.update(extra)
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else dict(env),
    )


class Running:
    """The CLI running in its own process group; stdout and stderr collected by threads, so
    the test can wait for a progress line and the child never blocks on a full pipe."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cli(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=None if env is None else dict(env),
            start_new_session=True,  # the whole group (nmap too) can be killed at once
        )
        self._out: list[str] = []
        self._err: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        """Until ``text`` shows on stderr; fails (with stderr) when the process ends first."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.1)
                raise AssertionError(f"never printed {text!r}; stderr:\n{self.stderr}")
            time.sleep(0.01)

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 60.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        for thread in self._threads:
            thread.join(10)
        return code

    def kill(self) -> None:
        """SIGKILL the whole process group (the CLI and any nmap it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def fake_nmap(directory: Path, body: str) -> str:
    """Write an ``nmap`` shell script running ``body`` into ``directory``; returns a PATH with
    it first. ``$REAL`` in ``body`` is the real nmap."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "nmap"
    script.write_text(f"#!/bin/sh\nREAL={REAL_NMAP}\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"


def logging_nmap(directory: Path) -> tuple[str, Path]:
    """An nmap that appends ``PID ARGV...`` to a log, then becomes the real nmap."""
    log = directory / "nmap.log"
    path = fake_nmap(directory, f'echo "$$ $0 $*" >> {log}\nexec "$REAL" "$@"')
    return path, log


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
    """Accept, read whatever comes, never answer, never hang up (each connection is noted
    in ``s.requests`` as an empty entry)."""
    s.requests.append(b"")
    while await reader.read(4096):
        pass
    await asyncio.sleep(3600)


@contextlib.contextmanager
def tarpit(host: str) -> Iterator[Server]:
    """A TCP tarpit on ``host`` and an ephemeral port: accepts and holds every connection."""
    with serve(_hold, host=host) as server:
        yield server


async def _odd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
    """Answer the first input with bytes that are neither HTTP nor TLS, then hold the
    connection without a word: not silent (so the audit sends the port to nmap -sV), and
    -sV waits out every probe."""
    s.requests.append(b"")
    if await reader.read(4096):
        writer.write(b"\x00\x07odd\x00")
        await writer.drain()
    while await reader.read(4096):
        pass
    await asyncio.sleep(3600)


@contextlib.contextmanager
def oddball(host: str) -> Iterator[Server]:
    """A TCP service on ``host`` that answers once with unknown bytes, then holds: the audit
    gives it to ``nmap -sV``, which takes long over it."""
    with serve(_odd, host=host) as server:
        yield server


# -- the history store, seen from outside ------------------------------------------------------


def integrity(path: Path) -> list[tuple[str]]:
    """``PRAGMA integrity_check`` on a plain connection (not the store's own code)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        return db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()


def rows(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """A read on a plain connection (WAL: never blocked by the scanner's writes)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def wait_for_run(path: Path, timeout: float = 30.0) -> int:
    """Until a run is "running" in the store at ``path``; its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with contextlib.suppress(sqlite3.Error):
                found = rows(path, "SELECT id FROM runs WHERE status = 'running'")
                if found:
                    return int(found[0][0])
        time.sleep(0.01)
    raise AssertionError(f"no run started in {path}")


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's view: hold the store's write lock (``BEGIN EXCLUSIVE``)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield db
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        db.close()


def history_json(path: Path) -> list[dict[str, Any]]:
    """``exposure-audit history --format json`` on ``path``."""
    result = run_cli("history", "--history", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs


# -- tmpfs -------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(directory: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``directory`` (root only), unmounted afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        umount = shutil.which("umount") or "umount"
        if subprocess.run([umount, str(directory)], check=False).returncode != 0:
            subprocess.run([umount, "-l", str(directory)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):
            block = b"\0" * size
            with contextlib.suppress(OSError):
                while os.write(fd, block):
                    pass
    finally:
        os.close(fd)
    assert os.statvfs(directory).f_bavail == 0
    return filler


# -- DNS ---------------------------------------------------------------------------------------


@dataclass
class DnsServer:
    """A UDP DNS server on ``host:port`` answering A ``answer`` for every name after
    ``delay(name)`` seconds (never, for None), and NOERROR without data for other types."""

    host: str
    answer: str
    delays: Mapping[str, float | None] = field(default_factory=dict)
    default_delay: float | None = 0.0
    port: int = 0
    queries: list[str] = field(default_factory=list)

    @property
    def spec(self) -> str:
        return f"{self.host}:{self.port}"


@contextlib.contextmanager
def dns_server(server: DnsServer) -> Iterator[DnsServer]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None

    class Protocol(asyncio.DatagramProtocol):
        transport: asyncio.DatagramTransport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            try:
                query = dns.message.from_wire(data)
            except Exception:
                return
            question = query.question[0]
            name = question.name.to_text().rstrip(".")
            server.queries.append(f"{name} {dns.rdatatype.to_text(question.rdtype)}")
            delay = server.delays.get(name, server.default_delay)
            if delay is None:
                return
            response = dns.message.make_response(query)
            if question.rdtype == dns.rdatatype.A:
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, "IN", "A", server.answer)
                )
            response.set_rcode(dns.rcode.NOERROR)
            loop.call_later(delay, self.transport.sendto, response.to_wire(), addr)

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        transport, _ = await loop.create_datagram_endpoint(
            Protocol, local_addr=(server.host, server.port)
        )
        server.port = transport.get_extra_info("sockname")[1]
        ready.set()
        await stop.wait()
        transport.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the DNS server did not start"
    try:
        yield server
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
