#!/usr/bin/env python3
"""Benchmark: the CPU cost of fingerprinting one web port, against what httpx itself allows.

Starts, in a child process (this script with ``--serve N``), one small asyncio web server
bound to N HTTP ports on 127.146.1.1 and N HTTPS ports on 127.146.1.2 (a throwaway trustme
certificate), each answering any request with a small nginx-like page and closing. Then, in
this process, alternating, ``--repeat`` times each, on HTTP and on HTTPS:

- ``httpx GET /``: a bare ``httpx.AsyncClient`` (verification off, no keep-alive, as the
  probe) GETs ``/`` once on every port, 100 at once: what httpx itself allows here;
- ``fingerprint stage``: the audit's HTTP/TLS stage of one host with the N ports open
  (``run.host.HostProber.probe``: TLS and plain HTTP at once, then DSM 4.x's legacy login
  path and whatever the page calls for, ``PORTS_AT_ONCE`` ports at once), over the audit's
  own client (``probes.http.make_client``).

Prints, for each, the median wall time and this process's CPU time, ports per CPU-second
(ports per second per core), requests per port and per CPU-second, and the ratio of the
stage's requests per CPU-second to bare httpx's. Then the stage on growing port counts of one
host (it must stay linear: ``--scale``), the real CLI on one host answering on N ports
(``--skip-cli`` leaves it out), and, with ``--profile``, cProfile's top functions of one stage
run (own time, and grouped by package). Only loopback is touched.

    python3 bench/bench_fingerprint.py [--ports 1000] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from exposure_audit.nmap.scanner import DiscoveryResult  # noqa: E402
from exposure_audit.observations import ServiceObservation  # noqa: E402
from exposure_audit.probes.http import HttpProbeSettings, fingerprint_port, make_client  # noqa: E402
from exposure_audit.run.host import HostAudit, HostProber  # noqa: E402

HTTP_ADDRESS = "127.146.1.1"
HTTPS_ADDRESS = "127.146.1.2"
FIRST_PORT = 30000
RAW_AT_ONCE = 100

_PAGE = b"<html><head><title>Welcome to nginx!</title></head><body>It works.</body></html>"
_ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_PAGE), _PAGE)
)


# ---------------------------------------------------------------------------- the server


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.wait_for(reader.read(4096), 10)
        writer.write(_ANSWER)
        await writer.drain()
    except (OSError, TimeoutError, ssl.SSLError):
        pass
    finally:
        writer.close()


def serve(count: int) -> int:
    """The child: N HTTP and N HTTPS ports; prints ``ready``, stops at end of stdin."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("bench.example").configure_cert(context)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = []
        for port in range(FIRST_PORT, FIRST_PORT + count):
            servers.append(await asyncio.start_server(_answer, HTTP_ADDRESS, port, backlog=512))
            servers.append(
                await asyncio.start_server(_answer, HTTPS_ADDRESS, port, ssl=context, backlog=512)
            )
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        for server in servers:
            server.close()

    asyncio.run(main())
    return 0


def start_server(count: int) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit("the benchmark server did not start")
    return child


# ---------------------------------------------------------------------------- measurements


class Counted:
    """Requests sent by a client (an httpx request hook)."""

    def __init__(self) -> None:
        self.requests = 0
        self.named = 0  # ports identified (the stage only)

    async def __call__(self, request: httpx.Request) -> None:
        self.requests += 1


def _address(scheme: str) -> str:
    return HTTPS_ADDRESS if scheme == "https" else HTTP_ADDRESS


async def raw_httpx(scheme: str, ports: range, counted: Counted) -> None:
    """GET / once on every port, RAW_AT_ONCE at once, with a bare httpx client."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    limits = httpx.Limits(max_connections=RAW_AT_ONCE, max_keepalive_connections=0)
    gate = asyncio.Semaphore(RAW_AT_ONCE)
    async with httpx.AsyncClient(
        verify=context, limits=limits, event_hooks={"request": [counted]}
    ) as client:

        async def get(port: int) -> None:
            async with gate:
                response = await client.get(f"{scheme}://{_address(scheme)}:{port}/")
                assert response.status_code == 200

        await asyncio.gather(*(get(p) for p in ports))


async def stage(scheme: str, ports: range, counted: Counted) -> None:
    """The audit's HTTP/TLS stage of one host with ``ports`` open, over its own client."""
    settings = HttpProbeSettings()
    address = _address(scheme)
    async with make_client(settings) as client:
        client.event_hooks["request"].append(counted)
        prober = HostProber(
            web=fingerprint_port, upnp=None, client=client, http=settings, scanned_tcp=65535
        )
        services = tuple(ServiceObservation(p, "tcp", "open") for p in ports)
        host = HostAudit(address, (), time.monotonic() + 600, DiscoveryResult(address, services))
        await prober.probe(host, None)
    counted.named = sum(1 for f in host.fingerprints.values() if f.http is not None)


Run = Callable[[str, range, Counted], Coroutine[Any, Any, None]]


