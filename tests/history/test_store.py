"""The history store on real SQLite files, with real processes: creation and migrations,
refusing files it must not touch, two writers at once, writers killed mid-run, a held lock,
and a stored report that renders exactly as the original."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import exposure_audit.history.store as store_module
from exposure_audit.codec import report_from_dict, to_dict
from exposure_audit.diff import CarriedFinding, coverage_shortfall
from exposure_audit.findings import Severity
from exposure_audit.grading import Grade
from exposure_audit.history.store import (
    SCHEMA_VERSION,
    HistoryStore,
    RunCoverage,
    RunStatus,
    StoreError,
    default_history_path,
)
from exposure_audit.ports import PortSet
from exposure_audit.render import render_json
from exposure_audit.report import UnauditedTarget

from ..report_samples import sample_report

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def doc() -> dict[str, Any]:
    return to_dict(sample_report())


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


def _start(store: HistoryStore, when: datetime = T0, command: str = "scan") -> int:
    return store.start_run(
        started_at=when, tool_version="0.1.0", command=command, targets=["nas.example.net"]
    )


def _finished_run(
    store: HistoryStore, doc: dict[str, Any], when: datetime = T0, *, complete: bool = True
) -> int:
    run = _start(store, when)
    for host in doc["hosts"]:
        store.record_host(run, host)
    store.finish_run(run, doc, complete=complete, duration=90.0)
    return run


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# -- processes ---------------------------------------------------------------------------------


class _Child:
    """A Python process running ``script`` with this checkout first on its path; its stdout
    lines are collected by a thread, so the child never blocks on a full pipe."""

    def __init__(self, script: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.strip())

    def wait_for(self, prefix: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.005)
        stderr = (
            self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        )
        raise AssertionError(f"child never printed {prefix!r}: {self.lines[-5:]} {stderr}")

    def finish(self, timeout: float = 120.0) -> None:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read()
        assert self.proc.returncode == 0, stderr

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL on POSIX
        self.proc.wait(timeout=30)  # reaped: its pid is gone, not a zombie
        self._reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def children() -> Iterator[list[_Child]]:
    started: list[_Child] = []
    yield started
    for child in started:
        if child.proc.poll() is None:
            child.kill()


_WRITER = """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from exposure_audit.history.store import HistoryStore

path, doc_file, count, tag, go = sys.argv[1:6]
doc = json.loads(Path(doc_file).read_text())
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.001)
with HistoryStore(path) as store:
    for i in range(int(count)):
        run = store.start_run(
            started_at=datetime.now(UTC), tool_version="0.1.0", command=f"scan {tag} {i}",
            targets=[tag],
        )
        for host in doc["hosts"]:
            store.record_host(run, host)
        store.finish_run(run, doc, complete=True, duration=0.5)
        print("run", run, flush=True)
"""

_KILLED_WRITER = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from exposure_audit.history.store import HistoryStore

path, doc_file = sys.argv[1:3]
doc = json.loads(Path(doc_file).read_text())
with HistoryStore(path) as store:
    done = store.start_run(
        started_at=datetime.now(UTC), tool_version="0.1.0", command="scan", targets=["x"]
    )
    for host in doc["hosts"]:
        store.record_host(done, host)
    store.finish_run(done, doc, complete=True, duration=0.5)
    run = store.start_run(
        started_at=datetime.now(UTC), tool_version="0.1.0", command="scan", targets=["x"]
    )
    print("run", run, flush=True)
    template = doc["hosts"][0]
    for i in range(1_000_000):
        store.record_host(run, dict(template, address=f"2001:db8::{i:x}"))
        print("host", i, flush=True)
"""

_LEFT_RUNNING = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from exposure_audit.history.store import HistoryStore

path, doc_file = sys.argv[1:3]
doc = json.loads(Path(doc_file).read_text())
with HistoryStore(path) as store:
    run = store.start_run(
        started_at=datetime.now(UTC), tool_version="0.1.0", command="scan", targets=["x"]
    )
    store.record_host(run, doc["hosts"][0])
    print("run", run, flush=True)
