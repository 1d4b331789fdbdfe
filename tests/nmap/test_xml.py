"""nmap XML import, pure: recorded captures of real nmap runs against the demo lab (see
tests/data/nmap/README.md), agreement with python-nmap's own parser, and hostile documents."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import nmap
import pytest

from exposure_audit.errors import UsageError
from exposure_audit.nmap import xml as nmap_import
from exposure_audit.nmap.xml import NmapXmlError, host_observation, parse_nmap_xml
from exposure_audit.observations import AddressFamily, HostStatus, ProbeStatus
from exposure_audit.ports import PortSet

DATA = Path(__file__).parents[1] / "data" / "nmap"
CAPTURES = ("demo-lab.xml", "ipv6-loopback.xml", "host-timeout.xml")


def _read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _services(run: nmap_import.NmapRun, address: str) -> dict[tuple[str, int], tuple[str, ...]]:
    host = next(h for h in run.hosts if h.address == address)
    return {
        (s.protocol, s.port): (s.state, s.service, s.product, s.version, s.banner)
        for s in host.services
    }


def test_the_demo_lab_capture_gives_each_hosts_ports_services_and_versions() -> None:
    run = parse_nmap_xml(_read("demo-lab.xml"), "demo-lab.xml")
    assert [h.address for h in run.hosts] == ["127.77.0.10", "127.77.0.30", "127.77.0.60"]
    assert run.ports == PortSet((22, 23, 445, 5000, 5001, 8080), ())
    assert run.nmap_version == "7.93" and run.version_detection and run.complete
    assert run.args.startswith("nmap -sT -sV -Pn -n -p 23,445,5000,5001,8080,22")
    assert run.started_at == datetime.fromtimestamp(1795788914, UTC)
    assert run.finished_at == datetime.fromtimestamp(1795788946, UTC)
    legacy = _services(run, "127.77.0.60")
    assert legacy[("tcp", 23)] == (
        "open",
        "telnet",
        "Synology DiskStation 1512+ NAS telnetd",
        "",
        "",
    )
    assert legacy[("tcp", 445)] == (
        "open",
        "netbios-ssn",
        "Samba smbd",
        "3.X - 4.X",
        "workgroup: WORKGROUP",
    )
    assert legacy[("tcp", 22)][:2] == ("closed", "ssh")
    assert all(h.family is AddressFamily.IPV4 and h.state == "up" for h in run.hosts)


@pytest.mark.parametrize("name", CAPTURES)
def test_ports_and_services_agree_with_python_nmaps_parser(name: str) -> None:
    # The probes parse nmap's XML with python-nmap; the import must read the same facts.
    parser = nmap.PortScanner.__new__(nmap.PortScanner)
    theirs = parser.analyse_nmap_xml_scan(nmap_xml_output=_read(name).decode())["scan"]
    run = parse_nmap_xml(_read(name), name)
    assert {h.address for h in run.hosts} == set(theirs)
    for host in run.hosts:
        expected = {
            (protocol, int(port)): (
                info["state"],
                info["name"],
                info["product"],
                info["version"],
                info["extrainfo"],
            )
            for protocol in ("tcp", "udp")
            for port, info in theirs[host.address].get(protocol, {}).items()
        }
        assert _services(run, host.address) == expected


def test_an_ipv6_host_keeps_its_family() -> None:
    run = parse_nmap_xml(_read("ipv6-loopback.xml"), "ipv6-loopback.xml")
    (host,) = run.hosts
    assert (host.address, host.family) == ("::1", AddressFamily.IPV6)
    assert _services(run, "::1")[("tcp", 5001)] == ("open", "http", "nginx", "", "")


def test_a_host_cut_by_nmaps_host_timeout_is_incomplete_not_clean() -> None:
    run = parse_nmap_xml(_read("host-timeout.xml"), "host-timeout.xml")
    cut = next(h for h in run.hosts if h.address == "127.77.0.60")
    assert cut.timed_out and cut.services == ()
    observation = host_observation(cut)
    assert observation.status is HostStatus.INCOMPLETE
    assert [(a.probe, a.status) for a in observation.attempts] == [
        ("discovery", ProbeStatus.TIMED_OUT)
    ]
    other = next(h for h in run.hosts if h.address == "127.77.0.10")
    assert not other.timed_out
    assert host_observation(other).status is HostStatus.COMPLETE


def test_names_down_hosts_duplicates_and_other_protocols() -> None:
    run = parse_nmap_xml(_read("edited-names-down-duplicates.xml"), "edited.xml")
    assert [h.address for h in run.hosts] == [
        "203.0.113.5",
        "203.0.113.7",
        "203.0.113.9",
        "2001:db8::5",
    ]
    assert run.ports == PortSet((22, 23, 5001), (161,))
    nas, down, mac_first, v6 = run.hosts
    # Names in nmap's order (the name the user gave, then PTR); a listed-twice host is merged.
    assert nas.hostnames == ("nas.example.net", "nas-ptr.example.net")
    assert set(_services(run, "203.0.113.5")) == {
        ("tcp", 22),
        ("tcp", 23),
        ("tcp", 5001),
        ("udp", 161),
    }
    assert nas.notes == ("1 sctp port(s) in the nmap XML not graded (only TCP and UDP are)",)
    # A host nmap reported down was not scanned: incomplete, never clean.
    assert (down.state, down.reason, down.services) == ("down", "no-response", ())
    observation = host_observation(down)
    assert observation.status is HostStatus.INCOMPLETE
    assert observation.attempts[0].status is ProbeStatus.SKIPPED
    assert "down (no-response)" in observation.attempts[0].reason
    # The IP is found behind a MAC address; IPv6 is compressed.
    assert mac_first.family is AddressFamily.IPV4
    assert (v6.address, v6.family) == ("2001:db8::5", AddressFamily.IPV6)
    # The observation carries the names and the services as the audit's model has them.
    full = host_observation(nas)
    assert full.hostnames == nas.hostnames and full.status is HostStatus.COMPLETE
    assert [s.port for s in full.open_services()] == [22, 23, 5001]


def _nmaprun(body: str, *, runstats: str | None = None, root: str = "nmaprun") -> bytes:
    stats = (
        '<runstats><finished time="1795788906" exit="success"/></runstats>'
        if runstats is None
        else runstats
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE nmaprun><{root} scanner="nmap" args="nmap -p 23 x" '
        f'start="1795788874" version="7.93">{body}{stats}</{root}>'
    ).encode()


_HOST = (
    '<host><status state="up" reason="user-set"/><address addr="{addr}" addrtype="ipv4"/>'
    '<ports><port protocol="tcp" portid="{port}"><state state="open"/>'
    '<service name="telnet"/></port></ports></host>'
)


def test_a_run_nmap_ended_with_an_error_is_incomplete() -> None:
    run = parse_nmap_xml(
        _nmaprun(
            _HOST.format(addr="198.51.100.1", port=23),
            runstats='<runstats><finished exit="error" errormsg="Interrupted"/></runstats>',
        ),
        "err.xml",
    )
    assert not run.complete and run.errors == ("nmap exited with an error: Interrupted",)
    unfinished = parse_nmap_xml(_nmaprun("", runstats=""), "unfinished.xml")
    assert not unfinished.finished and not unfinished.complete


def test_without_scaninfo_the_port_set_is_what_the_hosts_list() -> None:
    run = parse_nmap_xml(_nmaprun(_HOST.format(addr="198.51.100.1", port=2323)), "x.xml")
    assert run.ports == PortSet((2323,), ())
    assert not run.version_detection  # neither -sV in the args nor a probed service


_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<nmaprun scanner="nmap" args="&d;"/>
"""

