"""Grades are lower bounds: the worst finding seen decides, and what was not seen (an
incomplete host, an unidentified open service, a run that audited nothing) never reads A."""

from __future__ import annotations

import pytest

from exposure_audit.findings import Finding, Severity
from exposure_audit.grading import Grade, grade_host, grade_run
from exposure_audit.observations import (
    AddressFamily,
    HostObservation,
    HostStatus,
    ServiceObservation,
)


def _finding(severity: Severity) -> Finding:
    return Finding("X-1", "X001", severity, "198.51.100.7", 1, "tcp", "t", "e", "r")


def _host(
    status: HostStatus = HostStatus.COMPLETE, services: tuple[ServiceObservation, ...] = ()
) -> HostObservation:
    return HostObservation("198.51.100.7", AddressFamily.IPV4, services=services, status=status)


_SILENT = ServiceObservation(
    5001, "tcp", "open", "commplex-link", unidentified="no answer within 10 s"
)


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
    assert grade_host(findings, _host()) is grade


def test_a_clean_host_is_an_a() -> None:
    assert grade_host([], _host()) is Grade.A


def test_an_incomplete_host_with_nothing_found_is_unknown_not_a() -> None:
    assert grade_host([], _host(HostStatus.INCOMPLETE)) is Grade.UNKNOWN


def test_an_incomplete_host_keeps_the_grade_of_what_was_found() -> None:
    assert grade_host([_finding(Severity.HIGH)], _host(HostStatus.INCOMPLETE)) is Grade.D


def test_an_unidentified_open_service_keeps_a_complete_host_from_an_a() -> None:
    assert grade_host([], _host(services=(_SILENT,))) is Grade.UNKNOWN
    assert grade_host([_finding(Severity.MEDIUM)], _host(services=(_SILENT,))) is Grade.C


def test_an_identified_or_closed_service_does_not_make_a_host_unknown() -> None:
    closed = ServiceObservation(5001, "tcp", "closed")
    ssh = ServiceObservation(22, "tcp", "open", "ssh", product="OpenSSH")
    assert grade_host([], _host(services=(closed, ssh))) is Grade.A


def test_the_run_grade_is_the_worst_host_and_unknown_beats_a() -> None:
    assert grade_run([Grade.A, Grade.D, Grade.B]) is Grade.D
    assert grade_run([Grade.A, Grade.UNKNOWN]) is Grade.UNKNOWN
    assert grade_run([Grade.UNKNOWN, Grade.B]) is Grade.B


def test_a_run_that_audited_no_host_is_unknown_never_a() -> None:
    assert grade_run([]) is Grade.UNKNOWN
