"""Prometheus metrics: the real ``promtool check metrics`` accepts what the renderer writes (for
a normal run, a run with unknown grades, one that audited nothing, hostile label text), the
numbers mean what docs/integrations.md says, and the alert rules in docs/prometheus pass
``promtool check rules`` and fire (``promtool test rules``) exactly when they should."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess
from pathlib import Path

from exposure_audit.grading import Grade
from exposure_audit.render.prometheus import GRADE_POINTS, render_metrics

from ..report_samples import HOSTILE_TITLE, sample_report

RULES = Path(__file__).parents[2] / "docs" / "prometheus" / "exposure-audit.rules.yml"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real promtool (Debian package ``prometheus``, installed by .ci/install)."""
    path = shutil.which("promtool")
    assert path is not None, "promtool is missing: run .ci/install (Debian package prometheus)"
    return subprocess.run(
        [path, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def check_metrics(text: str) -> None:
    """``promtool check metrics``: the exposition format and the naming conventions (lint)."""
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def samples(text: str) -> dict[str, str]:
    """``name{labels}`` -> value, for every sample line."""
    return dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_the_metrics_of_a_run_pass_promtool_and_say_what_the_run_found() -> None:
    report = sample_report()
    text = render_metrics(report, first_run=True)
    check_metrics(text)
    values = samples(text)
    assert values["exposure_audit_hosts_audited"] == "2"
    assert values["exposure_audit_targets_not_audited"] == str(len(report.not_audited))
    assert values['exposure_audit_host_grade{address="198.51.100.7"}'] == "0"  # F
    assert values['exposure_audit_findings{severity="critical"}'] == "3"
    assert values['exposure_audit_findings{severity="medium"}'] == "0"  # zeros are written
    assert (
        values[
            'exposure_audit_host_findings{address="198.51.100.7",rule="DSM001",severity="critical"}'
        ]
        == "1"
    )
    assert float(values["exposure_audit_last_run_timestamp_seconds"]) == (
        report.finished_at.timestamp()
    )
    assert values["exposure_audit_last_run_duration_seconds"] == "90"
    # A first run: every finding is new.
    assert values['exposure_audit_new_findings{severity="critical"}'] == "3"


def test_grades_map_to_grade_points_and_unknown_is_nan_with_its_own_gauge() -> None:
    assert [GRADE_POINTS[g] for g in (Grade.A, Grade.B, Grade.C, Grade.D, Grade.F)] == [
        4,
        3,
        2,
        1,
        0,
    ]
    report = sample_report()
    unknown = dataclasses.replace(report.hosts[1], grade=Grade.UNKNOWN)
    text = render_metrics(dataclasses.replace(report, hosts=(report.hosts[0], unknown)))
    check_metrics(text)
    values = samples(text)
    assert math.isnan(float(values['exposure_audit_host_grade{address="2001:db8::7"}']))
    assert values['exposure_audit_host_grade_unknown{address="2001:db8::7"}'] == "1"
    assert values['exposure_audit_host_grade_unknown{address="198.51.100.7"}'] == "0"


def test_without_a_comparison_there_is_no_new_findings_metric() -> None:
    text = render_metrics(sample_report())
    check_metrics(text)
    assert "exposure_audit_new_findings" not in text


def test_a_run_that_audited_nothing_still_writes_valid_metrics() -> None:
    report = dataclasses.replace(sample_report(), hosts=())
    text = render_metrics(report)
    check_metrics(text)
    values = samples(text)
    assert values["exposure_audit_hosts_audited"] == "0"
    assert values["exposure_audit_grade"] == "NaN" and values["exposure_audit_grade_unknown"] == "1"
    assert "exposure_audit_host_grade{" not in text


def test_hostile_label_values_are_escaped() -> None:
    report = sample_report()
    nas = report.hosts[0]
    finding = dataclasses.replace(nas.findings[0], rule='X"}\n' + HOSTILE_TITLE + "\\")
    nas = dataclasses.replace(nas, findings=(finding,))
    text = render_metrics(dataclasses.replace(report, hosts=(nas,)))
    check_metrics(text)
    assert "\x1b" not in text
    assert all(
        re.fullmatch(r"(# .*|exposure_audit_[a-z_]+(\{.*\})? \S+)", line)
        for line in text.splitlines()
    )


def test_the_alert_rules_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout


_RULE_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1h
    input_series:
      - series: 'exposure_audit_new_findings{{instance="nas",severity="high"}}'
        values: '0 0 1'
      - series: 'exposure_audit_new_findings{{instance="nas",severity="low"}}'
        values: '3 3 3'
      - series: 'exposure_audit_hosts_audited{{instance="nas"}}'
        values: '2 0 2'
    alert_rule_test:
      - eval_time: 1h
        alertname: ExposureAuditNewHighFinding
        exp_alerts: []
      - eval_time: 2h
        alertname: ExposureAuditNewHighFinding
        exp_alerts:
          - exp_labels: {{severity: critical, instance: nas}}
            exp_annotations:
              summary: "exposure-audit: 1 new high or critical finding(s)"
              description: "{new_high}"
      - eval_time: 1h
        alertname: ExposureAuditAuditedNothing
        exp_alerts:
          - exp_labels: {{severity: warning, instance: nas}}
            exp_annotations:
              summary: "exposure-audit: the last run audited nothing"
              description: "{nothing}"
      - eval_time: 2h
        alertname: ExposureAuditAuditedNothing
        exp_alerts: []
  - interval: 5m
    input_series:
      - series: 'exposure_audit_last_run_timestamp_seconds{{instance="nas"}}'
        values: '0x3000'
    alert_rule_test:
      - eval_time: 7d
        alertname: ExposureAuditNoRecentRun
        exp_alerts: []
      - eval_time: 9d
        alertname: ExposureAuditNoRecentRun
        exp_alerts:
          - exp_labels: {{severity: warning, instance: nas}}
            exp_annotations:
              summary: "exposure-audit: no run for 8 days"
              description: "{stale}"
"""


def test_the_alert_rules_fire_when_they_should_and_only_then(tmp_path: Path) -> None:
    # Given a node whose run finds a new high finding at 2h, audits nothing at 1h, and never
    # runs again after time 0; when promtool evaluates the rules; then each alert fires at
    # the expected time and is silent before.
    new_high = (
        "The last exposure-audit run on nas found new or worsened findings of severity high"
        " or critical. Read the run's report or notification (exposure-audit report last)."
    )
    nothing = (
        "The last exposure-audit run on nas audited no host: every target was unresolved,"
        " excluded or unreachable. Check the targets and the run's stderr or notification."
    )
    stale = (
        "No exposure-audit run has finished on nas for more than 8 days. Check the cron job"
        " or systemd timer (exposure-audit schedule)."
    )
    tests = tmp_path / "alerts.test.yml"
    tests.write_text(
        _RULE_TESTS.format(rules=RULES, new_high=new_high, nothing=nothing, stale=stale),
        encoding="utf-8",
    )
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
