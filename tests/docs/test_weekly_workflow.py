"""The weekly workflow of docs/scheduling.md, run as written through the real CLI from what a
fresh clone holds: copy the example config and targets, edit them (here: to point at a loopback
lab), dry-run, two weekly scans with something new in between, history, diff, a report, and the
crontab line. Nothing leaves the machine: the edited config names only the lab's loopback
addresses and DNS server, and its webhook is a receiver on 127.0.0.1 (the e-mail channel is
taken out)."""

from __future__ import annotations

import http.server
import json
import re
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exposure_audit.history.message import SCHEMA
from exposure_audit.lab import Lab, LabHost, demo_lab
from exposure_audit.lab.catalog import demo_zone

from .runnable import REPO, Command, blocks_of, fresh_clone, run_line

# The demo lab's boxes the config audits: the DSM 4.3 (by its name), the web server, and the
# box that grows Telnet and SMB between week 1 and week 2.
NAS, WEB, LEGACY = "127.77.0.10", "127.77.0.40", "127.77.0.60"
PORTS = "22,23,80,443,445,5000-5001"


def _lab(week: int) -> Lab:
    """Week 1: the legacy box answers nothing; week 2: someone turned on Telnet and SMB."""
    demo = demo_lab(ipv6=None)
    hosts = [h for h in demo.hosts if h.address in (NAS, WEB, LEGACY)]
    if week == 1:
        hosts = [
            LabHost(h.name, h.address, "closed", (), "A", None) if h.address == LEGACY else h
            for h in hosts
        ]
    return Lab(hosts)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on 127.0.0.1: its URL and the JSON bodies it was sent."""
    received: list[dict[str, Any]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/exposure-audit", received
    finally:
        server.shutdown()
        server.server_close()


def _edit_config(path: Path, resolver: str, webhook_url: str) -> None:
    """What the workflow tells the user to do after copying: their targets, their channels."""
    text = path.read_text(encoding="utf-8")
    edits = [
        (r"targets = \[.*?\]\n", f'targets = ["nas.example.net", "{WEB}"]\n'),
        (r"exclude = \[.*?\]\n", "exclude = []\n"),
        (r'# ports = ".*?"\n', f'ports = "{PORTS}"\n'),
        (r'# resolver = ".*?"\n', f'resolver = "{resolver}"\n'),
        (r"# allow_private = false\n", "allow_private = true\n"),
        (r"# upnp = true\n", "upnp = false\n"),
        (r'url = "https://hooks\.example\.net/exposure-audit"\n', f'url = "{webhook_url}"\n'),
        (r"\[notify\.email\]\n.*?(?=\n# ---)", ""),  # no SMTP server here
    ]
    for pattern, replacement in edits:
        text, count = re.subn(pattern, replacement, text, count=1, flags=re.DOTALL)
        assert count == 1, f"docs/audit.example.toml changed: {pattern!r} no longer matches"
    path.write_text(text, encoding="utf-8")
    # Nothing in it reaches past loopback: names go to the lab's DNS, no SMTP server is named
    config = tomllib.loads(text)
    assert config["resolver"] == resolver and config["allow_private"] is True
    assert "email" not in config["notify"]
    assert config["notify"]["webhook"]["url"] == webhook_url


def _run(command: Command, cwd: Path, expect: int) -> str:
    result = run_line(command.text, cwd, timeout=240)
    assert result.returncode == expect, (
        f"{command.where}: {command.text}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_the_weekly_workflow_of_the_scheduling_doc_runs_as_written(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    (block,) = blocks_of(REPO / "docs" / "scheduling.md")
    copy, dry, week1, week2, history, diff, report, schedule = block.commands
    assert [c.text.split("#")[0].split()[1:3] for c in block.commands[1:]] == [
        ["scan", "-c"],
        ["scan", "-c"],
        ["scan", "-c"],
        ["history", "-c"],
        ["diff", "-c"],
        ["report", "latest"],
        ["schedule", "--print"],
    ]
    cwd = fresh_clone(tmp_path)
    url, received = webhook
    # DNS for the lab's names stays up all along (its port is in the config).
    with Lab((), demo_zone(ipv6=None)) as dns:
        # Given the example config and targets copied as the doc says, then edited
        _run(copy, cwd, 0)
        _edit_config(cwd / "audit.toml", dns.resolver, url)
        (cwd / "targets.txt").write_text(f"# the box in the corner\n{LEGACY}\n")
        # A dry run lists what the config would scan, and scans nothing
        listed = _run(dry, cwd, 0)
        assert all(a in listed for a in (WEB, LEGACY, "nas.example.net", PORTS.split(",")[0]))
        assert not (cwd / "history").exists()
        # Week 1: the first run; every finding is new, DSM 4.3 over HTTP is critical
        with _lab(1):
            first = _run(week1, cwd, 1)
        assert NAS in first and "nas.example.net" in first
        # Week 2: Telnet and SMB appeared on the box in the corner
        with _lab(2):
            second = _run(week2, cwd, 1)
    assert "since run 1" in second, second
    assert LEGACY in second
    # The history has both runs, in the config's store (relative to the config file)
    assert (cwd / "history" / "exposure-audit.sqlite3").is_file()
    runs = _run(history, cwd, 0)
    assert re.search(r"^\s*1\s", runs, re.M) and re.search(r"^\s*2\s", runs, re.M), runs
    # The diff names what is new: the Telnet box
    changes = _run(diff, cwd, 0)
    assert LEGACY in changes and "23" in changes, changes
    assert "new" in changes.lower()
    # The report of the latest run, written as Markdown
    _run(report, cwd, 0)
    written = (cwd / "week2.md").read_text(encoding="utf-8")
    assert LEGACY in written and NAS in written
    assert "since run 1" in written, written  # report --compare: the changes of week 2
    # The crontab line runs the same command, with absolute paths
    cron = _run(schedule, cwd, 0).strip()
    assert re.fullmatch(r"0 6 \* \* 1 \S+ -m exposure_audit scan -c \S+ --compare", cron), cron
    assert f"-c {(cwd / 'audit.toml').resolve()} " in cron + " "
    # The webhook heard both weeks (when = "new": each had a new high finding), in the
    # documented schema
    assert [n["schema"] for n in received] == [SCHEMA, SCHEMA]
    assert received[0]["first_run"] is True  # (its "run" id: issue 14 item 9, elsewhere)
    assert received[1]["run"] == 2 and received[1]["first_run"] is False
    assert received[1]["compared_with"] == 1
    new_ports = {(f["address"], f["port"]) for f in received[1]["new"]}
    assert (LEGACY, 23) in new_ports
