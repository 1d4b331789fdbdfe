"""Notification messages from plain values: when a run has something to say, and what the
subject, the e-mail body, the webhook payload and the Slack text say."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime

import pytest

from exposure_audit.diff import (
    FindingChange,
    ReachabilityChange,
    ReportDiff,
    coverage_shortfall,
)
from exposure_audit.findings import Acceptance, Finding, Severity, finding_id
from exposure_audit.grading import Grade, grade_host
from exposure_audit.history.message import NOTIFY_POLICIES, SCHEMA, compose, should_notify
from exposure_audit.observations import AddressFamily, HostObservation, HostStatus
from exposure_audit.ports import PortSet
from exposure_audit.report import HostReport, Report, UnauditedTarget

NAS = "198.51.100.7"
ROUTER = "198.51.100.1"


def _finding(
    rule: str,
    severity: Severity,
    address: str = NAS,
    port: int = 5000,
    *,
    title: str = "",
    acceptance: Acceptance | None = None,
) -> Finding:
    return Finding(
        id=finding_id(rule, address, "tcp" if port else "", port),
        rule=rule,
        severity=severity,
        address=address,
        port=port,
        protocol="tcp" if port else "",
        title=title or f"title of {rule}",
        evidence=f"evidence of {rule}",
        remediation=f"remediation of {rule}",
        acceptance=acceptance,
    )


def _report(*findings: Finding, incomplete: tuple[str, ...] = (), complete: bool = True) -> Report:
    addresses = list(dict.fromkeys([NAS, ROUTER, *(f.address for f in findings)]))
    hosts = []
    for address in addresses:
        status = HostStatus.INCOMPLETE if address in incomplete else HostStatus.COMPLETE
        mine = tuple(f for f in findings if f.address == address)
        observation = HostObservation(address, AddressFamily.IPV4, status=status)
        hosts.append(HostReport(observation, mine, grade_host(mine, observation)))
    return Report(
        tool_version="0.1.0",
        started_at=datetime(2026, 12, 4, 6, 0, tzinfo=UTC),
        finished_at=datetime(2026, 12, 4, 6, 2, 5, tzinfo=UTC),
        ports=PortSet((22, 23, 5000, 5001), ()),
        hosts=tuple(hosts),
        complete=complete,
    )


def _new(after: Finding) -> FindingChange:
    return FindingChange(
        after.id, after.rule, after.address, after.port, after.protocol, None, after
    )


def _resolved(before: Finding) -> FindingChange:
    return FindingChange(
        before.id, before.rule, before.address, before.port, before.protocol, before, None
    )


def _changed(before: Finding, after: Finding, *changes: str) -> FindingChange:
    return FindingChange(
        after.id, after.rule, after.address, after.port, after.protocol, before, after, changes
    )


def _same(finding: Finding) -> FindingChange:
    return FindingChange(
        finding.id, finding.rule, finding.address, finding.port, finding.protocol, finding, finding
    )


# A week in the lab: telnet opened on the NAS (new, high), DSM upgraded (DSM004 changed,
# critical -> medium), the router's UPnP closed (resolved), the default certificate unchanged.
TELNET = _finding("SVC001", Severity.HIGH, port=23)
DSM_BEFORE = _finding("DSM004", Severity.CRITICAL)
DSM_AFTER = _finding("DSM004", Severity.MEDIUM)
UPNP = _finding("UPNP001", Severity.HIGH, ROUTER, 0)
CERT = _finding("TLS001", Severity.LOW, port=5001)


def _week() -> tuple[Report, ReportDiff]:
    report = _report(TELNET, DSM_AFTER, CERT)
    diff = ReportDiff(
        old_run=11,
        new_run=12,
        old_grade=Grade.F,
        new_grade=Grade.D,
        new=(_new(TELNET),),
        resolved=(_resolved(UPNP),),
        changed=(
            _changed(
                DSM_BEFORE,
                DSM_AFTER,
                "severity critical -> medium",
                "DSM 6.2.4-25556 -> 7.2.2-72806",
            ),
        ),
        unchanged=(_same(CERT),),
        services_appeared=((NAS, 23, "tcp"),),
        services_vanished=((ROUTER, 5000, "tcp"),),
    )
    return report, diff


def _quiet_week() -> tuple[Report, ReportDiff]:
    report = _report(CERT)
    diff = ReportDiff(11, 12, Grade.B, Grade.B, unchanged=(_same(CERT),))
    return report, diff


# --- should_notify ------------------------------------------------------------------------


def test_always_notifies_even_when_nothing_changed() -> None:
    report, diff = _quiet_week()
    assert should_notify("always", diff, report, Severity.HIGH)


def test_change_notifies_on_changes_and_on_a_first_run_only() -> None:
    quiet_report, quiet = _quiet_week()
    report, diff = _week()
    assert not should_notify("change", quiet, quiet_report, Severity.INFO)
    assert should_notify("change", diff, report, Severity.INFO)
    assert should_notify("change", None, quiet_report, Severity.INFO)


def test_change_notifies_when_only_the_grade_moved() -> None:
    report = _report(CERT)
    diff = ReportDiff(11, 12, Grade.UNKNOWN, Grade.B, unchanged=(_same(CERT),))
    assert should_notify("change", diff, report, Severity.INFO)


def test_new_notifies_for_a_new_finding_at_or_above_the_threshold() -> None:
    report, diff = _week()
    assert should_notify("new", diff, report, Severity.HIGH)
    assert not should_notify("new", diff, report, Severity.CRITICAL)


def test_new_ignores_resolved_and_improved_findings() -> None:
    report = _report(DSM_AFTER)
    diff = ReportDiff(
        11,
        12,
        Grade.F,
        Grade.C,
        resolved=(_resolved(UPNP),),
        changed=(_changed(DSM_BEFORE, DSM_AFTER, "severity critical -> medium"),),
    )
    assert diff.has_changes
    assert not should_notify("new", diff, report, Severity.INFO)


def test_new_notifies_for_a_finding_whose_severity_went_up() -> None:
    before = _finding("DSM004", Severity.MEDIUM)
    after = _finding("DSM004", Severity.CRITICAL)
    report = _report(after)
    diff = ReportDiff(
        11, 12, Grade.C, Grade.F, changed=(_changed(before, after, "severity medium -> critical"),)
    )
    assert should_notify("new", diff, report, Severity.CRITICAL)


def test_new_ignores_a_new_finding_under_a_live_acceptance() -> None:
    accepted = _finding(
        "SVC001",
        Severity.HIGH,
        port=22,
        acceptance=Acceptance("bastion", "ops", date(2099, 1, 1)),
    )
    report = _report(accepted)
    diff = ReportDiff(11, 12, Grade.A, Grade.A, new=(_new(accepted),))
    assert not should_notify("new", diff, report, Severity.LOW)


def test_new_on_a_first_run_looks_at_every_finding() -> None:
    report = _report(TELNET, CERT)
    assert should_notify("new", None, report, Severity.HIGH)
    assert not should_notify("new", None, _report(CERT), Severity.HIGH)


def test_an_unknown_policy_is_an_error_naming_the_choices() -> None:
    report, diff = _week()
    with pytest.raises(ValueError, match=r"'sometimes'.*always, change, new"):
        should_notify("sometimes", diff, report, Severity.HIGH)
    assert NOTIFY_POLICIES == ("always", "change", "new")


# --- compose ------------------------------------------------------------------------------

WEEK_TEXT = """\
exposure-audit 0.1.0, run finished 2026-12-04 06:02:05 UTC (run 12, compared with run 11)

