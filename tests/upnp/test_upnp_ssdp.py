"""SSDP: the M-SEARCH we send, the replies we read, and LOCATION rewriting."""

from __future__ import annotations

import pytest

from exposure_audit.observations import SsdpReply
from exposure_audit.upnp import (
    build_msearch,
    is_upnp_server_header,
    parse_ssdp_reply,
    rewrite_location,
)
from exposure_audit.upnp.ssdp import MAX_SSDP_HEADERS

from .captures import capture, ssdp_all


def test_an_msearch_is_the_uda_request_with_the_multicast_host_line() -> None:
    assert build_msearch() == (
        b"M-SEARCH * HTTP/1.1\r\n"
        b"HOST: 239.255.255.250:1900\r\n"
        b'MAN: "ssdp:discover"\r\n'
        b"MX: 1\r\n"
        b"ST: ssdp:all\r\n"
        b"\r\n"
    )
    assert b"ST: upnp:rootdevice\r\n" in build_msearch("upnp:rootdevice")
    assert b"MX" not in build_msearch(mx=None)


@pytest.mark.parametrize("st", ["", "a b", "x\r\nMAN: evil", "é", "x" * 257])
def test_an_msearch_refuses_search_targets_that_could_inject_headers(st: str) -> None:
    with pytest.raises(ValueError, match="search target"):
        build_msearch(st)


@pytest.mark.parametrize("mx", [0, 6, -1])
def test_an_msearch_refuses_an_mx_outside_one_to_five(mx: int) -> None:
    with pytest.raises(ValueError, match="MX"):
        build_msearch(mx=mx)


def test_a_real_miniupnpd_reply_gives_server_location_st_and_usn() -> None:
    reply = parse_ssdp_reply(capture("miniupnpd231_ssdp_rootdevice.txt"), "203.0.113.1")
    assert reply == SsdpReply(
        responder="203.0.113.1",
        server="Debian/6.18.44-fc-v595 UPnP/1.1 MiniUPnPd/2.3.1",
        location="http://192.168.50.1:2189/rootDesc.xml",
        st="upnp:rootdevice",
        usn="uuid:4d696e69-5550-6e50-0000-3c7c3f2a1b90::upnp:rootdevice",
        headers=reply.headers if reply else (),
    )
    assert reply is not None
    assert ("configid.upnp.org", "1337") in reply.headers
    assert ("ext", "") in reply.headers


def test_every_datagram_of_a_real_ssdp_all_answer_parses() -> None:
    replies = [parse_ssdp_reply(d, "203.0.113.1") for d in ssdp_all()]
    assert all(r is not None for r in replies)
    sts = {r.st for r in replies if r}
    assert "urn:schemas-upnp-org:device:InternetGatewayDevice:2" in sts
    assert "urn:schemas-upnp-org:service:WANIPConnection:2" in sts
    assert {r.location for r in replies if r} == {"http://192.168.50.1:2189/rootDesc.xml"}


def test_a_synology_announcement_is_read_with_its_nt_as_st() -> None:
    reply = parse_ssdp_reply(capture("synology_ssdp_notify.txt"), "198.51.100.7")
    assert reply is not None
    assert reply.server == "Synology/DSM/192.168.1.5"
    assert reply.location == "http://192.168.1.5:5000/ssdp/desc-DSM-eth0.xml"
    assert reply.st == "upnp:rootdevice"
    assert ("nts", "ssdp:alive") in reply.headers


def test_a_synology_search_answer_leaks_the_lan_address_in_location() -> None:
    reply = parse_ssdp_reply(capture("synology_ssdp_reply.txt"), "198.51.100.7")
    assert reply is not None
    assert reply.location.startswith("http://192.168.1.5:5000/")
    assert reply.usn.endswith("::upnp:rootdevice")


def test_header_names_are_matched_without_regard_to_case() -> None:
    reply = parse_ssdp_reply(capture("miniupnpd10_ssdp_reply.txt"), "198.51.100.8")
    assert reply is not None
    assert reply.server == "TP-LINK/TP-LINK UPnP/1.0 miniupnpd/1.0"
    assert reply.location == "http://192.168.0.1:65535/rootDesc.xml"
    assert all(name == name.lower() for name, _ in reply.headers)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff" * 100,
        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: ssdp:all\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nServer: x\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"SERVER: MiniUPnPd/1.0\r\n",
    ],
)
def test_anything_but_an_answer_or_announcement_gives_none(data: bytes) -> None:
    assert parse_ssdp_reply(data, "192.0.2.1") is None


