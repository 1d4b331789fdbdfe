"""The pieces of the UPnP lab that need no root: the ``nas`` lab of exposure_audit.lab (a DSM
host allowed on a namespace address), the ``upnpc -l`` parser and the STUN answer."""

from __future__ import annotations

import socket
import struct

import pytest

from exposure_audit.lab import LabHost
from exposure_audit.lab.__main__ import main as lab_main
from exposure_audit.lab.catalog import nas_lab

from .lab import Mapping, parse_upnpc_list
from .stun_responder import MAGIC_COOKIE, binding_response

UPNPC_LIST = """\
upnpc : miniupnpc library test client, version 2.2.4.
Found valid IGD : http://192.168.50.1:2189/ctl/IPConn
Local LAN ip address : 192.168.50.10
Connection Type : IP_Routed
ExternalIPAddress = 203.0.113.1
 i protocol exPort->inAddr:inPort description remoteHost leaseTime
 0 TCP  6690->192.168.50.10:6690  'Drive' '' 604799
 1 UDP  5351->192.168.50.10:5351  'it''s odd' '' 0
 2 TCP  5000->192.168.50.10:5000  'DSM 5000' '' 604797
GetGenericPortMappingEntry() returned 713 (SpecifiedArrayIndexInvalid)
"""


def test_upnpc_list_is_parsed_into_sorted_rows_without_the_lease() -> None:
    assert parse_upnpc_list(UPNPC_LIST) == (
        Mapping(5000, "TCP", "192.168.50.10", 5000, "DSM 5000"),
        Mapping(6690, "TCP", "192.168.50.10", 6690, "Drive"),
        Mapping(5351, "UDP", "192.168.50.10", 5351, "it''s odd"),
    )


def test_a_namespace_host_may_use_private_and_documentation_addresses_only() -> None:
    for address in ("192.168.50.10", "203.0.113.1", "10.1.2.3", "127.0.0.5"):
        LabHost("nas", address, "dsm", (), "F", None, in_netns=True)
    with pytest.raises(ValueError, match="private or documentation"):
        LabHost("nas", "8.8.8.8", "dsm", (), "F", None, in_netns=True)
    with pytest.raises(ValueError, match="loopback"):
        LabHost("nas", "192.168.50.10", "dsm", (), "F", None)


def test_the_nas_lab_is_one_dsm43_host_graded_f() -> None:
    lab = nas_lab("192.168.50.10")
    (host,) = lab.hosts
    assert (host.name, host.address, host.ports) == ("syno43", "192.168.50.10", (5000, 5001))
    assert (host.expect_grade, host.expect_dsm) == ("F", "4.3-3810")
    assert {s.site for s in host.services} == {"dsm43"}


def test_the_lab_cli_keeps_address_for_nas_and_network_for_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["demo", "--address", "192.168.50.10"], ["nas", "--network", "127.9.0.0/24"]):
        with pytest.raises(SystemExit):
            lab_main(argv)
    assert "--address is for the nas lab only" in capsys.readouterr().err


def test_the_stun_answer_maps_the_requesters_address() -> None:
    request = struct.pack("!HHI", 0x0001, 0, MAGIC_COOKIE) + b"T" * 12
    answer = binding_response(request, "203.0.113.1", 41110)
    assert answer is not None
    kind, length, cookie = struct.unpack("!HHI", answer[:8])
    assert (kind, length, cookie, answer[8:20]) == (0x0101, 24, MAGIC_COOKIE, b"T" * 12)
    xport, xip = struct.unpack("!H4s", answer[26:32])
    assert xport ^ (MAGIC_COOKIE >> 16) == 41110
    assert (
        socket.inet_ntoa(struct.pack("!I", struct.unpack("!I", xip)[0] ^ MAGIC_COOKIE))
        == "203.0.113.1"
    )
    assert binding_response(b"\x01\x01" + request[2:], "203.0.113.1", 1) is None
