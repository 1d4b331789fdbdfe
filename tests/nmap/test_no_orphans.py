"""No nmap outlives a killed audit: cron's and systemd's timeouts end a run with SIGKILL, and a
scanner that keeps sending probes after its owner died is exactly what an operator must never
get. The real CLI is started, killed with SIGKILL while its nmap runs (during discovery, and
during ``-sV``), and within a second no nmap scanning the test's address may remain.

Loopback only (127.67.0.0/24). The timing is a contract (the kernel's parent-death signal is
immediate), not a measurement.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DISCOVERING = "127.67.0.1"
VERSIONING = "127.67.0.2"
BANNER_PORT = 2323
#: How long the kernel may take to deliver SIGKILL to the orphans: the contract.
ORPHAN_GRACE = 1.0
#: A bound on waiting for the audit to reach the phase under test.
PHASE_WAIT = 60.0


def _nmaps_scanning(address: str) -> list[int]:
    """Pids of the nmap processes whose command line names ``address``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if argv and argv[0].endswith(b"nmap") and address.encode() in argv:
            found.append(int(entry.name))
    return found


def _nmap_args(pid: int) -> list[bytes]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _start_audit(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "scan",
            "--allow-private",
            "--no-udp",
            "--no-upnp",
            "--history",
            str(tmp_path / "h.db"),
            "-q",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_nmap(audit: subprocess.Popen[bytes], address: str, flag: bytes | None) -> None:
    deadline = time.monotonic() + PHASE_WAIT
    while time.monotonic() < deadline:
        assert audit.poll() is None, "the audit ended before its nmap was seen"
        if any(flag is None or flag in _nmap_args(pid) for pid in _nmaps_scanning(address)):
            return
        time.sleep(0.05)
    pytest.fail(f"no nmap {flag!r} on {address} within {PHASE_WAIT} s")


def _kill_and_count_orphans(audit: subprocess.Popen[bytes], address: str) -> list[int]:
    audit.send_signal(signal.SIGKILL)
    audit.wait()
    time.sleep(ORPHAN_GRACE)
    return _nmaps_scanning(address)


@pytest.fixture(autouse=True)
def _no_stray_nmap_left() -> Iterator[None]:
    """Whatever the verdict, the test leaves no scanner behind."""
    yield
    for address in (DISCOVERING, VERSIONING):
        for pid in _nmaps_scanning(address):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture()
def banner_server() -> Iterator[None]:
    """A TCP service that greets with bytes nothing knows and then keeps the line open: not HTTP,
    not silent, so the audit sends it through ``-sV``, which keeps trying its probes."""
    listener = socket.create_server((VERSIONING, BANNER_PORT))
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.sendall(b"\x07ZQX unknown greeting 42\r\n")
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        for conn in held:
            conn.close()


def test_killing_the_audit_during_discovery_leaves_no_nmap(tmp_path: Path) -> None:
    # A slow discovery: a low packet rate over many ports keeps nmap busy for minutes.
    audit = _start_audit(tmp_path, "--rate", "5", "-p", "1-3000", DISCOVERING)
    _wait_for_nmap(audit, DISCOVERING, None)
    assert _kill_and_count_orphans(audit, DISCOVERING) == []


def test_killing_the_audit_during_version_detection_leaves_no_nmap(
    tmp_path: Path, banner_server: None
) -> None:
    audit = _start_audit(tmp_path, "-p", str(BANNER_PORT), VERSIONING)
    _wait_for_nmap(audit, VERSIONING, b"-sV")
    assert _kill_and_count_orphans(audit, VERSIONING) == []
