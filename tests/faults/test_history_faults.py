"""A damaged or locked history store, and runs killed (SIGKILL) at random points.

The design (docs/security.md, "Faults"): the store is opened and the run started in it before
anything is scanned, so a damaged store, or one locked past the busy timeout at that point,
stops the run with exit 3 and nothing scanned. A lock that comes while the scan runs costs the
history (each write waits the busy timeout, then the run goes on without it) but never the
report: it is written, and the exit code is 3. ``$EXPOSURE_AUDIT_HISTORY_TIMEOUT`` shortens the
busy timeout (30 s) here.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exposure_audit.history.store import HistoryStore
from exposure_audit.lab import Lab, LabHost, LabService

from ..servers import Server
from .support import (
    Running,
    environment,
    history_json,
    integrity,
    logging_nmap,
    rows,
    run_cli,
    tarpit,
    wait_for_run,
    write_lock,
)

CLOSED = "127.91.5.10"
SLOW = "127.91.5.20"


@pytest.fixture(scope="module")
def pit() -> Iterator[Server]:
    with tarpit(SLOW) as server:
        yield server


def _scan_args(history: Path, output: Path, *targets: str, ports: str = "5000") -> list[str]:
    return [
        "scan",
        *(targets or (CLOSED,)),
        "--allow-private",
        "-p",
        ports,
        "--format",
        "json",
        "-o",
        str(output),
        "--history",
        str(history),
    ]


def test_a_damaged_store_is_left_alone_and_nothing_is_scanned(tmp_path: Path) -> None:
    # Given a history file full of garbage
    history = tmp_path / "history.sqlite3"
    garbage = random.Random(6).randbytes(8192)
    history.write_bytes(garbage)
    nmap_path, nmap_log = logging_nmap(tmp_path / "bin")
    # When a scan is asked to use it
    output = tmp_path / "report.json"
    result = run_cli(*_scan_args(history, output), env=environment(nmap_path))
    # Then it stops with exit 3 and the store's own message, saying nothing was scanned
    assert result.returncode == 3, result.stderr
    assert f"run failed: history store {history} is damaged or not an SQLite database" in (
        result.stderr
    )
    assert f"mv '{history}' '{history}.broken'" in result.stderr
    assert result.stderr.rstrip().endswith("nothing was scanned")
    # And nothing was: nmap never ran, no report was written, the file is untouched
    assert not nmap_log.exists()
    assert not output.exists()
    assert history.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", history.name]


def test_a_store_locked_past_the_timeout_at_the_start_scans_nothing(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    HistoryStore(history).close()
    nmap_path, nmap_log = logging_nmap(tmp_path / "bin")
    output = tmp_path / "report.json"
    # Given another process holding the store's write lock
    with write_lock(history):
        began = time.monotonic()
        result = run_cli(
            *_scan_args(history, output),
            env=environment(nmap_path, EXPOSURE_AUDIT_HISTORY_TIMEOUT="1"),
        )
        waited = time.monotonic() - began
    # Then the run waited the busy timeout, then stopped with exit 3 before scanning
    assert result.returncode == 3, result.stderr
    assert (
        f"history store {history} is busy (another run is writing); gave up after 1 s;"
        " nothing was scanned"
    ) in result.stderr
    assert waited >= 1.0
    assert not nmap_log.exists() and not output.exists()
    assert integrity(history) == [("ok",)]
    with HistoryStore(history) as store:
        assert store.runs() == []


def test_a_bad_busy_timeout_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(
        *_scan_args(tmp_path / "h.sqlite3", tmp_path / "r.json"),
        env=environment(EXPOSURE_AUDIT_HISTORY_TIMEOUT="soon"),
    )
    assert result.returncode == 2
    assert "$EXPOSURE_AUDIT_HISTORY_TIMEOUT 'soon'" in result.stderr
    assert not (tmp_path / "h.sqlite3").exists()


def test_a_store_locked_during_the_scan_costs_the_history_not_the_report(
    tmp_path: Path, pit: Server, running: list[Running]
) -> None:
    history = tmp_path / "history.sqlite3"
    output = tmp_path / "report.json"
    # Given a scan of a host done at once and a tarpit held 3 s, with a 1 s busy timeout
    scan = Running(
        *_scan_args(history, output, CLOSED, SLOW, ports=f"5000,{pit.port}"),
        "--host-timeout",
        "3",
        env=environment(EXPOSURE_AUDIT_HISTORY_TIMEOUT="1"),
    )
    running.append(scan)
    # When another process takes the write lock as soon as the run is started, to the end
    run_id = wait_for_run(history)
    with write_lock(history):
        code = scan.finish()
    # Then the report was written with both hosts, and the exit code is 3
    assert code == 3, scan.stderr
    doc = json.loads(output.read_text())
    assert sorted(h["address"] for h in doc["hosts"]) == [CLOSED, SLOW]
    # And stderr says which writes the lock cost
    assert f"history store {history} is busy (another run is writing); gave up after 1 s" in (
        scan.stderr
    )
    assert "no more hosts recorded one by one" in scan.stderr
    assert "this run is not stored in full" in scan.stderr
    # And the store is sound; the run is listed interrupted (it never finished in it)
    assert integrity(history) == [("ok",)]
    (listed,) = history_json(history)
    assert listed["id"] == run_id and listed["state"] == "incomplete (interrupted)"


@pytest.fixture(scope="module")
def busy_lab() -> Iterator[tuple[Lab, Server]]:
    """DSM over HTTP, an SSH banner (-sV), SMB, Telnet: every phase has work to do."""
    hosts = [
        LabHost("dsm", "127.91.6.10", "dsm", (LabService(5000, "http", "dsm43"),), "F", None),
        LabHost(
            "legacy",
            "127.91.6.11",
            "legacy",
            (
                LabService(22, "banner", "ssh"),
                LabService(23, "banner", "telnet_syno"),
                LabService(445, "banner", "smb"),
            ),
            "F",
            None,
        ),
    ]
    with Lab(hosts) as lab, tarpit("127.91.6.20") as pit:
        yield lab, pit


def test_runs_killed_at_random_points_leave_a_sound_store_listing_them_interrupted(
    tmp_path: Path, busy_lab: tuple[Lab, Server], running: list[Running]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    history = tmp_path / "history.sqlite3"
    ports = f"22,23,445,5000,{busy_lab[1].port}"
    started = 0
    for attempt in range(10):
        context = f"seed {seed}, attempt {attempt}"
        output = tmp_path / f"report-{attempt}.json"
        # Given a scan with history on (lasting at least the tarpit's 4 s deadline)
        scan = Running(
            *_scan_args(history, output, "127.91.6.10", "127.91.6.11", "127.91.6.20", ports=ports),
            "--host-timeout",
            "4",
            "--request-timeout",
            "2",
            "--progress",
        )
        running.append(scan)
        # When it is killed, nmap and all, at a random point
        time.sleep(rng.uniform(0.2, 3.0))
        assert scan.proc.poll() is None, context
        scan.kill()
        started += "starting" in scan.stderr  # printed after the run was started in the store
        # Then the file is sound at once, without the store's code having touched it
        if history.exists():
            assert integrity(history) == [("ok",)], context
        # and a report file is never half written
        if output.exists():
            json.loads(output.read_text())
    # And `history` lists every run that was started, each incomplete (interrupted)
    assert history.exists(), f"seed {seed}: no run ever started"
    listed = history_json(history)
    assert started <= len(listed) <= 10, f"seed {seed}"
    assert {r["state"] for r in listed} <= {"incomplete (interrupted)"}, f"seed {seed}"
    # and every one of them reads back with the hosts it recorded before the kill
    with HistoryStore(history) as store:
        for summary in store.runs():
            doc = store.report_doc(summary.id)
            assert doc["complete"] is False
            assert len(doc["hosts"]) == summary.host_count
            assert {h["address"] for h in doc["hosts"]} <= {
                "127.91.6.10",
                "127.91.6.11",
                "127.91.6.20",
            }
    assert rows(history, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
