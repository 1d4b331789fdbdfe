"""A run that audited no host, through the real CLI: exit 3, "nothing was audited" on stderr
with each target's reason (NXDOMAIN, resolver timeout, excluded, skipped as private), grade
``?`` and the reasons in the report, which is still written. Never an empty all-clear.

Every listener binds 127.62.0.0/24 (this module's block). Nothing here is scanned: each target
is gone before nmap would run."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from exposure_audit.lab.nameserver import start_nameserver

from .runner import run_cli

DNS_HOST = "127.62.0.53"
PRIVATE = "127.62.0.10"  # what private.example.test resolves to: loopback, so skipped
ZONE = {"private.example.test": (("A", PRIVATE),)}
NMAP_NO_HOST = Path(__file__).parents[1] / "data" / "nmap" / "no-host.xml"


@pytest.fixture(scope="module")
def resolver() -> Iterator[str]:
    """The lab's DNS server for :data:`ZONE` on :data:`DNS_HOST` (any other name under
    example.test is NXDOMAIN); yields ``host:port``."""
    loop = asyncio.new_event_loop()
    started: list[int] = []
    ready = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        port, udp, tcp = await start_nameserver(ZONE, DNS_HOST)
        started.append(port)
        ready.set()
        await stop.wait()
        udp.close()
        tcp.close()
        await tcp.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the DNS server did not start"
    try:
        yield f"{DNS_HOST}:{started[0]}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def _scan(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("scan", *args, "--no-history", "--no-udp", "-p", "5000")


def test_a_name_that_does_not_exist_is_exit_3_with_nxdomain(resolver: str) -> None:
    # When the only target is a name the DNS server says does not exist
    result = _scan("gone.example.test", "--resolver", resolver, "--format", "json")
    # Then the run fails (exit 3) and says why on stderr
    assert result.returncode == 3, result.stderr
    assert "exposure-audit: nothing was audited: gone.example.test: NXDOMAIN" in result.stderr
    # And the JSON report, still written, grades it ? with the reason
    doc = json.loads(result.stdout)
    assert doc["summary"]["grade"] == "?" and doc["hosts"] == []
    assert doc["summary"]["not_audited"] == 1
    assert doc["not_audited"] == [
        {"target": "gone.example.test", "reason": "NXDOMAIN: the name does not exist"}
    ]


def test_a_name_resolving_only_to_a_private_address_is_skipped_and_exit_3(resolver: str) -> None:
    # When a name resolves to a loopback address and --allow-private is not given
    result = _scan("private.example.test", "--resolver", resolver)
    # Then nothing is scanned, exit 3, and the table's first lines say so with the reason
    assert result.returncode == 3, result.stderr
    assert "nothing was audited: private.example.test: 127.62.0.10 skipped" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "verdict: grade ?: nothing was audited: unknown, not an all-clear"
    # The note wraps at 80 columns: read the run's paragraph as one line
    run = " ".join(result.stdout.split("\n\n")[1].split())
    assert run.startswith("exposure-audit ") and " 0 hosts " in run
    assert (
        "note: nothing was audited (private.example.test: 127.62.0.10 skipped: "
        "not a public address: loopback" in run
    ), result.stdout


def test_a_resolver_that_never_answers_is_exit_3_with_the_timeout() -> None:
    # Given a resolver address with nothing listening on its UDP port (queries time out, 5 s)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.62.0.54", 0))
        port = probe.getsockname()[1]
    # When the only target is a name
    result = _scan("nas.example.test", "--resolver", f"127.62.0.54:{port}", "--format", "csv")
    # Then exit 3, and the reason is the timeout, on stderr and in the CSV's note row
    assert result.returncode == 3, result.stderr
    assert "nothing was audited: nas.example.test: timeout: no answer for A" in result.stderr
    (note,) = [r for r in csv.DictReader(io.StringIO(result.stdout)) if not r["rule"]]
    assert note["title"] == "run note" and note["host_grade"] == "?"
    assert note["evidence"].startswith("nothing was audited (nas.example.test: timeout:")


def test_every_target_excluded_is_exit_3_in_table_and_json(tmp_path: Path) -> None:
    args = ("127.62.0.5", "--exclude", "127.62.0.0/24", "--allow-private")
    # When every target is excluded (table on stdout)
    table = _scan(*args)
    # Then exit 3, the reason on stderr, and the table's first line says grade ?
    assert table.returncode == 3, table.stderr
    assert "exposure-audit: nothing was audited: 127.62.0.5: excluded" in table.stderr
    first, *rest = table.stdout.splitlines()
    assert first == "verdict: grade ?: nothing was audited: unknown, not an all-clear"
    assert any(line.startswith("exposure-audit ") and ": 0 hosts (" in line for line in rest)
    assert "note: nothing was audited (127.62.0.5: excluded)" in rest
    # And the JSON report, written to a file, holds the grade and the reason
    out = tmp_path / "report.json"
    written = _scan(*args, "--format", "json", "-o", str(out))
    assert written.returncode == 3 and written.stdout == ""
    assert "127.62.0.5: excluded" in written.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["summary"]["grade"] == "?"
    assert doc["not_audited"] == [{"target": "127.62.0.5", "reason": "excluded"}]


def test_grading_an_nmap_run_that_lists_no_host_is_exit_3() -> None:
    result = run_cli("grade", "--nmap-xml", str(NMAP_NO_HOST), "--format", "markdown")
    assert result.returncode == 3, result.stderr
    assert (
        f"exposure-audit: nothing was audited: {NMAP_NO_HOST}: the nmap XML lists no host"
        in result.stderr
    )
    assert result.stdout.startswith("# Exposure audit: grade ? (nothing was audited)")
