"""The audit as a whole on real parts: per-host deadlines, incomplete hosts, interruption."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import pytest

from exposure_audit.grading import Grade
from exposure_audit.lab import Lab, LabHost, LabService
from exposure_audit.nmap.scanner import NmapScanner
from exposure_audit.observations import HostStatus
from exposure_audit.ports import parse_ports
from exposure_audit.probes.dns import make_resolver
from exposure_audit.probes.http import HttpProbeSettings
from exposure_audit.report import HostReport
from exposure_audit.run.audit import Auditor, AuditSettings
from exposure_audit.targets import parse_item, plan_targets

from ..servers import Server, serve

TARPIT = "127.66.1.9"
FAST_HOST = "127.66.1.10"


async def _tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
    await asyncio.sleep(3600)


@pytest.fixture
def perimeter() -> Iterator[Lab]:
    """A DSM host that answers at once (the tests add a tarpit that never speaks)."""
    lab = Lab([LabHost("fast", FAST_HOST, "dsm", (LabService(5000, "http", "dsm72"),), "F", None)])
    with lab:
        yield lab


class _Recorder:
    def __init__(self) -> None:
        self.finished: list[float] = []
        self.phases: list[str] = []

    def phase(self, text: str) -> None:
        self.phases.append(text)

    def start(self, total_hosts: int) -> None:
        self.total = total_hosts

    def advance(self, hosts: int = 1, done: Sequence[HostReport] = ()) -> None:
        self.finished.append(time.monotonic())


def test_a_tarpit_host_is_incomplete_and_does_not_hold_the_others_back(perimeter: Lab) -> None:
    # Given a tarpit listening on a port in the scan set, with a 4 s per-host deadline.
    with serve(_tarpit, host=TARPIT) as tarpit:
        plan = plan_targets(
            [parse_item(a, "test") for a in (TARPIT, FAST_HOST)], allow_private=True
        )
        settings = AuditSettings(
            ports=parse_ports(f"5000,{tarpit.port}"),
            host_timeout=4.0,
            http=HttpProbeSettings(request_timeout=10.0, identify_timeout=10.0),
        )
        progress = _Recorder()
        auditor = Auditor(
            plan,
            settings,
            scanner=NmapScanner(),
            resolver=make_resolver(None),
            progress=progress,
        )
        start = time.monotonic()
        report = asyncio.run(auditor.run())
        elapsed = time.monotonic() - start
    hosts = {h.address: h for h in report.hosts}
    # Then the tarpit is reported incomplete, with its open port unidentified (UNK002): its
    # grade is the lower bound B, never A.
    assert hosts[TARPIT].observation.status is HostStatus.INCOMPLETE
    assert hosts[TARPIT].grade is Grade.B
    assert [f.rule for f in hosts[TARPIT].findings] == ["UNK002"]
    assert [s.port for s in hosts[TARPIT].observation.open_services()] == [tarpit.port]
    assert any(a.status.value == "timed_out" for a in hosts[TARPIT].observation.attempts)
    # And the fast host is complete and graded as usual, finished well before the deadline.
    assert hosts[FAST_HOST].observation.status is HostStatus.COMPLETE
    assert hosts[FAST_HOST].grade is Grade.F
    assert min(progress.finished) - start < 3.0
    assert elapsed < 4.0 + 8.0  # the deadline, plus nmap's own granularity
    assert report.complete


def test_an_interrupted_scan_writes_what_it_found_and_exits_3(
    perimeter: Lab, tmp_path: pytest.TempPathFactory
) -> None:
    with serve(_tarpit, host=TARPIT) as tarpit:
        out = tmp_path / "report.json"  # type: ignore[operator]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exposure_audit",
                "scan",
                FAST_HOST,
                TARPIT,
                "--allow-private",
                "-p",
                f"5000,{tarpit.port}",
                "--format",
                "json",
                "-o",
                str(out),
                "--host-timeout",
                "60",
                "--request-timeout",
                "30",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(4)  # the fast host is done; the tarpit holds its HTTP probe
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 3, stderr
    assert "interrupted" in stderr
    doc = json.loads(out.read_text())
    assert doc["complete"] is False
    assert doc["interrupted"] is True
    # Every host whose discovery finished is reported: the fast one as it was found, the
    # tarpit (cut while its HTTP probe waited) incomplete with its open port, never A.
    hosts = {h["address"]: h for h in doc["hosts"]}
    assert list(hosts) == [FAST_HOST, TARPIT]
    assert hosts[FAST_HOST]["grade"] == "F"
    assert hosts[FAST_HOST]["status"] == "complete"
    assert hosts[TARPIT]["status"] == "incomplete"
    assert hosts[TARPIT]["grade"] != "A"
    assert [s["port"] for s in hosts[TARPIT]["services"]] == [tarpit.port]
    assert any("interrupted" in a["reason"] for a in hosts[TARPIT]["attempts"])


async def _odd_then_mute(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
) -> None:
    """Answers an HTTP request with bytes that are neither HTTP nor TLS (so the port goes to
    -sV), then holds every other probe without a word: -sV waits out each of its probes."""
    data = await reader.read(4096)
    if data.startswith(b"GET / HTTP/1.1"):
        writer.write(b"\x00\x07odd\x00")
        await writer.drain()
    await asyncio.sleep(3600)


def test_an_interrupt_during_version_detection_keeps_every_fingerprinted_host(
    perimeter: Lab, tmp_path: pytest.TempPathFactory
) -> None:
    with serve(_odd_then_mute, host=TARPIT) as odd:
        out = tmp_path / "report.json"  # type: ignore[operator]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exposure_audit",
                "scan",
                FAST_HOST,
                TARPIT,
                "--allow-private",
                "--no-history",
                "--progress",
                "-p",
                f"5000,{odd.port}",
                "--format",
                "json",
                "-o",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Given the audit has reached -sV (the progress line says so) ...
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "detecting service versions" in line:
                break
        time.sleep(1.0)  # nmap is running its probes against the mute port
        # When it is interrupted ...
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=30)
    stderr = "".join(seen) + rest
    # Then both hosts are in the report: the DSM host as found, the other one incomplete with
    # what its HTTP probe saw, its port unidentified because the run stopped.
    assert proc.returncode == 3, stderr
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["complete"] is False
    hosts = {h["address"]: h for h in doc["hosts"]}
    assert hosts[FAST_HOST]["grade"] == "F" and hosts[FAST_HOST]["status"] == "complete"
    cut = hosts[TARPIT]
    assert cut["status"] == "incomplete"
    assert cut["grade"] != "A"
    (service,) = cut["services"]
    assert service["port"] == odd.port
    assert "interrupted" in service["unidentified"]
    # No progress line is drawn after the message that says the run was interrupted.
    tail = rest[rest.index("exposure-audit: interrupted") :]
    assert "hosts]" not in tail
    # And no nmap is left probing the host.
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", f"nmap.*{TARPIT}"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
