"""SIGINT and SIGTERM in every phase of a scan, against the real CLI: resolving names (a DNS
server that never answers), discovery (an nmap that hangs), HTTP fingerprinting (a tarpit),
``-sV`` (nmap probing a port that answered once, then never speaks), writing the history (a
store locked by another process) and sending notifications (a webhook that never answers).

Each time: exit 3 and a message naming the signal and the phase, the report written with what
was found, the run stored as interrupted (stored complete when the scan was over: the
notifications case), the store sound, and no nmap left running.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exposure_audit.history.store import HistoryStore
from exposure_audit.lab import Lab, LabHost, LabService

from ..servers import Server
from .support import (
    DnsServer,
    Running,
    alive,
    dns_server,
    environment,
    fake_nmap,
    integrity,
    logging_nmap,
    oddball,
    tarpit,
    wait_for_run,
    wait_until,
    write_lock,
)

DSM = "127.91.4.10"  # DSM 7.2 over plain HTTP: done in a fraction of a second
SLOW = "127.91.4.20"  # a tarpit
ODD = "127.91.4.21"  # answers HTTP with unknown bytes, then holds: nmap -sV takes long
SIGNALS = pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"]
)


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Lab, Server]]:
    hosts = [LabHost("dsm", DSM, "dsm", (LabService(5000, "http", "dsm72"),), "F", None)]
    with Lab(hosts) as running, tarpit(SLOW) as pit:
        yield running, pit


def _start(
    tmp_path: Path,
    *targets: str,
    ports: str,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Running:
    return Running(
        "scan",
        *targets,
        "--allow-private",
        "-p",
        ports,
        "--format",
        "json",
        "-o",
        str(tmp_path / "report.json"),
        "--history",
        str(tmp_path / "history.sqlite3"),
        "--progress",
        *extra,
        env=env,
    )


def _interrupted(
    scan: Running,
    signum: signal.Signals,
    tmp_path: Path,
    phase: str,
    *,
    stored: str,
    send: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send ``signum`` (unless sent already); check the exit, the message, the report and
    the store; return the report and the stored document."""
    if send:
        scan.send(signum)
    code = scan.finish(timeout=15)
    assert code == 3, scan.stderr
    assert f"exposure-audit: interrupted by {signum.name} during {phase}" in scan.stderr
    assert "Traceback" not in scan.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    history = tmp_path / "history.sqlite3"
    assert integrity(history) == [("ok",)]
    with HistoryStore(history) as store:
        (run,) = store.runs()
        assert run.state == stored, scan.stderr
        document = store.report_doc(run.id)
    return report, document


@SIGNALS
def test_while_resolving_names(
    tmp_path: Path, signum: signal.Signals, running: list[Running]
) -> None:
    server = DnsServer("127.91.4.53", DSM, default_delay=None)  # never answers
    with dns_server(server):
        scan = _start(
            tmp_path, "nas.example.test", DSM, ports="5000", extra=("--resolver", server.spec)
        )
        running.append(scan)
        wait_until(lambda: server.queries, what="a DNS query")
        report, stored = _interrupted(
            scan, signum, tmp_path, "the scan", stored="incomplete (interrupted)"
        )
    assert report["complete"] is False and report["hosts"] == []
    assert report["interrupted"] is True  # so every format says "interrupted"
    assert stored["complete"] is False


@SIGNALS
def test_during_discovery(tmp_path: Path, signum: signal.Signals, running: list[Running]) -> None:
    # An nmap that hangs (it never prints anything)
    pid_file = tmp_path / "nmap.pid"
    path = fake_nmap(tmp_path / "bin", f"echo $$ > {pid_file}\nexec sleep 60")
    scan = _start(tmp_path, DSM, ports="5000", env=environment(path))
    running.append(scan)
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="nmap")
    report, _ = _interrupted(scan, signum, tmp_path, "the scan", stored="incomplete (interrupted)")
    assert report["complete"] is False and report["hosts"] == []
    assert not alive(int(pid_file.read_text()))  # the hung nmap was killed


@SIGNALS
def test_during_http_fingerprinting(
    tmp_path: Path, signum: signal.Signals, lab: tuple[Lab, Server], running: list[Running]
) -> None:
    scan = _start(tmp_path, DSM, SLOW, ports=f"5000,{lab[1].port}")
    running.append(scan)
    scan.wait_for("[1/2 hosts] host done")  # DSM is done; the tarpit holds its HTTP probe
    report, stored = _interrupted(
        scan, signum, tmp_path, "the scan", stored="incomplete (interrupted)"
    )
    # Both hosts got through discovery, so both are reported: the tarpit incomplete, not A
    assert [h["address"] for h in report["hosts"]] == [DSM, SLOW]
    assert report["hosts"][0]["grade"] == "F"
    assert report["hosts"][1]["status"] == "incomplete" and report["hosts"][1]["grade"] != "A"
    assert report["interrupted"] is True
    assert [h["address"] for h in stored["hosts"]] == [DSM, SLOW]


