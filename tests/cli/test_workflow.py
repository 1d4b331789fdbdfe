"""The weekly workflow through one config (issue 14, items 1 and 3): two real scans of a
loopback lab a "week" apart with ``scan -c``, then ``history``, ``diff`` and ``report
--compare`` reading the store that config names, in every format; a report written with ``-o``
still tells the terminal how the run went; HTML and SARIF are refused on a terminal (a real
pty) instead of flooding it with markup.

The lab binds 127.143.1.0/24 (this suite's own block); ``XDG_DATA_HOME`` points at an empty
directory, so reading the default store instead of the config's would fail loudly."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exposure_audit.lab import Lab, LabHost, LabService

NAS, SPARE = "127.143.1.10", "127.143.1.70"


def _week(n: int) -> Lab:
    """Week 1: DSM 4.3 on 5000/5001, a spare box with nothing open. Week 2: Telnet opens on
    the spare box."""
    nas = LabHost(
        "syno",
        NAS,
        "dsm",
        (LabService(5000, "http", "dsm43"), LabService(5001, "https", "dsm43")),
        "F",
        None,
    )
    spare = () if n == 1 else (LabService(23, "banner", "telnet_syno"),)
    return Lab([nas, LabHost("spare", SPARE, "clean", spare, "A", None)])


@dataclass(frozen=True)
class Workflow:
    config: Path
    store: Path
    env: dict[str, str]
    second: subprocess.CompletedProcess[str]
    second_report: Path


def cli(
    env: dict[str, str], *args: str, stdout: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``exposure-audit ARGS`` with ``env``; stdout captured unless given (a pty)."""
    return subprocess.run(
        [sys.executable, "-m", "exposure_audit", *args],
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workflow]:
    # Given a config in its own directory, naming a store next to it
    base = tmp_path_factory.mktemp("weekly")
    config = base / "audit.toml"
    config.write_text(f"""
targets = ["{NAS}", "{SPARE}"]
allow_private = true
ports = "23,5000,5001"
host_timeout = 30

[history]
path = "runs.sqlite3"
""")
    data = base / "empty-data-home"
    data.mkdir()
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    # When two weekly scans run from it, the second one writing its report to a file
    with _week(1):
        first = cli(env, "scan", "-c", str(config), "--format", "json", "-q")
    assert first.returncode == 1, first.stderr
    second_report = base / "week2.json"
    with _week(2):
        second = cli(
            env, "scan", "-c", str(config), "--compare", "-q", "--format", "json",
            "-o", str(second_report),
        )  # fmt: skip
    assert second.returncode == 1, second.stderr
    yield Workflow(config, base / "runs.sqlite3", env, second, second_report)


# -- item 1: one config for the whole workflow ----------------------------------------------


