"""The real CLI (``python -m exposure_audit scan``, nmap and all) against the whole hostile corpus
at once: the run stays under 400 MB and finishes within the per-host deadline plus a small
overhead (not the sum of the tarpits), and the report says what each hostile case did.
Then the injection cases through every output format: nothing from a target comes out live."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .corpus import Corpus

HOST_TIMEOUT = 8.0
OVERHEAD = 10.0  # start-up, discovery, nmap's own granularity, rendering
MAX_RSS_MIB = 400


@dataclass(frozen=True)
class Run:
    code: int
    seconds: float
    rss_mib: float
    stdout: str
    stderr: str


def run_cli(args: list[str], tmp: Path) -> Run:
    """Run the CLI in a subprocess; its peak RSS (children included) from ``wait4``."""
    out, err = tmp / "stdout", tmp / "stderr"
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "exposure_audit", *args], stdout=stdout, stderr=stderr
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        process.returncode,
        time.monotonic() - started,
        usage.ru_maxrss / 1024,  # KiB on Linux
        out.read_text(errors="replace"),
        err.read_text(errors="replace"),
    )


def scan_args(corpus: Corpus, names: list[str] | None = None) -> list[str]:
    addresses = corpus.addresses() if names is None else [corpus.address(n) for n in names]
    ports = (
        corpus.scan_ports()
        if names is None
        else sorted({p for n in names for p in corpus.ports(n)})
    )
    return [
        "scan",
        *addresses,
        "--allow-private",
        "-q",
        "-p",
        ",".join(map(str, ports)) + ",U:1900",
        "--host-timeout",
        str(HOST_TIMEOUT),
    ]


@pytest.fixture(scope="module")
def whole(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("whole-corpus")
    report = tmp / "report.json"
    run = run_cli([*scan_args(corpus), "--no-history", "--format", "json", "-o", str(report)], tmp)
    return run, json.loads(report.read_text())


def host(doc: dict[str, Any], corpus: Corpus, name: str) -> dict[str, Any]:
    (found,) = [h for h in doc["hosts"] if h["address"] == corpus.address(name)]
    return found


def web(doc: dict[str, Any], corpus: Corpus, name: str) -> dict[str, Any] | None:
    services = host(doc, corpus, name)["services"]
    assert len(services) == 1, services
    http: dict[str, Any] | None = services[0]["http"]
    return http


def test_the_whole_corpus_runs_under_400_mb_within_the_deadline_not_the_sum(
    whole: tuple[Run, dict[str, Any]], corpus: Corpus
) -> None:
    run, doc = whole
    assert run.code in (0, 1), run.stderr  # 1: the SSDP host has findings
    assert run.rss_mib < MAX_RSS_MIB
    assert run.seconds < HOST_TIMEOUT + OVERHEAD, run.seconds
    assert doc["complete"] is True and doc["errors"] == []
    assert len(doc["hosts"]) == len(corpus.addresses())


def test_tarpits_and_drips_are_incomplete_and_the_rest_is_complete(
    whole: tuple[Run, dict[str, Any]], corpus: Corpus
) -> None:
    _, doc = whole
    for name in ("tarpit", "drip-head", "drip-body", "tls-stall"):
        found = host(doc, corpus, name)
        assert found["status"] == "incomplete", name
        # The open port is unidentified (UNK002): its grade is the lower bound B, never A.
        assert found["grade"] == "B", name
        assert [f["rule"] for f in found["findings"]] == ["UNK002"], name
        assert any(a["status"] == "timed_out" for a in found["attempts"]), name
        assert [s["state"] for s in found["services"]] == ["open"]
    for name in ("fast", "endless", "gzip-bomb", "bad-gzip", "redirect-host", "odd-cert"):
        assert host(doc, corpus, name)["status"] == "complete", name


def test_bodies_bombs_and_odd_encodings_give_their_page(
    whole: tuple[Run, dict[str, Any]], corpus: Corpus
) -> None:
    _, doc = whole
    titles = {
        "fast": "fast",
        "endless": "endless",
        "huge-length": "huge length",
        "gzip-bomb": "bomb",
        "deflate-bomb": "bomb",
        "zlib-bomb": "bomb",
        "charset-codec": "base64",
    }
    for name, title in titles.items():
        http = web(doc, corpus, name)
        assert http is not None and http["title"] == title, name
    bad = web(doc, corpus, "bad-gzip")
    assert bad is not None and bad["status_code"] == 200


def test_redirects_away_are_recorded_and_nothing_is_fetched_from_their_targets(
    whole: tuple[Run, dict[str, Any]], corpus: Corpus
) -> None:
    _, doc = whole
    expected = {
        "redirect-host": f"http://{corpus.address('witness')}:{corpus.port('witness')}/",
        "redirect-port": f"http://{corpus.address('redirect-port')}:{corpus.port('witness', 1)}/",
        "redirect-metadata": "http://169.254.169.254/latest/meta-data/",
        "redirect-garbage": "http://[::1",
    }
    for name, location in expected.items():
        http = web(doc, corpus, name)
        assert http is not None and [r["location"] for r in http["redirects"]] == [location]
    loop = web(doc, corpus, "redirect-loop")
    assert loop is not None and loop["status_code"] == 302
    assert corpus.hits("witness").connections == 0


def test_malformed_http_and_broken_tls_leave_an_open_port_without_http(
    whole: tuple[Run, dict[str, Any]], corpus: Corpus
) -> None:
    _, doc = whole
    for name in ("garbage-status", "no-colon", "many-headers", "nul-header", "tls-reset"):
        found = host(doc, corpus, name)
        assert [(s["state"], s["http"]) for s in found["services"]] == [("open", None)], name


def test_odd_certificates_are_in_the_report(
    whole: tuple[Run, dict[str, Any]], corpus: Corpus
) -> None:
    _, doc = whole
    for name in ("odd-cert", "refused-cert"):
        tls = host(doc, corpus, name)["services"][0]["tls"]
        assert tls["not_before"] == "2090-01-01T00:00:00Z"
        assert tls["not_after"] == "9999-12-31T23:59:59Z"
        assert tls["subject"].startswith("CN=\ufffd")


def test_upnp_bombs_entities_and_floods_are_refused_and_pinned(
    whole: tuple[Run, dict[str, Any]], corpus: Corpus
) -> None:
    _, doc = whole
    bomb = host(doc, corpus, "upnp-bomb")
    assert any("DTD" in e for e in bomb["errors"]), bomb["errors"]
    flood = host(doc, corpus, "ssdp-flood")
    replies = flood["upnp"]["ssdp"]
    assert 0 < len(replies) <= 64  # 10,000 sent, a few dozen kept
    assert {r["location"] for r in replies} == {"http://169.254.169.254:49152/rootDesc.xml"}
    # The LOCATION was fetched from the target itself, never from the address it named.
    pinned = f"{corpus.address('ssdp-flood')}:49152"
    assert flood["errors"] and all(pinned in e for e in flood["errors"])
    assert not any("169.254" in e for e in flood["errors"])
    assert {f["rule"] for f in flood["findings"]} >= {"UPNP001"}


def test_a_host_accepting_every_port_is_one_note_not_a_thousand_services(
    whole: tuple[Run, dict[str, Any]], corpus: Corpus
) -> None:
    _, doc = whole
    found = host(doc, corpus, "everything-open")
    assert found["services"] == [] and found["findings"] == []
    assert found["status"] == "incomplete" and found["grade"] == "?"
    (note,) = found["notes"]
    assert note.startswith(f"1000 of {len(corpus.scan_ports())} scanned TCP ports accepted")
    assert "title Everything" in note and "not reported one by one" in note
    assert any(a["status"] == "skipped" for a in found["attempts"])


# ============================================================================ inert output

INJECTION_CASES = ["inject-http", "inject-c1", "inject-ssh", "odd-cert", "redirect-garbage"]
# Terminal escapes (7- and 8-bit), NUL, and every bidi control and isolate.
LIVE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _formats() -> list[str]:
    from exposure_audit.render import REPORT_FORMATS

    return list(REPORT_FORMATS)


@pytest.fixture(scope="module")
def rendered(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The injection cases scanned once (into a history), then every format rendered from it
    by the CLI: ``scan --format table``, ``report latest --format F`` for the others."""
    tmp = tmp_path_factory.mktemp("injection")
    history = tmp / "history.sqlite3"
    scan = run_cli(
        [
            *scan_args(corpus, INJECTION_CASES),
            *("--history", str(history), "--fail-on", "never", "--request-timeout", "2"),
        ],
        tmp,
    )
    assert scan.code == 0, scan.stderr
    outputs = {"table": scan.stdout}
    for fmt in _formats():
        if fmt == "table":
            continue
        run = run_cli(["report", "latest", "--history", str(history), "--format", fmt], tmp)
        assert run.code == 0, (fmt, run.stderr)
        outputs[fmt] = run.stdout
    return outputs


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_the_scan_saw_the_hostile_text_it_must_render(rendered: dict[str, str]) -> None:
    text = "\n".join(_strings(json.loads(rendered["json"])))
    assert "<script>alert('xss')</script>" in text  # the title, in the data
    assert "<script>alert('ssh')</script>" in text  # nmap's version string
    assert "\x1b[31m" in text and "\u202e" in text and "\x9b" in text  # escaped on output only


