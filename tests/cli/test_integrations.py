"""Where teams already look, end to end on real parts in 127.147.0.0/16: two scheduled scans of
a loopback lab a "week" apart (a Telnet port opens in between) notify through Apprise
(``[notify.apprise]`` and ``--notify``) to real HTTP receivers, one of which answers 500, one
never answers and one refuses; write their metrics for node_exporter's textfile collector
(checked by ``promtool``, then scraped from the real node_exporter) and their findings as
ECS JSON lines. No part of a notification URL's token reaches the history, the reports, the
metrics or the output, and a failing notification never fails the audit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exposure_audit.lab import Lab, LabHost, LabService

from ..history.test_apprise import Receiver, _read
from ..render.test_jsonl import validated_lines
from ..render.test_prometheus import check_metrics, samples
from ..servers import Server, serve
from .runner import run_cli

BOX = "127.147.0.10"
HOST = "127.147.0.1"
TOKEN = "Zt7uNIQUEtok3n9"  # distinctive: grepped for everywhere afterwards


def _week(n: int) -> Lab:
    """Week 1: a box with nothing open. Week 2: Telnet opened on it (SVC001, critical: a
    Synology login banner over cleartext)."""
    services = () if n == 1 else (LabService(23, "banner", "telnet_syno"),)
    return Lab([LabHost("box", BOX, "clean", services, "A", None)])


def _serve(status: int | None) -> Iterator[Receiver]:
    """``status`` None: read the request and never answer."""
    received: list = []  # type: ignore[type-arg]

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        received.append(await _read(reader))
        if status is None:
            await asyncio.sleep(3600)
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok" % status)
        await writer.drain()

    with serve(handle, host=HOST) as server:
        yield Receiver(server, received)


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver, Receiver, int]]:
    ok, failing, hanging = _serve(200), _serve(500), _serve(None)
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        refused = int(probe.getsockname()[1])
    try:
        yield next(ok), next(failing), next(hanging), refused
    finally:
        for gen in (ok, failing, hanging):
            gen.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _config(tmp: Path) -> Path:
    config = tmp / "audit.toml"
    config.write_text(f"""
targets = ["{BOX}"]
allow_private = true
ports = "23,2323"
host_timeout = 20
upnp = false

[history]
path = "history.sqlite3"

[metrics]
path = "textfile/exposure-audit.prom"

[notify]
when = "always"

