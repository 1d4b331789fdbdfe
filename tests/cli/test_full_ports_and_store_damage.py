"""Full-port scans and stores that are damaged or not ours (issue 15 item 7), through the real
CLI and real nmap: ``-p 1-65535`` reaches nmap as a range (a comma list of every port passes
the kernel's limit on one argument) and finds the one listener; a run whose stored JSON was
damaged is named (exit 3) by ``report`` and ``diff``; another program's SQLite file given as
``--history`` is refused without a byte of it changed.

Servers bind 127.145.3.0/24, this suite's block.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..servers import Server, read_request, serve
from .runner import run_cli, store_runs

HOST = "127.145.3.1"


async def _http(reader, writer, server: Server) -> None:  # type: ignore[no-untyped-def]
    await read_request(reader, server)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()


@pytest.fixture(scope="module")
def listener() -> Iterator[Server]:
    with serve(_http, host=HOST) as server:
        yield server


def test_a_full_port_range_is_passed_as_a_range_and_shown_by_a_dry_run() -> None:
    done = run_cli("scan", HOST, "--allow-private", "-p", "1-65535,U:1-1000", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "ports: tcp 1-65535; udp 1-1000" in done.stdout
    mixed = run_cli("scan", HOST, "--allow-private", "-p", "21-23,5000,5001,8000-8010", "--dry-run")
    assert "ports: tcp 21,22,23,5000,5001,8000-8010; udp -" in mixed.stdout


def test_a_full_port_scan_finds_the_one_listener(listener: Server, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = run_cli(
        "scan", HOST, "--allow-private", "-p", "1-65535", "--no-udp", "--no-upnp",
        "--no-version-detection", "--no-history", "--format", "json", "-o", str(report), "-q",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert "Argument list too long" not in done.stderr
    doc = json.loads(report.read_text())
    assert doc["complete"] is True
    (host,) = doc["hosts"]
    assert host["address"] == HOST
    assert listener.port in [s["port"] for s in host["services"]]


@pytest.fixture(scope="module")
def two_runs(listener: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    history = tmp_path_factory.mktemp("store") / "history.sqlite3"
    return store_runs(history, listener.host, listener.port)


def _damage_run(history: Path, run_id: int) -> None:
    """Overwrite 7 bytes inside run ``run_id``'s stored JSON, in the file itself: SQLite's
    checks still pass (a value's bytes are not checksummed), the JSON no longer parses."""
    with sqlite3.connect(history) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (document,) = db.execute("SELECT document FROM runs WHERE id = ?", (run_id,)).fetchone()
    db.close()
    data = bytearray(history.read_bytes())
    stored = document.encode()
    assert len(stored) < 3000  # on one page, in one piece: findable in the file
    assert data.count(stored) == 1
    at = data.index(stored) + stored.index(b'"hosts":')
    data[at : at + 7] = b"\x01\x02}{][\x03"
    history.write_bytes(bytes(data))
    with sqlite3.connect(history) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()


def test_a_run_with_damaged_json_is_named_by_report_and_diff(
    two_runs: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history.sqlite3"
    shutil.copy(two_runs, history)
    _damage_run(history, 2)
    for argv in (["report", "2"], ["report", "latest"], ["diff", "1", "2"], ["diff"]):
        done = run_cli(*argv, "--history", str(history))
        assert done.returncode == 3, (argv, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"run 2 in history store {history} is damaged: its stored report" in done.stderr
    # the other run is still there, and the listing shows both
    assert run_cli("report", "1", "--history", str(history)).returncode in (0, 1)
    listing = run_cli("history", "--history", str(history), "--format", "json")
    assert listing.returncode == 0 and [r["id"] for r in json.loads(listing.stdout)] == [2, 1]


def test_another_programs_sqlite_file_is_refused_without_being_written(tmp_path: Path) -> None:
    foreign = tmp_path / "contacts.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE contacts (name TEXT)")
        db.execute("INSERT INTO contacts VALUES ('ops')")
    db.close()
    before = foreign.read_bytes()
    for argv in (["history"], ["report", "latest"], ["scan", HOST, "--allow-private", "-p", "1"]):
        done = run_cli(*argv, "--history", str(foreign))
        assert done.returncode == 3, done.stderr
        assert "is an SQLite database but not an exposure-audit history store" in done.stderr
        assert foreign.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["contacts.db"]  # no -wal, -shm
    with sqlite3.connect(foreign) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    db.close()