def test_a_reply_with_thousands_of_headers_keeps_the_first_sixty_four() -> None:
    data = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(5000)) + b"\r\n"
    reply = parse_ssdp_reply(data, "192.0.2.1")
    assert reply is not None
    assert len(reply.headers) == MAX_SSDP_HEADERS


def test_long_values_are_cut_and_only_eight_kib_are_read() -> None:
    data = b"HTTP/1.1 200 OK\r\nSERVER: " + b"A" * 5000 + b"\r\nLOCATION: http://x/\r\n\r\n"
    reply = parse_ssdp_reply(data, "192.0.2.1")
    assert reply is not None and len(reply.server) == 1024
    beyond = b"HTTP/1.1 200 OK\r\nX: " + b"B" * 9000 + b"\r\nSERVER: late\r\n\r\n"
    late = parse_ssdp_reply(beyond, "192.0.2.1")
    assert late is not None and late.server == ""


def test_lines_without_a_colon_or_with_bad_names_are_skipped_and_the_first_value_wins() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nnot a header\r\nBAD NAME: x\r\nSERVER: first\r\n"
        b"SERVER: second\r\nST: upnp:rootdevice\r\n\r\nSERVER: after the blank line\r\n"
    )
    reply = parse_ssdp_reply(data, "192.0.2.1")
    assert reply is not None
    assert reply.server == "first"
    assert ("server", "second") in reply.headers
    assert all(v != "after the blank line" for _, v in reply.headers)
    assert all(n != "bad name" for n, _ in reply.headers)


@pytest.mark.parametrize(
    ("location", "public", "expected"),
    [
        (
            "http://192.168.1.5:5000/ssdp/desc-DSM-eth0.xml",
            "203.0.113.9",
            "http://203.0.113.9:5000/ssdp/desc-DSM-eth0.xml",
        ),
        (
            "http://192.168.50.1:2189/rootDesc.xml",
            "2001:db8::1",
            "http://[2001:db8::1]:2189/rootDesc.xml",
        ),
        (
            "http://[fe80::1]:5000/x.xml?a=1#frag",
            "[2001:db8::2]",
            "http://[2001:db8::2]:5000/x.xml?a=1",
        ),
        ("HTTP://10.0.0.1", "203.0.113.9", "http://203.0.113.9/"),
        ("http://user:secret@10.0.0.1:80/d.xml", "203.0.113.9", "http://203.0.113.9:80/d.xml"),
        ("https://10.0.0.1:5001/d.xml", "203.0.113.9", "https://203.0.113.9:5001/d.xml"),
        ("  http://10.0.0.1:1900/d.xml  ", "203.0.113.9", "http://203.0.113.9:1900/d.xml"),
        (
            "http://router.lan:49152/gatedesc.xml",
            "nas.example.org",
            "http://nas.example.org:49152/gatedesc.xml",
        ),
    ],
)
def test_location_rewriting_keeps_port_and_path_and_swaps_the_host(
    location: str, public: str, expected: str
) -> None:
    assert rewrite_location(location, public) == expected


@pytest.mark.parametrize(
    "location",
    [
        "",
        "/rootDesc.xml",
        "ftp://10.0.0.1/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http:///nohost",
        "http://10.0.0.1:99999/",
        "http://10.0.0.1:0/",
        "http://10.0.0.1:abc/",
        "http://[::1/",
        "http://10.0.0.1/a b",
        "http://10.0.0.1/\x00",
        "http://10.0.0.1/" + "a" * 3000,
    ],
)
def test_location_rewriting_gives_none_for_anything_but_an_http_url(location: str) -> None:
    assert rewrite_location(location, "203.0.113.9") is None


@pytest.mark.parametrize("public", ["", "a b", "1.2.3.4/24", "evil@host", "[::1"])
def test_location_rewriting_refuses_a_public_address_that_is_no_address(public: str) -> None:
    with pytest.raises(ValueError, match="neither an IP address nor a host name"):
        rewrite_location("http://10.0.0.1/", public)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("Debian/6.18.44-fc-v595 UPnP/1.1 MiniUPnPd/2.3.1", True),
        ("Linux/4.4.240, UPnP/1.0, Portable SDK for UPnP devices/1.12.1", True),
        ("TP-LINK/TP-LINK upnp/1.0 miniupnpd/1.0", True),
        ("nginx", False),
        ("Synology/DSM/192.168.1.5", False),
        ("Apache/2.4.57 (Debian)", False),
        ("MyUPnP/1.0", False),
        ("", False),
    ],
)
def test_a_upnp_server_header_is_told_from_a_web_server(server: str, expected: bool) -> None:
    assert is_upnp_server_header(server) is expected
