"""Bad input, fuzzed with hypothesis: whatever a user types or a device sends, the parsers raise
only their documented error, and that error names what was wrong and where.

- targets and ports: nothing that starts with ``-`` or holds whitespace, commas or shell
  characters reaches nmap's argument list (the argv ``NmapScanner`` builds is captured at
  ``asyncio.create_subprocess_exec``);
- nmap's XML: through python-nmap's parser as the probe uses it (only ``ProbeFailed``), and
  through :mod:`exposure_audit.nmap.xml` (only ``NmapXmlError``, naming the file);
- UPnP descriptions, SOAP answers and SSDP datagrams: mutations of every recorded capture;
- certificates: mutations of the odd certificate of the corpus.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exposure_audit.errors import PortSpecError, ProbeFailed, TargetError
from exposure_audit.nmap import scanner as nmap_scan
from exposure_audit.nmap.scanner import NmapScanner
from exposure_audit.nmap.versiondb import quick_banner_versiondb
from exposure_audit.ports import PortSet, parse_ports
from exposure_audit.probes.http import parse_certificate
from exposure_audit.targets import TargetSpec, parse_item, parse_lines, plan_targets
from exposure_audit.upnp import (
    UpnpParseError,
    parse_description,
    parse_external_ip,
    parse_port_mapping_entry,
    parse_soap_fault,
    parse_ssdp_reply,
)

from .certs import odd_certificate

DATA = Path(__file__).resolve().parents[1] / "data"
NMAP_CAPTURES = sorted((DATA / "nmap").glob("*.xml"))
UPNP_XML = sorted(p for p in (DATA / "upnp").rglob("*.xml"))
UPNP_SSDP = sorted((DATA / "upnp").glob("*.txt"))
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ============================================================================ mutations


def mutated(captures: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """A capture with a few bytes flipped, cut, duplicated or spliced with hostile pieces."""
    pieces = [
        b"\x00",
        b"\xff\xfe",
        b"<",
        b">",
        b"&",
        b"]]>",
        b'"',
        b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
        b"&a;",
        b"\r\n",
        b"-oN /tmp/x",
        b"\x1b[31m",
        b"99999999999999999999",
        b"-1",
        b"",
    ]

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(captures)))
        for _ in range(draw(st.integers(1, 6))):
            if not data:
                break
            at = draw(st.integers(0, len(data) - 1))
            action = draw(st.integers(0, 4))
            if action == 0:
                data[at] ^= draw(st.integers(1, 255))
            elif action == 1:
                del data[at : at + draw(st.integers(1, 64))]
            elif action == 2:
                data[at:at] = draw(st.sampled_from(pieces))
            elif action == 3:
                data[at:at] = data[at : at + draw(st.integers(1, 200))]
            else:
                data = data[:at]
        return bytes(data)

    return build()


# ============================================================================ targets -> argv

HOSTILE_ITEMS = [
    "-oN /tmp/x",
    "--script=http-shellshock",
    "-iL",
    "--",
    "198.51.100.7 198.51.100.8",
    "198.51.100.7,198.51.100.8",
    "198.51.100.7;id",
    "$(id).example.net",
    "`id`.example.net",
    "a|b.example",
    "198.51.100.0/30",
    "[2001:db8::7]",
    "2001:db8::/126",
    "::ffff:198.51.100.7",
    "nas.example.net",
    "bücher.example",
    "xn--bcher-kva.example",
    "0x7f.1",
    "127.1",
    "1e3.example",
    "\t198.51.100.9\n",
]
items = st.one_of(st.sampled_from(HOSTILE_ITEMS), st.text(max_size=40))
port_texts = st.one_of(
    st.sampled_from(["22", "1-3", "U:161", "T:80,U:53", "-p 1", "0", "65536", "22 80", "5-1"]),
    st.text(alphabet="TU:0123456789,- -x", max_size=20),
)

_FLAG = re.compile(r"^-[A-Za-z0-9-]+$")
_PORTS = r"\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*"  # 22,80,5000-5001: items and ranges of digits
_VALUE = re.compile(rf"^(?:\d+(?:s|ms)?|[TU]:{_PORTS}(?:,U:{_PORTS})?|{_PORTS}|-)$")
_SHELLISH = set(" \t\r\n,;|&$`'\"<>()*?![]{}\\")


class _FakeNmap:
    """Stands in for the nmap process: records argv, prints a recorded run's XML."""

    def __init__(self, argv: list[str], output: bytes) -> None:
        self.argv = argv
        self.output = output
        self.returncode = 0

    async def communicate(self) -> tuple[bytes, bytes]:
        return self.output, b""

    def kill(self) -> None:
        pass

    async def wait(self) -> int:
        return 0


