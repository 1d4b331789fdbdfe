"""Property tests: every UPnP parser takes any bytes a device sends and raises only its
documented error (or none at all)."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from exposure_audit.upnp import (
    InventoryError,
    UpnpParseError,
    inventory_from_dict,
    is_upnp_server_header,
    parse_description,
    parse_external_ip,
    parse_port_mapping_entry,
    parse_soap_fault,
    parse_ssdp_reply,
    rewrite_location,
    vulnerable_stack,
    wan_connection_service,
)

from .captures import capture

# Pieces of real answers, so generated documents often get deep into the parsers.
XML_FRAGMENTS = [
    b'<?xml version="1.0"?>',
    b'<root xmlns="urn:schemas-upnp-org:device-1-0">',
    b"</root>",
    b"<device>",
    b"</device>",
    b"<deviceList>",
    b"</deviceList>",
    b"<serviceList><service>",
    b"</service></serviceList>",
    b"<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>",
    b"<controlURL>/ctl/IPConn</controlURL>",
    b"<controlURL>http://[::1/</controlURL>",
    b"<URLBase>http://10.0.0.1:1/</URLBase>",
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>',
    b"</s:Body></s:Envelope>",
    b'<u:GetGenericPortMappingEntryResponse xmlns:u="urn:x">',
    b"</u:GetGenericPortMappingEntryResponse>",
    b'<u:GetExternalIPAddressResponse xmlns:u="urn:x">',
    b"<NewExternalPort>5000</NewExternalPort><NewProtocol>TCP</NewProtocol>",
    b"<NewInternalPort>99999</NewInternalPort><NewInternalClient>x</NewInternalClient>",
    b"<NewExternalIPAddress>203.0.113.1</NewExternalIPAddress>",
    b"<s:Fault><detail><UPnPError><errorCode>713</errorCode></UPnPError></detail></s:Fault>",
    b'<!DOCTYPE root [<!ENTITY a "b">]>',
    b"&a;",
    b"<![CDATA[",
    b"]]>",
    b"\xef\xbb\xbf",
    b"\x00",
    b"<" * 20,
]

SSDP_FRAGMENTS = [
    b"HTTP/1.1 200 OK\r\n",
    b"NOTIFY * HTTP/1.1\r\n",
    b"SERVER: Linux UPnP/1.0 MiniUPnPd/1.0\r\n",
    b"LOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n",
    b"ST: upnp:rootdevice\r\n",
    b"NT: urn:x\r\n",
    b"USN: uuid:x\r\n",
    b": \r\n",
    b"\r\n",
    b"\n",
    b"\xff\xfe",
    b"\x00",
]

xml_documents = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.sampled_from(XML_FRAGMENTS) | st.binary(max_size=40), max_size=40).map(b"".join),
    st.sampled_from(
        [
            capture("miniupnpd231_igd2_rootDesc.xml"),
            capture("miniupnpd231_GetGenericPortMappingEntry_0.xml"),
            capture("miniupnpd231_fault_713.xml"),
        ]
    ).flatmap(lambda doc: st.integers(0, len(doc)).map(lambda cut: doc[:cut])),
)
datagrams = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.sampled_from(SSDP_FRAGMENTS) | st.binary(max_size=30), max_size=40).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(xml_documents)
def test_the_description_parser_raises_only_upnp_parse_error(xml: bytes) -> None:
    try:
        description = parse_description(xml, "http://203.0.113.1:2189/rootDesc.xml")
    except UpnpParseError:
        return
    wan_connection_service(description)


@settings(max_examples=300, deadline=None)
@given(xml_documents)
def test_the_soap_parsers_raise_only_upnp_parse_error(xml: bytes) -> None:
    for parser in (parse_port_mapping_entry, parse_external_ip, parse_soap_fault):
        with contextlib.suppress(UpnpParseError):
            parser(xml)


@settings(max_examples=300, deadline=None)
@given(datagrams)
def test_the_ssdp_parser_never_raises(data: bytes) -> None:
    reply = parse_ssdp_reply(data, "192.0.2.1")
    if reply is not None:
        vulnerable_stack(reply.server)
        is_upnp_server_header(reply.server)
        rewrite_location(reply.location, "203.0.113.1")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_banner_and_location_helpers_never_raise(text: str) -> None:
    vulnerable_stack(text)
    is_upnp_server_header(text)
    rewrite_location(text, "203.0.113.1")
    rewrite_location("http://10.0.0.1" + text, "2001:db8::1")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner, max_size=6)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {"schema": st.just("exposure-audit-upnp-inventory/1"), "taken_at": st.just("2026-01-01")},
        optional={
            "igd_url": json_values,
            "external_address": json_values,
            "mappings": st.lists(
                st.dictionaries(
                    st.sampled_from(
                        ["external_port", "protocol", "internal_client", "internal_port", "enabled"]
                    ),
                    json_values,
                ),
                max_size=3,
            )
            | json_values,
            "errors": json_values,
        },
    )
    | json_values
)
def test_the_inventory_reader_raises_only_inventory_error(document: object) -> None:
    with contextlib.suppress(InventoryError):
        inventory_from_dict(document)