Grade: D (was F)
Findings: 0 critical, 1 high, 1 medium, 1 low, 0 info
Run: complete

New (1):
  - HIGH SVC001 198.51.100.7 port 23/tcp: title of SVC001
    Remediation: remediation of SVC001

Changed (1):
  - MEDIUM DSM004 198.51.100.7 port 5000/tcp: title of DSM004
    Changed: severity critical -> medium; DSM 6.2.4-25556 -> 7.2.2-72806
    Remediation: remediation of DSM004

Resolved (1):
  - HIGH UPNP001 198.51.100.1 (host): title of UPNP001

Services appeared: 198.51.100.7 port 23/tcp
Services vanished: 198.51.100.1 port 5000/tcp

Unchanged: 1 finding.
"""


def test_the_message_states_grade_counts_and_every_change() -> None:
    report, diff = _week()
    message = compose(report, diff)
    assert message.subject == "exposure-audit: grade D (was F): 1 new, 1 resolved, 1 changed"
    assert message.text == WEEK_TEXT


def test_the_payload_has_the_schema_grade_counts_and_the_three_lists() -> None:
    report, diff = _week()
    payload = compose(report, diff).payload
    assert json.loads(json.dumps(payload)) == payload
    assert payload["schema"] == SCHEMA == "exposure-audit-notification/1"
    assert payload["grade"] == "D" and payload["previous_grade"] == "F"
    assert payload["counts"] == {"critical": 0, "high": 1, "medium": 1, "low": 1, "info": 0}
    assert payload["complete"] is True
    assert (payload["run"], payload["compared_with"], payload["first_run"]) == (12, 11, False)
    assert payload["new"] == [
        {
            "id": TELNET.id,
            "rule": "SVC001",
            "address": NAS,
            "port": 23,
            "protocol": "tcp",
            "severity": "high",
            "title": "title of SVC001",
            "remediation": "remediation of SVC001",
            "accepted": False,
        }
    ]
    (resolved,) = payload["resolved"]
    assert (resolved["rule"], resolved["address"], resolved["port"]) == ("UPNP001", ROUTER, 0)
    (changed,) = payload["changed"]
    assert changed["severity"] == "medium" and changed["severity_before"] == "critical"
    assert changed["changes"] == ["severity critical -> medium", "DSM 6.2.4-25556 -> 7.2.2-72806"]
    assert changed["remediation"] == "remediation of DSM004"
    assert payload["unchanged"] == 1
    assert payload["services_appeared"] == [{"address": NAS, "port": 23, "protocol": "tcp"}]


def test_the_slack_variant_is_the_subject_and_the_text() -> None:
    report, diff = _week()
    message = compose(report, diff)
    assert message.slack == {"text": f"{message.subject}\n\n{message.text}".replace(">", "&gt;")}


def test_a_quiet_week_says_nothing_changed() -> None:
    report, diff = _quiet_week()
    message = compose(report, diff)
    assert message.subject == "exposure-audit: grade B: no change"
    assert "Nothing changed since the previous run." in message.text
    assert message.payload["has_changes"] is False
    assert message.payload["new"] == message.payload["resolved"] == []


def test_a_first_run_lists_every_finding_as_new_worst_first() -> None:
    report = _report(CERT, TELNET)
    message = compose(report, None)
    assert message.subject == "exposure-audit: grade D: 2 findings (first run)"
    assert "First run: there is no previous run to compare with" in message.text
    assert [e["rule"] for e in message.payload["new"]] == ["SVC001", "TLS001"]
    assert message.payload["first_run"] is True and message.payload["previous_grade"] is None
    assert message.text.index("SVC001") < message.text.index("TLS001")


def test_an_incomplete_run_says_so_in_the_subject_the_text_and_the_payload() -> None:
    report = _report(CERT, incomplete=(ROUTER,), complete=False)
    message = compose(report, None)
    assert message.subject.endswith(", INCOMPLETE run")
    assert "Run: INCOMPLETE" in message.text
    assert "The run was cut short." in message.text
    assert f"Hosts not fully tested: {ROUTER}" in message.text
    assert message.payload["complete"] is False
    assert message.payload["incomplete_hosts"] == [ROUTER]


def test_not_confirmed_findings_are_not_called_resolved() -> None:
    report = _report()
    filtered = dataclasses.replace(
        _resolved(TELNET), changes=("port 23/tcp filtered in the new run",)
    )
    diff = ReportDiff(11, 12, Grade.D, Grade.A, not_confirmed=(filtered,))
    message = compose(report, diff)
    assert "Not confirmed (1): this run looked but got no clear answer" in message.text
    assert "    Why: port 23/tcp filtered in the new run" in message.text
    assert "Resolved" not in message.text
    assert message.payload["resolved"] == []
    assert message.payload["not_confirmed"][0]["rule"] == "SVC001"
    assert message.payload["not_confirmed"][0]["reasons"] == ["port 23/tcp filtered in the new run"]


def _not_rechecked(finding: Finding, *reasons: str) -> FindingChange:
    return dataclasses.replace(_resolved(finding), changes=reasons)


def test_not_rechecked_findings_are_listed_apart_with_why_and_what_the_grade_covers() -> None:
    # Given a run that scanned 5000 only: the certificate finding on 5001 was not re-checked
    report = _report()
    skipped = _not_rechecked(
        CERT, "port 5001/tcp not in the new run's port set", "last seen in run 10"
    )
    diff = ReportDiff(11, 12, Grade.B, Grade.A, not_rechecked=(skipped,))
    # When the notification is composed
    message = compose(report, diff)
    # Then it says "not re-checked" in the subject, the text and the payload, never "resolved"
    assert message.subject == "exposure-audit: grade A (was B): 1 not re-checked"
    assert "Not re-checked (1): this run did not look at these" in message.text
    assert "  - LOW TLS001 198.51.100.7 port 5001/tcp: title of TLS001" in message.text
    assert (
        "    Why: port 5001/tcp not in the new run's port set; last seen in run 10" in message.text
    )
    assert "The grade covers only what this run looked at: 1 earlier finding not re-checked." in (
        message.text
    )
    assert "Resolved" not in message.text and message.payload["resolved"] == []
    (entry,) = message.payload["not_rechecked"]
    assert (entry["rule"], entry["port"]) == ("TLS001", 5001)
    assert entry["reasons"] == [
        "port 5001/tcp not in the new run's port set",
        "last seen in run 10",
    ]
    assert "not re-checked" in message.slack["text"]


def _nothing_audited() -> Report:
    return dataclasses.replace(
        _report(),
        hosts=(),
        not_audited=(UnauditedTarget("nas.example.net", "NXDOMAIN (no such name)"),),
    )


def test_a_run_that_covered_nothing_is_notified_whatever_the_policy() -> None:
    report = _nothing_audited()
    shortfall = coverage_shortfall(report)
    quiet = ReportDiff(11, 12, Grade.A, Grade.UNKNOWN)
    for policy in NOTIFY_POLICIES:
        assert should_notify(policy, quiet, report, Severity.CRITICAL, shortfall), policy
        assert should_notify(policy, None, report, Severity.CRITICAL, shortfall), policy
    assert not should_notify("new", quiet, report, Severity.CRITICAL)
    with pytest.raises(ValueError, match="unknown notification policy"):
        should_notify("sometimes", quiet, report, Severity.CRITICAL, shortfall)


def test_a_run_that_covered_nothing_says_so_with_each_targets_reason() -> None:
    report = _nothing_audited()
    message = compose(report, None, coverage_shortfall(report))
    assert message.subject == "exposure-audit: grade ?: audit covered nothing"
    assert "audit covered nothing: nas.example.net: NXDOMAIN (no such name)" in message.text
    assert "not used as the baseline" in message.text
    assert message.payload["coverage"] == {
        "covered": "nothing",
        "text": "audit covered nothing: nas.example.net: NXDOMAIN (no such name)",
        "hosts": 0,
        "baseline_run": None,
        "baseline_hosts": None,
        "missing": [],
        "not_audited": [{"target": "nas.example.net", "reason": "NXDOMAIN (no such name)"}],
    }
    assert compose(*_week()).payload["coverage"] is None


def test_a_run_that_covered_fewer_hosts_names_the_baseline_and_the_missing_addresses() -> None:
    baseline = _report(CERT)  # NAS and ROUTER
    report = dataclasses.replace(baseline, hosts=baseline.hosts[:1])
    shortfall = coverage_shortfall(report, baseline, baseline_run=11)
    diff = ReportDiff(11, 12, Grade.B, Grade.B, unchanged=(_same(CERT),), hosts_vanished=(ROUTER,))
    message = compose(report, diff, shortfall)
    assert message.subject.startswith(
        "exposure-audit: grade B: audit covered fewer hosts (1 of 2); "
    )
    assert f"audit covered fewer hosts than run 11: 1 of 2 (not audited: {ROUTER})" in (
        message.text
    )
    assert message.payload["coverage"]["covered"] == "fewer_hosts"
    assert message.payload["coverage"]["missing"] == [ROUTER]
    assert message.payload["coverage"]["baseline_run"] == 11


def test_target_names_in_a_shortfall_are_inert_and_stay_out_of_the_subject() -> None:
    hostile = "\x1b[2J<!channel>.example.net"
    report = dataclasses.replace(
        _report(), hosts=(), not_audited=(UnauditedTarget(hostile, "NXDOMAIN"),)
    )
    message = compose(report, None, coverage_shortfall(report))
    assert "channel" not in message.subject
    for text in (message.text, json.dumps(message.payload), message.slack["text"]):
        assert "\x1b" not in text
    assert "<!channel>" not in message.slack["text"]


def test_accepted_findings_are_marked_and_not_counted() -> None:
    accepted = _finding(
        "SVC001", Severity.HIGH, port=22, acceptance=Acceptance("bastion", "ops", date(2099, 1, 1))
    )
    report = _report(accepted)
    message = compose(report, None)
    assert "[accepted until 2099-01-01]" in message.text
    assert "; 1 accepted risk not counted" in message.text
    assert message.payload["new"][0]["accepted"] is True
    assert message.payload["accepted"] == 1


def test_text_from_targets_is_made_inert_everywhere() -> None:
    hostile = "\x1b[2J\u202e<!channel> <http://evil.example|click> & co"
    finding = _finding("SVC002", Severity.MEDIUM, port=21, title=f"FTP banner {hostile}")
    before = _finding("DSM004", Severity.HIGH)
    after = _finding("DSM004", Severity.HIGH)
    report = _report(finding, after)
    diff = ReportDiff(
        11,
        12,
        Grade.D,
        Grade.D,
        new=(_new(finding),),
        changed=(_changed(before, after, f"product version 1.0 -> {hostile}"),),
    )
    message = compose(report, diff)
    for text in (message.subject, message.text, json.dumps(message.payload), message.slack["text"]):
        assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[2J\\u202e<!channel>" in message.text
    assert message.payload["new"][0]["title"].startswith("FTP banner \\x1b[2J")
    assert message.payload["changed"][0]["changes"] == [
        "product version 1.0 -> \\x1b[2J\\u202e<!channel> <http://evil.example|click> & co"
    ]
    slack = message.slack["text"]
    assert "<!channel>" not in slack and "<http" not in slack
    assert "&lt;!channel&gt; &lt;http://evil.example|click&gt; &amp; co" in slack
    assert "\n" not in message.subject


def test_long_sections_are_cut_in_the_text_but_complete_in_the_payload() -> None:
    findings = [_finding("SVC001", Severity.HIGH, port=10000 + i) for i in range(60)]
    report = _report(*findings)
    diff = ReportDiff(11, 12, Grade.A, Grade.D, new=tuple(_new(f) for f in findings))
    message = compose(report, diff)
    assert message.text.count("  - HIGH SVC001") == 50
    assert "  ... and 10 more (see the full report)" in message.text
    assert len(message.payload["new"]) == 60


def test_a_per_vantage_reachability_change_is_a_change_in_text_and_payload() -> None:
    report = _report(CERT)
    change = ReachabilityChange(NAS, 5001, "tcp", ("eu",), ("eu", "us"))
    diff = ReportDiff(
        11, 12, Grade.B, Grade.B, unchanged=(_same(CERT),), services_changed=(change,)
    )
    assert should_notify("change", diff, report, Severity.HIGH)
    message = compose(report, diff)
    assert f"Service reachability changed: {NAS} port 5001/tcp reachable from eu -> eu, us" in (
        message.text
    )
    assert message.payload["services_changed"] == [
        {
            "address": NAS,
            "port": 5001,
            "protocol": "tcp",
            "reachable_from_before": ["eu"],
            "reachable_from_after": ["eu", "us"],
            "untested_from": [],
        }
    ]
    assert "services_changed" not in compose(*_week()).payload
