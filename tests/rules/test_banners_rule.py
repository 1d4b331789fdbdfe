"""VULN001 over plain observations: severity follows certainty and KEV, one finding per port."""

from __future__ import annotations

from datetime import UTC, datetime

from exposure_audit.findings import Severity, finding_id
from exposure_audit.observations import (
    AddressFamily,
    HostObservation,
    HttpObservation,
    ServiceObservation,
)
from exposure_audit.rules import evaluate_host

NOW = datetime(2026, 11, 27, tzinfo=UTC)
ADDRESS = "198.51.100.9"


def _vuln(*services: ServiceObservation) -> list[tuple[int, Severity, str, str]]:
    host = HostObservation(ADDRESS, AddressFamily.IPV4, services=services)
    return [
        (f.port, f.severity, f.evidence, f.severity_reason)
        for f in evaluate_host(host, NOW)
        if f.rule == "VULN001"
    ]


def _smb(version: str) -> ServiceObservation:
    return ServiceObservation(445, "tcp", "open", "netbios-ssn", "Samba smbd", version)


def test_a_certain_kev_version_is_critical_and_names_cve_version_and_source() -> None:
    ((port, severity, evidence, reason),) = _vuln(_smb("4.5.9"))
    assert (port, severity) == (445, Severity.CRITICAL)
    assert "CVE-2017-7494" in evidence and "4.5.9" in evidence and "nmap -sV" in evidence
    assert "2023-03-30" in evidence and "KEV" in reason


def test_nmaps_samba_range_guess_is_only_possibly_medium() -> None:
    ((_, severity, evidence, _),) = _vuln(_smb("3.X - 4.X"))
    assert severity is Severity.MEDIUM
    assert "possibly" in evidence and "range guessed by nmap" in evidence


def test_a_certain_non_kev_version_is_high_and_a_fixed_one_is_silent() -> None:
    ssh = ServiceObservation(22, "tcp", "open", "ssh", "OpenSSH", "9.6p1", "protocol 2.0")
    ((_, severity, _, _),) = _vuln(ssh)
    assert severity is Severity.HIGH
    assert _vuln(ServiceObservation(22, "tcp", "open", "ssh", "OpenSSH", "9.8p1")) == []


def test_one_finding_per_port_with_every_applicable_cve() -> None:
    slp = ServiceObservation(427, "tcp", "open", "svrloc", "SLP Service Agent")
    ((_, severity, evidence, _),) = _vuln(slp)
    assert severity is Severity.MEDIUM
    for cve in ("CVE-2021-21974", "CVE-2020-3992", "CVE-2019-5544"):
        assert cve in evidence
    host = HostObservation(ADDRESS, AddressFamily.IPV4, services=(slp,))
    ids = [f.id for f in evaluate_host(host, NOW) if f.rule == "VULN001"]
    assert ids == [finding_id("VULN001", ADDRESS, "tcp", 427)]


def test_unidentified_closed_and_web_ports_are_not_judged() -> None:
    unidentified = ServiceObservation(
        427, "tcp", "open", "svrloc", "SLP Service Agent", unidentified="no answer within 2 s"
    )
    table_guess = ServiceObservation(873, "tcp", "open", "rsync")  # nmap's port table only
    closed = ServiceObservation(445, "tcp", "closed", "netbios-ssn", "Samba smbd", "4.5.9")
    web = ServiceObservation(
        8080, "tcp", "open", "http", "OpenSSH", "9.6p1", http=HttpObservation("http", 200)
    )
    assert _vuln(unidentified, table_guess, closed, web) == []
