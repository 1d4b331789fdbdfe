"""MGMT001/MGMT002 over plain observations: what a user sees for a management console."""

from __future__ import annotations

from datetime import UTC, datetime

from exposure_audit.findings import Severity
from exposure_audit.grading import Grade, grade_host
from exposure_audit.observations import (
    AddressFamily,
    DsmFingerprint,
    HostObservation,
    HttpObservation,
    ManagementHint,
    ManagementObservation,
    ServiceObservation,
)
from exposure_audit.rules import evaluate_host, rule_by_id

NOW = datetime(2026, 11, 27, tzinfo=UTC)
QNAP = ManagementObservation(
    "qnap-qts",
    "QNAP QTS / QuTS hero",
    "QNAP",
    "nas",
    ("title", "path /cgi-bin/authLogin.cgi"),
    version="5.1.4",
)
JUPYTER_OPEN = ManagementObservation(
    "jupyter",
    "Jupyter",
    "Project Jupyter",
    "notebook",
    ("title", "body"),
    unauthenticated="GET /api/kernels answered 200 without a token",
)


def _host(
    scheme: str,
    management: ManagementObservation | None,
    port: int = 8080,
    hints: tuple[ManagementHint, ...] = (),
    dsm: DsmFingerprint | None = None,
) -> HostObservation:
    http = HttpObservation(scheme, 200, management=management, management_hints=hints, dsm=dsm)
    service = ServiceObservation(port, "tcp", "open", scheme, http=http)
    return HostObservation("198.51.100.7", AddressFamily.IPV4, services=(service,))


def test_a_console_over_plain_http_is_critical_and_names_the_product() -> None:
    host = _host("http", QNAP)
    (finding,) = evaluate_host(host, NOW)
    assert (finding.rule, finding.severity, finding.port) == ("MGMT001", Severity.CRITICAL, 8080)
    assert "QNAP QTS / QuTS hero 5.1.4 (nas)" in finding.evidence
    assert "myQNAPcloud" in finding.evidence  # the product's own setting
    assert grade_host(evaluate_host(host, NOW), host) is Grade.F


def test_a_console_over_https_is_high() -> None:
    host = _host("https", QNAP, port=443)
    (finding,) = evaluate_host(host, NOW)
    assert (finding.rule, finding.severity) == ("MGMT002", Severity.HIGH)
    assert grade_host(evaluate_host(host, NOW), host) is Grade.D


def test_a_console_that_acts_without_a_login_is_critical_whatever_the_scheme() -> None:
    for scheme, rule in (("https", "MGMT002"), ("http", "MGMT001")):
        (finding,) = evaluate_host(_host(scheme, JUPYTER_OPEN, port=8888), NOW)
        assert (finding.rule, finding.severity) == (rule, Severity.CRITICAL)
        assert "api/kernels" in finding.severity_reason
        assert "acts without a login" in finding.evidence


def test_a_possible_match_is_never_a_finding_nor_a_grade_change() -> None:
    hint = ManagementHint("qnap-qts", "QNAP QTS / QuTS hero", "title")
    host = _host("http", None, hints=(hint,))
    assert evaluate_host(host, NOW) == ()
    assert grade_host((), host) is Grade.A


def test_dsm_ports_keep_their_own_rules_only() -> None:
    dsm = DsmFingerprint(("title", "sds-session"), version="7.2")
    rules = {f.rule for f in evaluate_host(_host("http", None, port=5000, dsm=dsm), NOW)}
    assert "DSM001" in rules and not any(r.startswith("MGMT") for r in rules)


def test_dsm_and_srm_named_in_management_still_get_no_mgmt_finding() -> None:
    dsm = DsmFingerprint(("title", "sds-session"), version="7.2")
    named = ManagementObservation(
        "synology-dsm", "Synology DiskStation Manager (DSM)", "Synology", "nas", dsm.markers, "7.2"
    )
    for scheme, port, expected in (("http", 5000, "DSM001"), ("https", 5001, "DSM002")):
        rules = {f.rule for f in evaluate_host(_host(scheme, named, port=port, dsm=dsm), NOW)}
        assert expected in rules and not any(r.startswith("MGMT") for r in rules)
    srm = ManagementObservation(
        "synology-srm", "Synology Router Manager (SRM)", "Synology", "router-firewall", ("x",)
    )
    rules = {f.rule for f in evaluate_host(_host("http", srm, port=8000), NOW)}
    assert not any(r.startswith("MGMT") for r in rules)


def test_a_console_served_over_plain_http_beside_tls_is_mgmt001_not_mgmt002() -> None:
    # CUPS 2.4 speaks both on 631: TLS answered first, and plain HTTP served the console too.
    http = HttpObservation("https", 200, management=QNAP, also_plain_http=True)
    service = ServiceObservation(631, "tcp", "open", "https", http=http)
    host = HostObservation("198.51.100.7", AddressFamily.IPV4, services=(service,))
    (finding,) = evaluate_host(host, NOW)
    assert (finding.rule, finding.severity) == ("MGMT001", Severity.CRITICAL)
    assert "the port speaks TLS too" in finding.evidence


def test_the_rules_are_registered() -> None:
    assert rule_by_id("mgmt001").severity is Severity.CRITICAL
    assert rule_by_id("MGMT002").severity is Severity.HIGH


def _prompted(
    scheme: str,
    port: int,
    management: ManagementObservation | None = None,
    hints: tuple[ManagementHint, ...] = (),
    dsm: DsmFingerprint | None = None,
) -> HostObservation:
    http = HttpObservation(
        scheme,
        401,
        management=management,
        management_hints=hints,
        dsm=dsm,
        login_prompt='WWW-Authenticate: Basic realm="Authorization Required"',
    )
    service = ServiceObservation(port, "tcp", "open", scheme, http=http)
    return HostObservation("198.51.100.7", AddressFamily.IPV4, services=(service,))


def test_an_unidentified_password_prompt_on_a_console_port_is_medium_and_names_its_owner() -> None:
    (finding,) = evaluate_host(_prompted("http", 8384), NOW)
    assert (finding.rule, finding.severity, finding.port) == ("MGMT004", Severity.MEDIUM, 8384)
    assert 'Basic realm="Authorization Required"' in finding.evidence
    assert "default port of Syncthing GUI" in finding.evidence
    assert "clear text" in finding.evidence
    assert grade_host((finding,), _prompted("http", 8384)) is Grade.C


def test_a_prompt_over_https_elsewhere_is_low_and_says_why() -> None:
    host = _prompted("https", 18443)
    (finding,) = evaluate_host(host, NOW)
    assert (finding.rule, finding.severity) == ("MGMT004", Severity.LOW)
    assert "no management product's default port" in finding.severity_reason
    assert "clear text" not in finding.evidence
    assert grade_host((finding,), host) is Grade.B


def test_a_prompt_carries_the_single_marker_hint() -> None:
    hint = ManagementHint("qnap-qts", "QNAP QTS / QuTS hero", "favicon")
    (finding,) = evaluate_host(_prompted("https", 18443, hints=(hint,)), NOW)
    assert "looks like QNAP QTS / QuTS hero (favicon)" in finding.evidence


def test_an_identified_console_behind_a_prompt_is_judged_by_its_own_rule_only() -> None:
    rules = [f.rule for f in evaluate_host(_prompted("http", 8080, management=QNAP), NOW)]
    assert rules == ["MGMT001"]
    dsm = DsmFingerprint(("title", "synohdpack"), version="7.2", build=64570)
    rules = [f.rule for f in evaluate_host(_prompted("http", 5000, dsm=dsm), NOW)]
    assert "MGMT004" not in rules