@pytest.mark.parametrize("fmt", _formats())
def test_no_escape_sequence_nul_or_bidi_control_comes_out(
    rendered: dict[str, str], fmt: str
) -> None:
    live = LIVE.findall(rendered[fmt])
    assert not live, f"{fmt}: {sorted(set(live))}"


def test_json_is_ascii_only(rendered: dict[str, str]) -> None:
    assert rendered["json"].isascii()


def test_no_csv_cell_starts_a_formula(rendered: dict[str, str]) -> None:
    rows = list(csv.reader(io.StringIO(rendered["csv"])))
    assert len(rows) > 1  # the SSH finding carries nmap's hostile version string
    assert any("<script>alert('ssh')</script>" in cell for row in rows for cell in row)
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA), cell


@pytest.mark.parametrize("fmt", [f for f in _formats() if f in ("html", "markdown")])
def test_no_live_markup_from_a_target_in_html_or_markdown(
    rendered: dict[str, str], fmt: str
) -> None:
    text = rendered[fmt]
    # HTML escapes "<" as an entity; Markdown may also escape it with a backslash (CommonMark:
    # "\\<script>" is text). Either way no "<script>" tag may open before a payload.
    live_tag = re.compile(r"(?<!\\)<script>alert\(")
    assert not live_tag.search(text), fmt
    shown = [p for p in ("alert('xss')", "alert(&#39;xss&#39;)", "alert('ssh')") if p in text]
    assert shown, f"{fmt} does not show the hostile text at all: nothing was checked"
