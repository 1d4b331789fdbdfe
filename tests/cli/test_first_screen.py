"""The first screen tells a user what to do, through the real CLI on a loopback lab: the
table opens with the run's verdict and a numbered "fix first" list naming host and port, then
the hosts, each opening with what to do first; every remediation is shown once; each service
shows its product and category; the table fits 80 columns on a pipe and the terminal's width
on a terminal (a real pty); ``--compare`` changes come right after the verdict. And the small
truths: the first run's webhook payload carries its run id, DSM004 never reads "fixed in no
fix", ``--progress`` names each host, the HTML trend tells two runs of one day apart."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from exposure_audit.lab import Lab, LabHost, LabService
from exposure_audit.rules import RULES

from ..servers import Server, read_request, serve
from .runner import run_cli

# Addresses of their own (127.141.0.0/16), so other suites and a running demo may run beside.
NAS, QNAP, CLEAN, HOOK = "127.141.0.10", "127.141.0.11", "127.141.0.12", "127.141.0.1"
PORTS = "22,5000,8080"
NMAP_XML = Path(__file__).parents[1] / "data" / "nmap" / "dsm43-no-versions.xml"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    hosts = [
        # DSM 6.2.4-25556 over HTTP: DSM001, DSM004 (one advisory without a fix for the
        # branch), DSM005; and SSH (SVC002)
        LabHost(
            "syno62",
            NAS,
            "dsm",
            (LabService(5000, "http", "dsm62"), LabService(22, "banner", "ssh")),
            "F",
            "6.2.4-25556",
        ),
        LabHost("qnap", QNAP, "management", (LabService(8080, "http", "qnap"),), "F", None),
        LabHost("clean", CLEAN, "closed", (), "A", None),
    ]
    with Lab(hosts) as running:
        yield running


@pytest.fixture(scope="module")
def webhook() -> Iterator[Server]:
    async def hook(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        head = await read_request(reader, s)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        s.requests[-1] = await reader.readexactly(length)
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    with serve(hook, host=HOOK) as server:
        yield server


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("first-screen") / "history.sqlite3"


def _scan_args(history: Path) -> list[str]:
    return [
        "scan",
        NAS,
        QNAP,
        CLEAN,
        "--allow-private",
        "--ports",
        PORTS,
        "--host-timeout",
        "20",
        "--history",
        str(history),
    ]


@pytest.fixture(scope="module")
def first_run(lab: Lab, webhook: Server, history: Path) -> subprocess.CompletedProcess[str]:
    # Given the first audit of the lab, its table on a pipe, progress forced, a webhook
    url = f"http://{webhook.host}:{webhook.port}/hook"
    result = run_cli(*_scan_args(history), "--progress", "--webhook", url)
    assert result.returncode == 1, result.stderr  # critical findings: exit 1
    return result


def _flat(text: str) -> str:
    """Text as one line: wrapping and indentation do not count."""
    return " ".join(text.split())


def _blocks(table: str) -> dict[str, str]:
    """Each host's block of the table, by address."""
    parts = re.split(r"^== ", table, flags=re.MULTILINE)[1:]
    return {part.split()[0]: part for part in parts}


def test_the_table_opens_with_the_verdict_then_fix_first_naming_host_and_port(
    first_run: subprocess.CompletedProcess[str],
) -> None:
    table = first_run.stdout
    # Then the first line is the verdict, before anything else
    assert table.startswith("verdict: grade F: critical findings on 2 of 3 hosts\n"), table
    # Then a numbered "fix first" list, before the first host, naming host and port
    head = table[: table.index("\n== ")]
    fix = head[head.index("fix first:") :]
    items = re.findall(r"^ ?(\d)\. (\S+) (\S+) \(([A-Z0-9, ]+);", fix, flags=re.MULTILINE)
    assert [n for n, *_ in items] == ["1", "2", "3"], fix
    assert ("1", NAS, "5000/tcp", "DSM001") in items and ("3", QNAP, "8080/tcp", "MGMT001") in items
    # Then the counts say "3 hosts", the hosts come worst first, the clean one last
    assert "exposure-audit 0.1.0: 3 hosts (0 incomplete)" in head
    assert list(_blocks(table)) == [NAS, QNAP, CLEAN]


