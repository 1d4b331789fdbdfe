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
from exposure_audit.report import HostReport, Report, SkippedAddress, unaudited_targets

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
    names = (
        NameResolution("nas.example.net", ("198.51.100.7",), (), ("syno.example.net",)),
        NameResolution("gone.example.net", errors=("NXDOMAIN: the name does not exist",)),
        NameResolution("home.myds.me", ("192.168.1.10",), synology_domain="myds.me"),
    )
    skipped = (SkippedAddress("192.168.1.10", "home.myds.me", "not a public address: private"),)
    return Report(
        tool_version="0.1.0",
        started_at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 27, 12, 1, 30, tzinfo=UTC),
        ports=PortSet((21, 22, 23, 80, 5000, 5001), (161,)),
        hosts=hosts,
        names=names,
        skipped=skipped,
        notes=("UDP ports 161 skipped: UDP scanning needs root",),
        not_audited=unaudited_targets(names, skipped, (), {h.address for h in hosts}),
    )


VANTAGE_NOW = datetime(2026, 11, 27, 12, 5, tzinfo=UTC)


def _vantage_run(
    minute: int, *hosts: HostObservation, notes: tuple[str, ...] = (), complete: bool = True
) -> Report:
    """One vantage's own report (as its audit wrote it: findings are evaluated again when the
    vantages are merged, so none are given here)."""
    return Report(
        tool_version="0.1.0",
        started_at=datetime(2026, 11, 27, 12, minute, tzinfo=UTC),
        finished_at=datetime(2026, 11, 27, 12, minute + 2, tzinfo=UTC),
        ports=PortSet((21, 22, 443, 5000, 5001)),
        hosts=tuple(HostReport(h, (), Grade.A) for h in hosts),
        notes=notes,
        complete=complete,
    )


def vantage_reports() -> dict[str, Report]:
    """The same three targets audited from ``eu`` and ``us``.

    198.51.100.7 (a DSM 7.2 NAS): 5000 open from both; 5001 open from eu only (filtered from
    us, a geo-allow-list gone wrong); SSH open from both. 203.0.113.5 (a web server): its audit
    from us hit the deadline, so 443 is "not tested" from us. 203.0.113.9 (an FTP box): the us
    worker's block failed, so only eu reports it.
    """
    dsm = DsmFingerprint(("title", "sds-session"), version="7.2.2", build=72806, update=3)
    nas_http = ServiceObservation(
        5000, "tcp", "open", "http", http=HttpObservation("http", 200, "nginx", "DSM", dsm=dsm)
    )
    nas_https = ServiceObservation(
        5001, "tcp", "open", "https", http=HttpObservation("https", 200, "nginx", "DSM", dsm=dsm)
    )
    ssh = ServiceObservation(22, "tcp", "open", "ssh", "OpenSSH", "9.6p1")
    web = ServiceObservation(
        443, "tcp", "open", "https", http=HttpObservation("https", 200, "nginx", "Welcome")
    )
    ftp = ServiceObservation(21, "tcp", "open", "ftp", "ProFTPD", "1.3.5")
    eu = _vantage_run(
        0,
        HostObservation(
            "198.51.100.7",
            AddressFamily.IPV4,
            ("nas.example.net",),
            (nas_http, nas_https, ssh),
        ),
        HostObservation("203.0.113.5", AddressFamily.IPV4, services=(web,)),
        HostObservation("203.0.113.9", AddressFamily.IPV4, services=(ftp,)),
        notes=("UDP ports skipped: no UDP port in the set",),
    )
    us = _vantage_run(
        1,
        HostObservation(
            "198.51.100.7",
            AddressFamily.IPV4,
            ("nas.example.net",),
            (nas_http, ServiceObservation(5001, "tcp", "filtered"), ssh),
        ),
        HostObservation(
            "203.0.113.5",
            AddressFamily.IPV4,
            status=HostStatus.INCOMPLETE,
            attempts=(ProbeAttempt("discovery", ProbeStatus.TIMED_OUT, "host deadline reached"),),
        ),
        notes=("UDP ports skipped: no UDP port in the set",),
        complete=False,
    )
    return {"eu": eu, "us": us}


def vantage_report() -> Report:
    """:func:`vantage_reports` merged: the two-vantage sample the renderers' golden files show."""
    from exposure_audit.run.vantage import merge_vantages

    return merge_vantages(vantage_reports(), now=VANTAGE_NOW)
