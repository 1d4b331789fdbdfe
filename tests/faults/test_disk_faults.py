"""A full disk and a read-only directory, on real tmpfs mounts (root only, else skipped).

The report file: the error names the file and the reason, the report goes to stdout, exit 3,
and no temporary file is left behind. The history: a store on a full disk stops the run before
anything is scanned (exit 3, "the disk holding it is full"); a disk that fills during the scan
costs the history what came after, never the report, and never the store's soundness.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from exposure_audit.history.store import HistoryStore

from ..servers import Server
from .support import (
    Running,
    environment,
    fill,
    integrity,
    logging_nmap,
    rows,
    run_cli,
    tarpit,
    tmpfs,
    wait_until,
)

CLOSED = "127.91.3.10"  # nothing listens: done at once
SLOW = "127.91.3.20"  # a tarpit: held until the host deadline


@pytest.fixture(scope="module")
def pit() -> Iterator[Server]:
    with tarpit(SLOW) as server:
        yield server


def _scan_to(output: Path, *extra: str) -> tuple[int, str, str]:
    result = run_cli(
        "scan",
        CLOSED,
        "--allow-private",
        "-p",
        "5000",
        "--format",
        "json",
        "-o",
        str(output),
        *extra,
    )
    return result.returncode, result.stdout, result.stderr


def test_a_report_on_a_full_disk_goes_to_stdout_with_exit_3(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64k") as disk:
        filler = fill(disk)
        code, stdout, stderr = _scan_to(disk / "report.json", "--no-history")
        left = sorted(p.name for p in disk.iterdir())
    assert code == 3, stderr
    assert f"cannot write {disk / 'report.json'}: No space left on device" in stderr
    assert "the report follows on stdout" in stderr
    assert json.loads(stdout)["hosts"][0]["address"] == CLOSED
    assert left == [filler.name]  # the temporary file was removed


def test_a_report_into_a_read_only_directory_is_refused_before_scanning(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "64k", read_only=True) as directory:
        code, stdout, stderr = _scan_to(directory / "report.json", "--no-history")
        left = list(directory.iterdir())
    # A report that could not be kept is known before the scan: usage error, nothing scanned.
    assert code == 2, stderr
    assert f"-o {directory / 'report.json'}: not writable here" in stderr
    assert stdout == ""
    assert left == []


def test_a_history_on_a_full_disk_stops_the_run_before_anything_is_scanned(
    tmp_path: Path,
) -> None:
    nmap_path, nmap_log = logging_nmap(tmp_path / "bin")
    with tmpfs(tmp_path / "disk", "256k") as disk:
        history = disk / "history.sqlite3"
        # Given a store holding one finished run, on a disk that then fills up
        first, _, stderr = _scan_to(tmp_path / "first.json", "--history", str(history))
        assert first == 0, stderr
        filler = fill(disk)
        nmap_log.unlink(missing_ok=True)
        # When a scan is asked to use it
        result = run_cli(
            "scan",
            CLOSED,
            "--allow-private",
            "-p",
            "5000",
            "-o",
            str(tmp_path / "second.json"),
            "--history",
            str(history),
            env=environment(nmap_path),
        )
        # Then it stops at once with exit 3, saying the disk is full and that nothing ran
        assert result.returncode == 3, result.stderr
        assert f"history store {history}: the disk holding it is full" in result.stderr
        assert "nothing was scanned" in result.stderr
        assert not nmap_log.exists()
        assert not (tmp_path / "second.json").exists()
        # And once there is space again, the store is sound and holds the first run only
        filler.unlink()
        assert integrity(history) == [("ok",)]
        with HistoryStore(history) as store:
            (run,) = store.runs()
            assert run.state == "complete"
            assert store.report_doc(run.id)["hosts"][0]["address"] == CLOSED


def test_a_disk_filling_during_the_scan_costs_the_history_not_the_report(
    tmp_path: Path, pit: Server, running: list[Running]
) -> None:
    with tmpfs(tmp_path / "disk", "256k") as disk:
        history = disk / "history.sqlite3"
        output = tmp_path / "report.json"
        # Given a scan of a host answered at once and a tarpit held 3 s
        scan = Running(
            "scan",
            CLOSED,
            SLOW,
            "--allow-private",
            "-p",
            f"5000,{pit.port}",
            "--host-timeout",
            "3",
            "--format",
            "json",
            "-o",
            str(output),
            "--history",
            str(history),
            "--progress",
        )
        running.append(scan)
        # When the disk fills up once the first host is in the history
        scan.wait_for("[1/2 hosts] host done")
        wait_until(
            lambda: rows(history, "SELECT count(*) FROM run_hosts")[0][0] == 1,
            what="the first host recorded",
        )
        filler = fill(disk)
        code = scan.finish()
        # Then the run ends with exit 3, the history's trouble named
        assert code == 3, scan.stderr
        assert f"recording host {SLOW}: history store {history}: the disk holding it is full" in (
            scan.stderr
        )
        assert "this run is not stored in full" in scan.stderr
        # And the report has both hosts
        doc = json.loads(output.read_text())
        assert sorted(h["address"] for h in doc["hosts"]) == [CLOSED, SLOW]
        # And the store is sound: the run is listed interrupted with the host recorded in time
        filler.unlink()
        assert integrity(history) == [("ok",)]
        with HistoryStore(history) as store:
            (run,) = store.runs()
            assert run.state == "incomplete (interrupted)"
            assert [h["address"] for h in store.report_doc(run.id)["hosts"]] == [CLOSED]