def test_history_lists_the_runs_of_the_store_the_config_names(workflow: Workflow) -> None:
    assert workflow.store.exists()
    done = cli(workflow.env, "history", "-c", str(workflow.config), "--format", "json")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    assert [r["id"] for r in runs] == [2, 1] and all(r["complete"] for r in runs)
    # The same from another directory: the store is found relative to the config, not here.
    elsewhere = subprocess.run(
        [sys.executable, "-m", "exposure_audit", "history", "-c", str(workflow.config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env=workflow.env,
        check=False,
    )
    assert elsewhere.returncode == 0 and "complete" in elsewhere.stdout


def test_without_the_config_the_default_store_is_read_and_is_empty(workflow: Workflow) -> None:
    done = cli(workflow.env, "history")
    assert done.returncode == 2
    assert "no history store" in done.stderr and "empty-data-home" in done.stderr


def test_diff_reads_the_configs_store(workflow: Workflow) -> None:
    done = cli(workflow.env, "diff", "-c", str(workflow.config), "--format", "json")
    assert done.returncode == 0, done.stderr
    diff = json.loads(done.stdout)
    assert {(e["rule"], e["address"], e["port"]) for e in diff["new"]} == {("SVC001", SPARE, 23)}


def test_a_config_without_history_is_said_so(workflow: Workflow, tmp_path: Path) -> None:
    config = tmp_path / "nohistory.toml"
    config.write_text(f'targets = ["{NAS}"]\n[history]\nenabled = false\n')
    done = cli(workflow.env, "history", "-c", str(config))
    assert done.returncode == 2 and "keeps no runs" in done.stderr


def _report(workflow: Workflow, *args: str) -> subprocess.CompletedProcess[str]:
    done = cli(workflow.env, "report", "-c", str(workflow.config), *args)
    assert done.returncode == 0, done.stderr
    return done


def test_report_compare_gives_the_changes_in_the_table(workflow: Workflow) -> None:
    table = _report(workflow, "latest", "--compare").stdout
    assert "changes since run 1:" in table
    changes = table.split("changes since run 1:", 1)[1]
    assert "SVC001" in changes and SPARE in changes
    plain = _report(workflow, "latest").stdout
    assert "changes since" not in plain


def test_report_compare_gives_the_changes_in_json_as_the_scan_did(workflow: Workflow) -> None:
    doc = json.loads(_report(workflow, "2", "--compare", "--format", "json").stdout)
    new = {(e["rule"], e["address"], e["port"]) for e in doc["diff"]["new"]}
    assert new == {("SVC001", SPARE, 23)}
    # Exactly what the scan itself said with --compare that week
    scanned = json.loads(workflow.second_report.read_text())
    assert doc["diff"]["new"] == scanned["diff"]["new"]
    assert doc["diff"]["old_run"] == scanned["diff"]["old_run"] == 1


def test_report_compare_gives_the_changes_in_markdown_and_html(workflow: Workflow) -> None:
    markdown = _report(workflow, "latest", "--compare", "--format", "markdown").stdout
    assert "## Changes since run 1" in markdown
    assert "SVC001" in markdown.split("## Changes since run 1", 1)[1]
    html = _report(workflow, "latest", "--compare", "--format", "html").stdout
    assert 'id="diff"' in html and "Changes since" in html
    assert 'id="diff"' not in _report(workflow, "latest", "--format", "html").stdout


def test_report_compare_marks_each_csv_row(workflow: Workflow) -> None:
    text = _report(workflow, "latest", "--compare", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    changes = {(r["rule"], r["address"], r["port"]): r["change"] for r in rows if r["rule"]}
    assert changes[("SVC001", SPARE, "23")] == "new"
    assert changes[("DSM001", NAS, "5000")] == "unchanged"
    assert "change" not in _report(workflow, "latest", "--format", "csv").stdout.split("\n")[0]


def test_report_compare_sets_the_sarif_baseline_state(workflow: Workflow) -> None:
    doc: dict[str, Any] = json.loads(
        _report(workflow, "latest", "--compare", "--format", "sarif").stdout
    )
    (run,) = doc["runs"]
    states = {
        (r["ruleId"], r["locations"][0]["logicalLocations"][0]["name"]): r["baselineState"]
        for r in run["results"]
    }
    assert states[("SVC001", f"{SPARE}:23")] == "new"
    assert states[("DSM001", f"{NAS}:5000")] == "unchanged"
    assert run["properties"]["comparedWithRun"] == 1


def test_report_compare_marks_each_jsonl_line(workflow: Workflow) -> None:
    text = _report(workflow, "latest", "--compare", "--format", "jsonl").stdout
    lines = [json.loads(line) for line in text.splitlines()]
    changes = {
        (e["rule"]["id"], e["host"]["ip"][0], e["destination"]["port"]): e["exposure_audit"][
            "change"
        ]
        for e in lines
        if "destination" in e
    }
    assert changes[("SVC001", SPARE, 23)] == {"status": "new", "since_run": 1, "details": []}
    assert changes[("DSM001", NAS, 5000)]["status"] == "unchanged"
    plain = _report(workflow, "latest", "--format", "jsonl").stdout
    assert all("change" not in json.loads(line)["exposure_audit"] for line in plain.splitlines())


def test_report_compare_of_the_first_run_says_there_is_nothing_before(
    workflow: Workflow,
) -> None:
    assert "no earlier complete run" in _report(workflow, "1", "--compare").stdout
    doc = json.loads(_report(workflow, "1", "--compare", "--format", "json").stdout)
    assert doc["diff"] is None


# -- item 3: output --------------------------------------------------------------------------


def test_a_scan_written_to_a_file_still_tells_the_terminal_how_it_went(
    workflow: Workflow,
) -> None:
    lines = workflow.second.stderr.splitlines()
    assert workflow.second.stdout == ""
    assert "exposure-audit: grade F, 2 hosts: " in lines[-2]
    assert "since run 1: 1 new" in lines[-2]
    assert lines[-1] == f"exposure-audit: report written to {workflow.second_report}"


def test_a_report_written_to_a_file_says_so(workflow: Workflow, tmp_path: Path) -> None:
    out = tmp_path / "weekly.html"
    done = _report(workflow, "latest", "--compare", "--format", "html", "-o", str(out))
    assert done.stdout == "" and out.read_text().startswith("<!DOCTYPE html>")
    assert "run 2: grade F, 2 hosts" in done.stderr
    assert f"report written to {out}" in done.stderr


def _on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the CLI with stdout on a pty, as in a terminal; (exit code, what reached the
    terminal, stderr). The terminal is read while the command runs (a pty holds little)."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "exposure_audit", *args],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        os.close(follower)
        seen = b""
        try:
            while chunk := os.read(leader, 65536):
                seen += chunk
        except OSError:  # EIO: the command closed the terminal
            pass
        finally:
            os.close(leader)
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=180)
    return code, seen.decode(errors="replace"), stderr


@pytest.mark.parametrize("fmt", ["html", "sarif"])
def test_markup_for_a_terminal_is_refused_with_a_hint(workflow: Workflow, fmt: str) -> None:
    code, seen, stderr = _on_a_terminal(
        workflow.env, "report", "-c", str(workflow.config), "latest", "--format", fmt
    )
    assert code == 2
    assert seen == ""
    assert "use -o FILE" in stderr and "pipe it" in stderr


def test_a_scan_for_a_terminal_in_html_is_refused_before_scanning(workflow: Workflow) -> None:
    # 127.143.1.99 answers nothing: a scan would take seconds and write a report
    code, seen, stderr = _on_a_terminal(
        workflow.env, "scan", "127.143.1.99", "--allow-private", "--no-history", "--format", "html"
    )
    assert code == 2 and seen == "" and "use -o FILE" in stderr


def test_markup_to_a_pipe_or_to_dash_is_written(workflow: Workflow) -> None:
    piped = _report(workflow, "latest", "--format", "sarif")
    assert json.loads(piped.stdout)["version"] == "2.1.0"
    code, seen, _ = _on_a_terminal(
        workflow.env, "report", "-c", str(workflow.config), "latest", "--format", "html", "-o", "-"
    )
    assert code == 0 and "<!DOCTYPE html>" in seen
    code, seen, _ = _on_a_terminal(workflow.env, "report", "-c", str(workflow.config), "latest")
    assert code == 0 and "SVC001" in seen  # the table is for terminals


@pytest.mark.parametrize(
    "command",
    [["history"], ["diff"], ["report", "latest"], ["report", "latest", "--compare"]],
)
def test_an_output_that_cannot_be_written_is_refused_first(
    workflow: Workflow, tmp_path: Path, command: list[str]
) -> None:
    out = tmp_path / "missing-dir" / "out.txt"
    done = cli(workflow.env, *command, "-c", str(workflow.config), "-o", str(out))
    assert done.returncode == 2
    assert "no directory" in done.stderr and done.stdout == ""
    # and the store itself is never the output
    done = cli(workflow.env, *command, "-c", str(workflow.config), "-o", str(workflow.store))
    assert done.returncode == 2 and "history store" in done.stderr
