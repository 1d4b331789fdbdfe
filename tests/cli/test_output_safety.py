"""``-o`` never destroys what it is pointed at: a device, a FIFO or ``-`` is written through
(never replaced by a file), a symlink keeps pointing where it did, and an output that is the
history store, the config, a targets or an accepted-risk file is refused (exit 2) before
anything is scanned. Through the real CLI; devices are made in the test's own directory
(``mknod`` as root), never the system's."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from exposure_audit.history.store import HistoryStore

from .runner import run_cli

# Loopback, never scanned: each refusal happens before discovery (a scan would take seconds
# and the address answers nothing).
TARGET = "127.68.0.1"


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    path = tmp_path / "h.sqlite3"
    HistoryStore(path).close()
    return path


def _history(store: Path, output: str) -> tuple[int, str, str]:
    done = run_cli("history", "--history", str(store), "--format", "json", "-o", output)
    return done.returncode, done.stdout, done.stderr


def test_a_character_device_is_written_through_not_replaced(tmp_path: Path, store: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    code, _, _ = _history(store, str(null))
    assert code == 0
    assert stat.S_ISCHR(null.stat().st_mode)


def test_a_full_device_is_an_error_and_stays_a_device(tmp_path: Path, store: Path) -> None:
    full = tmp_path / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    code, stdout, stderr = _history(store, str(full))
    assert code == 3 and "cannot write" in stderr
    assert stdout.startswith("[")  # what could not be written is on stdout, not lost
    assert stat.S_ISCHR(full.stat().st_mode)


def test_a_fifo_gets_the_report_and_stays_a_fifo(tmp_path: Path, store: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code, _, _ = _history(store, str(fifo))
    reader.join(30)
    assert code == 0
    assert received and received[0].startswith(b"[")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_dash_is_standard_output(tmp_path: Path, store: Path) -> None:
    done = run_cli("history", "--history", str(store), "--format", "json", "-o", "-", timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("[")
    assert not Path("-").exists() and not (tmp_path / "-").exists()


def test_a_symlink_keeps_pointing_at_its_file_which_gets_the_report(
    tmp_path: Path, store: Path
) -> None:
    real = tmp_path / "reports" / "latest.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "report.json"
    link.symlink_to(real)
    code, _, _ = _history(store, str(link))
    assert code == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_text().startswith("[")


def test_the_history_store_is_never_the_output(store: Path) -> None:
    before = store.read_bytes()
    for command in (["history"], ["report", "latest"], ["diff"]):
        done = run_cli(*command, "--history", str(store), "-o", str(store))
        assert done.returncode == 2, command
        assert "history store" in done.stderr
    assert store.read_bytes() == before


def test_a_scan_refuses_to_write_over_its_own_inputs_before_scanning(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text(f"{TARGET}\n")
    accepted = tmp_path / "accepted.toml"
    accepted.write_text("")
    config = tmp_path / "audit.toml"
    config.write_text(f'targets = ["{TARGET}"]\nallow_private = true\n')
    history = tmp_path / "h.sqlite3"
    cases = [
        (["-i", str(targets), "--allow-private"], targets, "targets file"),
        ([TARGET, "--allow-private", "--accepted", str(accepted)], accepted, "accepted-risk"),
        (["-c", str(config)], config, "config file"),
        ([TARGET, "--allow-private", "--history", str(history)], history, "history store"),
    ]
    for args, output, what in cases:
        before = output.read_bytes() if output.exists() else None
        done = run_cli("scan", *args, "-o", str(output), timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert what in done.stderr and "nothing" not in done.stdout
        assert (output.read_bytes() if output.exists() else None) == before


def test_an_output_that_cannot_be_written_is_refused_before_scanning(tmp_path: Path) -> None:
    for output in (tmp_path / "missing" / "r.json", tmp_path):
        done = run_cli("scan", TARGET, "--allow-private", "-o", str(output), timeout=60)
        assert done.returncode == 2, done.stderr
        assert str(output) in done.stderr
