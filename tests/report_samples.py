"""A fixed report built from plain values, shared by renderer tests."""

from __future__ import annotations

from datetime import UTC, datetime

from exposure_audit.findings import Finding, Severity, finding_id
from exposure_audit.grading import Grade
from exposure_audit.observations import (
    AddressFamily,
    DsmFingerprint,
    HostObservation,
    HostStatus,
    HttpObservation,
    NameResolution,
    ProbeAttempt,
    ProbeStatus,
    ServiceObservation,
    TlsCertificate,
)
from exposure_audit.ports import PortSet
from exposure_audit.report import HostReport, Report, SkippedAddress

HOSTILE_TITLE = "\x1b[2J\x1b]0;pwned\x07<script>alert(1)</script>\u202e=cmd|' /C calc'!A0"


def _finding(rule: str, severity: Severity, address: str, port: int, evidence: str) -> Finding:
    return Finding(
        id=finding_id(rule, address, "tcp", port),
        rule=rule,
        severity=severity,
        address=address,
        port=port,
        protocol="tcp",
        title=f"title of {rule}",
        evidence=evidence,
        remediation=f"remediation of {rule}",
    )


def sample_report() -> Report:
    dsm = DsmFingerprint(
        markers=("title", "sds-session", "info-cgi"),
        version="4.3",
        build=3810,
        model="DS1512+",
        version_source="/webman/info.cgi",
    )
    cert = TlsCertificate(
        subject="CN=synology.com,OU=FTP Team,O=Synology Inc.,L=Taipei,ST=Taiwan,C=TW",
        issuer="CN=synology.com,OU=FTP Team,O=Synology Inc.,L=Taipei,ST=Taiwan,C=TW",
        not_before=datetime(2009, 1, 1, tzinfo=UTC),
        not_after=datetime(2019, 1, 1, tzinfo=UTC),
        self_signed=True,
        synology_default=True,
        sha256="ab" * 32,
    )
    nas = HostObservation(
        address="198.51.100.7",
        family=AddressFamily.IPV4,
        hostnames=("nas.example.net",),
        services=(
            ServiceObservation(
                5000,
                "tcp",
                "open",
                "http",
                http=HttpObservation("http", 200, "nginx", "x", dsm=dsm),
            ),
            ServiceObservation(
                5001,
                "tcp",
                "open",
                "https",
                http=HttpObservation("https", 200, "nginx", "x", dsm=dsm),
                tls=cert,
            ),
            ServiceObservation(23, "tcp", "open", "telnet", "Synology DiskStation telnetd"),
            ServiceObservation(22, "tcp", "closed", "ssh"),
        ),
    )
    hostile = HostObservation(
        address="2001:db8::7",
        family=AddressFamily.IPV6,
        services=(
            ServiceObservation(
                80,
                "tcp",
                "open",
                "http",
                http=HttpObservation("http", 200, HOSTILE_TITLE, HOSTILE_TITLE),
            ),
            ServiceObservation(21, "tcp", "open", "ftp", HOSTILE_TITLE),
        ),
        status=HostStatus.INCOMPLETE,
        attempts=(ProbeAttempt("versions", ProbeStatus.TIMED_OUT, "host deadline reached"),),
    )
    hosts = (
        HostReport(
            nas,
            (
                _finding(
                    "DSM001", Severity.CRITICAL, "198.51.100.7", 5000, "DSM 4.3-3810 over HTTP"
                ),
                _finding("DSM003", Severity.CRITICAL, "198.51.100.7", 5000, "SynoLocker"),
                _finding("SVC001", Severity.CRITICAL, "198.51.100.7", 23, "Telnet"),
                _finding("TLS001", Severity.LOW, "198.51.100.7", 5001, "default cert"),
            ),
            Grade.F,
        ),
        HostReport(
            hostile,
            (_finding("SVC001", Severity.HIGH, "2001:db8::7", 21, f"FTP ({HOSTILE_TITLE})"),),
            Grade.D,
        ),
    )
    return Report(
        tool_version="0.1.0",
        started_at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 27, 12, 1, 30, tzinfo=UTC),
        ports=PortSet((21, 22, 23, 80, 5000, 5001), (161,)),
        hosts=hosts,
        names=(
            NameResolution("nas.example.net", ("198.51.100.7",), (), ("syno.example.net",)),
            NameResolution("gone.example.net", errors=("NXDOMAIN: the name does not exist",)),
            NameResolution("home.myds.me", ("192.168.1.10",), synology_domain="myds.me"),
        ),
        skipped=(SkippedAddress("192.168.1.10", "home.myds.me", "not a public address: private"),),
        notes=("UDP ports 161 skipped: UDP scanning needs root",),
    )