[notify.apprise]
urls_env = "EA_TEST_APPRISE_URLS"
timeout = 2
""")
    (tmp / "textfile").mkdir()
    return config


def _scan(config: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "python3",
            "-m",
            "exposure_audit",
            "scan",
            "-c",
            str(config),
            "--no-udp",
            "-q",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **env},
    )


def _scrape(textfile_dir: Path) -> str:
    """Run the real node_exporter with only the textfile collector on our loopback block and
    return one scrape of /metrics."""
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    assert binary, "node_exporter is missing: run .ci/install (prometheus-node-exporter)"
    address = f"{HOST}:{_free_port()}"
    exporter = subprocess.Popen(
        [
            binary,
            f"--web.listen-address={address}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={textfile_dir}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://{address}/metrics", timeout=2, trust_env=False)
                if response.status_code == 200:
                    return response.text
            except httpx.TransportError:
                pass
            assert exporter.poll() is None, exporter.stderr.read() if exporter.stderr else ""
            assert time.monotonic() < deadline, "node_exporter did not answer"
            time.sleep(0.2)
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)


def test_two_scans_notify_write_metrics_and_siem_lines_and_keep_no_secret(
    tmp_path: Path, receivers: tuple[Receiver, Receiver, Receiver, int]
) -> None:
    ok, failing, hanging, refused = receivers
    config = _config(tmp_path)
    configured = " ".join(
        [
            f"json://audit:{TOKEN}@{ok.origin}/hook/{TOKEN}?token={TOKEN}",
            f"json://{failing.origin}/hook/{TOKEN}",
            f"json://{hanging.origin}/{TOKEN}",
            f"form://{TOKEN}@{HOST}:{refused}/{TOKEN}",
        ]
    )
    env = {"EA_TEST_APPRISE_URLS": configured}
    metrics = tmp_path / "textfile" / "exposure-audit.prom"

    # Week 1: nothing open. Every configured URL is tried; three fail, none fails the run.
    with _week(1):
        started = time.monotonic()
        first = _scan(config, env, "--format", "jsonl", "-o", str(tmp_path / "week1.jsonl"))
        first_took = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    assert first_took < 60  # the hanging receiver is given up at the 2 s deadline
    assert len(ok.received) == 1 and failing.received and hanging.received
    failures = [line for line in first.stderr.splitlines() if "notification by apprise" in line]
    assert len(failures) == 3, first.stderr
    assert any(f"#2 json://{failing.origin}/…" in line and "500" in line for line in failures)
    assert any("#3 json://" in line and "no answer within 2 s" in line for line in failures)
    assert any(f"#4 form://{HOST}:{refused}/…" in line for line in failures)
    posted = json.loads(ok.received[0].body)
    assert posted["title"].startswith("exposure-audit: grade A")
    assert (tmp_path / "week1.jsonl").read_text() == ""  # no finding, no line

    values = samples(metrics.read_text())
    assert values["exposure_audit_hosts_audited"] == "1"
    assert values['exposure_audit_new_findings{severity="high"}'] == "0"  # a clean first run

    # Week 2: Telnet opened. --notify replaces the configured URLs for this run.
    with _week(2):
        second = _scan(
            config,
            env,
            "--notify",
            f"json://{ok.origin}/again/{TOKEN}",
            "--format",
            "jsonl",
            "--compare",
        )
    assert second.returncode == 1, second.stderr  # a critical finding: --fail-on's default
    assert "notification" not in second.stderr
    assert len(ok.received) == 2 and ok.received[1].path == f"/again/{TOKEN}"
    assert len(failing.received) == 1  # not configured for this run
    message = json.loads(ok.received[1].body)["message"]
    assert "**New (1)**" in message and "SVC001" in message and BOX in message

    # The findings as ECS JSON lines, each valid.
    [telnet] = [e for e in validated_lines(second.stdout) if e["rule"]["id"] == "SVC001"]
    assert telnet["destination"] == {"ip": BOX, "port": 23}
    assert telnet["vulnerability"]["severity"] == "critical"
    assert telnet["exposure_audit"]["run"]["id"] == 2
    assert telnet["vulnerability"]["report_id"] == "2"
    # --compare marks each line with its change since the compared run (week 1)
    assert telnet["exposure_audit"]["change"] == {"status": "new", "since_run": 1, "details": []}

    # The metrics: promtool accepts them; atomically replaced, readable by node_exporter.
    text = metrics.read_text()
    check_metrics(text)
    values = samples(text)
    assert values['exposure_audit_new_findings{severity="critical"}'] == "1"
    assert (
        values[f'exposure_audit_host_findings{{address="{BOX}",rule="SVC001",severity="critical"}}']
        == "1"
    )
    assert values[f'exposure_audit_host_grade{{address="{BOX}"}}'] == "0"  # F
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o644
    assert sorted(p.name for p in metrics.parent.iterdir()) == ["exposure-audit.prom"]

    # The real node_exporter serves them.
    scraped = _scrape(metrics.parent)
    assert "node_textfile_scrape_error 0" in scraped
    assert 'exposure_audit_new_findings{severity="critical"} 1' in scraped
    assert f'exposure_audit_host_grade{{address="{BOX}"}} 0' in scraped

    # No part of the token anywhere: the history (database and WAL), reports, metrics, output.
    stored = run_cli("history", "--history", str(tmp_path / "history.sqlite3"), "--format", "json")
    report = run_cli(
        "report", "--history", str(tmp_path / "history.sqlite3"), "last", "--format", "json"
    )
    places = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != config}
    outputs = [
        first.stdout,
        first.stderr,
        second.stdout,
        second.stderr,
        stored.stdout,
        report.stdout,
    ]
    assert any(name.startswith("history.sqlite3") for name in places)
    for name, data in places.items():
        assert TOKEN.encode() not in data, name
    for text in outputs:
        assert TOKEN not in text
    with contextlib.closing(sqlite3.connect(tmp_path / "history.sqlite3")) as db:
        commands = [row[0] for row in db.execute("SELECT command FROM runs ORDER BY id")]
    assert any(f"--notify json://{ok.origin}/…" in c for c in commands), commands


def test_an_apprise_url_apprise_cannot_use_stops_the_scan_before_anything_runs(
    tmp_path: Path,
) -> None:
    history = tmp_path / "h.sqlite3"
    result = run_cli(
        "scan",
        BOX,
        "--allow-private",
        "--history",
        str(history),
        "--notify",
        f"json://{HOST}/ok",
        "--notify",
        f"nosuchservice://{TOKEN}@x/",
    )
    assert result.returncode == 2
    assert "#2 nosuchservice://…" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    assert not history.exists()  # nothing scanned, nothing stored


def test_a_metrics_file_that_cannot_be_written_stops_the_scan_before_anything_runs(
    tmp_path: Path,
) -> None:
    result = run_cli(
        "scan",
        BOX,
        "--allow-private",
        "--no-history",
        "--metrics",
        str(tmp_path / "missing" / "x.prom"),
    )
    assert result.returncode == 2
    assert "--metrics" in result.stderr and "no directory" in result.stderr
