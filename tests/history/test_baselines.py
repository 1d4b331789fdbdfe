"""Run-to-run comparison on real parts (the real CLI, a real SQLite history, lab hosts and a
webhook receiver on loopback): what a run did not look at is carried, not resolved, and a run
that covered nothing never becomes the baseline and always says so.

Every listener binds 127.61.0.0/24 (the lab's DNS server an ephemeral port of 127.0.0.1), so
these tests can run beside the demo lab and the other suites.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exposure_audit.lab import Lab, LabHost, LabService

from ..cli.runner import run_cli as _cli
from ..servers import Server, read_request, serve

NAS = "127.61.0.10"
NAMED_NAS = "127.61.0.20"
HOOK = "127.61.0.99"
NAME = "nas.example.net"


def _where(entries: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {(e["rule"], e["address"], e["port"]) for e in entries}


def _history(path: Path) -> list[dict[str, Any]]:
    result = _cli("history", "--history", str(path), "--format", "json", timeout=60)
    assert result.returncode == 0, result.stderr
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs


# -- a port not scanned: not re-checked, carried, and not new when seen again ----------------


def _scan(history: Path, ports: str) -> tuple[int, dict[str, Any]]:
    result = _cli(
        "scan",
        NAS,
        "--allow-private",
        "-p",
        ports,
        "--history",
        str(history),
        "--compare",
        "--fail-on-new",
        "high",
        "--format",
        "json",
        "-q",
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_port_left_out_of_one_run_is_not_rechecked_and_not_new_when_seen_again(
    tmp_path: Path,
) -> None:
    history = tmp_path / "history.sqlite3"
    nas = LabHost(
        "syno",
        NAS,
        "dsm",
        (LabService(5000, "http", "dsm72"), LabService(5001, "https", "dsm72")),
        "D",
        None,
    )
    with Lab([nas]):
        # Given run 1 that sees DSM002 on 5001
        first, run1 = _scan(history, "5000,5001")
        # When run 2 scans only 5000, and run 3 scans 5001 again
        _, run2 = _scan(history, "5000")
        third, run3 = _scan(history, "5000,5001")

    assert first == 1  # a first run: every finding is new
    assert ("DSM002", NAS, 5001) in _where(run1["hosts"][0]["findings"])
    # Then run 2 did not re-check DSM002: not resolved, and 5001 did not "close"
    diff2 = run2["diff"]
    on_5001 = {w for w in _where(run1["hosts"][0]["findings"]) if w[2] == 5001}
    assert _where(diff2["not_rechecked"]) == on_5001
    entry = next(e for e in diff2["not_rechecked"] if e["rule"] == "DSM002")
    assert entry["changes"] == ["port 5001/tcp not in the new run's port set"]
    assert entry["before"]["rule"] == "DSM002" and entry["after"] is None
    assert not on_5001 & _where(diff2["resolved"])
    assert diff2["services_vanished"] == []
    # And run 3, comparing with run 2 and what it carried, does not call DSM002 new
    diff3 = run3["diff"]
    assert diff3["old_run"] == diff2["new_run"]
    assert diff3["new"] == [] and diff3["not_rechecked"] == []
    assert on_5001 <= _where(diff3["unchanged"] + diff3["changed"])
    assert third == 0  # --fail-on-new high: nothing new
    # And the stored diff of runs 2 and 3 says the same
    stored = _cli(
        "diff",
        "--history",
        str(history),
        str(diff3["old_run"]),
        str(diff3["new_run"]),
        "--format",
        "json",
        timeout=60,
    )
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["new"] == []
    table = _cli("diff", "--history", str(history), "--format", "table", timeout=60)
    assert "0 not re-checked" in table.stdout  # the two latest runs: 2 -> 3


# -- a run that covered nothing: stored as such, never the baseline, always notified ---------


@pytest.fixture
def webhook() -> Iterator[Server]:
    async def hook(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        head = await read_request(reader, s)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        s.requests[-1] = await reader.readexactly(length)  # keep the body only
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    with serve(hook, host=HOOK) as server:
        yield server


def _named_lab(resolves: bool) -> Lab:
    """The NAS behind a DDNS name; when the name stops resolving, the zone keeps its origin
    (so the answer is NXDOMAIN, not REFUSED)."""
    zone = {NAME: (("A", NAMED_NAS),)} if resolves else {"www.example.net": (("A", HOOK),)}
    nas = LabHost("syno", NAMED_NAS, "dsm", (LabService(5000, "http", "dsm72"),), "F", None)
    return Lab([nas], zone)


def _weekly(config: Path, lab: Lab) -> dict[str, Any]:
    with lab:
        result = _cli(
            "scan",
            "-c",
            str(config),
            "--resolver",
            lab.resolver,
            "--compare",
            "-q",
            "--format",
            "json",
        )
    assert result.stdout, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_a_run_that_audited_nothing_is_never_the_baseline_and_is_always_notified(
    tmp_path: Path, webhook: Server
) -> None:
    # Given a weekly job that notifies only of new findings
    config = tmp_path / "audit.toml"
    config.write_text(f"""
