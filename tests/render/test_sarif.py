"""SARIF 2.1.0: the golden file, validity against the official OASIS schema (with and without
accepted findings), what code scanning needs (a location URI, fingerprints, security-severity),
and inert target text. Regenerate the golden file with ``pytest --update-golden``."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from exposure_audit.findings import Acceptance, Finding, Severity, finding_id
from exposure_audit.render.sarif import SECURITY_SEVERITY, render_sarif, result_uri
from exposure_audit.report import Report
from exposure_audit.rules import RULES

from ..report_samples import HOSTILE_TITLE, sample_report, vantage_report

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "report.sarif"
# The OASIS SARIF 2.1.0 schema (errata01), as published at render_sarif.SARIF_SCHEMA.
SCHEMA = Path(__file__).parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json"


@cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def _validate(text: str) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(text)
    errors = sorted(_validator().iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    return log


def _with_acceptances() -> Report:
    report = sample_report()
    nas = report.hosts[0]
    live = dataclasses.replace(
        nas.findings[3],
        acceptance=Acceptance("internal CA rollout in Q1", "ops", date(2027, 1, 31)),
    )
    expired = dataclasses.replace(
        nas.findings[2],
        acceptance=Acceptance("legacy telnet", "ops", date(2026, 1, 1), expired=True),
    )
    nas = dataclasses.replace(nas, findings=(*nas.findings[:2], expired, live))
    return dataclasses.replace(report, hosts=(nas, report.hosts[1]))


def test_the_sarif_log_matches_its_golden_file(update_golden: bool) -> None:
    text = render_sarif(sample_report())
    if update_golden:
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_a_log_from_two_vantages_matches_its_golden_file_and_validates(
    update_golden: bool,
) -> None:
    text = render_sarif(vantage_report())
    golden = GOLDEN.with_name("report-vantages.sarif")
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
    run = _validate(text)["runs"][0]
    assert run["properties"]["vantages"] == ["eu", "us"]
    van = next(r for r in run["results"] if r["ruleId"] == "VAN001")
    assert van["properties"]["reachableFrom"] == ["eu"]
    assert van["properties"]["notReachableFrom"] == ["us"]
    assert van["properties"]["untestedFrom"] == []
    assert van["properties"]["vantages"] == ["eu", "us"]
    assert (
        van["level"] == "warning"
        and "reachability" in run["tool"]["driver"]["rules"][van["ruleIndex"]]["properties"]["tags"]
    )


def test_without_vantages_results_carry_no_vantage_properties() -> None:
    run = json.loads(render_sarif(sample_report()))["runs"][0]
    assert "vantages" not in run["properties"]
    assert not any("reachableFrom" in r["properties"] for r in run["results"])


def test_the_log_validates_against_the_official_sarif_schema() -> None:
    log = _validate(render_sarif(sample_report()))
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1


def test_a_log_with_accepted_and_expired_findings_validates_too() -> None:
    log = _validate(render_sarif(_with_acceptances()))
    results = {
        r["ruleId"] + "@" + str(r["properties"]["port"]): r for r in log["runs"][0]["results"]
    }
    # The live acceptance is an external suppression whose justification is the reason.
    assert results["TLS001@5001"]["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "internal CA rollout in Q1",
            "properties": {"owner": "ops", "expires": "2027-01-31"},
        }
    ]
    # The expired one counts again: no suppression, but the acceptance is still on record.
    assert "suppressions" not in results["SVC001@23"]
    assert results["SVC001@23"]["properties"]["acceptance"]["expired"] is True


def test_the_golden_schema_file_rejects_a_broken_log() -> None:
    # The validator is not vacuous: a result without its message fails.
    log = json.loads(render_sarif(sample_report()))
    del log["runs"][0]["results"][0]["message"]
    assert list(_validator().iter_errors(log))


def test_the_driver_lists_every_rule_with_its_metadata_and_score() -> None:
    driver = json.loads(render_sarif(sample_report()))["runs"][0]["tool"]["driver"]
    assert driver["name"] == "exposure-audit" and driver["version"] == "0.1.0"
    assert urlsplit(driver["informationUri"]).hostname == "example.invalid"
    assert [r["id"] for r in driver["rules"]] == list(RULES)
    for descriptor in driver["rules"]:
        rule = RULES[descriptor["id"]]
        assert descriptor["shortDescription"]["text"] == rule.title
        assert descriptor["fullDescription"]["text"] == rule.rationale
        assert descriptor["help"]["text"].startswith(rule.remediation)
        assert descriptor["name"].isalnum() and descriptor["name"][0].isupper()
        properties = descriptor["properties"]
        assert properties["security-severity"] == SECURITY_SEVERITY[rule.severity]
        assert "security" in properties["tags"]


def test_security_severity_scores_fall_in_code_scannings_buckets() -> None:
    # GitHub: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
    buckets = {
        Severity.CRITICAL: (9.0, 10.0),
        Severity.HIGH: (7.0, 8.9),
        Severity.MEDIUM: (4.0, 6.9),
        Severity.LOW: (0.1, 3.9),
        Severity.INFO: (0.0, 0.0),
    }
    for severity, (low, high) in buckets.items():
        assert low <= float(SECURITY_SEVERITY[severity]) <= high, severity


def test_one_result_per_finding_with_level_fingerprints_and_a_location() -> None:
    report = sample_report()
    results = json.loads(render_sarif(report))["runs"][0]["results"]
    assert sorted(r["partialFingerprints"]["exposureAuditFindingId/v1"] for r in results) == sorted(
        f.id for f in report.findings()
    )
    by_id = {r["fingerprints"]["exposureAuditFindingId/v1"]: r for r in results}
    telnet = by_id[finding_id("SVC001", "198.51.100.7", "tcp", 23)]
    assert telnet["level"] == "error" and telnet["message"]["text"] == "Telnet"
    location = telnet["locations"][0]
    assert location["physicalLocation"]["artifactLocation"] == {
        "uri": "exposure-audit/198.51.100.7/tcp/23",
        "uriBaseId": "EXPOSURE_AUDIT_TARGETS",
    }
    assert "region" not in location["physicalLocation"]
    assert location["logicalLocations"] == [
        {
            "name": "198.51.100.7:23",
            "fullyQualifiedName": "tcp://198.51.100.7:23",
            "kind": "resource",
        }
    ]
    low = by_id[finding_id("TLS001", "198.51.100.7", "tcp", 5001)]
    assert low["level"] == "note"
    assert all(RULES[r["ruleId"]] is list(RULES.values())[r["ruleIndex"]] for r in results)


@pytest.mark.parametrize(
    ("address", "port", "uri", "name"),
    [
        ("2001:db8::7", 21, "exposure-audit/2001:db8::7/tcp/21", "[2001:db8::7]:21"),
        ("198.51.100.7", 0, "exposure-audit/198.51.100.7", "198.51.100.7"),
    ],
)
def test_locations_are_uris_code_scanning_parses(
    address: str, port: int, uri: str, name: str
) -> None:
    finding = Finding(
        "x", "SVC001", Severity.HIGH, address, port, "tcp" if port else "", "", "", ""
    )
    assert result_uri(finding) == uri
    # A relative reference whose first segment has no colon (GitHub rejects one that does).
    parts = urlsplit(uri)
    assert not parts.scheme and not parts.netloc and ":" not in uri.split("/")[0]
    report = dataclasses.replace(
        sample_report(),
        hosts=(dataclasses.replace(sample_report().hosts[1], findings=(finding,)),),
    )
    result = _validate(render_sarif(report))["runs"][0]["results"][0]
    assert result["locations"][0]["logicalLocations"][0]["name"] == name


def test_incomplete_hosts_and_run_errors_are_tool_notifications() -> None:
    report = dataclasses.replace(sample_report(), complete=False, errors=("nmap crashed",))
    invocation = _validate(render_sarif(report))["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    texts = [n["message"]["text"] for n in invocation["toolExecutionNotifications"]]
    assert "nmap crashed" in texts
    assert "2001:db8::7 incomplete, graded D: versions timed_out" in texts


def test_target_text_is_printable_and_the_file_is_ascii() -> None:
    text = render_sarif(sample_report())
    assert text.isascii()
    results = json.loads(text)["runs"][0]["results"]
    ftp = next(r for r in results if r["properties"]["address"] == "2001:db8::7")
    message = ftp["message"]["text"]
    assert "\x1b" not in message and "\u202e" not in message
    assert "\\x1b[2J" in message and "<script>" in message  # shown as text, kept readable
    assert HOSTILE_TITLE not in message
