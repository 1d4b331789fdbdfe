"""Scheduled audits end to end, on real parts: two scans of the lab a "week" apart with a DSM
upgraded and a new port opened in between; the diff says exactly that, ``--fail-on-new high``
exits 1 only because of the new port, one webhook (a real HTTP receiver on loopback) and one
mail (a real SMTP server, aiosmtpd) say the same, and the history keeps every run."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from exposure_audit.lab import Lab, LabHost, LabService

from ..servers import Server, read_request, serve

# Addresses of their own, so the demo lab (127.77.0.0/24) may run beside these tests.
NAS, SPARE = "127.79.0.10", "127.79.0.70"


def _week(n: int) -> Lab:
    """Week 1: DSM 4.3-3810 on 5000/5001, a spare box with nothing open.
    Week 2: the DSM upgraded to 7.2.2-72806, and Telnet opened on the spare box."""
    site = "dsm43" if n == 1 else "dsm72"
    nas = LabHost(
        "syno",
        NAS,
        "dsm",
        (LabService(5000, "http", site), LabService(5001, "https", site)),
        "F",
        None,
    )
    spare_services = () if n == 1 else (LabService(23, "banner", "telnet_syno"),)
    return Lab([nas, LabHost("spare", SPARE, "clean", spare_services, "A", None)])


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def receivers() -> Iterator[tuple[Server, _Mailbox, int]]:
    async def hook(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        head = await read_request(reader, s)
        length = int(
            next(
                (
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                b"0",
            )
        )
        body = await reader.readexactly(length)
        s.requests[-1] = head + body
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    mailbox = _Mailbox()
    with socket.socket() as probe:  # aiosmtpd's Controller needs a concrete free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with serve(hook) as webhook:
            yield webhook, mailbox, port
    finally:
        smtp.stop()


def _config(tmp: Path, webhook: Server, smtp_port: int) -> Path:
    config = tmp / "audit.toml"
    config.write_text(f"""
targets = ["{NAS}", "{SPARE}"]
allow_private = true
ports = "23,5000,5001"
host_timeout = 30

[history]
path = "history.sqlite3"

[notify]
when = "change"

[notify.webhook]
url = "http://{webhook.host}:{webhook.port}/hook"

[notify.email]
host = "127.0.0.1"
port = {smtp_port}
starttls = false
sender = "audit@example.net"
to = ["owner@example.net"]
""")
    return config


def _scan(config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "scan",
            "-c",
            str(config),
            "--format",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def _where(entries: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {(e["rule"], e["address"], e["port"]) for e in entries}


def test_two_weekly_scans_say_exactly_what_changed(
    tmp_path: Path, receivers: tuple[Server, _Mailbox, int]
) -> None:
    webhook, mailbox, smtp_port = receivers
    config = _config(tmp_path, webhook, smtp_port)

    with _week(1):
        first, _ = _scan(config, "--fail-on-new", "high")
    assert first == 1  # a first run: every finding is new
    hooks_before, mails_before = len(webhook.requests), len(mailbox.messages)

    with _week(2):
        code, doc = _scan(config, "--compare", "--fail-on-new", "high")
        again, doc3 = _scan(config, "--compare", "--fail-on-new", "high")

    diff = doc["diff"]
    # Then the diff says exactly what changed: one new port, the DSM upgrade.
    assert _where(diff["new"]) == {("SVC001", SPARE, 23)}
    assert ("DSM003", NAS, 5000) in _where(diff["resolved"])
    assert ("DSM004", NAS, 5000) in _where(diff["resolved"])
    changed = {(c["rule"], c["port"]): c["changes"] for c in diff["changed"]}
    assert any("4.3-3810" in t and "7.2.2-72806" in t for t in changed[("DSM005", 5000)])
    order = ["info", "low", "medium", "high", "critical"]
    worse = [
        c
        for c in diff["changed"]
        if order.index(c["after"]["severity"]) > order.index(c["before"]["severity"])
    ]
    assert worse == []  # the upgrade made nothing worse
    assert diff["services_appeared"] == [{"address": SPARE, "port": 23, "protocol": "tcp"}]
    # And --fail-on-new high exits 1 because of the new port, and 0 once nothing is new.
    assert code == 1
    assert again == 0 and doc3["diff"]["new"] == []

    # One webhook and one mail for the week-2 run, saying the same; none for the quiet run.
    assert len(webhook.requests) - hooks_before == 1
    assert len(mailbox.messages) - mails_before == 1
    posted = json.loads(webhook.requests[-1].split(b"\r\n\r\n", 1)[1])
    assert _where(posted["new"]) == {("SVC001", SPARE, 23)}
    mail = message_from_bytes(mailbox.messages[-1])
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "SVC001" in body and SPARE in body and "DSM003" in body
    assert "F" in mail["Subject"]

    # The history keeps every run, complete.
    history = subprocess.run(
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "history",
            "--history",
            str(tmp_path / "history.sqlite3"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    runs = json.loads(history.stdout)
    assert len(runs) == 3 and all(r["complete"] for r in runs)
    stored = subprocess.run(
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "diff",
            "--history",
            str(tmp_path / "history.sqlite3"),
            "1",
            "2",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert _where(json.loads(stored.stdout)["new"]) == {("SVC001", SPARE, 23)}


def test_accepted_risks_stay_in_the_report_and_do_not_count(tmp_path: Path) -> None:
    accepted = tmp_path / "accepted.toml"
    accepted.write_text(f"""
[[accept]]
rule = "SVC001"
address = "{SPARE}"
port = 23
reason = "lab telnet, isolated"
owner = "ops@example.net"
expires = 2099-12-31

[[accept]]
id = "DSM001-000000000000"
reason = "matches nothing"
owner = "ops@example.net"
expires = 2099-12-31
""")
    history = tmp_path / "h.sqlite3"
    with _week(2):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "exposure_audit",
                "scan",
                SPARE,
                "--allow-private",
                "-p",
                "23",
                "--accepted",
                str(accepted),
                "--history",
                str(history),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    # Only the accepted Telnet finding exists: it does not count for the grade or exit code.
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (host,) = doc["hosts"]
    (finding,) = host["findings"]
    assert finding["rule"] == "SVC001" and finding["acceptance"]["owner"] == "ops@example.net"
    assert host["grade"] == "A"
    assert any("stale" in note for note in doc["notes"])
    # Re-rendered from the history, the acceptance is still there.
    report = subprocess.run(
        [sys.executable, "-m", "exposure_audit", "report", "latest", "--history", str(history)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "accepted: SVC001 23/tcp (critical) by ops@example.net" in report.stdout
    html = subprocess.run(
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "report",
            "latest",
            "--history",
            str(history),
            "--format",
            "html",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Content-Security-Policy" in html.stdout and "SVC001" in html.stdout
    assert "<svg" in html.stdout  # the trend chart from the stored run


def test_schedule_prints_a_weekly_cron_line_and_systemd_units(tmp_path: Path) -> None:
    config = tmp_path / "audit.toml"
    config.write_text('targets = ["198.51.100.7"]\nallow_private = true\n')
    cron = subprocess.run(
        [sys.executable, "-m", "exposure_audit", "schedule", "--print", "cron", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert cron.stdout.startswith("0 6 * * 1 ")
    assert f"scan -c {config}" in cron.stdout and "--compare" in cron.stdout
    units = subprocess.run(
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "schedule",
            "--print",
            "systemd",
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "[Timer]" in units.stdout and "Persistent=true" in units.stdout