def run_with_fake_nmap(output: bytes, call: Any) -> tuple[list[list[str]], object]:
    """Run ``call(scanner)`` with every nmap process replaced by one printing ``output``."""
    seen: list[list[str]] = []

    async def fake_exec(*argv: str, **kwargs: object) -> _FakeNmap:
        seen.append(list(argv))
        return _FakeNmap(list(argv), output)

    with mock.patch.object(nmap_scan.asyncio, "create_subprocess_exec", fake_exec):
        scanner = NmapScanner()
        try:
            result: object = asyncio.run(call(scanner))
        except ProbeFailed as exc:
            result = exc
    return seen, result


def check_argv(argv: list[str]) -> None:
    """Flags and their values before ``--``; only normalised IP addresses after it."""
    split = argv.index("--")
    options, hosts = argv[1:split], argv[split + 1 :]
    assert hosts, argv
    for host in hosts:
        assert ipaddress.ip_address(host).compressed == host
        assert not host.startswith("-") and not (_SHELLISH & set(host))
    for before, word in zip(["", *options], options, strict=False):
        if before == "--versiondb":  # the probe file the scanner derived itself, nothing else
            assert word == quick_banner_versiondb(argv[0]), (word, argv)
            continue
        assert _FLAG.match(word) or _VALUE.match(word), (word, argv)


EMPTY_RUN = (DATA / "nmap" / "host-timeout.xml").read_bytes()


@FUZZ
@given(st.lists(items, min_size=1, max_size=6), port_texts)
def test_no_target_or_port_text_reaches_nmap_but_as_an_address_or_digits(
    texts: list[str], ports_text: str
) -> None:
    specs: list[TargetSpec] = []
    for i, text in enumerate(texts, 1):
        try:
            specs.append(parse_item(text, f"argument {i}"))
        except TargetError as exc:
            assert str(exc).startswith(f"argument {i}: ")  # names where
            assert exc.reason  # and what
    try:
        ports = parse_ports(ports_text)
    except PortSpecError as exc:
        # quoted, cut to 80 characters (an empty list says so in words)
        assert repr(ports_text) in str(exc) or len(ports_text) > 80 or not ports_text.strip()
        ports = PortSet((22,), (161,))
    if not specs:
        return
    try:
        plan = plan_targets(specs, allow_private=True, max_hosts=64)
    except TargetError as exc:
        assert "--max-hosts" in str(exc)
        return
    if not plan.addresses:
        return
    by_family: dict[bool, list[str]] = {}
    for address in plan.addresses:
        by_family.setdefault(":" in address, []).append(address)

    async def scan(scanner: NmapScanner) -> None:
        for addresses in by_family.values():
            await scanner.discover(addresses, ports, udp=True, host_timeout=7.5)
            await scanner.versions({a: list(ports.tcp) for a in addresses}, host_timeout=3)

    seen, _ = run_with_fake_nmap(EMPTY_RUN, scan)
    for argv in seen:
        check_argv(argv)
    if ports.tcp:
        assert seen, "nmap was never asked"


@FUZZ
@given(st.lists(items, max_size=8))
def test_a_targets_file_error_names_the_file_and_the_line(lines: list[str]) -> None:
    try:
        parse_lines(lines, "targets.txt")
    except TargetError as exc:
        assert re.match(r"^targets\.txt:\d+: ", str(exc)), str(exc)


# ============================================================================ config

CONFIG_KEYS = [
    "targets",
    "exclude",
    "ports",
    "resolver",
    "allow_private",
    "max_hosts",
    "host_timeout",
    "request_timeout",
    "upnp",
    "fail_on",
    "fail_on_new",
    "target_files",
]
toml_values = st.one_of(
    st.sampled_from(HOSTILE_ITEMS).map(json.dumps),
    st.text(max_size=30).map(json.dumps),
    st.integers(-(2**40), 2**40).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["true", "false", "inf", "nan", "-0.0", "1e999"]),
    st.lists(st.sampled_from(HOSTILE_ITEMS) | st.text(max_size=10), max_size=3).map(json.dumps),
)


