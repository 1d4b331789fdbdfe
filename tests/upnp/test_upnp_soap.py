"""Read-only SOAP: only three actions can be built; answers and faults from a real miniupnpd."""

from __future__ import annotations

import pytest
from defusedxml.ElementTree import fromstring

from exposure_audit.observations import PortMapping
from exposure_audit.upnp import (
    READ_ONLY_ACTIONS,
    UpnpParseError,
    parse_external_ip,
    parse_port_mapping_entry,
    parse_soap_fault,
    soap_request,
)

from .captures import capture

WANIP1 = "urn:schemas-upnp-org:service:WANIPConnection:1"

# Every state-changing action of WANIPConnection/WANPPPConnection v1/v2, WANIPv6FirewallControl
# and Layer3Forwarding: none of them can ever be built.
WRITE_ACTIONS = [
    "AddPortMapping",
    "AddAnyPortMapping",
    "DeletePortMapping",
    "DeletePortMappingRange",
    "SetConnectionType",
    "RequestConnection",
    "RequestTermination",
    "ForceTermination",
    "SetAutoDisconnectTime",
    "SetIdleDisconnectTime",
    "SetWarnDisconnectDelay",
    "AddPinhole",
    "UpdatePinhole",
    "DeletePinhole",
    "SetDefaultConnectionService",
    "getexternalipaddress",
    "GetExternalIPAddress ",
    "",
]


def test_the_read_only_vocabulary_is_exactly_three_get_actions() -> None:
    assert frozenset({"GetExternalIPAddress", "GetGenericPortMappingEntry", "GetStatusInfo"}) == (
        READ_ONLY_ACTIONS
    )


@pytest.mark.parametrize("action", WRITE_ACTIONS)
def test_no_state_changing_action_can_be_built(action: str) -> None:
    with pytest.raises(ValueError, match="refusing to build SOAP action"):
        soap_request(WANIP1, action, {})


def test_a_port_mapping_request_carries_the_action_header_and_the_index() -> None:
    headers, body = soap_request(WANIP1, "GetGenericPortMappingEntry", {"NewPortMappingIndex": "3"})
    assert headers == {
        "Content-Type": 'text/xml; charset="utf-8"',
        "SOAPAction": f'"{WANIP1}#GetGenericPortMappingEntry"',
    }
    envelope = fromstring(body)
    assert envelope.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"
    action = envelope[0][0]
    assert action.tag == f"{{{WANIP1}}}GetGenericPortMappingEntry"
    assert [(c.tag, c.text) for c in action] == [("NewPortMappingIndex", "3")]


def test_requests_without_arguments_have_an_empty_action_element() -> None:
    for action in ("GetExternalIPAddress", "GetStatusInfo"):
        _, body = soap_request(WANIP1, action)
        assert len(fromstring(body)[0][0]) == 0


@pytest.mark.parametrize(
    ("action", "arguments"),
    [
        ("GetExternalIPAddress", {"NewRemoteHost": ""}),
        ("GetGenericPortMappingEntry", {}),
        ("GetGenericPortMappingEntry", {"NewPortMappingIndex": "1", "NewProtocol": "TCP"}),
        ("GetGenericPortMappingEntry", {"NewPortMappingIndex": "-1"}),
        ("GetGenericPortMappingEntry", {"NewPortMappingIndex": "65536"}),
        ("GetGenericPortMappingEntry", {"NewPortMappingIndex": "1</x><y>"}),
    ],
)
def test_wrong_arguments_are_refused(action: str, arguments: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        soap_request(WANIP1, action, arguments)


@pytest.mark.parametrize(
    "service_type",
    [
        "",
        "WANIPConnection",
        'urn:x:service:Y:1"\r\nX-Evil: 1',
        'urn:x:service:Y:1"><a',
        "urn:x:device:Y:1",
    ],
)
def test_a_malformed_service_type_is_refused(service_type: str) -> None:
    with pytest.raises(ValueError, match="service URN"):
        soap_request(service_type, "GetStatusInfo")


def test_real_miniupnpd_entries_read_as_port_mappings() -> None:
    entries = [
        parse_port_mapping_entry(capture(f"miniupnpd231_GetGenericPortMappingEntry_{i}.xml"))
        for i in range(3)
    ]
    assert entries == [
        PortMapping(32400, "TCP", "192.168.50.20", 32400, "", 604800),
        PortMapping(5001, "TCP", "192.168.50.10", 5001, "DSM HTTPS", 604800),
        PortMapping(5000, "TCP", "192.168.50.10", 5000, "DSM HTTP", 604800),
    ]
    igd1 = parse_port_mapping_entry(capture("miniupnpd231_GetGenericPortMappingEntry_1_igd1.xml"))
    assert igd1.external_port in (5000, 5001)


def test_optional_fields_take_their_defaults_and_protocols_are_upper_cased() -> None:
    xml = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        b'<u:GetGenericPortMappingEntryResponse xmlns:u="urn:x">'
        b"<NewExternalPort>22</NewExternalPort><NewProtocol>udp</NewProtocol>"
        b"<NewInternalPort>2222</NewInternalPort><NewInternalClient>10.0.0.2</NewInternalClient>"
        b"<NewEnabled>0</NewEnabled><NewRemoteHost>198.51.100.1</NewRemoteHost>"
        b"</u:GetGenericPortMappingEntryResponse></s:Body></s:Envelope>"
    )
    assert parse_port_mapping_entry(xml) == PortMapping(
        22, "UDP", "10.0.0.2", 2222, "", 0, enabled=False, remote_host="198.51.100.1"
    )


