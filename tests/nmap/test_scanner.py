"""The real nmap, through python-nmap's parser, against listeners on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from exposure_audit.errors import ProbeFailed, ScannerUnavailable
from exposure_audit.nmap.scanner import NmapScanner
from exposure_audit.ports import parse_ports

ADDRESS = "127.66.0.1"


@pytest.fixture
def listeners() -> Iterator[dict[int, socket.socket]]:
    """An SSH-like banner on one port and a silent service (accepts, never speaks) on another."""
    socks: dict[int, socket.socket] = {}
    stop = threading.Event()
    for port in (2222, 4455):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ADDRESS, port))
        s.listen(64)
        s.settimeout(0.2)
        socks[port] = s

    def serve(port: int, sock: socket.socket) -> None:
        held = []
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            if port == 2222:
                # nmap's port scan connects and resets at once: ignore that.
                with contextlib.suppress(OSError):
                    conn.sendall(b"SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5\r\n")
            held.append(conn)
        for conn in held:
            conn.close()

    threads = [threading.Thread(target=serve, args=item, daemon=True) for item in socks.items()]
    for t in threads:
        t.start()
    yield socks
    stop.set()
    for t in threads:
        t.join()
    for s in socks.values():
        s.close()


def test_discovery_finds_open_and_closed_ports(listeners: dict[int, socket.socket]) -> None:
    result = asyncio.run(
        NmapScanner().discover([ADDRESS], parse_ports("2222,4455,4456"), udp=False, host_timeout=30)
    )[ADDRESS]
    states = {s.port: s.state for s in result.services}
    assert states == {2222: "open", 4455: "open", 4456: "closed"}
    assert not result.timed_out


def test_version_detection_reads_the_ssh_banner(listeners: dict[int, socket.socket]) -> None:
    found, cut = asyncio.run(NmapScanner().versions({ADDRESS: [2222]}, host_timeout=30))
    info = found[(ADDRESS, 2222)]
    assert info.service == "ssh"
    assert info.product == "OpenSSH"
    assert info.version.startswith("8.2p1")
    assert not cut


def test_a_host_deadline_marks_the_host_cut_short(listeners: dict[int, socket.socket]) -> None:
    # Given a silent service, -sV waits for a banner longer than the deadline allows.
    start = time.monotonic()
    found, cut = asyncio.run(NmapScanner().versions({ADDRESS: [4455]}, host_timeout=1))
    assert cut == {ADDRESS}
    assert (ADDRESS, 4455) not in found
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("host", ["-oN /tmp/x", "--script=evil", "-iL", "nas.example.net"])
def test_nothing_but_an_address_reaches_nmap(host: str) -> None:
    with pytest.raises(ValueError):
        asyncio.run(NmapScanner().discover([host], parse_ports("22"), udp=False, host_timeout=5))


def test_a_missing_nmap_binary_is_a_clear_error() -> None:
    with pytest.raises(ScannerUnavailable, match="nmap not found"):
        NmapScanner(path="/nonexistent/nmap")


def test_nmap_printing_garbage_is_a_probe_failure(tmp_path: pytest.TempPathFactory) -> None:
    fake = tmp_path / "nmap"  # type: ignore[operator]
    fake.write_text("#!/bin/sh\necho '<<<not xml'\n")
    fake.chmod(0o755)
    with pytest.raises(ProbeFailed):
        asyncio.run(
            NmapScanner(path=str(fake)).discover(
                [ADDRESS], parse_ports("22"), udp=False, host_timeout=5
            )
        )


def test_cancelling_a_scan_kills_nmap(tmp_path: pytest.TempPathFactory) -> None:
    # Given an nmap that would run for a minute, when the scan is cancelled, no process is left.
    fake = tmp_path / "nmap"  # type: ignore[operator]
    pidfile = tmp_path / "pid"  # type: ignore[operator]
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    fake.chmod(0o755)

    async def scenario() -> None:
        task = asyncio.create_task(
            NmapScanner(path=str(fake)).discover(
                [ADDRESS], parse_ports("22"), udp=False, host_timeout=5
            )
        )
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
