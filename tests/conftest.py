"""Shared test options (``--update-golden`` regenerates renderer golden files) and the test
run's own loopback.

A test run as root gets a network namespace of its own before any test starts (see
``DEVELOPERS.md``, "Test runs never collide"): every loopback address the tests bind (127.x
labs, 127.0.0.1 servers, ``[::1]``) is private to the run and to the subprocesses it starts, so
two runs at once, or a run next to ``exposure-audit demo``, never take each other's ports. The
named namespaces some tests create (``ip netns add``) live in ``/run/netns``, shared by every
run: their names carry the creating process's PID and a random token.
``EXPOSURE_AUDIT_TEST_SHARED_NET=1`` keeps the run in the caller's namespace (to watch its
traffic from outside); without root nothing changes either.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Generator
from typing import Any

import pytest

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

#: Why the run shares its caller's loopback, or None once it has its own.
_SHARED_BECAUSE: str | None = "not started"


def _enter_private_loopback() -> str | None:
    """Move this process into a new network namespace and bring its ``lo`` up; None when done,
    else why not. Only the calling thread moves (unshare(2)), hence before any thread exists;
    children inherit it."""
    if os.environ.get("EXPOSURE_AUDIT_TEST_SHARED_NET") == "1":
        return "EXPOSURE_AUDIT_TEST_SHARED_NET=1"
    if os.geteuid() != 0:
        return "not root"
    if threading.active_count() != 1:
        return "threads already running"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        return f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    return None


def pytest_configure(config: pytest.Config) -> None:
    global _SHARED_BECAUSE
    _SHARED_BECAUSE = _enter_private_loopback()


def pytest_report_header(config: pytest.Config) -> str:
    if _SHARED_BECAUSE is None:
        return "loopback: a network namespace of this run's own"
    return f"loopback: shared with the machine ({_SHARED_BECAUSE})"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/data/golden/* from the current renderers",
    )
    parser.addoption(
        "--allow-skips",
        action="store_true",
        default=False,
        help="report a skipped test as skipped; without it a skip fails the run (a test that"
        " did not run is not a pass: install what .ci/install installs, run as root)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Without ``--allow-skips``, a skipped test is reported as failed, naming why it skipped:
    a suite that is green only because its integration tests skipped would be a false
    all-clear about the tool itself."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    if item.config.getoption("--allow-skips"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = (
        f"this test skipped ({reason}); a skip is a failure here. Install what .ci/install"
        " installs and run as root, or pass --allow-skips to see skips as skips"
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(autouse=True, scope="session")
def _history_in_a_temporary_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Scans store their runs in the user data dir by default: point it (for this process and
    every CLI subprocess) at a temporary directory, never the real home."""
    import os

    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