def measure(run: Run, scheme: str, ports: range) -> tuple[float, float, int, int]:
    """(wall s, CPU s of this process, requests, ports identified) of one run in a fresh
    event loop."""
    counted = Counted()
    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run(scheme, ports, counted))
    return time.perf_counter() - wall, time.process_time() - cpu, counted.requests, counted.named


def profile(scheme: str, ports: range, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(stage(scheme, ports, Counted()))
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])  # type: ignore[attr-defined]
    print(f"\ncProfile, fingerprint stage, {scheme}, {len(ports)} ports: own time {total:.2f} s")
    print(f"{'function':70} {'calls':>8} {'own s':>7} {'own %':>6} {'cum s':>7}")
    for (path, line, name), (_, calls, own, cum, _) in rows[:top]:
        where = f"{_short(path)}:{line}({name})"
        print(f"{where[:70]:70} {calls:8d} {own:7.2f} {100 * own / total:6.1f} {cum:7.2f}")
    groups: Counter[str] = Counter()
    for (path, _, _), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        groups[_package(path)] += own
    print(
        "own time by package: "
        + ", ".join(f"{name} {100 * own / total:.0f}%" for name, own in groups.most_common(9))
    )


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _package(path: str) -> str:
    short = _short(path)
    if short.startswith("~") or (short == path and not path.endswith(".py")):
        return "builtins (C: ssl, sockets, ...)"
    return short.split("/", 1)[0].removesuffix(".py")


def cli_run(count: int) -> tuple[float, str]:
    """The real CLI on the HTTP host's first ``count`` ports (twice as many scanned, so the
    host is not an "everything open" one): wall s and what it made of the host."""
    high = FIRST_PORT + 2 * count - 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        began = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "exposure_audit",
                "scan",
                HTTP_ADDRESS,
                "--allow-private",
                "--no-history",
                "--no-udp",
                "-q",
                "-p",
                f"{FIRST_PORT}-{high}",
                "--host-timeout",
                "60",
                "--format",
                "json",
                "-o",
                str(out),
            ],
            cwd=ROOT,
            check=False,
        )
        wall = time.perf_counter() - began
        (host,) = json.loads(out.read_text())["hosts"]
    named = sum(1 for s in host["services"] if s.get("http"))
    return wall, f"{host['status']}, {named} of {len(host['services'])} ports identified"


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ports", type=int, default=1000, help="web ports per scheme")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", default="100,300,1000", help="port counts for the stage")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)

    scale = [int(n) for n in args.scale.split(",") if int(n) <= args.ports]
    ports = range(FIRST_PORT, FIRST_PORT + args.ports)
    server = start_server(args.ports)
    try:
        measure(stage, "http", ports[:50])  # warm up: imports, the catalog, the TLS context
        results: dict[tuple[str, str], list[tuple[float, float, int, int]]] = {}
        runs: list[tuple[str, Run]] = [("httpx GET /", raw_httpx), ("fingerprint stage", stage)]
        for round_ in range(args.repeat):
            for scheme in ("http", "https"):
                for name, run in runs if round_ % 2 == 0 else runs[::-1]:
                    results.setdefault((scheme, name), []).append(measure(run, scheme, ports))
        scaled = {n: measure(stage, "http", ports[:n]) for n in scale}
        cli = None if args.skip_cli else cli_run(args.ports)

        print(
            f"server: one asyncio process, {args.ports} HTTP ports on {HTTP_ADDRESS} and "
            f"{args.ports} HTTPS ports (trustme) on {HTTPS_ADDRESS}"
        )
        print(f"runs: median of {args.repeat}, alternating; CPU = this process's own time\n")
        header = (
            f"{'scheme':6} {'what':18} {'wall s':>7} {'cpu s':>6} {'ports/cpu-s':>11} "
            f"{'req/port':>8} {'req/cpu-s':>9} {'vs httpx':>8} {'identified':>10}"
        )
        print(header)
        for scheme in ("http", "https"):
            base = None
            for name, _ in runs:
                rows = results[(scheme, name)]
                wall = statistics.median(r[0] for r in rows)
                cpu = statistics.median(r[1] for r in rows)
                requests = statistics.median(r[2] for r in rows)
                named = min(r[3] for r in rows) if name != "httpx GET /" else "-"
                rate = requests / cpu
                base = base or rate
                print(
                    f"{scheme:6} {name:18} {wall:7.2f} {cpu:6.2f} {len(ports) / cpu:11.0f} "
                    f"{requests / len(ports):8.2f} {rate:9.0f} {rate / base:8.2f} {named:>10}"
                )
        print("\nfingerprint stage, one host, HTTP, growing port count (one run each):")
        for n, (wall, cpu, _, named) in scaled.items():
            print(
                f"  {n:5d} ports: {wall:6.2f} s wall, {cpu:6.2f} s cpu, "
                f"{1000 * cpu / n:5.2f} ms cpu per port, {n / wall:5.0f} ports/s, "
                f"{named} identified"
            )
        if cli is not None:
            print(
                f"\nreal CLI, one host answering HTTP on {args.ports} of "
                f"{2 * args.ports} scanned ports, --host-timeout 60: {cli[0]:.2f} s ({cli[1]})"
            )
        if args.profile:
            profile("http", ports, args.top)
            profile("https", ports, args.top)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