def _entry(**fields: str) -> bytes:
    values = {
        "NewExternalPort": "5000",
        "NewProtocol": "TCP",
        "NewInternalPort": "5000",
        "NewInternalClient": "192.168.1.5",
        "NewLeaseDuration": "0",
    } | fields
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v != "<absent>")
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<u:GetGenericPortMappingEntryResponse xmlns:u="urn:x">{inner}'
        "</u:GetGenericPortMappingEntryResponse></s:Body></s:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"NewExternalPort": "<absent>"},
        {"NewInternalClient": ""},
        {"NewExternalPort": "65536"},
        {"NewInternalPort": "-1"},
        {"NewInternalPort": "80a"},
        {"NewLeaseDuration": "4294967296"},
        {"NewExternalPort": "٥٠٠٠"},
        {"NewExternalPort": "99999999999999999999999"},
    ],
)
def test_entries_with_missing_or_out_of_range_fields_raise(fields: dict[str, str]) -> None:
    with pytest.raises(UpnpParseError, match="GetGenericPortMappingEntry answer"):
        parse_port_mapping_entry(_entry(**fields))


def test_a_fault_given_to_the_entry_parser_raises_and_says_so() -> None:
    with pytest.raises(UpnpParseError, match=r"SOAP fault \(713 SpecifiedArrayIndexInvalid\)"):
        parse_port_mapping_entry(capture("miniupnpd231_fault_713.xml"))


def test_a_real_miniupnpd_fault_713_ends_the_table() -> None:
    assert parse_soap_fault(capture("miniupnpd231_fault_713.xml")) == (
        713,
        "SpecifiedArrayIndexInvalid",
    )
    assert parse_soap_fault(capture("fault_606.xml")) == (606, "Action not authorized")
    assert parse_soap_fault(capture("fault_714.xml"))[0] == 714


def test_a_fault_without_upnp_detail_falls_back_to_the_faultstring() -> None:
    xml = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
        b"<faultcode>s:Server</faultcode><faultstring>Internal Error</faultstring>"
        b"<detail><UPnPError><errorCode>x1</errorCode></UPnPError></detail>"
        b"</s:Fault></s:Body></s:Envelope>"
    )
    assert parse_soap_fault(xml) == (None, "Internal Error")


@pytest.mark.parametrize(
    "xml",
    [
        b"",
        b"<html/>",
        b"<Envelope/>",
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>',
    ],
)
def test_no_fault_raises_the_documented_error(xml: bytes) -> None:
    with pytest.raises(UpnpParseError):
        parse_soap_fault(xml)


def test_the_external_address_of_a_real_miniupnpd() -> None:
    assert parse_external_ip(capture("miniupnpd231_GetExternalIPAddress.xml")) == "203.0.113.10"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", None), ("0.0.0.0", "0.0.0.0"), ("not an address", None), ("2001:DB8::1", "2001:db8::1")],
)
def test_an_external_address_is_an_ip_address_or_none(value: str, expected: str | None) -> None:
    xml = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<u:GetExternalIPAddressResponse xmlns:u="urn:x">'
        f"<NewExternalIPAddress>{value}</NewExternalIPAddress>"
        "</u:GetExternalIPAddressResponse></s:Body></s:Envelope>"
    ).encode()
    assert parse_external_ip(xml) == expected


def test_a_soap_answer_with_an_external_entity_is_refused() -> None:
    with pytest.raises(UpnpParseError, match="DTD"):
        parse_external_ip(capture("hostile/soap_entity.xml"))
