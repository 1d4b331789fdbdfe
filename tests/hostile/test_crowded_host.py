"""A host answering HTTP on a thousand ports: the per-host deadline holds, the host's management
port is still identified, and a DSM host in the same run is not starved (issue 15, item 1).

The crowded host (127.146.0.1) answers every request on 4000-4999 after a second (a honeypot,
a port-forwarding box, a load balancer that answers everywhere), and serves DSM on 5000; the
DSM host (127.146.0.2) serves DSM on 5000. Probing the 1,000 slow ports, 64 at once, needs
about half a minute, three times the deadline used here: the crowded host must be cut at its
deadline with what it showed by then, its DSM port first (ports go in mission order, and
5000 sorts after 4000-4999), while the DSM host is complete.

Before the fix, httpcore's one connection pool for every port went quadratic: 1,000 fast web
ports took 96 s against a 15 s deadline and both hosts came out incomplete.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exposure_audit.lab import Lab, LabHost, LabService
from exposure_audit.run.host import PORTS_AT_ONCE, mission_order

from ..cli.runner import run_cli

CROWDED = "127.146.0.1"
NAS = "127.146.0.2"
CROWD = range(4000, 5000)
DSM_PORT = 5000
# Every answer of the crowd comes this late: each port costs at least two of them ("/" and
# DSM 4.x's legacy login path), so 1,000 ports need ~30 s at 64 at once.
DELAY = 1.0
HOST_TIMEOUT = 10.0
#: A contract bound, not a measurement: the deadline, nmap's discovery of 2 x 2,000 ports,
#: Python's start-up and judging and writing 1,001 services (~13 s measured in all).
RUN_BOUND = HOST_TIMEOUT + 10.0

_PAGE = b"<html><head><title>Welcome</title></head><body>it works</body></html>"
_ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: honeypot\r\nContent-Type: text/html\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_PAGE), _PAGE)
)


async def _slow_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Whatever comes (an HTTP request, a TLS ClientHello), a small page a second later."""
    try:
        await asyncio.wait_for(reader.read(4096), 10)
        await asyncio.sleep(DELAY)
        writer.write(_ANSWER)
        await writer.drain()
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


@pytest.fixture(scope="module")
def crowd() -> Iterator[None]:
    """The 1,000 slow ports: one event loop on a background thread."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: list[asyncio.Event] = []
    failed: list[BaseException] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        servers: list[asyncio.Server] = []
        try:
            for port in CROWD:
                servers.append(await asyncio.start_server(_slow_answer, CROWDED, port))
        except OSError as exc:
            failed.append(exc)
        started.set()
        if not failed:
            await stop[0].wait()
        for server in servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30), "the crowded host did not start"
    try:
        if failed:
            raise failed[0]
        yield
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="module")
def dsm() -> Iterator[Lab]:
    hosts = (
        LabHost("crowded-dsm", CROWDED, "dsm", (LabService(DSM_PORT, "http", "dsm72"),), "F", None),
        LabHost("nas", NAS, "dsm", (LabService(DSM_PORT, "http", "dsm72"),), "F", None),
    )
    with Lab(hosts) as running:
        yield running


def _host(report: dict[str, Any], address: str) -> dict[str, Any]:
    (host,) = [h for h in report["hosts"] if h["address"] == address]
    return host


def test_the_deadline_holds_on_a_crowded_host_and_its_dsm_port_is_found_first(
    crowd: None, dsm: Lab, tmp_path: Path
) -> None:
    # Given a host answering HTTP, slowly, on 1,000 ports besides its DSM, and a DSM host.
    output = tmp_path / "report.json"
    # When both are audited in one run with a 10 s host deadline (2,000 ports scanned, so the
    # crowded host is not an "everything open" one that would only be sampled).
    began = time.monotonic()
    run = run_cli(
        "scan",
        CROWDED,
        NAS,
        "--allow-private",
        "--no-history",
        "--no-udp",
        "-p",
        "4000-5999",
        "--host-timeout",
        str(HOST_TIMEOUT),
        "-q",
        "--format",
        "json",
        "-o",
        str(output),
        timeout=120,
    )
    elapsed = time.monotonic() - began

    # Then the run ends within the deadline and a grace, not after the crowd was probed.
    assert run.returncode == 1, run.stderr  # DSM over plain HTTP is a high finding
    assert elapsed < RUN_BOUND, elapsed
    report = json.loads(output.read_text())
    crowded, nas = _host(report, CROWDED), _host(report, NAS)

    # The crowded host is incomplete: the HTTP stage was cut and says on which ports.
    assert crowded["status"] == "incomplete"
    cut = [a for a in crowded["attempts"] if a["probe"] == "http" and a["status"] == "timed_out"]
    assert cut and "host deadline reached" in cut[0]["reason"]
    services = {s["port"]: s for s in crowded["services"]}
    assert set(services) == {*CROWD, DSM_PORT}  # every open port is reported
    # What was seen by then is kept: its DSM port first, then some of the crowd.
    assert services[DSM_PORT]["dsm"]["version"] == "7.2.2"
    assert {"DSM001"} <= {f["rule"] for f in crowded["findings"] if f["port"] == DSM_PORT}
    seen = [p for p in CROWD if services[p].get("http")]
    assert 0 < len(seen) < len(CROWD)
    # The rest say why nothing identified them.
    unseen = [p for p in CROWD if not services[p].get("http")]
    assert all("deadline" in services[p]["unidentified"] for p in unseen)

    # The DSM host in the same run is not starved: complete, with its DSM findings.
    assert nas["status"] == "complete"
    assert nas["services"][0]["dsm"]["version"] == "7.2.2"
    assert {"DSM001"} <= {f["rule"] for f in nas["findings"]}


def test_ports_go_in_mission_order() -> None:
    # Management ports (DSM, SSH, SRM, UPnP), then the default set and the catalog's
    # default ports, then the rest; ascending within each, each port once.
    ports = [20000, 8080, 4000, 22, 5001, 9000, 5000, 873, 20000, 1900, 65000]
    assert mission_order(ports) == [22, 1900, 5000, 5001, 873, 8080, 9000, 4000, 20000, 65000]
    assert PORTS_AT_ONCE <= 128