_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<nmaprun scanner="nmap" args="&xxe;"/>
"""


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not well-formed XML"),
        (_read("demo-lab.xml")[:2000], "ends early (a truncated file?)"),
        (_BOMB, "refused: the XML declares entities"),
        (_XXE, "refused: the XML declares entities"),
        (b'<?xml version="1.0"?><html><body>hi</body></html>', "root element is <html>"),
        (
            b'<?xml version="1.0"?><nmaprun scanner="masscan"></nmaprun>',
            "written by 'masscan', not nmap",
        ),
        (_nmaprun(_HOST.format(addr="&lt;script&gt;", port=23)), "host 1: address '<script>'"),
        (_nmaprun(_HOST.format(addr="198.51.100.1", port=70000)), "port '70000'"),
        (_nmaprun(_HOST.format(addr="198.51.100.1", port="-1")), "port '-1'"),
        (
            _nmaprun('<host><status state="up"/><address addr="aa:bb" addrtype="mac"/></host>'),
            "host 1: no IPv4 or IPv6 address",
        ),
        (
            _nmaprun(
                '<host><status state="up"/><address addr="198.51.100.1" addrtype="ipv4"/>'
                '<ports><port protocol="tcp" portid="23"/></ports></host>'
            ),
            "port 23/tcp has no state",
        ),
        (
            _nmaprun('<scaninfo protocol="tcp" services="1-99999"/>'),
            "<scaninfo> for tcp",
        ),
    ],
)
def test_hostile_or_broken_xml_is_a_usage_error_naming_the_file(data: bytes, problem: str) -> None:
    with pytest.raises(NmapXmlError) as caught:
        parse_nmap_xml(data, "scan.xml")
    assert isinstance(caught.value, UsageError)
    assert str(caught.value).startswith("scan.xml: ")
    assert problem in str(caught.value)
    assert caught.value.source == "scan.xml"


def test_a_truncated_file_names_where_it_ends() -> None:
    with pytest.raises(NmapXmlError, match=r"line \d+, column \d+"):
        parse_nmap_xml(_read("demo-lab.xml")[:-30], "cut.xml")


def test_a_file_over_the_size_limit_is_refused_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nmap_import, "MAX_XML_BYTES", 1000)
    with pytest.raises(NmapXmlError, match="more than the 1,000 byte limit"):
        parse_nmap_xml(_read("demo-lab.xml"), "big.xml")


def test_text_from_targets_is_kept_verbatim_for_the_renderers_to_escape() -> None:
    data = _nmaprun(
        '<host><status state="up"/><address addr="198.51.100.1" addrtype="ipv4"/>'
        '<hostnames><hostname name="[x](https://evil.example)" type="PTR"/></hostnames>'
        '<ports><port protocol="tcp" portid="21"><state state="open"/>'
        '<service name="ftp" product="&lt;script&gt;[2J&#x202e;" extrainfo="a|b"/></port>'
        "</ports></host>"
    )
    run = parse_nmap_xml(data, "x.xml")
    (host,) = run.hosts
    assert host.hostnames == ("[x](https://evil.example)",)
    assert _services(run, "198.51.100.1")[("tcp", 21)] == (
        "open",
        "ftp",
        "<script>[2J\u202e",
        "",
        "a|b",
    )
