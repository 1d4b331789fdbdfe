"""Merging the reports of one audit run from several vantage points, with plain values."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from exposure_audit.findings import Severity, finding_id
from exposure_audit.grading import Grade, grade_host
from exposure_audit.observations import (
    AddressFamily,
    DsmFingerprint,
    HostObservation,
    HostStatus,
    HttpObservation,
    NameResolution,
    PortMapping,
    ProbeAttempt,
    ProbeStatus,
    ServiceObservation,
    UpnpForwarding,
    UpnpObservation,
)
from exposure_audit.ports import PortSet
from exposure_audit.report import HostReport, Report, SkippedAddress
from exposure_audit.rules import evaluate_host
from exposure_audit.run.vantage import merge_vantages

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
NAS = "198.51.100.7"
WEB = "203.0.113.5"
OTHER = "203.0.113.9"
PORTS = PortSet((22, 443, 5000, 5001), (161,))

DSM = DsmFingerprint(("title", "sds-session"), version="7.2.2", build=72806, update=3)
DSM_HTTP = ServiceObservation(
    5000, "tcp", "open", "http", http=HttpObservation("http", 200, "nginx", "DSM", dsm=DSM)
)
DSM_HTTPS = ServiceObservation(
    5001, "tcp", "open", "https", http=HttpObservation("https", 200, "nginx", "DSM", dsm=DSM)
)
SSH = ServiceObservation(22, "tcp", "open", "ssh", "OpenSSH", "9.6p1")


def nas(*services: ServiceObservation, **changes: object) -> HostObservation:
    host = HostObservation(NAS, AddressFamily.IPV4, ("nas.example.net",), services)
    return dataclasses.replace(host, **changes)  # type: ignore[arg-type]


def run(*hosts: HostObservation, minute: int = 0, **changes: object) -> Report:
    """A vantage's report as its audit wrote it (findings evaluated, hosts graded)."""
    reports = []
    for host in hosts:
        findings = evaluate_host(host, NOW)
        reports.append(HostReport(host, findings, grade_host(findings, host)))
    report = Report(
        tool_version="0.1.0",
        started_at=datetime(2026, 11, 27, 12, minute, tzinfo=UTC),
        finished_at=datetime(2026, 11, 27, 12, minute + 3, tzinfo=UTC),
        ports=PORTS,
        hosts=tuple(reports),
    )
    return dataclasses.replace(report, **changes)  # type: ignore[arg-type]


def rules_by_port(host: HostReport) -> list[tuple[str, int]]:
    return sorted((f.rule, f.port) for f in host.findings)


def test_a_port_open_from_one_vantage_and_filtered_from_the_other_is_van001_there_only() -> None:
    # Given eu reaching 5000 and 5001, us reaching 5000 with 5001 filtered
    eu = run(nas(DSM_HTTP, DSM_HTTPS))
    us = run(nas(DSM_HTTP, ServiceObservation(5001, "tcp", "filtered")))
    # When the two are merged
    merged = merge_vantages({"eu": eu, "us": us}, now=NOW)
    # Then exactly 5001/tcp has VAN001, naming who reaches it and who does not
    host = merged.hosts[0]
    van = [f for f in host.findings if f.rule == "VAN001"]
    assert [(f.port, f.protocol) for f in van] == [(5001, "tcp")]
    assert van[0].severity is Severity.MEDIUM
    assert van[0].id == finding_id("VAN001", NAS, "tcp", 5001)
    assert van[0].evidence == "5001/tcp reachable from eu; not from us"
    # and every other rule fires once per service, as from one place
    assert rules_by_port(host) == [
        ("DSM001", 5000),
        ("DSM002", 5001),
        ("DSM005", 5000),
        ("DSM005", 5001),
        ("VAN001", 5001),
    ]
    services = {s.port: s for s in host.observation.services}
    assert services[5001].state == "open" and services[5001].reachable_from == ("eu",)
    assert services[5000].reachable_from == ("eu", "us")
    assert host.observation.unreachable_from(services[5001]) == ("us",)
    assert host.observation.vantages == ("eu", "us") and merged.vantages == ("eu", "us")


def test_a_port_missing_from_a_vantages_report_is_not_open_from_there() -> None:
    eu = run(nas(DSM_HTTP, DSM_HTTPS))
    us = run(nas(DSM_HTTP))  # nmap lists no closed port: 5001 simply is not there
    host = merge_vantages({"eu": eu, "us": us}, now=NOW).hosts[0]
    assert [f.port for f in host.findings if f.rule == "VAN001"] == [5001]