@FUZZ
@given(st.dictionaries(st.sampled_from(CONFIG_KEYS), toml_values, min_size=1, max_size=6))
def test_a_config_with_hostile_values_raises_only_config_error_naming_line_and_key(
    values: dict[str, str],
) -> None:
    from exposure_audit.cli.config import ConfigError, parse_config

    lines = [f"{key} = {value}" for key, value in values.items()]
    try:
        config = parse_config("\n".join(lines), "audit.toml")
    except ConfigError as exc:
        assert str(exc).startswith("audit.toml")
        if exc.key:  # a bad value: the key and its line are named
            assert exc.key.split(".")[0].split("[")[0] in values, exc
            assert exc.line == 1 + list(values).index(exc.key.split(".")[0].split("[")[0])
        return
    for item in (*config.targets, *config.exclude):
        parse_item(item, "config")  # kept as written, and still in the grammar


# ============================================================================ nmap XML


async def _discover(scanner: NmapScanner) -> object:
    return await scanner.discover(["127.0.0.1"], PortSet((22,)), udp=False, host_timeout=5)


@FUZZ
@given(mutated([p.read_bytes() for p in NMAP_CAPTURES]))
def test_nmap_printing_mangled_xml_is_a_probe_failure_naming_nmap(xml: bytes) -> None:
    _, result = run_with_fake_nmap(xml, _discover)
    if isinstance(result, ProbeFailed):
        assert str(result).startswith("nmap printed"), str(result)
    else:
        assert isinstance(result, dict) and set(result) == {"127.0.0.1"}


_RUN = EMPTY_RUN.decode()


@pytest.mark.parametrize(
    "xml",
    [
        _RUN[: _RUN.index("<runstats>")] + "</nmaprun>",  # nmap stopped before its stats
        _RUN.replace('encoding="UTF-8"', 'encoding="TTF-8"', 1),
        _RUN.replace("</nmaprun>", "", 1).replace(
            "<runstats>",
            '<host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/><ports>'
            '<port protocol="tcp" portid="=22"><state state="open"/></port></ports></host>'
            "<runstats>",
            1,
        )
        + "</nmaprun>",
    ],
    ids=["no-runstats", "unknown-encoding", "bad-port-number"],
)
def test_nmap_xml_that_python_nmap_chokes_on_is_a_probe_failure(xml: str) -> None:
    _, result = run_with_fake_nmap(xml.encode(), _discover)
    assert isinstance(result, ProbeFailed)
    assert str(result).startswith("nmap printed no usable XML"), str(result)


@FUZZ
@given(mutated([p.read_bytes() for p in NMAP_CAPTURES]))
def test_an_nmap_xml_file_raises_only_its_error_naming_the_file(xml: bytes) -> None:
    from exposure_audit.nmap.xml import NmapXmlError, host_observation, parse_nmap_xml

    try:
        run = parse_nmap_xml(xml, "scan.xml")
    except NmapXmlError as exc:
        assert str(exc).startswith("scan.xml: ") and exc.problem
        return
    for found in run.hosts:
        host_observation(found)


def test_an_nmap_xml_file_with_an_unknown_encoding_is_an_nmap_xml_error() -> None:
    from exposure_audit.nmap.xml import NmapXmlError, parse_nmap_xml

    with pytest.raises(NmapXmlError, match=r"^scan\.xml: "):
        parse_nmap_xml(_RUN.replace('encoding="UTF-8"', 'encoding="TTF-8"', 1).encode(), "scan.xml")


# ============================================================================ UPnP


@FUZZ
@given(mutated([p.read_bytes() for p in UPNP_XML]))
def test_mangled_upnp_documents_raise_only_upnp_parse_error_naming_the_document(
    xml: bytes,
) -> None:
    try:
        parse_description(xml, "http://203.0.113.1:2189/rootDesc.xml")
    except UpnpParseError as exc:
        assert str(exc).startswith("device description"), str(exc)
    for parser in (parse_port_mapping_entry, parse_external_ip, parse_soap_fault):
        try:
            parser(xml)
        except UpnpParseError as exc:
            assert re.match(r"^[\w ]+: ", str(exc)), str(exc)


@FUZZ
@given(mutated([p.read_bytes() for p in UPNP_SSDP]))
def test_mangled_ssdp_datagrams_never_raise(datagram: bytes) -> None:
    reply = parse_ssdp_reply(datagram, "192.0.2.1")
    if reply is not None:
        assert reply.responder == "192.0.2.1"
        assert len(reply.headers) <= 64


# ============================================================================ certificates

ODD_DER = [odd_certificate(0x14)[0], odd_certificate(0x13)[0]]


@FUZZ
@given(mutated(ODD_DER))
def test_mangled_certificates_parse_or_give_none_never_raise(der: bytes) -> None:
    cert = parse_certificate(der)
    if cert is not None:
        assert len(cert.subject) <= 1024 and len(cert.issuer) <= 1024
        assert len(cert.sha256) == 64
