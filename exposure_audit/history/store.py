"""The history store: every run, its hosts and its report, in one embedded SQLite file.

A run is written in short transactions, each committed on its own::

    start_run   -> one row in ``runs``, status "running", complete=0, the writer's pid
    record_host -> one row in ``run_hosts`` per finished host (its ``to_dict`` JSON)
    finish_run  -> the whole ``to_dict`` document, grade, counts, errors; status "complete" or
                   "incomplete"; its coverage ("full", or "nothing"/"fewer_hosts": such a run
                   is never a baseline); the findings it carries (not re-checked, see
                   ``diff``); the per-host rows are dropped (the document holds them)

so a run killed half way keeps every host it finished, and a run whose writer died is marked
"interrupted" (listed as "incomplete (interrupted)") the next time a store is opened
(:meth:`HistoryStore.mark_abandoned`).

Why the file stays sound:

* WAL journal (https://sqlite.org/wal.html): readers never block the writer and never see an
  uncommitted transaction, so a listing taken while a scan writes shows whole runs only.
* ``synchronous=FULL``: in WAL mode NORMAL is already safe against a killed process, but a
  power cut may roll back the last commits (https://sqlite.org/pragma.html#pragma_synchronous).
  FULL syncs the WAL on every commit; a run commits once per host and hosts take seconds to
  scan, so the cost is nil and a host recorded before a power cut stays recorded.
* Every write is ``BEGIN IMMEDIATE``: the write lock is taken up front, so two processes wait
  for each other (up to ``busy_timeout``) instead of failing on a lock upgrade
  (https://sqlite.org/lang_transaction.html); a longer wait is a :class:`StoreError`.
* The schema is versioned with ``PRAGMA user_version`` and migrated one step per transaction;
  ``PRAGMA application_id`` marks the file as ours.

WAL needs shared memory between the processes, so the file must be on a local file system
(not NFS/SMB).
"""

from __future__ import annotations

import json
import os
import platform
import random
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from ..codec import host_dict, host_from_dict, report_from_dict, to_dict
from ..diff import CarriedFinding, CoverageShortfall
from ..errors import RunError
from ..grading import Grade, grade_run
from ..observations import AddressFamily, HostObservation
from ..ports import PortSet
from ..report import HostReport, Report

__all__ = [
    "SCHEMA_VERSION",
    "HistoryStore",
    "RunCoverage",
    "RunStatus",
    "RunSummary",
    "StoreError",
    "UnknownRun",
    "default_history_path",
    "readable_by_others",
]

_APPLICATION_ID = 0x45584155  # "EXAU": PRAGMA application_id of an exposure-audit history store
# The n_critical ... n_info columns, in this order, in every statement that lists them.
_LABELS = ("critical", "high", "medium", "low", "info")

