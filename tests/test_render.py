"""Renderers: golden files for every format, the JSON schema's required fields, and inert
output for hostile banners. Regenerate goldens with ``pytest --update-golden``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from exposure_audit.render import FORMATS, render, render_csv, render_json, render_table

from .report_samples import HOSTILE_TITLE, sample_report, vantage_report

GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_matches_its_golden_file(fmt: str, update_golden: bool) -> None:
    text = render(sample_report(), fmt)
    golden = GOLDEN / f"report.{fmt}"
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_report_from_two_vantages_matches_its_golden_file(fmt: str, update_golden: bool) -> None:
    text = render(vantage_report(), fmt)
    golden = GOLDEN / f"report-vantages.{fmt}"
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_every_format_shows_each_services_view_from_each_vantage() -> None:
    report = vantage_report()
    table = render_table(report)
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
    for fmt in FORMATS:
        text = render(sample_report(), fmt)
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
    for fmt in FORMATS:
        text = render(report, fmt)
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
    assert len(rows) == len(sample_report().findings())
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