"""

_LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE runs SET command = command")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


def _doc_file(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


# -- creating, migrating, refusing -------------------------------------------------------------


def test_a_new_store_is_created_with_its_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "history.sqlite3"
    with HistoryStore(path) as store:
        assert store.path == path
        assert store.runs() == []
    db = _raw(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA application_id").fetchone()[0] == store_module._APPLICATION_ID
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "run_hosts"} <= tables


def test_reopening_keeps_the_runs_and_the_schema_version(
    db_path: Path, doc: dict[str, Any]
) -> None:
    with HistoryStore(db_path) as store:
        run = _finished_run(store, doc)
    with HistoryStore(db_path) as store:
        assert [r.id for r in store.runs()] == [run]
    assert _raw(db_path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_the_count_columns_follow_the_severities() -> None:
    assert tuple(s.label for s in sorted(Severity, reverse=True)) == store_module._LABELS


def test_a_failing_migration_leaves_the_store_at_its_previous_version(
    db_path: Path, doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store at the current version with one run
    with HistoryStore(db_path) as store:
        run = _finished_run(store, doc)
    # When the next migration fails half way
    broken = ("CREATE TABLE extra (x)", "THIS IS NOT SQL")
    monkeypatch.setattr(store_module, "_MIGRATIONS", [*store_module._MIGRATIONS, broken])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="syntax error"):
        HistoryStore(db_path)
    # Then nothing of it was applied
    db = _raw(db_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0
    # And a good migration is applied, in order, keeping the runs
    good = ("CREATE TABLE extra (x)", "INSERT INTO extra VALUES (1)")
    monkeypatch.setattr(store_module, "_MIGRATIONS", [*store_module._MIGRATIONS[:-1], good])
    with HistoryStore(db_path) as store:
        assert store.report_doc(run) == doc
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert db.execute("SELECT x FROM extra").fetchall() == [(1,)]


def test_a_store_from_a_newer_version_is_refused(db_path: Path) -> None:
    HistoryStore(db_path).close()
    _raw(db_path).execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError) as caught:
        HistoryStore(db_path)
    message = str(caught.value)
    assert "schema version 99" in message
    assert f"newer than this exposure-audit knows ({SCHEMA_VERSION})" in message
    assert str(db_path) in message
    assert _raw(db_path).execute("PRAGMA user_version").fetchone()[0] == 99


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(db_path: Path) -> None:
    garbage = b"this is a shopping list, not a database\n" * 200
    db_path.write_bytes(garbage)
    with pytest.raises(StoreError) as caught:
        HistoryStore(db_path)
    message = str(caught.value)
    assert str(db_path) in message
    assert "move it away" in message
    assert db_path.read_bytes() == garbage


def test_a_damaged_database_is_refused_with_its_path(db_path: Path, doc: dict[str, Any]) -> None:
    # Given a store with enough runs to fill many pages, closed (WAL checkpointed)
    with HistoryStore(db_path) as store:
        for _ in range(40):
            _finished_run(store, doc)
    page = _raw(db_path).execute("PRAGMA page_size").fetchone()[0]
    # When pages in the middle are overwritten
    data = bytearray(db_path.read_bytes())
    assert len(data) > 8 * page
    data[3 * page : 6 * page] = b"\xa5" * (3 * page)
    db_path.write_bytes(bytes(data))
    # Then opening it says which file and what to do
    with pytest.raises(StoreError) as caught:
        HistoryStore(db_path)
    assert str(db_path) in str(caught.value)
    assert "move it away" in str(caught.value)


def test_another_programs_database_is_refused(db_path: Path) -> None:
    _raw(db_path).execute("CREATE TABLE contacts (name TEXT)")
    with pytest.raises(StoreError, match="not an exposure-audit history store"):
        HistoryStore(db_path)


def test_a_directory_cannot_be_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open history store"):
        HistoryStore(tmp_path)


def test_a_closed_store_says_so(db_path: Path) -> None:
    store = HistoryStore(db_path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.runs()


def test_the_default_path_follows_xdg_data_home(tmp_path: Path) -> None:
    tail = Path("exposure-audit") / "history.sqlite3"
    assert default_history_path({"XDG_DATA_HOME": "/data"}, tmp_path) == Path("/data") / tail
    home_default = tmp_path / ".local" / "share" / tail
    assert default_history_path({}, tmp_path) == home_default
    assert default_history_path({"XDG_DATA_HOME": ""}, tmp_path) == home_default
    # A relative XDG_DATA_HOME is invalid per the spec and ignored.
    assert default_history_path({"XDG_DATA_HOME": "rel"}, tmp_path) == home_default


# -- writing and reading runs ------------------------------------------------------------------


def test_a_stored_report_renders_exactly_as_the_original(
    db_path: Path, doc: dict[str, Any]
) -> None:
    with HistoryStore(db_path) as store:
        run = store.start_run(
            started_at=T0, tool_version="0.1.0", command="scan", targets=["nas.example.net"]
        )
        store.finish_run(run, to_dict(sample_report()), complete=True, duration=90.0)
    with HistoryStore(db_path) as store:
        assert store.report_doc(run) == doc
        assert render_json(store.report(run)) == render_json(sample_report())


def test_a_finished_run_is_summarised(db_path: Path, doc: dict[str, Any]) -> None:
    with HistoryStore(db_path) as store:
        run = _finished_run(store, doc)
        (summary,) = store.runs()
    assert summary.id == run
    assert summary.status is RunStatus.COMPLETE
    assert summary.state == "complete"
    assert summary.complete
    assert summary.grade is Grade.F
    assert summary.counts == {"critical": 3, "high": 1, "medium": 0, "low": 1, "info": 0}
    assert summary.host_count == 2
    assert summary.duration == 90.0
    assert summary.started_at == T0
    assert summary.finished_at == datetime(2026, 11, 27, 12, 1, 30, tzinfo=UTC)
    assert summary.tool_version == "0.1.0"
    assert summary.targets == ("nas.example.net",)


def test_a_run_cut_short_is_stored_as_incomplete(db_path: Path, doc: dict[str, Any]) -> None:
    doc["complete"] = False
    doc["errors"] = ["nmap crashed"]
    with HistoryStore(db_path) as store:
        run = _finished_run(store, doc, complete=False)
        (summary,) = store.runs()
        assert summary.status is RunStatus.INCOMPLETE
        assert summary.state == "incomplete"
        assert not summary.complete
        assert store.report_doc(run)["errors"] == ["nmap crashed"]
        assert store.latest_complete() == []


def test_a_run_the_user_stopped_is_listed_as_interrupted(
    db_path: Path, doc: dict[str, Any]
) -> None:
    doc["complete"] = False
    with HistoryStore(db_path) as store:
        run = _start(store)
        store.finish_run(run, doc, complete=False, duration=3.0, interrupted=True)
        (summary,) = store.runs()
        assert store.report_doc(run) == doc
        with pytest.raises(ValueError, match="both complete and interrupted"):
            store.finish_run(run, doc, complete=True, duration=3.0, interrupted=True)
        with pytest.raises(StoreError, match=f"run {run} is finished: cannot finish it"):
            store.finish_run(run, doc, complete=False, duration=3.0, interrupted=True)
    assert summary.status is RunStatus.INTERRUPTED
    assert summary.state == "incomplete (interrupted)"
    assert summary.finished_at is not None
    assert summary.host_count == 2


def test_a_running_run_reads_as_the_hosts_recorded_so_far(
    db_path: Path, doc: dict[str, Any]
) -> None:
    with HistoryStore(db_path) as store:
        run = store.start_run(
            started_at=T0,
            tool_version="0.1.0",
            command="scan",
            targets=["x"],
            ports=PortSet((21, 22), (161,)),
        )
        store.record_host(run, doc["hosts"][1])
        (summary,) = store.runs()
        partial = store.report_doc(run)
    assert summary.status is RunStatus.RUNNING
    assert (summary.host_count, summary.grade) == (1, Grade.D)
    assert summary.counts["high"] == 1
    assert summary.finished_at is None
    assert partial["complete"] is False
    assert partial["hosts"] == [doc["hosts"][1]]
    assert partial["ports"] == {"tcp": [21, 22], "udp": [161]}
    assert partial["summary"]["hosts"] == 1
    assert partial["summary"]["findings"]["high"] == 1
    assert partial["summary"]["grade"] == "D"
    assert "has not finished yet" in partial["notes"][0]


def test_recording_a_host_again_replaces_it(db_path: Path, doc: dict[str, Any]) -> None:
    with HistoryStore(db_path) as store:
        run = _start(store)
        store.record_host(run, doc["hosts"][0])
        store.record_host(run, doc["hosts"][1])
        store.record_host(run, dict(doc["hosts"][0], notes=["again"]))
        hosts = store.report_doc(run)["hosts"]
    assert [h["address"] for h in hosts] == ["198.51.100.7", "2001:db8::7"]
    assert hosts[0]["notes"] == ["again"]


def test_a_bad_host_or_report_is_refused_with_the_field_named(
    db_path: Path, doc: dict[str, Any]
) -> None:
    bad_host = json.loads(json.dumps(doc["hosts"][0]))
    bad_host["findings"][1]["severity"] = "urgent"
    with HistoryStore(db_path) as store:
        run = _start(store)
        with pytest.raises(ValueError, match=r"^host\.findings\[1\]\.severity: 'urgent'"):
            store.record_host(run, bad_host)
        with pytest.raises(ValueError, match=r"^schema: "):
            store.finish_run(run, {**doc, "schema": "other/1"}, complete=True, duration=1)
        assert store.report_doc(run)["hosts"] == []


def test_a_finished_run_takes_no_more_hosts_and_cannot_finish_twice(
    db_path: Path, doc: dict[str, Any]
) -> None:
    with HistoryStore(db_path) as store:
        run = _finished_run(store, doc)
        with pytest.raises(StoreError, match=f"run {run} is complete: cannot record a host"):
            store.record_host(run, doc["hosts"][0])
        with pytest.raises(StoreError, match=f"run {run} is complete: cannot finish it"):
            store.finish_run(run, doc, complete=True, duration=1)
        with pytest.raises(StoreError, match="no run 999 in history store"):
            store.record_host(999, doc["hosts"][0])


def test_threads_of_one_process_can_share_a_store(db_path: Path, doc: dict[str, Any]) -> None:
    template = doc["hosts"][0]
    with HistoryStore(db_path) as store:
        run = _start(store)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda i: store.record_host(run, dict(template, address=f"192.0.2.{i}")),
                    range(64),
                )
            )
        assert store.runs()[0].host_count == 64


def test_a_start_time_must_carry_its_time_zone(db_path: Path) -> None:
    with HistoryStore(db_path) as store, pytest.raises(ValueError, match="timezone-aware"):
        store.start_run(
            started_at=datetime(2026, 1, 1), tool_version="0", command="scan", targets=[]
        )


def test_runs_are_listed_newest_first_and_resolved_by_name(
    db_path: Path, doc: dict[str, Any]
) -> None:
    with HistoryStore(db_path) as store:
        oldest = _finished_run(store, doc, T0)
        older = _finished_run(store, doc, T0 + timedelta(days=7))
        cut = _finished_run(store, doc, T0 + timedelta(days=14), complete=False)
        running = _start(store, T0 + timedelta(days=21))
        assert [r.id for r in store.runs()] == [running, cut, older, oldest]
        assert [r.id for r in store.runs(limit=2)] == [running, cut]
        assert store.latest_complete() == [older, oldest]
        assert store.latest_complete(1) == [older]
        assert store.resolve_run("latest") == older
        assert store.resolve_run(" Previous ") == oldest
        assert store.resolve_run(str(cut)) == cut
        with pytest.raises(StoreError, match="no run '999' in history store"):
            store.resolve_run("999")
        with pytest.raises(StoreError, match="unknown run 'yesterday'"):
            store.resolve_run("yesterday")


def test_previous_needs_two_complete_runs(db_path: Path, doc: dict[str, Any]) -> None:
    with HistoryStore(db_path) as store:
        with pytest.raises(StoreError, match=r"no run 'latest': .* has 0 complete runs"):
            store.resolve_run("latest")
        _finished_run(store, doc)
        with pytest.raises(StoreError, match=r"no run 'previous': .* has 1 complete run$"):
            store.resolve_run("previous")


def test_report_of_an_unknown_run_names_it(db_path: Path) -> None:
    with HistoryStore(db_path) as store, pytest.raises(StoreError, match="no run 42 in"):
        store.report(42)


def test_a_store_of_schema_version_1_is_migrated_and_keeps_its_runs(
    db_path: Path, doc: dict[str, Any]
) -> None:
    # Given a store written before coverage and carried findings were kept
    db = _raw(db_path)
    for statement in store_module._MIGRATIONS[0]:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO runs (started_at, tool_version, command, targets, status, complete, grade,"
        " host_count, document) VALUES (?, '0.1.0', 'scan', '[\"nas.example.net\"]',"
        " 'complete', 1, 'F', 2, ?)",
        (T0.isoformat(timespec="microseconds"), json.dumps(doc)),
    )
    db.close()
    # When this version opens it
    with HistoryStore(db_path) as store:
        (summary,) = store.runs()
        # Then the run is still there, a full run and a baseline, carrying nothing
        assert (summary.state, summary.coverage) == ("complete", RunCoverage.FULL)
        assert store.latest_complete(1) == [summary.id]
        assert store.carried(summary.id) == ()
        assert store.report_doc(summary.id) == doc
    assert _raw(db_path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_run_that_covered_nothing_is_stored_as_such_and_is_never_a_baseline(
    db_path: Path, doc: dict[str, Any]
) -> None:
    # Given a complete run, then one whose name did not resolve, then one with fewer hosts
    nothing_report = dataclasses.replace(
        report_from_dict(doc),
        hosts=(),
        not_audited=(UnauditedTarget("nas.example.net", "NXDOMAIN"),),
    )
    full = report_from_dict(doc)
    fewer_report = dataclasses.replace(full, hosts=full.hosts[:1])
    with HistoryStore(db_path) as store:
        good = _finished_run(store, doc)
        nothing = _start(store, T0 + timedelta(days=7))
        store.finish_run(
            nothing,
            to_dict(nothing_report),
            complete=True,
            duration=1.0,
            shortfall=coverage_shortfall(nothing_report, full, baseline_run=good),
        )
        fewer = _start(store, T0 + timedelta(days=14))
        store.finish_run(
            fewer,
            to_dict(fewer_report),
            complete=True,
            duration=1.0,
            shortfall=coverage_shortfall(fewer_report, full, baseline_run=good),
        )
        # Then the history lists them as such, with why
        states = {r.id: (r.state, r.coverage_note) for r in store.runs()}
        assert states[nothing] == (
            "complete (covered nothing)",
            "audit covered nothing: nas.example.net: NXDOMAIN",
        )
        assert states[fewer][0] == "complete (covered fewer hosts)"
        assert states[fewer][1].startswith(f"audit covered fewer hosts than run {good}: 1 of 2")
        assert store.summary(nothing).coverage is RunCoverage.NOTHING
        # And neither is the baseline, nor "latest"
        assert store.latest_complete(5) == [good]
        assert store.resolve_run("latest") == good


def test_carried_findings_are_stored_with_the_run_and_read_back_as_they_were(
    db_path: Path, doc: dict[str, Any]
) -> None:
    report = report_from_dict(doc)
    nas = report.hosts[0]
    on_port = next(f for f in nas.findings if f.port)
    service = next(s for s in nas.observation.services if s.port == on_port.port)
    service = dataclasses.replace(service, reachable_from=("eu",), untested_from=("us",))
    host_level = dataclasses.replace(on_port, id="HOST-1", port=0, protocol="")
    carried = (
        CarriedFinding(on_port, 3, nas.grade, service, "port 5001/tcp not in the port set"),
        CarriedFinding(host_level, None, Grade.UNKNOWN, None, f"host {nas.address} incomplete"),
    )
    with HistoryStore(db_path) as store:
        run = _start(store)
        store.finish_run(run, doc, complete=True, duration=1.0, carried=carried)
        plain = _finished_run(store, doc, T0 + timedelta(days=1))
        assert store.carried(run) == carried
        assert store.carried(plain) == ()
        with pytest.raises(StoreError, match="no run 999"):
            store.carried(999)


def test_unreadable_carried_findings_are_a_store_error_naming_the_run(
    db_path: Path, doc: dict[str, Any]
) -> None:
    with HistoryStore(db_path) as store:
        run = _finished_run(store, doc)
    _raw(db_path).execute("UPDATE runs SET carried = '[{\"host\": 7}]' WHERE id = ?", (run,))
    with HistoryStore(db_path) as store, pytest.raises(StoreError, match=f"run {run} .*carried"):
        store.carried(run)


# -- writers that die --------------------------------------------------------------------------


def test_a_run_left_running_by_a_process_that_exited_is_marked_interrupted(
    db_path: Path, doc: dict[str, Any], tmp_path: Path, children: list[_Child]
) -> None:
    child = _Child(_LEFT_RUNNING, str(db_path), _doc_file(tmp_path, doc))
    children.append(child)
    run = int(child.wait_for("run ").split()[1])
    child.finish()
    with HistoryStore(db_path) as store:
        (summary,) = store.runs()
        partial = store.report_doc(run)
        assert store.mark_abandoned() == []
    assert summary.status is RunStatus.INTERRUPTED
    assert summary.state == "incomplete (interrupted)"
    assert not summary.complete
    assert summary.host_count == 1
    assert partial["complete"] is False
    assert partial["hosts"] == [doc["hosts"][0]]
    assert "was interrupted before it finished" in partial["notes"][0]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_zombie_writer_counts_as_gone(
    db_path: Path, doc: dict[str, Any], tmp_path: Path, children: list[_Child]
) -> None:
    # Given a writer that exited and was not reaped yet
    child = _Child(_LEFT_RUNNING, str(db_path), _doc_file(tmp_path, doc))
    children.append(child)
    run = int(child.wait_for("run ").split()[1])
    stat = Path(f"/proc/{child.proc.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    # When the store is opened, Then its run is interrupted
    with HistoryStore(db_path) as store:
        assert store.runs()[0].status is RunStatus.INTERRUPTED
        assert store.runs()[0].id == run
    child.finish()


def test_a_live_writer_is_left_alone(db_path: Path) -> None:
    with HistoryStore(db_path) as writer:
        run = _start(writer)
        with HistoryStore(db_path) as reader:
            assert reader.mark_abandoned() == []
            assert reader.runs()[0].status is RunStatus.RUNNING
        writer.record_host(run, to_dict(sample_report())["hosts"][0])


def test_a_pid_reused_by_another_process_counts_as_gone(db_path: Path) -> None:
    # Given a run whose writer pid is ours but whose recorded start time is not
    with HistoryStore(db_path) as store:
        run = _start(store)
    _raw(db_path).execute("UPDATE runs SET writer_started = 1 WHERE id = ?", (run,))
    if store_module._process_info(os.getpid()) is None:
        pytest.skip("no /proc: the start time cannot be read here")
    # When the store is opened, Then the run is interrupted
    with HistoryStore(db_path) as store:
        assert store.runs()[0].status is RunStatus.INTERRUPTED


def test_a_run_on_another_machine_is_left_alone(db_path: Path) -> None:
    with HistoryStore(db_path) as store:
        run = _start(store)
    _raw(db_path).execute(
        "UPDATE runs SET writer_pid = 999999999, writer_host = 'elsewhere' WHERE id = ?", (run,)
    )
    with HistoryStore(db_path) as store:
        assert store.runs()[0].status is RunStatus.RUNNING


def test_writers_killed_at_random_points_never_damage_the_store(
    db_path: Path, doc: dict[str, Any], tmp_path: Path, children: list[_Child]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    doc_file = _doc_file(tmp_path, doc)
    with HistoryStore(db_path) as store:
        first = _finished_run(store, doc)
    killed: dict[int, int] = {}  # run id -> hosts it had recorded
    for attempt in range(10):
        # Given a writer that finished one run and is recording hosts of the next
        child = _Child(_KILLED_WRITER, str(db_path), doc_file)
        children.append(child)
        run = int(child.wait_for("run ").split()[1])
        # When it is killed at a random point
        time.sleep(rng.uniform(0.0, 0.4))
        child.kill()
        printed = sum(1 for line in child.lines if line.startswith("host "))
        context = f"seed {seed}, attempt {attempt}, run {run}, {printed} hosts printed"
        # Then the file is sound
        assert _raw(db_path).execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
        with HistoryStore(db_path) as store:
            summaries = {s.id: s for s in store.runs()}
            # and the killed run is listed incomplete with every host committed before the kill
            summary = summaries[run]
            assert summary.status is RunStatus.INTERRUPTED, context
            assert summary.state == "incomplete (interrupted)", context
            assert not summary.complete, context
            partial = store.report_doc(run)
            addresses = [h["address"] for h in partial["hosts"]]
            # a host is printed after its commit: the kill may fall between the two
            assert printed <= len(addresses) <= printed + 1, context
            assert addresses == [f"2001:db8::{i:x}" for i in range(len(addresses))], context
            assert summary.host_count == len(addresses), context
            assert partial["complete"] is False, context
            killed[run] = len(addresses)
            # and every complete run, earlier killed runs included, is intact
            complete = [s for s in summaries.values() if s.status is RunStatus.COMPLETE]
            assert len(complete) == attempt + 2, context
            assert first in summaries
            for s in complete:
                assert store.report_doc(s.id) == doc, context
            for old_run, hosts in killed.items():
                assert summaries[old_run].status is RunStatus.INTERRUPTED, context
                assert summaries[old_run].host_count == hosts, context


# -- two processes at once ---------------------------------------------------------------------


def test_two_processes_writing_at_once_both_land(
    db_path: Path, doc: dict[str, Any], tmp_path: Path, children: list[_Child]
) -> None:
    # Given two writers ready to create the same new store at the same moment
    doc_file = _doc_file(tmp_path, doc)
    go = tmp_path / "go"
    writers = [_Child(_WRITER, str(db_path), doc_file, "20", tag, str(go)) for tag in "ab"]
    children.extend(writers)
    for writer in writers:
        writer.wait_for("ready")
    go.touch()
    # When they each write 20 runs, while this process keeps reading
    reads = 0
    while True:
        writing = any(w.proc.poll() is None for w in writers)
        if not db_path.exists():
            continue
        try:
            reader = HistoryStore(db_path)
        except StoreError as exc:  # pragma: no cover - shown only if it happens
            raise AssertionError(f"a reader could not open the store: {exc}") from exc
        with reader:
            for summary in reader.runs():
                seen = reader.report_doc(summary.id)
                # A reader sees a whole finished run or a run still being written; never half
                # a finished one.
                if seen != doc:
                    assert seen["complete"] is False
                    assert seen["hosts"] == doc["hosts"][: len(seen["hosts"])]
                reads += 1
        if not writing:
            break
    for writer in writers:
        writer.finish()
    # Then all 40 runs landed, with distinct ids, each complete and intact
    ids = [int(line.split()[1]) for w in writers for line in w.lines if line.startswith("run ")]
    assert len(ids) == 40
    assert len(set(ids)) == 40
    with HistoryStore(db_path) as store:
        summaries = store.runs()
        assert sorted(s.id for s in summaries) == sorted(ids)
        assert all(s.status is RunStatus.COMPLETE for s in summaries)
        assert all(store.report_doc(s.id) == doc for s in summaries)
        commands = {s.command for s in summaries}
    assert commands == {f"scan {tag} {i}" for tag in "ab" for i in range(20)}
    assert reads >= 40


def test_a_store_locked_longer_than_the_busy_timeout_is_busy(
    db_path: Path, children: list[_Child]
) -> None:
    HistoryStore(db_path).close()
    # Given another process holding the write lock for a minute
    locker = _Child(_LOCKER, str(db_path), "60")
    children.append(locker)
    locker.wait_for("locked")
    # When a run starts with a short busy timeout
    with HistoryStore(db_path, busy_timeout=0.5) as store:  # opening only reads: it works
        began = time.monotonic()
        with pytest.raises(StoreError) as caught:
            _start(store)
        waited = time.monotonic() - began
    # Then it waited for the timeout and said why it gave up
    assert f"history store {db_path} is busy (another run is writing)" in str(caught.value)
    assert waited >= 0.45
    locker.kill()


def test_a_write_waits_for_a_lock_held_shorter_than_the_busy_timeout(
    db_path: Path, doc: dict[str, Any], children: list[_Child]
) -> None:
    HistoryStore(db_path).close()
    locker = _Child(_LOCKER, str(db_path), "1.0")
    children.append(locker)
    locker.wait_for("locked")
    with HistoryStore(db_path, busy_timeout=30) as store:
        began = time.monotonic()
        run = _finished_run(store, doc)
        waited = time.monotonic() - began
        assert store.report_doc(run) == doc
    locker.finish()
    assert "released" in locker.lines
    assert waited >= 0.5