# One entry per schema version, in order: entry i takes user_version i to i + 1 in one
# transaction. Published entries never change (a store already past them would not rerun
# them); a change of schema is a new entry at the end.
_MIGRATIONS: list[tuple[str, ...]] = [
    (
        f"PRAGMA application_id = {_APPLICATION_ID}",
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: ids name runs in reports
            started_at TEXT NOT NULL,               -- UTC ISO 8601, microseconds
            finished_at TEXT,                       -- NULL until finish_run
            tool_version TEXT NOT NULL,
            command TEXT NOT NULL,
            targets TEXT NOT NULL,                  -- JSON list of strings
            ports TEXT,                             -- JSON {"tcp": [...], "udp": [...]}
            status TEXT NOT NULL
                CHECK (status IN ('running', 'complete', 'incomplete', 'interrupted')),
            complete INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
            grade TEXT,
            n_critical INTEGER NOT NULL DEFAULT 0,
            n_high INTEGER NOT NULL DEFAULT 0,
            n_medium INTEGER NOT NULL DEFAULT 0,
            n_low INTEGER NOT NULL DEFAULT 0,
            n_info INTEGER NOT NULL DEFAULT 0,
            host_count INTEGER NOT NULL DEFAULT 0,
            duration REAL,                          -- seconds
            errors TEXT NOT NULL DEFAULT '[]',      -- JSON list of run-level errors
            document TEXT,                          -- the to_dict JSON once finished
            writer_pid INTEGER,
            writer_started INTEGER,                 -- /proc/PID/stat starttime (pid reuse)
            writer_host TEXT
        )
        """,
        "CREATE INDEX runs_newest ON runs (started_at DESC, id DESC)",
        "CREATE INDEX runs_by_status ON runs (status, started_at DESC, id DESC)",
        """
        CREATE TABLE run_hosts (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,                   -- order the hosts were recorded in
            address TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            grade TEXT NOT NULL,
            n_critical INTEGER NOT NULL,
            n_high INTEGER NOT NULL,
            n_medium INTEGER NOT NULL,
            n_low INTEGER NOT NULL,
            n_info INTEGER NOT NULL,
            document TEXT NOT NULL,                 -- the host's to_dict JSON
            PRIMARY KEY (run_id, seq),
            UNIQUE (run_id, address)
        )
        """,
    ),
    (
        # A run that audited nothing, or fewer hosts than its baseline, is never a baseline.
        "ALTER TABLE runs ADD COLUMN coverage TEXT NOT NULL DEFAULT 'full'"
        " CHECK (coverage IN ('full', 'fewer_hosts', 'nothing'))",
        "ALTER TABLE runs ADD COLUMN coverage_note TEXT NOT NULL DEFAULT ''",
        # JSON list: the findings the run did not re-check, as last seen (diff.CarriedFinding).
        "ALTER TABLE runs ADD COLUMN carried TEXT NOT NULL DEFAULT '[]'",
    ),
]

SCHEMA_VERSION = len(_MIGRATIONS)
"""The ``PRAGMA user_version`` this code writes and reads."""


class StoreError(RunError):
    """The history store cannot be opened, read or written: busy beyond the timeout, corrupt,
    from a newer version, not a history store at all, or a run that does not exist."""


class UnknownRun(StoreError):
    """:meth:`HistoryStore.resolve_run` found no run by that name: the user's mistake, which
    the CLI reports as bad input (exit 2), unlike a store that cannot be read (exit 3)."""


class RunCoverage(StrEnum):
    """How much of what it was asked to audit a run covered. Only a ``FULL`` run becomes the
    baseline of later diffs (``latest``, ``previous``)."""

    FULL = "full"  # as many hosts as its baseline (or no baseline), at least one
    FEWER_HOSTS = "fewer_hosts"  # fewer hosts than the baseline it was compared with
    NOTHING = "nothing"  # no host audited at all


class RunStatus(StrEnum):
    RUNNING = "running"  # a writer is (or was, until mark_abandoned says otherwise) at work
    COMPLETE = "complete"  # finished and complete
    INCOMPLETE = "incomplete"  # finished, but the run was cut short (the report says why)
    INTERRUPTED = "interrupted"  # never finished: its writer died; hosts recorded so far kept


@dataclass(frozen=True)
class RunSummary:
    """One line of the history. For a run that never finished, ``grade``, ``counts`` and
    ``host_count`` cover the hosts recorded so far (``grade`` None when there are none), and
    ``finished_at`` and ``duration`` are None."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    grade: Grade | None
    counts: dict[str, int]
    complete: bool
    status: RunStatus
    tool_version: str
    duration: float | None
    host_count: int
    command: str = ""
    targets: tuple[str, ...] = ()
    coverage: RunCoverage = RunCoverage.FULL
    coverage_note: str = ""

    @property
    def state(self) -> str:
        """The status in words: ``complete``, ``incomplete``, ``incomplete (interrupted)`` or
        ``running``, followed by ``(covered nothing)`` or ``(covered fewer hosts)`` for a run
        that fell short (never a baseline)."""
        if self.status is RunStatus.INTERRUPTED:
            return "incomplete (interrupted)"
        if self.coverage is RunCoverage.NOTHING:
            return f"{self.status.value} (covered nothing)"
        if self.coverage is RunCoverage.FEWER_HOSTS:
            return f"{self.status.value} (covered fewer hosts)"
        return self.status.value


def default_history_path(
    environ: Mapping[str, str] | None = None, home: Path | None = None
) -> Path:
    """``$XDG_DATA_HOME/exposure-audit/history.sqlite3``, else
    ``~/.local/share/exposure-audit/history.sqlite3``.

    A relative ``XDG_DATA_HOME`` is ignored, as the XDG base directory spec says.
    ``environ`` and ``home`` default to ``os.environ`` and ``Path.home()``.
    """
    env = os.environ if environ is None else environ
    data_home = env.get("XDG_DATA_HOME", "")
    if data_home and Path(data_home).is_absolute():
        base = Path(data_home)
    else:
        base = (Path.home() if home is None else home) / ".local" / "share"
    return base / "exposure-audit" / "history.sqlite3"


PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each private to the user (mkdir's own
    ``parents=True`` gives the parents the default mode); existing ones are left as they are."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for new in reversed(missing):
        with suppress(FileExistsError):  # another process made it meanwhile
            new.mkdir(mode=PRIVATE_DIR_MODE)


def _create_private(path: Path) -> None:
    """Create an empty store file with mode 0600 when there is none (an empty file is a new
    SQLite database). SQLite gives the ``-wal`` and ``-shm`` files the database file's
    permissions, so they are private too. An existing file keeps its mode (see
    :func:`readable_by_others`)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


def readable_by_others(path: Path) -> str | None:
    """A warning when the store at ``path`` (or its WAL/SHM file) can be read by users other
    than its owner: it holds the exposure map of a perimeter (addresses, open management ports,
    versions, accepted risks). None when it is private or absent."""
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = candidate.stat().st_mode
        except OSError:
            continue
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            return (
                f"history store {candidate} is readable by other users (mode "
                f"{stat.S_IMODE(mode):04o}); it maps your perimeter's exposure: "
                f"chmod 600 {candidate}"
            )
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HistoryStore:
    """An open history store. Use it as a context manager, or call :meth:`close`.

    Opening creates the file and its parent directories when missing, migrates an older
    schema, checks the file (``PRAGMA quick_check``) and marks runs whose writer died as
    interrupted. Raises :class:`StoreError` when the file is corrupt or not an SQLite database
    (the message says to move it away), is another program's database, has a newer schema, or
    stays locked longer than ``busy_timeout`` seconds.

    A store may be shared by the threads of one process (``asyncio.to_thread`` keeps the
    per-host commit off the event loop): its operations take turns on one connection.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout: float = 30.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        try:
            _make_private_dirs(self._path.parent)
            _create_private(self._path)
        except OSError as exc:
            raise StoreError(f"cannot create history store {path}: {exc}") from exc
        with self._sqlite_errors():
            # isolation_level=None: no implicit transactions; every one is spelled out below.
            self._conn = sqlite3.connect(
                self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        try:
            self._prepare()
            self.mark_abandoned()
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        """Close the file; later calls raise :class:`StoreError`. Closing twice is fine."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing a run ---------------------------------------------------------------------

    def start_run(
        self,
        *,
        started_at: datetime,
        tool_version: str,
        command: str,
        targets: Sequence[str],
        ports: PortSet | None = None,
    ) -> int:
        """Record the start of a run (status "running", complete=0) and return its id.

        ``started_at`` must be timezone-aware (``ValueError`` otherwise). ``ports``, when
        given, lets the report of a run that never finishes show the port set scanned.
        """
        started = _utc_text(started_at, "started_at")
        pid = os.getpid()
        info = _process_info(pid)
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO runs (started_at, tool_version, command, targets, ports, status,"
                " writer_pid, writer_started, writer_host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    started,
                    tool_version,
                    command,
                    _json(list(targets)),
                    None if ports is None else _json({"tcp": ports.tcp, "udp": ports.udp}),
                    RunStatus.RUNNING.value,
                    pid,
                    info[1] if info else None,
                    platform.node(),
                ),
            )
            run_id = cursor.lastrowid
        if run_id is None:  # pragma: no cover - sqlite always sets it after an INSERT
            raise StoreError(f"history store {self._path}: no id for the new run")
        return run_id

    def record_host(self, run_id: int, host: Mapping[str, Any]) -> None:
        """Record one finished host of a running run, committed at once.

        ``host`` is one entry of ``to_dict(report)["hosts"]``; it is checked with
        :func:`~exposure_audit.codec.host_from_dict` (``ValueError`` naming the bad field).
        Recording the same address again replaces it. Raises :class:`StoreError` when the run
        does not exist or has finished.
        """
        parsed = host_from_dict(host)
        counts = _count(f.severity.label for f in parsed.findings if f.counts)
        document = _json(host)
        with self._write() as db:
            self._require_status(db, run_id, (RunStatus.RUNNING,), "record a host")
            db.execute(
                "INSERT INTO run_hosts (run_id, seq, address, recorded_at, grade, n_critical,"
                " n_high, n_medium, n_low, n_info, document) VALUES (?,"
                " (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_hosts WHERE run_id = ?),"
                " ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, address) DO UPDATE SET recorded_at = excluded.recorded_at,"
                " grade = excluded.grade, n_critical = excluded.n_critical,"
                " n_high = excluded.n_high, n_medium = excluded.n_medium,"
                " n_low = excluded.n_low, n_info = excluded.n_info,"
                " document = excluded.document",
                (
                    run_id,
                    run_id,
                    parsed.address,
                    _utc_text(self._clock(), "clock"),
                    parsed.grade.value,
                    *(counts[label] for label in _LABELS),
                    document,
                ),
            )

    def finish_run(
        self,
        run_id: int,
        report_doc: Mapping[str, Any],
        *,
        complete: bool,
        duration: float,
        interrupted: bool = False,
        carried: Sequence[CarriedFinding] = (),
        shortfall: CoverageShortfall | None = None,
    ) -> None:
        """Store the run's whole report document (``to_dict(report)``) and close the run, in
        one transaction: status "complete" or "incomplete" ("interrupted" when
        ``interrupted``: the user stopped it, and it is listed as a killed run is), its grade
        and counts (from the document's summary), host count, run-level errors and
        ``duration`` in seconds.

        ``carried``: the findings this run did not re-check (its diff's
        :attr:`~exposure_audit.diff.ReportDiff.carried`), read back by :meth:`carried` for the
        next diff. ``shortfall``: the run audited nothing or fewer hosts than its baseline;
        it is stored with that coverage (and :meth:`~CoverageShortfall.describe` as its note)
        and :meth:`latest_complete` never returns it.

        The document is checked with :func:`~exposure_audit.codec.report_from_dict`
        (``ValueError`` naming the bad field; also when both ``complete`` and ``interrupted``).
        Raises :class:`StoreError` when the run does not exist or was already finished.
        """
        if complete and interrupted:
            raise ValueError("a run cannot be both complete and interrupted")
        report = report_from_dict(report_doc)
        grade, counts = _summary_totals(report_doc, report)
        status = (
            RunStatus.COMPLETE
            if complete
            else RunStatus.INTERRUPTED
            if interrupted
            else RunStatus.INCOMPLETE
        )
        document = _json(report_doc)
        coverage = (
            RunCoverage.FULL
            if shortfall is None
            else RunCoverage.NOTHING
            if shortfall.nothing
            else RunCoverage.FEWER_HOSTS
        )
        note = "" if shortfall is None else shortfall.describe()
        carried_doc = _json([_carried_dict(c) for c in carried])
        with self._write() as db:
            self._require_status(
                db, run_id, (RunStatus.RUNNING, RunStatus.INTERRUPTED), "finish it"
            )
            db.execute(
                "UPDATE runs SET status = ?, complete = ?, finished_at = ?, grade = ?,"
                " n_critical = ?, n_high = ?, n_medium = ?, n_low = ?, n_info = ?,"
                " host_count = ?, duration = ?, errors = ?, document = ?, coverage = ?,"
                " coverage_note = ?, carried = ? WHERE id = ?",
                (
                    status.value,
                    int(complete),
                    _utc_text(report.finished_at, "finished_at", naive_is_utc=True),
                    grade.value,
                    *(counts[label] for label in _LABELS),
                    len(report.hosts),
                    float(duration),
                    _json(list(report.errors)),
                    document,
                    coverage.value,
                    note,
                    carried_doc,
                    run_id,
                ),
            )
            db.execute("DELETE FROM run_hosts WHERE run_id = ?", (run_id,))

    def mark_abandoned(self) -> list[int]:
        """Mark "running" runs whose writer is gone as "interrupted"; return their ids.

        A writer is gone when its pid is not alive on this machine, is a zombie, or now
        belongs to a process started at another time (pid reuse). Runs written from another
        machine, or where liveness cannot be told, are left alone: a live run is never
        marked. Called on every open.
        """
        with self._read() as db:
            rows = db.execute(
                "SELECT id, writer_pid, writer_started, writer_host FROM runs WHERE status = ?",
                (RunStatus.RUNNING.value,),
            ).fetchall()
        this_host = platform.node()
        gone = [
            run_id
            for run_id, pid, started, host in rows
            if host == this_host and pid is not None and not _writer_alive(pid, started)
        ]
        if gone:
            with self._write() as db:
                db.executemany(
                    "UPDATE runs SET status = ? WHERE id = ? AND status = ?",
                    [(RunStatus.INTERRUPTED.value, i, RunStatus.RUNNING.value) for i in gone],
                )
        return gone

    # -- reading ---------------------------------------------------------------------------

    def runs(self, limit: int | None = None) -> list[RunSummary]:
        """The runs, newest first (by start time, then id); at most ``limit`` of them."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        with self._read() as db:
            rows = db.execute(
                # _SUMMARY_COLUMNS is a constant: no outside text reaches the statement.
                f"SELECT {_SUMMARY_COLUMNS} FROM runs"  # noqa: S608
                " ORDER BY started_at DESC, id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            return [self._summary(db, row) for row in rows]

    def summary(self, run_id: int) -> RunSummary:
        """One run's line of the history (as :meth:`runs` gives it); :class:`StoreError` for
        an unknown run."""
        with self._read() as db:
            row = db.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM runs WHERE id = ?",  # noqa: S608 - as in runs()
                (run_id,),
            ).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id} in history store {self._path}")
            return self._summary(db, row)

    def carried(self, run_id: int) -> tuple[CarriedFinding, ...]:
        """The findings run ``run_id`` did not re-check, as :meth:`finish_run` stored them
        (empty for a run that has none, has not finished, or was stored before they were
        kept). Raises :class:`StoreError` for an unknown run or an unreadable entry."""
        with self._read() as db:
            row = db.execute("SELECT carried FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in history store {self._path}")
        try:
            entries = json.loads(row[0])
            if not isinstance(entries, list):
                raise ValueError("carried: not a list")
            return tuple(_carried_from_dict(e, f"carried[{i}]") for i, e in enumerate(entries))
        except ValueError as exc:
            raise StoreError(
                f"run {run_id} in history store {self._path}: its not re-checked findings"
                f" cannot be read: {exc}"
            ) from exc

    def report_doc(self, run_id: int) -> dict[str, Any]:
        """The run's report document, as ``codec.to_dict`` made it.

        For a run that never finished (running or interrupted), a document assembled from the
        hosts recorded so far: ``complete`` false, the summary computed from those hosts, and
        a note saying what is missing. Raises :class:`StoreError` for an unknown run.
        """
        with self._read() as db:
            row = db.execute(
                "SELECT document, status, started_at, tool_version, ports FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id} in history store {self._path}")
            document, status, started_at, tool_version, ports = row
            if document is not None:
                return self._document(run_id, document)
            hosts = db.execute(
                "SELECT document, recorded_at FROM run_hosts WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        return self._assemble(run_id, RunStatus(status), started_at, tool_version, ports, hosts)

    def report(self, run_id: int) -> Report:
        """The run's report (:meth:`report_doc` read back with ``report_from_dict``).

        Raises :class:`StoreError` for an unknown run or a stored document that cannot be
        read.
        """
        doc = self.report_doc(run_id)
        try:
            return report_from_dict(doc)
        except ValueError as exc:
            raise StoreError(
                f"run {run_id} in history store {self._path} cannot be read: {exc}"
            ) from exc

    def latest_complete(self, n: int = 2) -> list[int]:
        """The ids of the ``n`` newest complete runs that covered what they were asked to
        (coverage "full": not a run that audited nothing or fewer hosts than its baseline),
        newest first (fewer when there are not that many). These are the diff's baselines."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id FROM runs WHERE status = ? AND coverage = ?"
                " ORDER BY started_at DESC, id DESC LIMIT ?",
                (RunStatus.COMPLETE.value, RunCoverage.FULL.value, max(n, 0)),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def resolve_run(self, ref: str) -> int:
        """The id of the run ``ref`` names: a run id (``"17"``), ``"latest"`` (the newest
        complete run) or ``"previous"`` (the complete run before it), as
        :meth:`latest_complete` orders them. Raises :class:`StoreError` naming ``ref`` when no
        run matches."""
        text = ref.strip()
        hint = "give a run id from 'exposure-audit history', 'latest' or 'previous'"
        if text.isascii() and text.isdigit():
            with self._read() as db:
                found = db.execute("SELECT 1 FROM runs WHERE id = ?", (int(text),)).fetchone()
            if found is None:
                raise UnknownRun(f"no run {ref!r} in history store {self._path}")
            return int(text)
        position = {"latest": 0, "previous": 1}.get(text.lower())
        if position is None:
            raise UnknownRun(f"unknown run {ref!r}: {hint}")
        ids = self.latest_complete(position + 1)
        if len(ids) <= position:
            raise UnknownRun(
                f"no run {ref!r}: history store {self._path} has {len(ids)} complete run"
                f"{'' if len(ids) == 1 else 's'}"
            )
        return ids[position]

    # -- internals -------------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"history store {self._path} is closed")
        return self._conn

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._store_error(exc) from exc

    def _store_error(self, exc: sqlite3.Error) -> StoreError:
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if _is_busy(exc):
            return StoreError(
                f"history store {self._path} is busy (another run is writing); gave up after"
                f" {self._busy_timeout:g} s"
            )
        if primary in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            return self._corrupt(str(exc))
        if primary == sqlite3.SQLITE_CANTOPEN:
            return StoreError(f"cannot open history store {self._path}: {exc}")
        if primary == sqlite3.SQLITE_FULL or (
            primary == sqlite3.SQLITE_IOERR and 0 <= _free_bytes(self._path) < _LOW_SPACE
        ):
            # A full disk shows up as an I/O error (SQLITE_IOERR_SHMSIZE) when SQLite cannot
            # even grow its shared-memory file: say what is wrong, not just "disk I/O error".
            free = _free_bytes(self._path)
            shown = f"{free // 1024} KiB free" if free >= 0 else "free space unknown"
            return StoreError(
                f"history store {self._path}: the disk holding it is full ({exc}; {shown});"
                " free some space or use another --history file"
            )
        return StoreError(f"history store {self._path}: {exc}")

    def _document(self, run_id: int, document: str) -> dict[str, Any]:
        """A stored report document read back; :class:`StoreError` naming the run when the
        text was damaged (the file can pass SQLite's checks with a damaged value in it)."""
        try:
            doc = json.loads(document)
        except ValueError as exc:
            raise self._damaged_run(run_id, "its stored report", exc) from exc
        if not isinstance(doc, dict):
            raise self._damaged_run(run_id, "its stored report", ValueError("not an object"))
        return doc

    def _damaged_run(self, run_id: int, what: str, exc: Exception) -> StoreError:
        detail = str(exc)[:120]
        return StoreError(
            f"run {run_id} in history store {self._path} is damaged: {what} cannot be read"
            f" ({detail}); the other runs are not affected ('exposure-audit history' lists"
            " them)"
        )

    def _corrupt(self, what: str) -> StoreError:
        return StoreError(
            f"history store {self._path} is damaged or not an SQLite database ({what}); "
            f"move it away (mv '{self._path}' '{self._path}.broken') so that a new one is "
            "created, or use another --history file"
        )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._sqlite_errors():
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: the statements in it see one snapshot (WAL), never a run half
        written by another process."""
        with self._lock, self._sqlite_errors():
            db = self._db
            if db.in_transaction:  # nested in a read of this thread (the lock is ours)
                yield db
                return
            db.execute("BEGIN")
            try:
                yield db
            finally:
                if db.in_transaction:
                    with suppress(sqlite3.Error):
                        db.execute("COMMIT")

    def _prepare(self) -> None:
        """Configure, check and migrate the file, retrying while another process holds it.

        SQLite answers "busy" at once, without waiting through the busy timeout, when two
        connections would deadlock: two processes switching a new file to WAL, or both
        migrating it (https://sqlite.org/c3ref/busy_handler.html). Retrying with a short
        random pause until ``busy_timeout`` lets one of them go first.
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                with self._sqlite_errors():
                    # Reads only, first: a file that is not a store of ours (another
                    # program's database, a newer schema) is refused before anything is
                    # written to it; switching to WAL below rewrites its header.
                    self._schema_version()
                    self._configure()
                    self._check_integrity()
                    self._migrate()
                return
            except StoreError as exc:
                cause = exc.__cause__
                busy = isinstance(cause, sqlite3.Error) and _is_busy(cause)
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 - jitter, not a secret

    def _configure(self) -> None:
        db = self._db
        # The first statement reads the file: "file is not a database" shows up here.
        db.execute("PRAGMA journal_mode = WAL").fetchone()
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")

    def _check_integrity(self) -> None:
        # quick_check: the b-tree structure without the slower index-content cross-check of
        # integrity_check; it reads the whole file, which for a history store is a few MB.
        problems = [str(r[0]) for r in self._db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise self._corrupt("quick_check: " + "; ".join(problems[:3]))

    def _schema_version(self) -> int:
        """The file's schema version, after refusing a newer or foreign one."""
        # One statement, so one snapshot: read as three, a store that another process
        # creates in between would look like version 0 with tables, i.e. foreign.
        version, application_id, tables = (
            int(value)
            for value in self._db.execute(
                "SELECT (SELECT user_version FROM pragma_user_version),"
                " (SELECT application_id FROM pragma_application_id),"
                " (SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%')"
            ).fetchone()
        )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"history store {self._path} has schema version {version}, newer than this"
                f" exposure-audit knows ({SCHEMA_VERSION}); a newer exposure-audit wrote it."
                " Upgrade exposure-audit, or use another --history file"
            )
        foreign = application_id != _APPLICATION_ID if version else tables > 0
        if foreign:
            raise StoreError(
                f"{self._path} is an SQLite database but not an exposure-audit history store;"
                " use another --history file"
            )
        return version

    def _migrate(self) -> None:
        while (version := self._schema_version()) < SCHEMA_VERSION:
            with self._write() as db:
                # Another process may have migrated between the read above and our lock.
                if self._schema_version() == version:
                    for statement in _MIGRATIONS[version]:
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {version + 1:d}")

    def _require_status(
        self, db: sqlite3.Connection, run_id: int, allowed: tuple[RunStatus, ...], doing: str
    ) -> None:
        """Raise :class:`StoreError` unless the run exists, has not finished (no document)
        and has one of the ``allowed`` statuses."""
        row = db.execute(
            "SELECT status, document IS NOT NULL FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in history store {self._path}")
        status, finished = row
        if finished or RunStatus(status) not in allowed:
            state = "finished" if finished and status == RunStatus.INTERRUPTED else status
            raise StoreError(f"run {run_id} is {state}: cannot {doing}")

    def _summary(self, db: sqlite3.Connection, row: Sequence[Any]) -> RunSummary:
        """A :class:`RunSummary` from a row of :data:`_SUMMARY_COLUMNS`."""
        (run_id, started_at, finished_at, grade, *counts) = row[: 4 + len(_LABELS)]
        (
            complete,
            status,
            tool_version,
            duration,
            host_count,
            command,
            targets,
            unfinished,
            coverage,
            coverage_note,
        ) = row[4 + len(_LABELS) :]
        count_map = dict(zip(_LABELS, (int(c) for c in counts), strict=True))
        if unfinished:
            host_count, count_map, grade = self._recorded_totals(db, run_id)
        return RunSummary(
            id=run_id,
            started_at=datetime.fromisoformat(started_at),
            finished_at=datetime.fromisoformat(finished_at) if finished_at else None,
            grade=Grade(grade) if grade is not None else None,
            counts=count_map,
            complete=bool(complete),
            status=RunStatus(status),
            tool_version=tool_version,
            duration=duration,
            host_count=host_count,
            command=command,
            targets=self._targets(run_id, targets),
            coverage=RunCoverage(coverage),
            coverage_note=coverage_note,
        )

    def _targets(self, run_id: int, text: str) -> tuple[str, ...]:
        try:
            targets = json.loads(text)
            if not isinstance(targets, list):
                raise ValueError("not a list")
        except ValueError as exc:
            raise self._damaged_run(run_id, "its target list", exc) from exc
        return tuple(str(t) for t in targets)

    def _recorded_totals(
        self, db: sqlite3.Connection, run_id: int
    ) -> tuple[int, dict[str, int], str | None]:
        row = db.execute(
            "SELECT COUNT(*), TOTAL(n_critical), TOTAL(n_high), TOTAL(n_medium), TOTAL(n_low),"
            " TOTAL(n_info) FROM run_hosts WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        grades = [
            Grade(r[0])
            for r in db.execute(
                "SELECT DISTINCT grade FROM run_hosts WHERE run_id = ?", (run_id,)
            ).fetchall()
        ]
        counts = dict(zip(_LABELS, (int(c) for c in row[1:]), strict=True))
        return int(row[0]), counts, grade_run(grades).value if grades else None

    def _assemble(
        self,
        run_id: int,
        status: RunStatus,
        started_at: str,
        tool_version: str,
        ports: str | None,
        hosts: list[tuple[str, str]],
    ) -> dict[str, Any]:
        try:
            parsed = tuple(
                host_from_dict(json.loads(doc), f"hosts[{i}]") for i, (doc, _) in enumerate(hosts)
            )
        except ValueError as exc:
            raise StoreError(
                f"run {run_id} in history store {self._path} cannot be read: {exc}"
            ) from exc
        try:
            port_doc = json.loads(ports) if ports else {}
            started = datetime.fromisoformat(started_at)
        except ValueError as exc:
            raise self._damaged_run(run_id, "its port list", exc) from exc
        why = (
            "was interrupted before it finished"
            if status is RunStatus.INTERRUPTED
            else "has not finished yet"
        )
        report = Report(
            tool_version=tool_version,
            started_at=started,
            # The time of the last host recorded: as far as the run is known to have got.
            finished_at=max((datetime.fromisoformat(at) for _, at in hosts), default=started),
            ports=PortSet(tuple(port_doc.get("tcp", ())), tuple(port_doc.get("udp", ()))),
            hosts=parsed,
            complete=False,
            notes=(
                f"run {run_id} {why}: only the {len(parsed)} host(s) recorded before then are"
                " listed; its names, skipped addresses and run errors were not recorded",
            ),
        )
        return to_dict(report)


_SUMMARY_COLUMNS = (
    "id, started_at, finished_at, grade, n_critical, n_high, n_medium, n_low, n_info, complete,"
    " status, tool_version, duration, host_count, command, targets, document IS NULL, coverage,"
    " coverage_note"
)
"""The columns :meth:`HistoryStore._summary` reads, in its order."""


def _carried_dict(carried: CarriedFinding) -> dict[str, Any]:
    """A carried finding as JSON: ``seen_in``, ``reason`` and ``host``, a host document (as in
    a report) holding only the finding, its service as last seen and its host's grade then."""
    finding, service = carried.finding, carried.service
    # A service from a run audited from vantages names them: the host must list them too.
    vantages = sorted({*service.reachable_from, *service.untested_from}) if service else []
    observation = HostObservation(
        address=finding.address,
        family=AddressFamily.IPV6 if ":" in finding.address else AddressFamily.IPV4,
        services=(service,) if service is not None else (),
        vantages=tuple(vantages),
    )
    host = HostReport(observation, (finding,), carried.host_grade)
    return {"seen_in": carried.seen_in, "reason": carried.reason, "host": host_dict(host)}


def _carried_from_dict(doc: object, path: str) -> CarriedFinding:
    """Read back what :func:`_carried_dict` wrote; ``ValueError`` naming the bad field."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"{path}: not an object")
    seen_in, reason = doc.get("seen_in"), doc.get("reason", "")
    if seen_in is not None and (not isinstance(seen_in, int) or isinstance(seen_in, bool)):
        raise ValueError(f"{path}.seen_in: not a run id")
    if not isinstance(reason, str):
        raise ValueError(f"{path}.reason: not a string")
    host = host_from_dict(doc.get("host"), f"{path}.host")  # type: ignore[arg-type]
    if len(host.findings) != 1:
        raise ValueError(f"{path}.host.findings: holds {len(host.findings)} findings, not one")
    (finding,) = host.findings
    service = next(
        (
            s
            for s in host.observation.services
            if (s.port, s.protocol) == (finding.port, finding.protocol)
        ),
        None,
    )
    return CarriedFinding(finding, seen_in, host.grade, service, reason)


def _summary_totals(doc: Mapping[str, Any], report: Report) -> tuple[Grade, dict[str, int]]:
    """The grade and counts the document's summary states (what the run reported), or
    computed from the report when the summary is missing or malformed."""
    summary = doc.get("summary")
    findings = summary.get("findings") if isinstance(summary, Mapping) else None
    if isinstance(summary, Mapping) and isinstance(findings, Mapping):
        counts = {label: findings.get(label) for label in _LABELS}
        grade = summary.get("grade")
        if grade in {g.value for g in Grade} and all(
            isinstance(c, int) and not isinstance(c, bool) for c in counts.values()
        ):
            return Grade(grade), {k: int(v or 0) for k, v in counts.items()}
    return report.grade, report.severity_counts()


_LOW_SPACE = 1 << 20
"""Below this many free bytes an I/O error from SQLite is reported as a full disk."""


def _free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s file system (-1: unknown)."""
    try:
        stat = os.statvfs(path.parent if str(path.parent) else Path())
    except (OSError, AttributeError):  # no statvfs on Windows
        return -1
    return stat.f_bavail * stat.f_frsize


def _is_busy(exc: sqlite3.Error) -> bool:
    """Whether SQLite gave up on a lock (SQLITE_BUSY or SQLITE_LOCKED and their extended
    codes)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _count(labels: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(_LABELS, 0)
    for label in labels:
        counts[label] += 1
    return counts


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def _utc_text(moment: datetime, what: str, *, naive_is_utc: bool = False) -> str:
    """``moment`` in UTC as fixed-width ISO 8601 text, so that text order is time order."""
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"{what} must be timezone-aware, not {moment.isoformat()}")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _process_info(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from Linux's /proc, or None
    where there is no /proc or the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        # "pid (comm) state ..."; comm may hold spaces and parentheses, so split after the last
        # ")". starttime is field 22 (proc(5)), the 20th after the comm.
        fields = text[text.rindex(")") + 2 :].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _writer_alive(pid: int, started: int | None) -> bool:
    """Whether the process that wrote a run may still be writing it. True when unsure."""
    if sys.platform == "win32":
        # os.kill(pid, 0) is not a probe there: 0 is CTRL_C_EVENT.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    except OSError:
        return True
    info = _process_info(pid)
    if info is None:
        return True
    state, ticks = info
    if state in ("Z", "X", "x"):  # zombie or dead, waiting to be reaped
        return False
    return started is None or ticks == started