def test_each_host_block_opens_with_what_to_do_first_and_shows_each_remediation_once(
    first_run: subprocess.CompletedProcess[str],
) -> None:
    table = first_run.stdout
    blocks = _blocks(table)
    # Then each host with findings opens with what to do first, pointing at the list above
    for address, numbers in ((NAS, "1, 2"), (QNAP, "3")):
        second = blocks[address].splitlines()[1]
        assert second == f"   do first: fix first {numbers} above", blocks[address]
    assert "no open ports found" in blocks[CLEAN] and "do first" not in blocks[CLEAN]
    # Then every rule's remediation is written once in the whole table
    flat = _flat(table)
    for rule in ("DSM001", "DSM004", "DSM005", "SVC002"):
        text = _flat(RULES[rule].remediation)
        assert flat.count(text) == 1, rule
    # The rest of the NAS's remediation follows its findings, each rule once
    rest = _flat(blocks[NAS][blocks[NAS].index("remediation:") :])
    assert rest.startswith("remediation: SVC002: Close the port") and "DSM005: Keep DSM" in rest


def test_on_a_pipe_the_table_is_80_columns_wide(
    first_run: subprocess.CompletedProcess[str],
) -> None:
    lines = first_run.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert max(map(len, lines)) > 70  # it uses the width: tables wrap, not cut short


