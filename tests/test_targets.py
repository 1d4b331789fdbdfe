"""The target grammar and the scan policy: what may reach nmap, and what is refused."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exposure_audit.errors import TargetError
from exposure_audit.targets import (
    TargetKind,
    non_global_reason,
    parse_item,
    parse_lines,
    plan_targets,
)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("198.51.100.7", TargetKind.ADDRESS, "198.51.100.7"),
        ("2001:DB8::7", TargetKind.ADDRESS, "2001:db8::7"),
        ("[2001:db8::7]", TargetKind.ADDRESS, "2001:db8::7"),
        ("198.51.100.0/28", TargetKind.NETWORK, "198.51.100.0/28"),
        ("198.51.100.9/28", TargetKind.NETWORK, "198.51.100.0/28"),
        ("2001:db8::/126", TargetKind.NETWORK, "2001:db8::/126"),
        ("198.51.100.7/32", TargetKind.ADDRESS, "198.51.100.7"),
        ("NAS.Example.NET.", TargetKind.HOSTNAME, "nas.example.net"),
        ("bücher.example", TargetKind.HOSTNAME, "xn--bcher-kva.example"),
    ],
)
def test_valid_items_are_normalised(text: str, kind: TargetKind, value: str) -> None:
    spec = parse_item(text, "argument 1")
    assert (spec.kind, spec.value) == (kind, value)


@pytest.mark.parametrize(
    "text",
    [
        "--script=x",
        "-oN",
        "-iL",
        "-oN out.txt",
        "198.51.100.7 -p1",
        "a,b",
        "nas.example.net;reboot",
        "$(id)",
        "256.1.1.1",
        "198.51.100.07",
        "fe80::1%eth0",
        "198.51.100.0/33",
        "exa_mple.net",
        "-example.net",
        "example.123",
        "",
        "   ",
        "a" * 64 + ".example",
    ],
)
def test_items_outside_the_grammar_are_refused_with_their_origin(text: str) -> None:
    with pytest.raises(TargetError) as err:
        parse_item(text, "targets.txt:7")
    assert err.value.where == "targets.txt:7"
    assert "targets.txt:7" in str(err.value)


def test_a_targets_file_error_names_the_file_and_line() -> None:
    lines = ["# perimeter", "", "198.51.100.7  # NAS", "nas.example.net", "-oN x.txt"]
    with pytest.raises(TargetError, match=r"targets\.txt:5"):
        parse_lines(lines, "targets.txt")


def test_comments_and_blank_lines_are_skipped() -> None:
    specs = parse_lines(["# c", "  ", "198.51.100.7 # inline", "nas.example.net"], "t.txt")
    assert [(s.value, s.where) for s in specs] == [
        ("198.51.100.7", "t.txt:3"),
        ("nas.example.net", "t.txt:4"),
    ]


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("10.1.2.3", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "unique-local"),
        ("2001:db8::1", "documentation"),
        ("::ffff:192.168.0.1", "IPv4-mapped private"),
    ],
)
def test_non_global_addresses_have_a_reason(address: str, words: str) -> None:
    reason = non_global_reason(ipaddress.ip_address(address))
    assert reason is not None and words in reason


def test_a_global_address_has_no_reason() -> None:
    assert non_global_reason(ipaddress.ip_address("9.9.9.9")) is None


def test_a_private_target_is_refused_naming_the_flag() -> None:
    spec = parse_item("192.168.1.10", "argument 1")
    with pytest.raises(TargetError, match="--allow-private") as err:
        plan_targets([spec])
    assert "private" in err.value.reason


def test_a_range_overlapping_a_private_block_is_refused() -> None:
    with pytest.raises(TargetError, match=r"overlaps 10\.0\.0\.0/8"):
        plan_targets([parse_item("8.0.0.0/6", "argument 1")], max_hosts=1 << 27)


def test_allow_private_admits_documentation_and_loopback_ranges() -> None:
    plan = plan_targets(
        [parse_item("198.51.100.0/30", "a"), parse_item("127.0.0.1", "b")], allow_private=True
    )
    assert plan.addresses == (
        "198.51.100.0",
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "127.0.0.1",
    )


def test_a_range_past_max_hosts_needs_the_flag() -> None:
    big = parse_item("203.0.113.0/24", "targets.txt:2")
    with pytest.raises(TargetError, match="--max-hosts") as err:
        plan_targets([big], allow_private=True, max_hosts=100)
    assert err.value.where == "targets.txt:2"
    assert len(plan_targets([big], allow_private=True, max_hosts=256).addresses) == 256


def test_the_default_limit_is_65536_addresses() -> None:
    with pytest.raises(TargetError, match="65,536"):
        plan_targets([parse_item("2001:db8::/111", "a")], allow_private=True)
    assert len(plan_targets([parse_item("2001:db8::/112", "a")], allow_private=True).addresses) == (
        65_536
    )


def test_exclusions_remove_addresses_ranges_and_names() -> None:
    targets = [parse_item(t, "a") for t in ("198.51.100.0/29", "nas.example.net", "x.example")]
    excluded = [parse_item(t, "e") for t in ("198.51.100.0/30", "198.51.100.6", "x.example")]
    plan = plan_targets(targets, excluded, allow_private=True)
    assert plan.addresses == ("198.51.100.4", "198.51.100.5", "198.51.100.7")
    assert plan.hostnames == ("nas.example.net",)


def test_duplicates_keep_their_first_position() -> None:
    targets = [parse_item(t, "a") for t in ("198.51.100.2", "198.51.100.0/30", "198.51.100.2")]
    plan = plan_targets(targets, allow_private=True)
    assert plan.addresses == ("198.51.100.2", "198.51.100.0", "198.51.100.1", "198.51.100.3")


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_target_error_and_never_yields_an_option(text: str) -> None:
    try:
        spec = parse_item(text, "fuzz")
    except TargetError:
        return
    assert not spec.value.startswith("-")
    assert not any(c.isspace() or c in ",;|&$`'\"<>" for c in spec.value)
    if spec.kind is not TargetKind.HOSTNAME:
        ipaddress.ip_network(spec.value, strict=False)
