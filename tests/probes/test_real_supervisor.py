"""The real Supervisor (Debian's ``supervisor`` package) with its web UI on loopback and no
username: the probe identifies it and sees that it acts without a login; with a username set,
it is still identified (by its Medusa server and 401) at most as a possible, never as open."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exposure_audit.observations import (
    AddressFamily,
    HostObservation,
    HttpObservation,
    ServiceObservation,
)
from exposure_audit.probes.http import HttpProbeSettings, fingerprint_port, make_client
from exposure_audit.rules import evaluate_host

pytestmark = pytest.mark.skipif(
    shutil.which("supervisord") is None, reason="supervisord not installed (.ci/install)"
)
ADDRESS = "127.205.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def supervisord(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """supervisord in the foreground with [inet_http_server] on ADDRESS; the test's param adds
    a username and password when True."""
    port = _free_port()
    auth = "username = admin\npassword = not-used-by-the-probe\n" if request.param else ""
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon = true\nlogfile = {tmp_path}/supervisord.log\n"
        f"pidfile = {tmp_path}/supervisord.pid\nchildlogdir = {tmp_path}\nuser = root\n"
        f"[inet_http_server]\nport = {ADDRESS}:{port}\n{auth}"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        "[program:sleeper]\ncommand = /bin/sleep 600\n"
    )
    process = subprocess.Popen(
        ["supervisord", "-n", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):  # up to 10 s for the listener
            try:
                socket.create_connection((ADDRESS, port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _probe(port: int) -> HttpObservation | None:
    async def run() -> HttpObservation | None:
        settings = HttpProbeSettings(request_timeout=5, identify_timeout=5)
        async with make_client(settings) as client:
            return (await fingerprint_port(client, ADDRESS, port, settings=settings)).http

    return asyncio.run(run())


@pytest.mark.parametrize("supervisord", [False], indirect=True)
def test_supervisor_without_a_username_is_an_open_console(supervisord: int) -> None:
    http = _probe(supervisord)
    assert http is not None and http.management is not None
    assert (http.management.product, http.management.category) == (
        "supervisor",
        "process-manager",
    )
    assert http.management.unauthenticated
    service = ServiceObservation(supervisord, "tcp", "open", "http", http=http)
    host = HostObservation(ADDRESS, AddressFamily.IPV4, services=(service,))
    (finding,) = evaluate_host(host, datetime.now(UTC))
    assert (finding.rule, finding.severity.label) == ("MGMT001", "critical")


@pytest.mark.parametrize("supervisord", [True], indirect=True)
def test_supervisor_with_a_username_is_never_called_open(supervisord: int) -> None:
    http = _probe(supervisord)
    assert http is not None and http.status_code == 401
    assert http.management is None or not http.management.unauthenticated
