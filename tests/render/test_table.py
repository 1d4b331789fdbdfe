"""Renderers: golden files for every format, the JSON schema's required fields, and inert
output for hostile banners. Regenerate goldens with ``pytest --update-golden``."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
from markupsafe import escape

from exposure_audit.render import REPORT_FORMATS, render_json, render_report
from exposure_audit.render.markdown import md_text
from exposure_audit.render.table import render_csv, render_table
from exposure_audit.report import Report, UnauditedTarget
from exposure_audit.text import csv_cell, printable

from ..report_samples import HOSTILE_TITLE, sample_report, vantage_report
from .test_sarif import _validate

GOLDEN = Path(__file__).parents[1] / "data" / "golden"
# The formats with golden files named report.<format> here (HTML, Markdown, SARIF: their own tests).
PLAIN_FORMATS = ("csv", "json", "table")


@pytest.mark.parametrize("fmt", PLAIN_FORMATS)
def test_every_format_matches_its_golden_file(fmt: str, update_golden: bool) -> None:
    text = render_report(sample_report(), fmt)
    golden = GOLDEN / f"report.{fmt}"
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", PLAIN_FORMATS)
def test_a_report_from_two_vantages_matches_its_golden_file(fmt: str, update_golden: bool) -> None:
    text = render_report(vantage_report(), fmt)
    golden = GOLDEN / f"report-vantages.{fmt}"
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_every_format_shows_each_services_view_from_each_vantage() -> None:
    report = vantage_report()
    table = render_table(report, width=200)
    assert "vantages: eu, us" in table
    assert "5001/tcp  open" in table and "reachable from eu; not from us" in table
    assert "reachable from eu; not tested from us" in table  # us was cut short there
    doc = json.loads(render_json(report))
    assert doc["vantages"] == ["eu", "us"]
    nas = doc["hosts"][0]
    assert nas["vantages"] == ["eu", "us"]
    dsm = next(s for s in nas["services"] if s["port"] == 5001)
    assert (dsm["reachable_from"], dsm["not_reachable_from"], dsm["untested_from"]) == (
        ["eu"],
        ["us"],
        [],
    )
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    van = next(r for r in rows if r["rule"] == "VAN001")
    assert (van["port"], van["reachable_from"], van["not_reachable_from"]) == ("5001", "eu", "us")
    ssh = next(r for r in rows if r["rule"] == "SVC002")
    assert (ssh["reachable_from"], ssh["not_reachable_from"]) == ("eu us", "")


def test_without_vantages_no_format_mentions_them() -> None:
    for fmt in PLAIN_FORMATS:
        text = render_report(sample_report(), fmt)
        assert "vantage" not in text and "reachable_from" not in text, fmt


def test_json_has_the_versioned_schema_and_required_fields() -> None:
    doc = json.loads(render_json(sample_report()))
    assert doc["schema"] == "exposure-audit/1"
    assert {"summary", "started_at", "finished_at", "hosts", "errors"} <= doc.keys()
    assert doc["summary"]["grade"] == "F"
    host = doc["hosts"][0]
    assert {"address", "family", "hostnames", "grade", "status", "services", "findings"} <= (
        host.keys()
    )
    service = host["services"][0]
    assert {"port", "protocol", "state", "service", "product", "version", "tls", "dsm"} <= (
        service.keys()
    )
    assert service["dsm"] == {
        "version": "4.3",
        "build": 3810,
        "update": None,
        "model": "DS1512+",
        "markers": ["title", "sds-session", "info-cgi"],
        "version_source": "/webman/info.cgi",
    }
    finding = host["findings"][0]
    assert {"id", "rule", "severity", "port", "protocol", "title", "evidence", "remediation"} <= (
        finding.keys()
    )
    assert [s["port"] for s in host["services"]] == [5000, 5001, 23]  # closed ports left out
    assert doc["hosts"][1]["status"] == "incomplete"


def test_every_format_shows_each_findings_rule_id() -> None:
    report = sample_report()
    for fmt in PLAIN_FORMATS:
        text = render_report(report, fmt)
        for finding in report.findings():
            assert finding.rule in text, (fmt, finding.rule)


def test_hostile_banners_are_inert_in_the_terminal_report() -> None:
    text = render_table(sample_report())
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b[2J" in text


def test_hostile_banners_are_escaped_in_json() -> None:
    text = render_json(sample_report())
    assert "\x1b" not in text and "\u202e" not in text
    doc = json.loads(text)
    assert doc["hosts"][1]["services"][0]["http"]["title"] == HOSTILE_TITLE  # data survives


def test_csv_has_one_row_per_finding_and_no_formula_cells() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(sample_report()))))
    assert len([r for r in rows if r["rule"]]) == len(sample_report().findings())
    for row in rows:
        for value in row.values():
            assert value[:1] not in ("=", "+", "-", "@")
            assert "\x1b" not in value


def test_the_table_lists_the_worst_host_first_with_grade_and_remediation() -> None:
    text = render_table(sample_report())
    assert text.index("198.51.100.7") < text.index("2001:db8::7")
    assert "grade F" in text and "remediation of DSM001" in text
    assert "gone.example.net" in text and "NXDOMAIN" in text
    assert "skipped 192.168.1.10" in text


def test_accepted_findings_are_shown_apart_and_do_not_count() -> None:
    import dataclasses
    from datetime import date

    from exposure_audit.findings import Acceptance
    from exposure_audit.grading import grade_host

    report = sample_report()
    nas = report.hosts[0]
    accepted = tuple(
        dataclasses.replace(f, acceptance=Acceptance("lab box", "ops", date(2027, 1, 1)))
        if f.rule == "SVC001"
        else f
        for f in nas.findings
    )
    host = dataclasses.replace(nas, findings=accepted, grade=grade_host(accepted, nas.observation))
    report = dataclasses.replace(report, hosts=(host, *report.hosts[1:]))
    table = render_table(report)
    assert "accepted: SVC001 23/tcp (critical) by ops until 2027-01-01: lab box" in table
    doc = json.loads(render_json(report))
    svc = next(f for f in doc["hosts"][0]["findings"] if f["rule"] == "SVC001")
    assert svc["acceptance"] == {
        "reason": "lab box",
        "owner": "ops",
        "expires": "2027-01-01",
        "expired": False,
    }
    assert doc["summary"]["findings"]["critical"] == 2  # DSM001, DSM003; SVC001 accepted


# A stale acceptance's reason is the user's text: it carries what each format must escape.
_STALE = (
    "accepted risk at 198.51.100.7 5000/tcp matches nothing (stale): "
    '<b>old</b> "box" & *legacy* | =cmd \x1b[2J'
)


def _every_note(*, audited_something: bool) -> Report:
    """A report holding every kind of run-level note: targets not audited (each reason),
    interrupted, UDP skipped and a stale accepted risk; with its hosts, or none."""
    report = sample_report()
    return dataclasses.replace(
        report,
        hosts=report.hosts if audited_something else (),
        complete=False,
        interrupted=True,
        notes=("UDP ports 161 skipped: UDP scanning needs root", _STALE),
        not_audited=(
            UnauditedTarget("gone.example.net", "NXDOMAIN: the name does not exist"),
            UnauditedTarget("slow.example.net", "timeout: no answer for A within 5 s"),
            UnauditedTarget("192.0.2.0/28", "excluded"),
            UnauditedTarget("home.myds.me", "192.168.1.10 skipped: not a public address"),
        ),
    )


def _notes_shown(fmt: str, text: str, report: Report) -> list[str]:
    """The run notes as ``fmt`` shows them (each made safe as the format needs), from ``text``;
    in order, where the format keeps one."""
    notes = report.run_notes()
    if fmt == "json":
        doc = json.loads(text)
        # JSON carries the notes' facts as data: the run's own notes, not_audited, interrupted.
        assert doc["interrupted"] is True and doc["complete"] is False
        assert doc["summary"]["not_audited"] == len(report.not_audited)
        assert [(t["target"], t["reason"]) for t in doc["not_audited"]] == [
            (t.target, t.reason) for t in report.not_audited
        ]
        return [n for n in doc["notes"] if n in notes]
    if fmt == "csv":
        rows = csv.DictReader(io.StringIO(text))
        return [r["evidence"] for r in rows if r["title"] == "run note" and not r["rule"]]
    if fmt == "jsonl":
        # Every finding's line carries the run's notes; a run without findings has no line
        # (stderr and the metrics say what it did not audit): nothing to look for then.
        lines = [json.loads(line) for line in text.splitlines()]
        assert all(
            e["exposure_audit"]["run"]["notes"] == [printable(n, 4000) for n in notes]
            for e in lines
        )
        return lines[0]["exposure_audit"]["run"]["notes"] if lines else []
    if fmt == "sarif":
        invocation = _validate(text)["runs"][0]["invocations"][0]
        assert invocation["executionSuccessful"] is False
        return [n["message"]["text"] for n in invocation["toolExecutionNotifications"]]
    found = [shown for shown in (_escaped(fmt, n) for n in notes) if shown in text]
    return sorted(found, key=text.index)


def _escaped(fmt: str, note: str) -> str:
    return {
        "table": lambda: printable(note, 2000),
        "csv": lambda: csv_cell(note),
        "markdown": lambda: md_text(note, 2000),
        "html": lambda: str(escape(printable(note, 2000))),
        "sarif": lambda: printable(note, 2000),
        "json": lambda: note,
        "jsonl": lambda: printable(note, 4000),
    }[fmt]()


@pytest.mark.parametrize("audited_something", [True, False], ids=["hosts", "no-host"])
@pytest.mark.parametrize("fmt", REPORT_FORMATS)
def test_every_format_shows_every_run_note_in_one_order(fmt: str, audited_something: bool) -> None:
    # Given a run that was interrupted, left targets out for every reason, skipped UDP and has
    # a stale acceptance
    report = _every_note(audited_something=audited_something)
    notes = report.run_notes()
    first = "nothing was audited" if not audited_something else "not every target was audited"
    assert notes[0].startswith(first) and "the run was interrupted" in notes[1]
    # When it is rendered in the format (the table wide enough to keep each note on one line)
    text = render_report(report, fmt, width=10_000)
    # Then each note is there, escaped as the format needs, in run_notes' order
    shown = _notes_shown(fmt, text, report)
    expected = [_escaped(fmt, n) for n in notes] if fmt != "json" else list(report.notes)
    if fmt == "jsonl" and not audited_something:
        assert text == ""  # one line per finding, and there is none
        return
    assert [s for s in shown if s in expected] == expected, fmt
    for reason in ("NXDOMAIN", "timeout", "excluded", "skipped"):
        assert reason in text, (fmt, reason)
    assert "\x1b" not in text, fmt  # the escape is shown, never sent
    if fmt == "html":
        assert "<b>old" not in text  # text, not markup


def _verdict(text: str) -> str:
    """The table's opening paragraph (the verdict, wrapped), as one line."""
    return " ".join(text.split("\n\n")[0].split())


