"""UPnP mappings tied to what was reachable from outside, and the UPnP rules, on plain values."""

from __future__ import annotations

from datetime import UTC, datetime

from exposure_audit.findings import Severity
from exposure_audit.observations import (
    AddressFamily,
    DsmFingerprint,
    HostObservation,
    HttpObservation,
    IgdDescription,
    IgdService,
    PortMapping,
    ServiceObservation,
    SsdpReply,
    UpnpObservation,
)
from exposure_audit.rules import evaluate_host
from exposure_audit.run.correlate import apply_mappings

NOW = datetime(2026, 11, 27, tzinfo=UTC)
WAN = "203.0.113.1"
DSM = DsmFingerprint(("title", "sds-session"), version="4.3", build=3810)
MAPPINGS = (
    PortMapping(5000, "TCP", "192.168.50.10", 5000, "DSM 5000"),
    PortMapping(5001, "TCP", "192.168.50.10", 5001, "DSM 5001"),
    PortMapping(6690, "TCP", "192.168.50.10", 6690, "Drive", 3600),
)


def _host(upnp: UpnpObservation | None = None) -> HostObservation:
    http = HttpObservation("http", 200, "Apache", "x", dsm=DSM)
    return HostObservation(
        WAN,
        AddressFamily.IPV4,
        services=(
            ServiceObservation(5000, "tcp", "open", "http", http=http),
            ServiceObservation(5001, "tcp", "filtered", "commplex-link"),
            ServiceObservation(22, "tcp", "open", "ssh"),
        ),
        upnp=upnp,
    )


def test_reachable_mapped_services_carry_their_mapping() -> None:
    host = apply_mappings(_host(), MAPPINGS, "inventory")
    by_port = {s.port: s for s in host.services}
    assert by_port[5000].upnp_mapping == MAPPINGS[0]
    assert by_port[5001].upnp_mapping is None  # filtered: not reachable
    assert by_port[22].upnp_mapping is None
    assert host.forwarding is not None
    assert host.forwarding.mapped_unreachable == (MAPPINGS[1], MAPPINGS[2])
    assert host.forwarding.unmapped_reachable == (22,)


def test_a_forwarded_service_is_upnp003_and_its_own_findings_name_the_mapping() -> None:
    findings = evaluate_host(apply_mappings(_host(), MAPPINGS, "inventory"), NOW)
    by_rule = {f.rule: f for f in findings}
    assert by_rule["UPNP003"].severity is Severity.MEDIUM
    assert by_rule["UPNP003"].port == 5000
    assert "192.168.50.10:5000 'DSM 5000'" in by_rule["UPNP003"].evidence
    assert by_rule["DSM001"].severity is Severity.CRITICAL  # keeps its own severity
    assert "UPnP mapping 5000/TCP -> 192.168.50.10:5000" in by_rule["DSM001"].evidence
    assert "UPnP" not in by_rule["SVC002"].evidence


def test_ssdp_igd_and_vulnerable_stack_rules() -> None:
    upnp = UpnpObservation(
        ssdp=(
            SsdpReply(
                WAN,
                server="Linux/2.6 UPnP/1.0 MiniUPnPd/1.0",
                location="http://192.168.50.1:2189/rootDesc.xml",
            ),
        ),
        igd=IgdDescription(
            f"http://{WAN}:2189/rootDesc.xml",
            friendly_name="Lab IGD router",
            services=(
                IgdService(
                    "urn:schemas-upnp-org:service:WANIPConnection:1",
                    f"http://{WAN}:2189/ctl/IPConn",
                ),
            ),
        ),
        control_url=f"http://{WAN}:2189/ctl/IPConn",
        mappings_readable=True,
        mappings=MAPPINGS,
    )
    findings = {(f.rule, f.protocol, f.port): f for f in evaluate_host(_host(upnp), NOW)}
    ssdp = findings[("UPNP001", "udp", 1900)]
    assert ssdp.severity is Severity.HIGH and "192.168.50.1:2189" in ssdp.evidence
    igd = findings[("UPNP002", "tcp", 2189)]
    assert igd.severity is Severity.CRITICAL and "3 port mapping(s)" in igd.evidence
    stack = findings[("UPNP004", "udp", 1900)]
    assert stack.severity is Severity.CRITICAL and "CVE-2013-0229" in stack.evidence


def test_a_current_stack_raises_no_upnp004() -> None:
    upnp = UpnpObservation(ssdp=(SsdpReply(WAN, server="Debian/12 UPnP/1.1 MiniUPnPd/2.3.1"),))
    rules = {f.rule for f in evaluate_host(_host(upnp), NOW)}
    assert "UPNP001" in rules and "UPNP004" not in rules


def test_a_nas_device_description_without_a_gateway_service_is_not_upnp002() -> None:
    upnp = UpnpObservation(
        igd=IgdDescription(
            f"http://{WAN}:5000/ssdp/desc-DSM-eth0.xml",
            device_type="urn:schemas-upnp-org:device:Basic:1",
            manufacturer="Synology",
        )
    )
    assert "UPNP002" not in {f.rule for f in evaluate_host(_host(upnp), NOW)}


def test_an_unreliable_banner_verdict_is_possibly_and_high() -> None:
    upnp = UpnpObservation(ssdp=(SsdpReply(WAN, server="Linux UPnP/1.1 MiniUPnPd/2.1"),))
    stack = next(f for f in evaluate_host(_host(upnp), NOW) if f.rule == "UPNP004")
    assert stack.severity is Severity.HIGH and "possibly" in stack.evidence
