"""JSON Lines for a SIEM: every line is one finding, a JSON object valid against the ECS field
types it uses (tests/data/ecs), ASCII, never split by target text; the golden file. Regenerate
it with ``pytest --update-golden``."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from exposure_audit.findings import Acceptance, Severity
from exposure_audit.render import REPORT_FORMATS, render_report
from exposure_audit.render.jsonl import render_jsonl
from exposure_audit.report import Report

from ..report_samples import HOSTILE_TITLE, sample_report

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "report.jsonl"
SCHEMA = Path(__file__).parents[1] / "data" / "ecs" / "finding-line.schema.json"


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def validated_lines(text: str) -> list[dict[str, Any]]:
    """Each line of ``text`` parsed and checked against the ECS line schema."""
    assert text == "" or text.endswith("\n")
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        assert line.isascii(), f"line {number} is not ASCII"
        event = json.loads(line)
        errors = list(_validator().iter_errors(event))
        assert not errors, f"line {number}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors[:5]
        )
        # Formats the validator may not check without its optional packages:
        for key in ("@timestamp",):
            datetime.fromisoformat(event[key])
        for address in event["host"]["ip"]:
            ipaddress.ip_address(address)
        events.append(event)
    return events


def _with_acceptance() -> Report:
    report = sample_report()
    nas = report.hosts[0]
    accepted = dataclasses.replace(
        nas.findings[0],
        acceptance=Acceptance("kept for the branch office", "ops", date(2099, 1, 1)),
    )
    nas = dataclasses.replace(nas, findings=(accepted, *nas.findings[1:]))
    return dataclasses.replace(report, hosts=(nas, *report.hosts[1:]))


def test_jsonl_is_a_registered_report_format() -> None:
    assert "jsonl" in REPORT_FORMATS
    assert render_report(sample_report(), "jsonl", run_id=7) == render_jsonl(sample_report(), 7)


def test_the_jsonl_output_matches_its_golden_file(update_golden: bool) -> None:
    text = render_jsonl(sample_report(), run_id=42)
    if update_golden:
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_every_finding_is_one_valid_line_with_its_ecs_fields() -> None:
    report = sample_report()
    events = validated_lines(render_jsonl(report, run_id=42))
    findings = report.findings()
    assert len(events) == len(findings)
    for event, finding in zip(events, findings, strict=True):
        assert event["@timestamp"] == "2026-11-27T12:01:30Z"  # the run's end
        assert event["host"]["ip"] == [finding.address]
        assert event["rule"]["id"] == finding.rule
        assert event["vulnerability"]["severity"] == finding.severity.label
        assert event["event"]["severity"] == int(finding.severity)
        assert event["vulnerability"]["report_id"] == "42"
        assert event["exposure_audit"]["run"]["id"] == 42
        assert event["exposure_audit"]["finding"]["id"] == finding.id
        assert event["exposure_audit"]["evidence"]  # the evidence travels with the finding
        if finding.port:
            assert event["destination"] == {"ip": finding.address, "port": finding.port}
            assert event["network"]["transport"] == finding.protocol
        else:
            assert "destination" not in event and "network" not in event


def test_host_names_and_the_rule_metadata_are_carried() -> None:
    events = validated_lines(render_jsonl(sample_report()))
    nas = [e for e in events if e["host"]["ip"] == ["198.51.100.7"]]
    assert nas and all(e["host"]["name"] == "nas.example.net" for e in nas)
    assert all("description" in e["rule"] for e in events)  # the rationale of a known rule
    # Without a history the run has no id: the field says so rather than inventing one.
    assert all(e["exposure_audit"]["run"]["id"] is None for e in events)
    assert all("report_id" not in e["vulnerability"] for e in events)


def test_hostile_target_text_stays_on_its_line_and_inert() -> None:
    text = render_jsonl(sample_report())
    events = validated_lines(text)
    hostile = [e for e in events if "calc" in e["exposure_audit"]["evidence"]]
    assert hostile
    for event in hostile:
        assert "\x1b" not in json.dumps(event, ensure_ascii=False)
        assert "\u202e" not in event["exposure_audit"]["evidence"]
    assert HOSTILE_TITLE not in text


def test_an_accepted_finding_is_written_and_flagged() -> None:
    events = validated_lines(render_jsonl(_with_acceptance()))
    accepted = [e for e in events if e["exposure_audit"]["accepted"]]
    assert len(accepted) == 1
    assert accepted[0]["exposure_audit"]["acceptance"] == {
        "owner": "ops",
        "reason": "kept for the branch office",
        "expires": "2099-01-01",
        "expired": False,
    }


def test_a_run_without_findings_writes_no_line() -> None:
    report = sample_report()
    clean = dataclasses.replace(
        report, hosts=tuple(dataclasses.replace(h, findings=()) for h in report.hosts)
    )
    assert render_jsonl(clean) == ""


def test_compared_lines_say_what_is_new_and_what_changed_since_the_earlier_run() -> None:
    from exposure_audit.diff import diff_reports

    new = sample_report()
    old = dataclasses.replace(
        new,
        hosts=(
            dataclasses.replace(
                new.hosts[0],
                findings=tuple(
                    dataclasses.replace(f, severity=Severity.HIGH) if f.rule == "SVC001" else f
                    for f in new.hosts[0].findings
                    if f.rule != "DSM003"
                ),
            ),
            *new.hosts[1:],
        ),
    )
    diff = diff_reports(old, new, old_run=4, new_run=5)
    lines = validated_lines(render_jsonl(new, 5, diff))
    marks = {
        (e["rule"]["id"], e["destination"]["port"]): e["exposure_audit"]["change"]
        for e in lines
        if e["host"]["ip"] == ["198.51.100.7"]
    }
    assert marks[("DSM003", 5000)] == {"status": "new", "since_run": 4, "details": []}
    assert marks[("SVC001", 23)]["status"] == "changed"
    assert any("high -> critical" in d for d in marks[("SVC001", 23)]["details"])
    assert marks[("DSM001", 5000)]["status"] == "unchanged"
    # Without a comparison the lines carry no change at all
    assert all("change" not in e["exposure_audit"] for e in validated_lines(render_jsonl(new, 5)))