def test_the_table_opens_with_a_verdict_saying_nothing_was_audited_or_interrupted() -> None:
    empty = dataclasses.replace(sample_report(), hosts=(), not_audited=())
    first = _verdict(render_table(empty))
    assert first == "verdict: grade ?: nothing was audited: unknown, not an all-clear"
    cut = dataclasses.replace(sample_report(), complete=False, interrupted=True)
    first = _verdict(render_table(cut))
    assert first.startswith("verdict: grade F: critical findings on 1 of 2 hosts")
    assert "the run was interrupted" in first and "nothing" not in first
    first = _verdict(render_table(sample_report()))
    assert "nothing" not in first and "interrupted" not in first
    # What the grade does not cover is unknown, never clean
    assert first.endswith("unknown (not clean): 2 targets not audited, 1 host incomplete")


def test_a_run_that_audited_nothing_says_so_in_every_format_with_grade_unknown() -> None:
    report = dataclasses.replace(
        sample_report(), hosts=(), not_audited=(UnauditedTarget("192.0.2.7", "excluded"),)
    )
    for fmt in set(REPORT_FORMATS) - {"json", "jsonl"}:
        text = render_report(report, fmt)
        assert "nothing was audited (192.0.2.7: excluded)" in text, fmt
    # JSON Lines has a line per finding and so none here; the CLI says it on stderr (exit 3).
    assert render_report(report, "jsonl") == ""
    doc = json.loads(render_json(report))  # JSON holds the facts as data
    assert (doc["summary"]["grade"], doc["summary"]["hosts"], doc["hosts"]) == ("?", 0, [])
    assert doc["not_audited"] == [{"target": "192.0.2.7", "reason": "excluded"}]
    (note, *_) = csv.DictReader(io.StringIO(render_csv(report)))
    assert (note["rule"], note["host_grade"]) == ("", "?")
    assert "# Exposure audit: grade ? (nothing was audited)" in render_report(report, "markdown")
    assert "grade ?, nothing was audited</h1>" in render_report(report, "html")


