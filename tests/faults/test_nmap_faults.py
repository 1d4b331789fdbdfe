"""nmap missing, killed mid-scan, or printing garbage: the real CLI in a subprocess, a fake
``nmap`` first on PATH. Each ends with exit 3 and a message naming nmap; what was found before
is in the report and in the history, and the history is sound.

tests/probes/test_nmap_scan.py covers the scanner class itself (missing binary, garbage,
cancellation); these tests cover what the user sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from exposure_audit.history.store import HistoryStore
from exposure_audit.lab import Lab, LabHost, LabService

from ..servers import Server
from .support import environment, fake_nmap, integrity, oddball, run_cli

DSM = "127.91.1.10"  # DSM 7.2 over plain HTTP: found at once, no -sV needed (grade F)
TARPIT = "127.91.1.11"  # answers HTTP with unknown bytes, then nmap -sV has its turn


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Lab, Server]]:
    hosts = [LabHost("dsm", DSM, "dsm", (LabService(5000, "http", "dsm72"),), "F", None)]
    with Lab(hosts) as running, oddball(TARPIT) as pit:
        yield running, pit


def _scan(
    tmp_path: Path, path: str, *targets: str, lab: tuple[Lab, Server] | None = None
) -> tuple[int, str, str]:
    ports = "5000" if lab is None else f"5000,{lab[1].port}"
    result = run_cli(
        "scan",
        *targets,
        "--allow-private",
        "-p",
        ports,
        "--request-timeout",
        "1",
        "--host-timeout",
        "20",
        "--format",
        "json",
        "-o",
        str(tmp_path / "report.json"),
        "--history",
        str(tmp_path / "history.sqlite3"),
        env=environment(path),
    )
    return result.returncode, result.stdout, result.stderr


def test_without_nmap_on_path_nothing_runs_and_nothing_is_written(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    code, stdout, stderr = _scan(tmp_path, str(empty), DSM)
    assert code == 3, stderr
    assert "exposure-audit: run failed: nmap not found" in stderr
    assert stdout == ""
    # Nothing half-written: no report, no history store, no temporary file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_nmap_killed_mid_scan_keeps_the_hosts_done_before(
    lab: tuple[Lab, Server], tmp_path: Path
) -> None:
    # Given an nmap whose discovery works but whose -sV run is killed (SIGKILL) while it runs
    path = fake_nmap(
        tmp_path / "bin",
        'case " $* " in *" -sV "*)\n'
        '  "$REAL" "$@" & sleep 0.3; kill -9 $!; kill -9 $$ ;;\n'
        "esac\n"
        'exec "$REAL" "$@"',
    )
    # When the DSM host (done without -sV) and the tarpit (needs -sV) are scanned
    code, _, stderr = _scan(tmp_path, path, DSM, TARPIT, lab=lab)
    # Then the run fails with exit 3, naming nmap and how it died
    assert code == 3, stderr
    assert "exposure-audit: run error: nmap was killed by SIGKILL mid-scan" in stderr
    # And the report holds the DSM host, complete, with its findings
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["complete"] is False
    hosts = {h["address"]: h for h in doc["hosts"]}
    assert hosts[DSM]["status"] == "complete" and hosts[DSM]["grade"] == "F"
    assert "DSM001" in {f["rule"] for f in hosts[DSM]["findings"]}
    # and the tarpit as incomplete, with its open port, never as clean
    assert hosts[TARPIT]["status"] == "incomplete" and hosts[TARPIT]["grade"] != "A"
    assert any("nmap was killed" in e for e in doc["errors"])
    # And the history holds the same run, incomplete, and is sound
    history = tmp_path / "history.sqlite3"
    assert integrity(history) == [("ok",)]
    with HistoryStore(history) as store:
        (run,) = store.runs()
        assert run.state == "incomplete" and not run.complete
        stored = store.report_doc(run.id)
    assert [h["address"] for h in stored["hosts"]] == [DSM, TARPIT]
    assert stored["hosts"][0]["grade"] == "F"


def test_nmap_killed_during_one_discovery_batch_keeps_the_other(
    lab: tuple[Lab, Server], tmp_path: Path
) -> None:
    # Given an nmap killed while it discovers the IPv6 batch (each family is a batch of its own)
    path = fake_nmap(
        tmp_path / "bin",
        'case " $* " in *" -6 "*)\n'
        '  "$REAL" "$@" & sleep 0.2; kill -9 $!; kill -9 $$ ;;\n'
        "esac\n"
        'exec "$REAL" "$@"',
    )
    code, _, stderr = _scan(tmp_path, path, DSM, "::1")
    assert code == 3, stderr
    assert "nmap was killed by SIGKILL mid-scan" in stderr
    doc = json.loads((tmp_path / "report.json").read_text())
    hosts = {h["address"]: h for h in doc["hosts"]}
    # The IPv4 batch is complete; the IPv6 host says discovery failed, graded "?" not A
    assert hosts[DSM]["status"] == "complete" and hosts[DSM]["grade"] == "F"
    assert hosts["::1"]["status"] == "incomplete" and hosts["::1"]["grade"] == "?"
    assert any("nmap was killed" in e for e in hosts["::1"]["errors"])
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        (run,) = store.runs()
        assert run.state == "incomplete"
        assert {h["address"] for h in store.report_doc(run.id)["hosts"]} == {DSM, "::1"}


_NMAP_RUN = (Path(__file__).resolve().parents[1] / "data" / "nmap" / "host-timeout.xml").read_text()


@pytest.mark.parametrize(
    "printed",
    [
        "Starting Nmap \x1b[31m<<<garbage\n",
        _NMAP_RUN[: _NMAP_RUN.index("<runstats>")] + "</nmaprun>\n",  # stopped before its end
    ],
    ids=["junk", "xml-cut-short"],
)
def test_nmap_printing_garbage_is_exit_3_naming_nmap(
    lab: tuple[Lab, Server], tmp_path: Path, printed: str
) -> None:
    (tmp_path / "printed").write_text(printed)
    path = fake_nmap(tmp_path / "bin", f"cat {tmp_path / 'printed'}; exit 0")
    code, _, stderr = _scan(tmp_path, path, DSM)
    assert code == 3, stderr
    assert "exposure-audit: run error: nmap printed no usable XML" in stderr
    assert "Traceback" not in stderr
    assert "\x1b" not in stderr  # what nmap printed is not echoed raw to the terminal
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["complete"] is False
    (host,) = doc["hosts"]
    assert host["address"] == DSM and host["status"] == "incomplete" and host["grade"] == "?"
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        (run,) = store.runs()
        assert run.state == "incomplete"


def test_nmap_that_cannot_be_executed_is_exit_3_naming_it(
    lab: tuple[Lab, Server], tmp_path: Path
) -> None:
    # An "nmap" on PATH that the kernel refuses to run (no interpreter line, not executable
    # code): found by name, fails when started.
    directory = tmp_path / "bin"
    directory.mkdir()
    broken = directory / "nmap"
    broken.write_bytes(b"\x7fELF\x00garbage")
    broken.chmod(0o755)
    code, _, stderr = _scan(tmp_path, f"{directory}:/usr/bin:/bin", DSM)
    assert code == 3, stderr
    assert f"nmap could not be started ({broken})" in stderr
    assert "Traceback" not in stderr


def test_nmap_failing_is_exit_3_with_its_message_shown_inert(
    lab: tuple[Lab, Server], tmp_path: Path
) -> None:
    # nmap's stderr reaches the terminal: an escape sequence in it must arrive as text
    path = fake_nmap(tmp_path / "bin", "printf 'QUITTING!\\033]0;owned\\007\\n' >&2; exit 1")
    code, _, stderr = _scan(tmp_path, path, DSM)
    assert code == 3, stderr
    assert "exposure-audit: run error: nmap exited with 1: QUITTING!\\x1b]0;owned\\x07" in stderr
    assert "\x1b" not in stderr and "\x07" not in stderr
