"""Grades from findings: worst severity decides; an incomplete clean host is not an A."""

from __future__ import annotations

import pytest

from exposure_audit.findings import Finding, Severity
from exposure_audit.grading import Grade, grade_host, grade_run
from exposure_audit.observations import HostStatus


def _finding(severity: Severity) -> Finding:
    return Finding("X-1", "X001", severity, "198.51.100.7", 1, "tcp", "t", "e", "r")


@pytest.mark.parametrize(
    ("severity", "grade"),
    [
        (Severity.INFO, Grade.A),
        (Severity.LOW, Grade.B),
        (Severity.MEDIUM, Grade.C),
        (Severity.HIGH, Grade.D),
        (Severity.CRITICAL, Grade.F),
    ],
)
def test_the_worst_severity_sets_the_grade(severity: Severity, grade: Grade) -> None:
    findings = [_finding(Severity.INFO), _finding(severity)]
    assert grade_host(findings, HostStatus.COMPLETE) is grade


def test_a_clean_host_is_an_a() -> None:
    assert grade_host([], HostStatus.COMPLETE) is Grade.A


def test_an_incomplete_host_with_nothing_found_is_unknown_not_a() -> None:
    assert grade_host([], HostStatus.INCOMPLETE) is Grade.UNKNOWN


def test_an_incomplete_host_keeps_the_grade_of_what_was_found() -> None:
    assert grade_host([_finding(Severity.HIGH)], HostStatus.INCOMPLETE) is Grade.D


def test_the_run_grade_is_the_worst_host_and_unknown_beats_a() -> None:
    assert grade_run([Grade.A, Grade.D, Grade.B]) is Grade.D
    assert grade_run([Grade.A, Grade.UNKNOWN]) is Grade.UNKNOWN
    assert grade_run([Grade.UNKNOWN, Grade.B]) is Grade.B
    assert grade_run([]) is Grade.A
