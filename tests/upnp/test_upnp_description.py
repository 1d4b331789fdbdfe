"""Device descriptions: real miniupnpd captures, nested devices, URL resolution, hostile XML."""

from __future__ import annotations

import time

import pytest

from exposure_audit.observations import IgdService
from exposure_audit.upnp import (
    MAX_DESCRIPTION_BYTES,
    UpnpParseError,
    description_paths,
    parse_description,
    wan_connection_service,
)

from .captures import capture

URL = "http://203.0.113.1:2189/rootDesc.xml"


def test_a_real_miniupnpd_igd2_description_walks_down_to_wanipconnection() -> None:
    description = parse_description(capture("miniupnpd231_igd2_rootDesc.xml"), URL)
    assert description.url == URL
    assert description.device_type == "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
    assert description.friendly_name == "Lab IGD router"
    assert description.manufacturer == "Debian"
    assert description.model_name == "Debian router"
    assert description.is_gateway
    types = [s.service_type.rsplit(":", 2)[-2] for s in description.services]
    assert types == [
        "Layer3Forwarding",
        "DeviceProtection",
        "WANCommonInterfaceConfig",
        "WANIPConnection",
        "WANIPv6FirewallControl",
    ]
    assert wan_connection_service(description) == IgdService(
        service_type="urn:schemas-upnp-org:service:WANIPConnection:2",
        control_url="http://203.0.113.1:2189/ctl/IPConn",
        scpd_url="http://203.0.113.1:2189/WANIPCn.xml",
    )


def test_a_real_miniupnpd_igd1_description_offers_wanipconnection_1() -> None:
    description = parse_description(capture("miniupnpd231_igd1_rootDesc.xml"), URL)
    service = wan_connection_service(description)
    assert service is not None
    assert service.service_type == "urn:schemas-upnp-org:service:WANIPConnection:1"
    assert service.control_url == "http://203.0.113.1:2189/ctl/IPConn"


def test_urlbase_wins_over_the_fetch_url_and_relative_urls_resolve_against_it() -> None:
    description = parse_description(
        capture("linuxigd_gatedesc.xml"), "http://203.0.113.5:49152/gatedesc.xml"
    )
    by_type = {s.service_type.rsplit(":", 2)[-2]: s for s in description.services}
    assert (
        by_type["WANPPPConnection"].control_url
        == "http://192.168.0.1:49152/upnp/control/WANPPPConn1"
    )
    assert (
        by_type["WANIPConnection"].control_url == "http://192.168.0.1:49152/upnp/control/WANIPConn1"
    )
    # WANIPConnection is preferred to WANPPPConnection even when it comes second.
    service = wan_connection_service(description)
    assert service is not None and service.service_type.endswith("WANIPConnection:1")


def test_two_wan_devices_give_the_first_wan_connection_in_document_order() -> None:
    description = parse_description(
        capture("two_wan_devices_rootDesc.xml"), "http://198.51.100.3:2828/"
    )
    service = wan_connection_service(description)
    assert service is not None
    assert service.control_url == "http://198.51.100.3:2828/upnp/control/p7hzr4kfmu/wanipconn-1"
    assert sum(1 for s in description.services if "WANIPConnection" in s.service_type) == 2


def test_a_synology_nas_description_is_no_gateway() -> None:
    description = parse_description(
        capture("synology_desc-DSM-eth0.xml"), "http://203.0.113.9:5000/ssdp/desc-DSM-eth0.xml"
    )
    assert description.manufacturer == "Synology"
    assert description.model_name == "DS918+"
    assert description.services == ()
    assert not description.is_gateway
    assert wan_connection_service(description) is None


def test_a_tr064_gateway_without_upnp_wan_services_gives_no_control_url() -> None:
    description = parse_description(capture("tr064_gateway_rootDesc.xml"), URL)
    assert description.services
    assert wan_connection_service(description) is None