targets = ["{NAME}"]
allow_private = true
ports = "5000"

[history]
path = "history.sqlite3"

[notify]
when = "new"

[notify.webhook]
url = "http://{HOOK}:{webhook.port}/hook"
""")
    history = tmp_path / "history.sqlite3"
    first = _weekly(config, _named_lab(resolves=True))
    hooks = len(webhook.requests)  # the first run's findings are all new

    # When the name stops resolving for a week
    empty = _weekly(config, _named_lab(resolves=False))

    # Then that run audited nothing, and the notification says so with the name's reason,
    # though nothing is new
    assert empty["hosts"] == [] and empty["summary"]["grade"] == "?"
    assert len(webhook.requests) == hooks + 1
    payload = json.loads(webhook.requests[-1])
    assert payload["coverage"]["covered"] == "nothing"
    assert payload["coverage"]["text"].startswith(f"audit covered nothing: {NAME}: ")
    assert "NXDOMAIN" in payload["coverage"]["text"]
    assert payload["new"] == [] and payload["resolved"] == []
    # And the history lists it as covering nothing
    runs = {r["id"]: r for r in _history(history)}
    first_id, empty_id = sorted(runs)
    assert runs[empty_id]["coverage"] == "nothing"
    assert runs[empty_id]["state"].endswith("(covered nothing)")
    assert runs[first_id]["coverage"] == "full"

    # When the name resolves again
    back = _weekly(config, _named_lab(resolves=True))

    # Then the run compares with the last run that covered the NAS, not with the empty one
    assert back["diff"]["old_run"] == first_id
    assert back["diff"]["new"] == [] and back["diff"]["resolved"] == []
    assert _where(back["diff"]["unchanged"]) == _where(first["hosts"][0]["findings"])
    # And, nothing being new, no notification
    assert len(webhook.requests) == hooks + 1


def test_a_run_that_audited_fewer_hosts_than_its_baseline_says_which_and_is_no_baseline(
    tmp_path: Path, webhook: Server
) -> None:
    # Given a job for two names, the second of which stops resolving
    spare, spare_address = "spare.example.net", "127.61.0.21"

    def lab(both: bool) -> Lab:
        zone = {NAME: (("A", NAMED_NAS),)}
        if both:
            zone[spare] = (("A", spare_address),)
        hosts = [
            LabHost("syno", NAMED_NAS, "dsm", (LabService(5000, "http", "dsm72"),), "F", None),
            LabHost("spare", spare_address, "clean", (), "A", None),
        ]
        return Lab(hosts, zone)

    def write(*targets: str) -> Path:
        config = tmp_path / "audit.toml"
        config.write_text(f"""
targets = {json.dumps(list(targets))}
allow_private = true
ports = "5000"

[history]
path = "history.sqlite3"

[notify]
when = "new"

[notify.webhook]
url = "http://{HOOK}:{webhook.port}/hook"
""")
        return config

    config = write(NAME, spare)
    _weekly(config, lab(both=True))
    hooks = len(webhook.requests)
    # When one run audits only the first name
    fewer = _weekly(config, lab(both=False))
    # Then it is notified (nothing new) as covering fewer hosts, naming the one it missed
    assert [h["address"] for h in fewer["hosts"]] == [NAMED_NAS]
    assert len(webhook.requests) == hooks + 1
    coverage = json.loads(webhook.requests[-1])["coverage"]
    assert coverage["covered"] == "fewer_hosts" and coverage["missing"] == [spare_address]
    assert coverage["text"] == (
        f"audit covered fewer hosts than run 1: 1 of 2 (not audited: {spare_address})"
    )
    # And the next run still compares with run 1
    again = _weekly(config, lab(both=True))
    assert again["diff"]["old_run"] == 1
    # But a job whose targets were narrowed on purpose is not short of anything
    narrowed = _weekly(write(NAME), lab(both=True))
    runs = {r["id"]: r["coverage"] for r in _history(tmp_path / "history.sqlite3")}
    assert runs == {1: "full", 2: "fewer_hosts", 3: "full", 4: "full"}
    assert narrowed["diff"]["old_run"] == 3
