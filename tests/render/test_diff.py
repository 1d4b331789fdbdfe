"""Diff renderers: golden files for every format (the weekly scenario of tests/test_diff.py),
the JSON document's required shape, and inert output for hostile banners. Regenerate the
goldens with ``pytest tests/test_render_diff.py --update-golden`` and review the diff."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from pathlib import Path

import pytest

from exposure_audit.diff import ReportDiff, diff_reports
from exposure_audit.findings import Acceptance, Severity
from exposure_audit.observations import ServiceObservation
from exposure_audit.ports import PortSet
from exposure_audit.render import DIFF_FORMATS, render_diff
from exposure_audit.render.diff import (
    DIFF_SCHEMA,
    render_diff_json,
    render_diff_markdown,
    render_diff_table,
)
from exposure_audit.report import Report
from exposure_audit.text import md_text

from ..report_samples import HOSTILE_TITLE
from ..test_diff import FTP, NAS, finding, host, https, report, ssh, weekly_diff

GOLDEN = Path(__file__).parents[1] / "data" / "golden"
TITLE_DSM002 = "DSM management interface reachable over HTTPS"


@pytest.mark.parametrize("fmt", sorted(DIFF_FORMATS))
def test_every_format_matches_its_golden_file(fmt: str, update_golden: bool) -> None:
    text = render_diff(weekly_diff(), fmt)
    golden = GOLDEN / f"diff.{fmt}"
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_an_unknown_format_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        render_diff(weekly_diff(), "csv")


def test_json_has_the_versioned_schema_and_the_lists_the_issue_asks_for() -> None:
    doc = json.loads(render_diff_json(weekly_diff()))
    assert doc["schema"] == DIFF_SCHEMA == "exposure-audit-diff/1"
    assert {"new", "resolved", "changed", "unchanged", "not_rechecked", "not_confirmed"} <= (
        doc.keys()
    )
    assert (doc["old_run"], doc["new_run"], doc["old_grade"], doc["new_grade"]) == (1, 2, "F", "F")
    assert doc["has_changes"] is True
    new = doc["new"][0]
    assert set(new) == {
        "id",
        "rule",
        "address",
        "port",
        "protocol",
        "severity",
        "title",
        "changes",
        "before",
        "after",
    }
    assert (new["rule"], new["address"], new["port"], new["severity"]) == (
        "SVC001",
        NAS,
        873,
        "high",
    )
    assert new["before"] is None and new["after"]["id"] == new["id"]
    resolved = doc["resolved"][0]
    assert resolved["after"] is None and resolved["before"]["rule"] == resolved["rule"]
    assert doc["services_appeared"][0] == {"address": NAS, "port": 873, "protocol": "tcp"}
    assert doc["hosts_vanished"] == ["203.0.113.99"]


def test_json_keeps_the_acceptance_of_an_accepted_finding() -> None:
    service = (ServiceObservation(21, "tcp", "open", "ftp"),)
    acceptance = Acceptance("scanner drop", "alice", date(2026, 12, 31))
    plain = finding("SVC001", Severity.HIGH, FTP, 21)
    new = report(host(FTP, service, (dataclasses.replace(plain, acceptance=acceptance),)))
    doc = json.loads(render_diff_json(diff_reports(report(host(FTP, service, (plain,))), new)))
    assert doc["changed"][0]["after"]["acceptance"] == {
        "reason": "scanner drop",
        "owner": "alice",
        "expires": "2026-12-31",
        "expired": False,
    }
    assert doc["changed"][0]["before"]["acceptance"] is None


def test_every_format_names_each_changed_findings_rule_and_address() -> None:
    diff = weekly_diff()
    for fmt in DIFF_FORMATS:
        text = render_diff(diff, fmt)
        for change in (
            *diff.new,
            *diff.resolved,
            *diff.changed,
            *diff.not_rechecked,
            *diff.not_confirmed,
        ):
            assert change.rule in text and change.address in text, (fmt, change.rule)


def test_markdown_gives_the_remediation_of_new_findings_only() -> None:
    text = render_diff_markdown(weekly_diff())
    assert "Remediation of SVC001." in text  # the new rsync finding
    assert "Remediation of DSM003." not in text  # resolved


def test_an_unchanged_diff_says_so() -> None:
    run = report(host(NAS, (ssh("9.6p1"),), (finding("SVC002", Severity.MEDIUM, NAS, 22),)))
    diff = diff_reports(run, run)
    assert "no changes" in render_diff_table(diff)
    assert "no changes" in render_diff_markdown(diff)


def _hostile_diff() -> str:
    old = report(
        host(
            NAS,
            (ssh("8.2p1"),),
            (finding("SVC002", Severity.MEDIUM, NAS, 22),),
        )
    )
    new = report(
        host(
            NAS,
            (ssh(HOSTILE_TITLE + " [click](https://evil.example/) *bold* `code`"),),
            (finding("SVC002", Severity.MEDIUM, NAS, 22),),
        )
    )
    return render_diff(diff_reports(old, new), "markdown")


def test_hostile_banners_are_inert_in_the_table() -> None:
    old = report(host(NAS, (ssh("8.2p1"),), (finding("SVC002", Severity.MEDIUM, NAS, 22),)))
    new = report(host(NAS, (ssh(HOSTILE_TITLE),), (finding("SVC002", Severity.MEDIUM, NAS, 22),)))
    text = render_diff_table(diff_reports(old, new))
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b[2J" in text


def test_hostile_banners_are_inert_in_markdown() -> None:
    text = _hostile_diff()
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\[click\\](https" in text
    assert re.search(r"(?<!\\)[\[\]<]", text.split("\n", 1)[1]) is None  # no unescaped [ ] <
    assert "\\*bold\\*" in text and "\\`code\\`" in text


def test_hostile_banners_are_escaped_in_json_and_survive_as_data() -> None:
    old = report(host(NAS, (ssh("8.2p1"),), (finding("SVC002", Severity.MEDIUM, NAS, 22),)))
    new = report(host(NAS, (ssh(HOSTILE_TITLE),), (finding("SVC002", Severity.MEDIUM, NAS, 22),)))
    text = render_diff_json(diff_reports(old, new))
    assert "\x1b" not in text and "\u202e" not in text
    changes = json.loads(text)["changed"][0]["changes"]
    assert changes == [f"product version 8.2p1 -> {HOSTILE_TITLE}"]


def vantage_diff() -> ReportDiff:
    def run(reachable: tuple[str, ...], day: int) -> Report:
        service = dataclasses.replace(https(5001), reachable_from=reachable)
        nas = host(NAS, (service,))
        nas = dataclasses.replace(
            nas, observation=dataclasses.replace(nas.observation, vantages=("eu", "us"))
        )
        return dataclasses.replace(report(nas, day=day), vantages=("eu", "us"))

    return diff_reports(run(("eu",), 1), run(("eu", "us"), 8), old_run=1, new_run=2)


def test_a_per_vantage_reachability_change_shows_in_every_format() -> None:
    diff = vantage_diff()
    line = "198.51.100.7:5001/tcp reachable from eu -> eu, us"
    assert f"service reachability changed: {line}" in render_diff_table(diff)
    assert (
        "- service reachability changed: `198.51.100.7:5001/tcp` reachable from eu -> eu, us"
        in render_diff_markdown(diff)
    )
    doc = json.loads(render_diff_json(diff))
    assert doc["has_changes"] is True
    assert doc["services_changed"] == [
        {
            "address": NAS,
            "port": 5001,
            "protocol": "tcp",
            "reachable_from_before": ["eu"],
            "reachable_from_after": ["eu", "us"],
            "untested_from": [],
        }
    ]


def test_without_reachability_changes_the_json_has_no_services_changed_key() -> None:
    assert "services_changed" not in json.loads(render_diff_json(weekly_diff()))


def _unlooked_diff() -> ReportDiff:
    """Run 3 against run 2, which did not scan 5001 (DSM002 carried from run 1): 5001 again
    not scanned, and the FTP port filtered."""
    ftp = finding("SVC001", Severity.HIGH, FTP, 21)

    def run(*services: ServiceObservation, ftp_state: str, tcp: tuple[int, ...]) -> Report:
        seen = any(s.port == 5001 for s in services)
        nas = host(NAS, services, (finding("DSM002", Severity.HIGH, NAS, 5001),) if seen else ())
        box = host(
            FTP, (ServiceObservation(21, "tcp", ftp_state, "ftp"),), (ftp,) * (ftp_state == "open")
        )
        return dataclasses.replace(report(nas, box), ports=PortSet(tcp))

    run1 = run(https(5001), ftp_state="open", tcp=(21, 5000, 5001))
    run2 = run(ftp_state="open", tcp=(21, 5000))
    run3 = run(ftp_state="filtered", tcp=(21, 5000))
    carried = diff_reports(run1, run2, old_run=1, new_run=2).carried
    return diff_reports(run2, run3, old_run=2, new_run=3, carried=carried)


def test_not_rechecked_and_not_confirmed_show_in_every_format_with_their_reasons() -> None:
    diff = _unlooked_diff()
    reason = "port 5001/tcp not in the new run's port set; last seen in run 1"
    table = render_diff_table(diff, width=200)  # wide: each reason on one line
    assert "NOT RE-CHECKED (1)" in table and "the new run did not look at these" in table
    assert "NOT CONFIRMED (1)" in table and "port 21/tcp filtered in the new run" in table
    assert "1 not re-checked, 1 not confirmed" in table
    assert "port 5001/tcp not in the new run's port set" in table and "run 1" in table
    markdown = render_diff_markdown(diff)
    assert "### Not re-checked (1)" in markdown and "### Not confirmed (1)" in markdown
    assert f"`198.51.100.7:5001/tcp` {TITLE_DSM002}: {reason}" in markdown
    doc = json.loads(render_diff_json(diff))
    (entry,) = doc["not_rechecked"]
    assert set(entry) == set(doc["not_confirmed"][0])  # the same item shape as the others
    assert (entry["rule"], entry["port"], entry["after"]) == ("DSM002", 5001, None)
    assert entry["changes"] == reason.split("; ")
    assert entry["before"]["rule"] == "DSM002"


def test_markdown_autolink_triggers_in_target_text_stay_text_as_in_the_report() -> None:
    # Given a banner holding a URL, a "www." name and an e-mail address
    banner = "see https://evil.example/x or www.evil.example, mail root@evil.example"
    old = report(host(NAS, (ssh("8.2p1"),), (finding("SVC002", Severity.MEDIUM, NAS, 22),)))
    new = report(host(NAS, (ssh(banner),), (finding("SVC002", Severity.MEDIUM, NAS, 22),)))
    text = render_diff(diff_reports(old, new), "markdown")
    # Then none of them can become a link in a GFM renderer: the triggers are escaped, exactly
    # as the report's Markdown escapes them.
    assert "https\\://evil.example" in text and "https://" not in text
    assert "www\\.evil.example" in text and "root\\@evil.example" in text
    assert md_text(banner, 512) in text