def test_each_service_shows_its_product_and_category_in_every_format(
    first_run: subprocess.CompletedProcess[str], history: Path
) -> None:
    nas, qnap = _blocks(first_run.stdout)[NAS], _blocks(first_run.stdout)[QNAP]
    assert re.search(r"5000/tcp +open +http +Synology DSM 6\.2\.4-25556 Update 7 +NAS\n", nas)
    assert re.search(r"22/tcp +open +ssh +OpenSSH 8\.2p1", nas)
    assert re.search(r"8080/tcp +open +http +QNAP QTS / QuTS hero 4\.3\.6 +NAS\n", qnap)
    markdown = run_cli("report", "latest", "--history", str(history), "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert "| 5000/tcp | open | http | Synology DSM 6.2.4-25556 Update 7 | NAS |" in markdown.stdout
    assert "| 8080/tcp | open | http | QNAP QTS / QuTS hero 4.3.6 | NAS |" in markdown.stdout
    html = run_cli("report", "latest", "--history", str(history), "--format", "html")
    assert html.returncode == 0, html.stderr
    qnap_row = next(r for r in html.stdout.split("<tr>") if "QNAP QTS / QuTS hero 4.3.6" in r)
    assert '<td data-label="category"><strong class="nowrap">NAS</strong></td>' in qnap_row


def test_every_card_opens_with_what_to_do_first(
    first_run: subprocess.CompletedProcess[str], history: Path
) -> None:
    markdown = run_cli("report", "latest", "--history", str(history), "--format", "markdown")
    card = markdown.stdout[markdown.stdout.index(f"## {NAS}") :]
    card = card[: card.index("\n## ")]
    # Then the card's first section is what to do first, before findings and services
    sections = re.findall(r"^### (.+)$", card, flags=re.MULTILINE)
    assert sections[:3] == ["What to do first", "Findings", "Services"]
    first = card[card.index("### What to do first") : card.index("### Findings")]
    assert re.findall(r"^(\d)\. .*\((\S+) on", first, flags=re.MULTILINE) == [
        ("1", "DSM001"),
        ("2", "DSM004"),
    ]
    html = run_cli("report", "latest", "--history", str(history), "--format", "html").stdout
    card = html[html.index(f'id="host-{NAS}"') : html.index(f'id="host-{QNAP}"')]
    assert card.index("What to do first") < card.index("Open services") < card.index("Findings")
    assert 'data-rule="DSM001"' in card and "step 1 of “What to do first” above" in card


def test_the_first_runs_webhook_payload_carries_its_run_id(
    first_run: subprocess.CompletedProcess[str], webhook: Server, history: Path
) -> None:
    payloads = [json.loads(body) for body in webhook.requests]
    first = next(p for p in payloads if p["first_run"])
    listed = run_cli("history", "--history", str(history), "--format", "json")
    (run,) = [r for r in json.loads(listed.stdout) if r["id"] == first["run"]]
    assert first["run"] == 1 and first["compared_with"] is None and run["grade"] == "F"


def test_dsm004_evidence_names_no_fix_without_saying_fixed_in(
    first_run: subprocess.CompletedProcess[str], history: Path
) -> None:
    doc = json.loads(
        run_cli("report", "latest", "--history", str(history), "--format", "json").stdout
    )
    (nas,) = [h for h in doc["hosts"] if h["address"] == NAS]
    (dsm004,) = [f for f in nas["findings"] if f["rule"] == "DSM004"]
    assert "SA-21:24 (CVE-2021-3711, CVE-2021-3712; no fix for this branch)" in dsm004["evidence"]
    assert "fixed in 6.2.4-25556-8" in dsm004["evidence"]
    assert "fixed in no fix" not in dsm004["evidence"]


def test_progress_lines_name_each_host_and_its_grade(
    first_run: subprocess.CompletedProcess[str],
) -> None:
    done = [line for line in first_run.stderr.splitlines() if "host done" in line]
    assert len(done) == 3, first_run.stderr
    assert {line.split("host done: ")[1] for line in done} == {
        f"{NAS}, grade F",
        f"{QNAP}, grade F",
        f"{CLEAN}, grade A",
    }
    assert re.match(r"\[3/3 hosts\] host done: ", done[-1])


def _on_a_terminal(args: list[str], columns: int) -> tuple[int, str]:
    """Run the CLI with stdout on a pty ``columns`` wide, COLUMNS unset; its exit code and
    what it printed there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "exposure_audit", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    proc.communicate(timeout=120)
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.fixture(scope="module")
def second_run(first_run: subprocess.CompletedProcess[str], history: Path) -> str:
    # Given a second audit of the lab with --compare, its table on a 72-column terminal
    code, table = _on_a_terminal([*_scan_args(history), "--compare"], 72)
    assert code == 1, table
    return table


def test_on_a_terminal_the_table_fits_its_width(second_run: str) -> None:
    lines = second_run.splitlines()
    assert max(map(len, lines)) <= 72, "\n".join(line for line in lines if len(line) > 72)
    assert max(map(len, lines)) > 62


def test_compare_changes_come_right_after_the_verdict(second_run: str) -> None:
    paragraphs = second_run.split("\n\n")
    assert paragraphs[0].startswith("verdict: grade F")
    assert paragraphs[1].startswith("changes since run 1:\nexposure-audit diff, run 1 -> run 2")
    assert second_run.index("changes since run 1:") < second_run.index("fix first:")
    assert second_run.index("no changes") < second_run.index(f"\n== {NAS}")


def test_the_html_trend_tells_two_runs_of_one_day_apart(second_run: str, history: Path) -> None:
    html = run_cli("report", "latest", "--history", str(history), "--format", "html").stdout
    times = re.findall(r'<text class="time"[^>]*>([^<]+)</text>', html)
    dates = re.findall(r'y="\d+" text-anchor="middle">(\d\d-\d\d)</text>', html)
    assert len(times) == 2 and len(set(times)) == 2, times
    assert len(dates) == 2


def test_columns_sets_the_width_on_a_pipe(
    first_run: subprocess.CompletedProcess[str], history: Path
) -> None:
    args = [sys.executable, "-m", "exposure_audit", "report", "1", "--history", str(history)]
    for columns, widest in (
        ("120", range(81, 121)),
        ("50", range(40, 51)),
        ("junk", range(71, 81)),
    ):
        env = {**os.environ, "COLUMNS": columns}
        shown = subprocess.run(args, capture_output=True, text=True, env=env, check=True).stdout
        assert max(map(len, shown.splitlines())) in widest, columns


def test_one_host_is_one_host_not_one_hosts(tmp_path: Path) -> None:
    # An nmap run of one host, graded without a scan
    result = run_cli("grade", "--nmap-xml", str(NMAP_XML))
    assert "1 host (0 incomplete)" in result.stdout, result.stdout + result.stderr
    assert "1 hosts" not in result.stdout
    markdown = run_cli("grade", "--nmap-xml", str(NMAP_XML), "--format", "markdown").stdout
    assert "1 host, 0 incomplete;" in markdown and "host(s)" not in markdown