def test_identical_views_give_no_van001_and_the_findings_of_one_vantage() -> None:
    view = nas(DSM_HTTP, DSM_HTTPS, SSH)
    merged = merge_vantages({"eu": run(view), "us": run(view)}, now=NOW)
    single = run(view)
    assert merged.findings() == single.findings()
    assert not any(f.rule == "VAN001" for f in merged.findings())
    assert merged.hosts[0].grade == single.hosts[0].grade == Grade.F
    assert all(s.reachable_from == ("eu", "us") for s in merged.hosts[0].observation.services)


def test_a_host_missing_from_one_vantages_report_is_not_unreachable_from_there() -> None:
    # Given the us worker's block failed: its report lacks the NAS altogether
    eu = run(nas(DSM_HTTPS), HostObservation(WEB, AddressFamily.IPV4))
    us = run(HostObservation(WEB, AddressFamily.IPV4), complete=False, errors=("block failed",))
    merged = merge_vantages({"eu": eu, "us": us}, now=NOW)
    host = next(h for h in merged.hosts if h.address == NAS)
    # Then only eu audited it, and nothing says 5001 is closed from us
    assert host.observation.vantages == ("eu",)
    assert host.observation.services[0].reachable_from == ("eu",)
    assert host.observation.unreachable_from(host.observation.services[0]) == ()
    assert "VAN001" not in {f.rule for f in host.findings}
    assert any("not audited from us" in n for n in host.observation.notes)
    assert merged.complete is False
    assert merged.errors == ("[us] block failed",)


def test_an_incomplete_vantage_is_not_tested_and_never_triggers_van001() -> None:
    eu = run(nas(DSM_HTTPS))
    cut = ProbeAttempt("discovery", ProbeStatus.TIMED_OUT, "host deadline reached")
    us = run(nas(status=HostStatus.INCOMPLETE, attempts=(cut,)))
    host = merge_vantages({"eu": eu, "us": us}, now=NOW).hosts[0]
    service = host.observation.services[0]
    assert service.reachable_from == ("eu",) and service.untested_from == ("us",)
    assert "VAN001" not in {f.rule for f in host.findings}
    # The host is incomplete (could not test is not safe) and says where it was cut
    assert host.observation.status is HostStatus.INCOMPLETE
    assert host.observation.attempts == (
        ProbeAttempt("discovery", ProbeStatus.TIMED_OUT, "[us] host deadline reached"),
    )


def test_three_vantages_name_who_reaches_who_does_not_and_who_could_not_tell() -> None:
    # Given eu reaching 5001, us scanning it to the end and not, ap cut by its deadline
    eu = run(nas(DSM_HTTPS, SSH))
    us = run(nas(ServiceObservation(5001, "tcp", "filtered"), SSH), minute=1)
    ap = run(nas(SSH, status=HostStatus.INCOMPLETE), minute=2)
    merged = merge_vantages({"us": us, "eu": eu, "ap": ap}, now=NOW)
    host = merged.hosts[0]
    van = [f for f in host.findings if f.rule == "VAN001"]
    # Then VAN001 fires for 5001 (us saw the host to the end) although ap's view is incomplete
    assert [f.port for f in van] == [5001]
    assert van[0].evidence == "5001/tcp reachable from eu; not from us; not tested from ap"
    assert merged.vantages == host.observation.vantages == ("ap", "eu", "us")
    ssh = next(s for s in host.observation.services if s.port == 22)
    assert ssh.reachable_from == ("ap", "eu", "us") and ssh.untested_from == ()
    # The merged 5001 is eu's open observation, though us came first in the mapping
    dsm = next(s for s in host.observation.services if s.port == 5001)
    assert dsm.state == "open" and dsm.http is not None and dsm.dsm == DSM
    assert (merged.started_at.minute, merged.finished_at.minute) == (0, 5)


def test_the_first_vantage_that_saw_a_port_open_gives_its_observation() -> None:
    banner_eu = dataclasses.replace(SSH, version="9.6p1 eu")
    banner_us = dataclasses.replace(SSH, version="9.6p1 us")
    merged = merge_vantages({"us": run(nas(banner_us)), "eu": run(nas(banner_eu))}, now=NOW)
    assert merged.hosts[0].observation.services[0].version == "9.6p1 us"


def test_udp_skipped_from_a_vantage_is_not_tested_from_there() -> None:
    snmp = ServiceObservation(161, "udp", "open", "snmp")
    skipped = ProbeAttempt("udp", ProbeStatus.SKIPPED, "UDP scanning needs root")
    eu = run(nas(snmp))
    us = run(nas(attempts=(skipped,)))
    host = merge_vantages({"eu": eu, "us": us}, now=NOW).hosts[0]
    assert host.observation.services[0].untested_from == ("us",)
    assert {f.rule for f in host.findings} == {"SVC001"}