@SIGNALS
def test_during_version_detection(
    tmp_path: Path, signum: signal.Signals, lab: tuple[Lab, Server], running: list[Running]
) -> None:
    path, log = logging_nmap(tmp_path / "bin")
    with oddball(ODD) as odd:
        scan = _start(
            tmp_path,
            DSM,
            ODD,
            ports=f"5000,{odd.port}",
            extra=("--request-timeout", "1"),
            env=environment(path),
        )
        running.append(scan)
        # The odd port is not HTTP; then nmap -sV waits on it for seconds
        wait_until(lambda: log.exists() and " -sV " in log.read_text(), what="nmap -sV")
        report, stored = _interrupted(
            scan, signum, tmp_path, "the scan", stored="incomplete (interrupted)"
        )
    # The host -sV was busy with is kept, with what the HTTP probe saw, incomplete
    assert [h["address"] for h in report["hosts"]] == [DSM, ODD]
    assert report["hosts"][1]["status"] == "incomplete" and report["hosts"][1]["grade"] != "A"
    assert [h["address"] for h in stored["hosts"]] == [DSM, ODD]
    (version_run,) = [line for line in log.read_text().splitlines() if " -sV " in line]
    assert not alive(int(version_run.split()[0]))  # nmap -sV was killed with the run


@SIGNALS
def test_while_writing_the_history(
    tmp_path: Path, signum: signal.Signals, lab: tuple[Lab, Server], running: list[Running]
) -> None:
    history = tmp_path / "history.sqlite3"
    scan = _start(tmp_path, DSM, ports="5000")
    running.append(scan)
    # Another process holds the write lock from the start of the run: the host's record
    # waits for it, so the scan ends while its history is still being written
    wait_for_run(history)
    with write_lock(history):
        # Once the audit says it is writing (the host is done): no race with the end of the
        # scan itself, which a signal would interrupt instead
        scan.wait_for("[1/1 hosts] writing the history")
        scan.send(signum)
        time.sleep(0.5)
        # the signal waits for the write in progress: the process is still there
        assert scan.proc.poll() is None, scan.stderr
    report, stored = _interrupted(
        scan,
        signum,
        tmp_path,
        "writing the history",
        stored="incomplete (interrupted)",
        send=False,
    )
    # The last write was not cut: the host and the whole report are in the history
    assert [h["address"] for h in report["hosts"]] == [DSM]
    assert report["complete"] is False
    assert stored == report


@SIGNALS
def test_while_sending_notifications(
    tmp_path: Path, signum: signal.Signals, lab: tuple[Lab, Server], running: list[Running]
) -> None:
    with tarpit("127.91.4.30") as hook:
        scan = _start(
            tmp_path,
            DSM,
            ports="5000",
            extra=("--webhook", f"http://{hook.host}:{hook.port}/hook"),
        )
        running.append(scan)
        wait_until(lambda: hook.requests, what="the webhook")
        report, stored = _interrupted(scan, signum, tmp_path, "notifications", stored="complete")
    # The scan was over and stored before: the run stays complete; the webhook was not sent
    assert "the run is in the history;" not in scan.stderr
    assert "the run is in the history" in scan.stderr
    assert report["complete"] is True and stored == report


def test_a_second_signal_stops_at_once_even_behind_a_locked_history(
    tmp_path: Path, lab: tuple[Lab, Server], running: list[Running]
) -> None:
    history = tmp_path / "history.sqlite3"
    scan = _start(tmp_path, DSM, ports="5000")
    running.append(scan)
    wait_for_run(history)
    with write_lock(history):
        scan.wait_for("[1/1 hosts] writing the history")
        # The first signal waits for the history write, held up by the lock (30 s)...
        scan.send(signal.SIGINT)
        time.sleep(0.5)
        assert scan.proc.poll() is None, scan.stderr
        # ...the second one does not
        scan.send(signal.SIGINT)
        code = scan.finish(timeout=5)
    assert code == 3, scan.stderr
    assert "exposure-audit: interrupted again by SIGINT: stopped at once" in scan.stderr
    assert "Traceback" not in scan.stderr
    # The store is sound, and the run, never finished, is listed interrupted
    assert integrity(history) == [("ok",)]
    with HistoryStore(history) as store:
        (run,) = store.runs()
        assert run.state == "incomplete (interrupted)"