def test_fix_first_names_host_and_port_and_gives_each_action_once() -> None:
    # Given DSM over HTTP and over HTTPS on one box: DSM002's remediation is inside DSM001's
    text = render_table(vantage_report(), width=200)
    fix = text[text.index("fix first:") : text.index("\n\n", text.index("fix first:"))]
    assert fix.splitlines()[1].startswith(
        " 1. 198.51.100.7 5000/tcp, 5001/tcp (DSM001, DSM002; critical): Take the DSM"
    )
    assert fix.count("Take the DSM management interface off the Internet") == 1
    # The host points at it, and its findings' other remediation follows them, once each
    nas = text[text.index("== 198.51.100.7") : text.index("== 203.0.113.9")]
    assert "   do first: fix first 1 above" in nas
    assert "Take the DSM management interface off the Internet" not in nas
    assert nas.count("VULN001: Update the service") == 1


def test_an_unpatched_dsm_gets_each_action_once_with_the_real_rules() -> None:
    # Given the SynoLocker-era box of the sample (DSM 4.3-3810 on 5000 and 5001), judged by
    # the real rules: DSM001, DSM002, DSM003, DSM004 and DSM005 all fire
    from datetime import UTC, datetime

    from exposure_audit.grading import grade_host
    from exposure_audit.render._view import host_actions
    from exposure_audit.report import HostReport
    from exposure_audit.rules import evaluate_host

    nas = sample_report().hosts[0].observation
    findings = evaluate_host(nas, datetime(2026, 12, 6, tzinfo=UTC))
    assert {"DSM001", "DSM002", "DSM003", "DSM004"} <= {f.rule for f in findings}
    actions = host_actions(HostReport(nas, findings, grade_host(findings, nas)))
    # Then "take DSM off the Internet" is spelled out in one action, which the others name
    texts = [a.text for a in actions]
    assert sum("remove the router's port forwards" in t for t in texts) == 1
    assert any("Back up the data now" in t and "DSM001 or DSM002" in t for t in texts)
