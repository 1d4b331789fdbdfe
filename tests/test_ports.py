"""The -p/--ports grammar and the default Synology port set."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exposure_audit.errors import PortSpecError
from exposure_audit.mgmt import load_catalog
from exposure_audit.ports import PortSet, default_ports, parse_ports


def test_ports_parse_with_ranges_and_protocols() -> None:
    assert parse_ports("22, 80,5000-5001,U:161,t:23") == PortSet((22, 23, 80, 5000, 5001), (161,))


@pytest.mark.parametrize("text", ["", "0", "65536", "10-5", "22;id", "-sV", "22,", "U:", "x:1"])
def test_bad_port_specs_are_refused(text: str) -> None:
    with pytest.raises(PortSpecError):
        parse_ports(text)


def test_the_default_set_has_dsm_and_the_synology_services() -> None:
    ports = default_ports()
    for port in (5000, 5001, 22, 23, 21, 139, 445, 548, 873, 2049, 3260, 3306, 5005, 6690, 80, 443):
        assert port in ports.tcp
    assert 161 in ports.udp


def test_every_default_port_of_the_management_catalog_is_in_the_default_set() -> None:
    ports = default_ports()
    catalog = {p.port for product in load_catalog() for p in product.ports}
    assert catalog <= set(ports.tcp), sorted(catalog - set(ports.tcp))
    # e.g. Proxmox VE, MikroTik's Winbox, Cockpit, Portainer, Netdata
    assert {8006, 8291, 9090, 9000, 19999} <= set(ports.tcp)


def test_the_nmap_spec_holds_only_digits_commas_ranges_and_protocol_prefixes() -> None:
    spec = default_ports().nmap_spec(udp=True)
    assert set(spec) <= set("0123456789,-TU:")
    assert not any(item.startswith("-") for item in spec.replace("T:", "").split(","))
    assert "U:161" in spec
    assert "U:" not in default_ports().nmap_spec(udp=False)


def test_a_full_range_is_one_short_nmap_argument() -> None:
    # A comma list of every port is 382 KB: past the kernel's 128 KiB limit on one argument.
    assert parse_ports("1-65535,U:1-4,U:6").nmap_spec(udp=True) == "T:1-65535,U:1-4,6"
    assert (
        parse_ports("21-23,5000-5001,8000-8003").describe()
        == "tcp 21,22,23,5000,5001,8000-8003; udp -"
    )


@given(st.sets(st.integers(1, 65535), max_size=60))
def test_the_nmap_spec_names_exactly_the_ports(ports: set[int]) -> None:
    spec = PortSet(tuple(sorted(ports))).nmap_spec(udp=False)
    assert (parse_ports(spec.removeprefix("T:")).tcp if spec else ()) == tuple(sorted(ports))


@given(st.text(max_size=40))
def test_any_text_parses_to_valid_ports_or_raises_port_spec_error(text: str) -> None:
    try:
        ports = parse_ports(text)
    except PortSpecError:
        return
    assert all(1 <= p <= 65535 for p in ports.tcp + ports.udp)