def test_a_port_outside_a_vantages_port_set_is_not_tested_from_there() -> None:
    web = ServiceObservation(8443, "tcp", "open", "https", http=HttpObservation("https", 200))
    eu = run(nas(web), ports=PortSet((8443,)))
    us = run(nas(), ports=PortSet((22,)))
    merged = merge_vantages({"eu": eu, "us": us}, now=NOW)
    assert merged.hosts[0].observation.services[0].untested_from == ("us",)
    assert merged.ports == PortSet((22, 8443))
    assert not any(f.rule == "VAN001" for f in merged.findings())


def test_notes_all_vantages_share_stay_plain_others_name_their_vantage() -> None:
    eu = run(
        nas(SSH, notes=("x.myds.me is a Synology DDNS name", "eu only")),
        notes=("UDP skipped",),
        names=(NameResolution("nas.example.net", ("198.51.100.7",)),),
        skipped=(SkippedAddress("192.168.1.10", "home.myds.me", "private"),),
    )
    us = run(
        nas(SSH, notes=("x.myds.me is a Synology DDNS name",), errors=("probe crashed",)),
        notes=("UDP skipped", "us was slow"),
        names=(NameResolution("nas.example.net", ("198.51.100.8",), errors=("SERVFAIL on AAAA",)),),
        skipped=(SkippedAddress("192.168.1.10", "home.myds.me", "private"),),
    )
    merged = merge_vantages({"eu": eu, "us": us}, now=NOW)
    obs = merged.hosts[0].observation
    assert obs.notes == ("x.myds.me is a Synology DDNS name", "[eu] eu only")
    assert obs.errors == ("[us] probe crashed",)
    assert merged.notes == ("UDP skipped", "[us] us was slow")
    assert merged.names == (
        NameResolution(
            "nas.example.net", ("198.51.100.7", "198.51.100.8"), errors=("[us] SERVFAIL on AAAA",)
        ),
    )
    assert merged.skipped == (SkippedAddress("192.168.1.10", "home.myds.me", "private"),)


def test_hosts_come_in_the_first_reports_order_then_the_others() -> None:
    a, b, c = (HostObservation(x, AddressFamily.IPV4) for x in (WEB, NAS, OTHER))
    merged = merge_vantages({"eu": run(a, b), "us": run(c, b, a)}, now=NOW)
    assert [h.address for h in merged.hosts] == [WEB, NAS, OTHER]
    assert merged.complete


def test_one_vantage_merges_into_its_own_report_with_vantages_set() -> None:
    view = nas(DSM_HTTP, SSH, attempts=(ProbeAttempt("versions", ProbeStatus.ERROR, "boom"),))
    single = run(view)
    merged = merge_vantages({"eu": single}, now=NOW)
    assert merged.findings() == single.findings()
    assert merged.hosts[0].observation.attempts == view.attempts  # nothing to tell apart
    assert merged.vantages == ("eu",)


def test_upnp_mappings_are_correlated_with_what_any_vantage_reached() -> None:
    # Given the router's mappings for 5000 and 5001; eu reached only 5000, us only 5001
    m5000 = PortMapping(5000, "TCP", "192.168.1.10", 5000, "DSM 5000")
    m5001 = PortMapping(5001, "TCP", "192.168.1.10", 5001, "DSM 5001")
    eu_view = nas(
        dataclasses.replace(DSM_HTTP, upnp_mapping=m5000),
        upnp=UpnpObservation(mappings=(m5000, m5001)),
        forwarding=UpnpForwarding("wan", (m5001,), ()),
    )
    us_view = nas(
        dataclasses.replace(DSM_HTTPS, upnp_mapping=m5001),
        forwarding=UpnpForwarding("wan", (m5000,), ()),
    )
    host = merge_vantages({"eu": run(eu_view), "us": run(us_view)}, now=NOW).hosts[0]
    obs = host.observation
    # Then both are forwarded and reachable, none "mapped but unreachable"
    assert obs.forwarding == UpnpForwarding("wan", (), ())
    assert {s.port: s.upnp_mapping for s in obs.services} == {5000: m5000, 5001: m5001}
    assert obs.upnp == eu_view.upnp
    assert sorted(f.port for f in host.findings if f.rule == "UPNP003") == [5000, 5001]


def test_merging_nothing_or_an_odd_vantage_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no vantage"):
        merge_vantages({}, now=NOW)
    for bad in ("", "eu us", "eu,us", "-eu", "e\x1bu"):
        with pytest.raises(ValueError, match="bad vantage name"):
            merge_vantages({bad: run()}, now=NOW)


def test_different_tool_versions_are_noted() -> None:
    merged = merge_vantages(
        {"eu": run(), "us": run(tool_version="0.2.0")},
        now=NOW,
    )
    assert merged.tool_version == "0.1.0"
    assert "the vantages ran different versions: eu 0.1.0, us 0.2.0" in merged.notes
