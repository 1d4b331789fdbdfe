"""Rules over plain observations, and the registry's metadata contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from exposure_audit.findings import Severity, finding_id
from exposure_audit.observations import (
    AddressFamily,
    DsmFingerprint,
    HostObservation,
    HttpObservation,
    ServiceObservation,
    TlsCertificate,
)
from exposure_audit.rules import RULES, evaluate_host, rule_by_id

NOW = datetime(2026, 11, 27, tzinfo=UTC)
ADDRESS = "198.51.100.7"
MARKERS = ("title", "sds-session")


def _dsm_host(
    scheme: str, version: str | None, build: int | None, update: int | None = None, port: int = 5000
) -> HostObservation:
    dsm = DsmFingerprint(MARKERS, version=version, build=build, update=update)
    http = HttpObservation(scheme, 200, "nginx", "x", dsm=dsm)
    return HostObservation(
        ADDRESS,
        AddressFamily.IPV4,
        services=(ServiceObservation(port, "tcp", "open", scheme, http=http),),
    )


def _rules(host: HostObservation) -> dict[str, Severity]:
    return {f.rule: f.severity for f in evaluate_host(host, NOW)}


def test_registry_metadata_is_complete_and_ids_are_stable() -> None:
    assert list(RULES) == sorted(RULES)
    for rule_id, rule in RULES.items():
        assert re.fullmatch(r"[A-Z]{3,4}\d{3}", rule_id)
        assert rule.id == rule_id
        assert rule.title and not rule.title.lower().startswith("ensure")
        assert len(rule.rationale) > 40 and len(rule.remediation) > 40
    assert {"DSM001", "DSM002", "DSM003", "DSM004", "DSM005", "SVC001", "SVC002", "TLS001"} <= (
        RULES.keys()
    )


def test_rule_lookup_is_case_insensitive_and_names_known_ids() -> None:
    assert rule_by_id("dsm003").id == "DSM003"
    with pytest.raises(KeyError, match="DSM001"):
        rule_by_id("XYZ999")


def test_synolocker_era_dsm_over_http_is_critical_on_three_counts() -> None:
    found = _rules(_dsm_host("http", "4.3", 3810))
    assert found["DSM001"] is Severity.CRITICAL
    assert found["DSM003"] is Severity.CRITICAL
    assert found["DSM004"] is Severity.CRITICAL  # end of life, decided by the build
    assert found["DSM005"] is Severity.LOW


def test_the_first_fixed_43_build_is_not_synolocker_but_still_end_of_life() -> None:
    found = _rules(_dsm_host("https", "4.3", 3827))
    assert "DSM003" not in found
    assert found["DSM002"] is Severity.HIGH
    assert found["DSM004"] is Severity.CRITICAL


def test_an_unknown_update_level_makes_an_advisory_possible_and_high() -> None:
    # 7.1.1-42962 is the build SA-24:20's fix shipped for (Update 7); its update is unknown.
    found = evaluate_host(_dsm_host("https", "7.1.1", 42962, None), NOW)
    dsm004 = next(f for f in found if f.rule == "DSM004")
    assert dsm004.severity is Severity.HIGH
    assert "possibly" in dsm004.evidence and dsm004.severity_reason


def test_a_leaked_update_level_below_the_fix_is_critical() -> None:
    assert _rules(_dsm_host("http", "7.1.1", 42962, 6))["DSM004"] is Severity.CRITICAL


def test_a_leaked_update_level_at_the_fix_clears_the_advisory() -> None:
    assert "DSM004" not in _rules(_dsm_host("http", "7.1.1", 42962, 8))


def test_every_62_build_is_critical_as_no_62_fix_exists_for_sa_21_24() -> None:
    # GBN: SA-21:24 affects "6.2.x, 7.x < 7.0.1-42218"; no 6.2 fix was ever listed.
    assert _rules(_dsm_host("http", "6.2.4", 25556, None))["DSM004"] is Severity.CRITICAL


def test_a_current_dsm_over_https_is_high_for_exposure_and_low_for_disclosure() -> None:
    found = _rules(_dsm_host("https", "7.2.2", 72806, 3, port=5001))
    assert found == {"DSM002": Severity.HIGH, "DSM005": Severity.LOW}


def test_dsm_without_a_version_is_exposure_only() -> None:
    assert _rules(_dsm_host("https", None, None)) == {"DSM002": Severity.HIGH}


@pytest.mark.parametrize(
    ("service", "port", "severity"),
    [
        ("telnet", 23, Severity.CRITICAL),
        ("microsoft-ds", 445, Severity.CRITICAL),
        ("netbios-ssn", 139, Severity.CRITICAL),
        ("ftp", 21, Severity.HIGH),
        ("afp", 548, Severity.HIGH),
        ("rsync", 873, Severity.HIGH),
        ("nfs", 2049, Severity.HIGH),
        ("iscsi", 3260, Severity.HIGH),
        ("mysql", 3306, Severity.HIGH),
        ("ldap", 389, Severity.HIGH),
    ],
)
def test_data_plane_services_are_svc001(service: str, port: int, severity: Severity) -> None:
    host = HostObservation(
        ADDRESS, AddressFamily.IPV4, services=(ServiceObservation(port, "tcp", "open", service),)
    )
    assert _rules(host) == {"SVC001": severity}


def test_snmp_over_udp_is_svc001() -> None:
    host = HostObservation(
        ADDRESS, AddressFamily.IPV4, services=(ServiceObservation(161, "udp", "open", "snmp"),)
    )
    finding = evaluate_host(host, NOW)[0]
    assert (finding.rule, finding.protocol, finding.port) == ("SVC001", "udp", 161)


def test_a_port_that_spoke_http_is_not_judged_by_its_port_number() -> None:
    http = HttpObservation("http", 200, "nginx", "Welcome")
    host = HostObservation(
        ADDRESS,
        AddressFamily.IPV4,
        services=(ServiceObservation(23, "tcp", "open", "http", http=http),),
    )
    assert _rules(host) == {}


def test_closed_and_filtered_ports_raise_nothing() -> None:
    host = HostObservation(
        ADDRESS,
        AddressFamily.IPV4,
        services=(
            ServiceObservation(23, "tcp", "closed", "telnet"),
            ServiceObservation(445, "tcp", "filtered", "microsoft-ds"),
        ),
    )
    assert _rules(host) == {}


def test_ssh_and_srm_are_svc002_medium() -> None:
    srm = HttpObservation("https", 200, "nginx", "Synology Router", srm=True)
    host = HostObservation(
        ADDRESS,
        AddressFamily.IPV4,
        services=(
            ServiceObservation(22, "tcp", "open", "ssh", "OpenSSH", "8.2p1"),
            ServiceObservation(8001, "tcp", "open", "https", http=srm),
        ),
    )
    findings = evaluate_host(host, NOW)
    assert [(f.rule, f.port, f.severity) for f in findings] == [
        ("SVC002", 22, Severity.MEDIUM),
        ("SVC002", 8001, Severity.MEDIUM),
    ]


def _cert(default: bool, not_after: datetime) -> TlsCertificate:
    return TlsCertificate(
        "CN=synology",
        "CN=Synology Inc. CA",
        datetime(2020, 1, 1, tzinfo=UTC),
        not_after,
        False,
        default,
    )


@pytest.mark.parametrize(
    ("default", "not_after", "expected"),
    [
        (True, datetime(2030, 1, 1, tzinfo=UTC), True),
        (False, datetime(2020, 6, 1, tzinfo=UTC), True),
        (False, datetime(2030, 1, 1, tzinfo=UTC), False),
    ],
)
def test_default_or_expired_certificates_are_tls001(
    default: bool, not_after: datetime, expected: bool
) -> None:
    http = HttpObservation("https", 200, "nginx", "x")
    service = ServiceObservation(
        443, "tcp", "open", "https", http=http, tls=_cert(default, not_after)
    )
    host = HostObservation(ADDRESS, AddressFamily.IPV4, services=(service,))
    assert ("TLS001" in _rules(host)) is expected


def test_finding_ids_depend_only_on_rule_address_protocol_and_port() -> None:
    a = evaluate_host(_dsm_host("http", "4.3", 3810), NOW)
    b = evaluate_host(_dsm_host("http", "4.3", 3827), NOW)
    ids_a = {f.rule: f.id for f in a}
    ids_b = {f.rule: f.id for f in b}
    assert ids_a["DSM001"] == ids_b["DSM001"] == finding_id("DSM001", ADDRESS, "tcp", 5000)
    assert ids_a["DSM001"] != finding_id("DSM001", ADDRESS, "tcp", 5001)


def test_docs_describe_every_rule() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "rules.md").read_text()
    for rule in RULES.values():
        assert f"## {rule.id}: {rule.title}" in text


def _seen_from(
    reachable: tuple[str, ...], untested: tuple[str, ...] = (), state: str = "open"
) -> HostObservation:
    service = ServiceObservation(
        5001, "tcp", state, "https", reachable_from=reachable, untested_from=untested
    )
    return HostObservation(
        ADDRESS, AddressFamily.IPV4, services=(service,), vantages=("ap", "eu", "us")
    )


def test_a_service_reachable_from_one_vantage_and_scanned_closed_from_another_is_van001() -> None:
    (finding,) = evaluate_host(_seen_from(("eu",), ("ap",)), NOW)
    assert (finding.rule, finding.severity, finding.port, finding.protocol) == (
        "VAN001",
        Severity.MEDIUM,
        5001,
        "tcp",
    )
    assert finding.id == finding_id("VAN001", ADDRESS, "tcp", 5001)
    assert finding.evidence == "5001/tcp reachable from eu; not from us; not tested from ap"


@pytest.mark.parametrize(
    ("reachable", "untested", "state"),
    [
        (("ap", "eu", "us"), (), "open"),  # the same from everywhere
        (("eu",), ("ap", "us"), "open"),  # the others could not tell
        ((), (), "filtered"),  # reachable from nowhere
        ((), (), "open"),  # a run without vantages
    ],
)
def test_van001_needs_a_vantage_that_reached_it_and_one_that_scanned_it_and_did_not(
    reachable: tuple[str, ...], untested: tuple[str, ...], state: str
) -> None:
    assert "VAN001" not in _rules(_seen_from(reachable, untested, state))


def test_van001_needs_the_host_to_have_vantages() -> None:
    host = HostObservation(
        ADDRESS,
        AddressFamily.IPV4,
        services=(ServiceObservation(5001, "tcp", "open", "https", reachable_from=("eu",)),),
    )
    assert _rules(host) == {}
