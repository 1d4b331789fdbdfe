"""The history store maps a perimeter's exposure (addresses, open management ports, versions,
accepted risks): it is created private to the user, as reports are, and a store others can read
is pointed out. Modes are checked whatever the umask of the process that creates them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exposure_audit.history.store import HistoryStore, readable_by_others

from ..cli.runner import run_cli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def lax_umask() -> Iterator[None]:
    """The umask cron jobs often run with (022: files 0644): privacy must not depend on it."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_store_and_its_wal_and_shm_files_are_private(tmp_path: Path, lax_umask: None) -> None:
    path = tmp_path / "h.sqlite3"
    with HistoryStore(path) as store:
        store.start_run(
            started_at=datetime.now(UTC), tool_version="t", command="t", targets=["192.0.2.1"]
        )
        wal, shm = path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
        assert wal.exists() and shm.exists()  # WAL mode: both exist while the store is open
        assert {_mode(path), _mode(wal), _mode(shm)} == {0o600}
    assert readable_by_others(path) is None


def test_directories_the_store_creates_are_private_and_existing_ones_untouched(
    tmp_path: Path, lax_umask: None
) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "data" / "exposure-audit" / "history.sqlite3"
    HistoryStore(path).close()
    assert _mode(tmp_path / "data") == 0o700
    assert _mode(tmp_path / "data" / "exposure-audit") == 0o700
    assert _mode(tmp_path) == 0o755


def test_an_existing_world_readable_store_is_pointed_out_by_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    HistoryStore(path).close()
    path.chmod(0o644)
    warning = readable_by_others(path)
    assert warning is not None and "chmod 600" in warning and "0644" in warning

    listed = run_cli("history", "--history", str(path))
    assert listed.returncode == 0
    assert "readable by other users" in listed.stderr and str(path) in listed.stderr
    # A warning, not a repair behind the user's back: the mode is theirs to change.
    assert _mode(path) == 0o644