def test_a_description_without_namespace_is_read_the_same() -> None:
    xml = (
        b"<root><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1"
        b"</deviceType><serviceList><service><serviceType>"
        b"urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>"
        b"<controlURL>/ctl</controlURL></service></serviceList></device></root>"
    )
    service = wan_connection_service(parse_description(xml, "http://198.51.100.1:5000/d.xml"))
    assert service is not None and service.control_url == "http://198.51.100.1:5000/ctl"


def test_a_service_without_a_control_url_is_listed_but_never_used() -> None:
    xml = (
        b"<root><device><serviceList><service><serviceType>"
        b"urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>"
        b"</service></serviceList></device></root>"
    )
    description = parse_description(xml, URL)
    assert description.services[0].control_url == ""
    assert wan_connection_service(description) is None


def test_a_bad_urlbase_falls_back_to_the_fetch_url_and_bad_urls_become_empty() -> None:
    xml = (
        b"<root><URLBase>javascript:alert(1)</URLBase><device><serviceList><service>"
        b"<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>"
        b"<controlURL>http://[::1/ctl</controlURL><SCPDURL>/scpd.xml</SCPDURL>"
        b"</service></serviceList></device></root>"
    )
    description = parse_description(xml, URL)
    assert description.services[0].control_url == ""
    assert description.services[0].scpd_url == "http://203.0.113.1:2189/scpd.xml"


def test_deeply_nested_and_huge_device_trees_are_walked_with_caps() -> None:
    service = (
        b"<service><serviceType>urn:x:service:S:1</serviceType><controlURL>/c</controlURL>"
        b"</service>"
    )
    depth = 300
    level = b"<device><serviceList>" + service * 5 + b"</serviceList><deviceList>"
    xml = b"<root>" + level * depth + b"</deviceList></device>" * depth + b"</root>"
    started = time.monotonic()
    description = parse_description(xml, URL)
    assert time.monotonic() - started < 2
    # 8 levels below the top one are walked: 9 devices of 5 services, capped at 64 anyway.
    assert len(description.services) == 45


def test_at_most_sixty_four_services_are_kept() -> None:
    service = b"<service><serviceType>urn:x:service:S:1</serviceType></service>"
    xml = b"<root><device><serviceList>" + service * 1000 + b"</serviceList></device></root>"
    assert len(parse_description(xml, URL).services) == 64


@pytest.mark.parametrize(
    "name",
    [
        "hostile/billion_laughs.xml",
        "hostile/external_entity.xml",
        "hostile/external_dtd.xml",
        "hostile/parameter_entity.xml",
    ],
)
def test_xml_bombs_external_entities_and_dtds_are_refused(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(UpnpParseError, match="DTD"):
        parse_description(capture(name), URL)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"<html><body>hello</body></html>", "not <root>"),
        (b"<root><specVersion/></root>", "no <device>"),
        (b"<root><device>", "not well-formed"),
        (b"\xff\xfe<\x00r\x00", "not well-formed"),
        (b'<?xml version="1.0" encoding="nope"?><root/>', "not well-formed"),
        (b'{"json": true}', "not well-formed"),
    ],
)
def test_anything_but_a_description_raises_the_documented_error(xml: bytes, message: str) -> None:
    with pytest.raises(UpnpParseError, match=message):
        parse_description(xml, URL)


def test_a_description_larger_than_the_cap_is_refused_before_parsing() -> None:
    xml = b"<root><device>" + b" " * MAX_DESCRIPTION_BYTES + b"</device></root>"
    with pytest.raises(UpnpParseError, match="larger than"):
        parse_description(xml, URL)


def test_the_description_paths_start_with_miniupnpd_and_dsm_and_are_unique() -> None:
    paths = description_paths()
    assert paths[:2] == ("/rootDesc.xml", "/ssdp/desc-DSM-eth0.xml")
    assert len(set(paths)) == len(paths)
    assert all(p.startswith("/") for p in paths)
