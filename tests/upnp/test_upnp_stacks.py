"""Known-vulnerable UPnP stacks from SERVER banners, and the sourced table behind them."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import pytest

from exposure_audit.upnp import parse_ssdp_reply, vulnerable_stack
from exposure_audit.upnp.stacks import stack_table

from .captures import capture


def _keys(server: str) -> list[str]:
    return [v.key for v in vulnerable_stack(server)]


def test_miniupnpd_1_0_carries_the_2013_ssdp_and_soap_flaws() -> None:
    verdicts = vulnerable_stack("TP-LINK/TP-LINK UPnP/1.0 miniupnpd/1.0")
    by_key = {v.key: v for v in verdicts}
    assert by_key["miniupnpd-2013-ssdp"].cves == ("CVE-2013-0229",)
    assert by_key["miniupnpd-2013-soap"].cves == ("CVE-2013-0230",)
    soap = by_key["miniupnpd-2013-soap"]
    assert soap.product == "MiniUPnPd"
    assert soap.version == "1.0"
    assert soap.fixed_in == "1.4"
    assert soap.impact == "remote code execution"
    assert "Metasploit ssdp_msearch" in soap.source
    assert any("metasploit-framework" in r for r in soap.references)


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "1.3", "1.3.9", "1.0-RC3"])
def test_miniupnpd_below_1_4_has_cve_2013_0230(version: str) -> None:
    assert "miniupnpd-2013-soap" in _keys(f"Linux UPnP/1.0 MiniUPnPd/{version}")


@pytest.mark.parametrize("version", ["1.4", "1.5", "1.9", "2.0"])
def test_miniupnpd_1_4_and_later_has_no_2013_flaw(version: str) -> None:
    keys = _keys(f"Linux UPnP/1.1 MiniUPnPd/{version}")
    assert not [k for k in keys if k.startswith("miniupnpd-2013")]


def test_miniupnpd_through_2_1_has_the_2019_flaws_flagged_as_banner_unreliable() -> None:
    (verdict,) = vulnerable_stack("Debian/4.9 UPnP/1.1 MiniUPnPd/2.1")
    assert verdict.key == "miniupnpd-2019"
    assert not verdict.banner_reliable
    assert "CVE-2019-12107" in verdict.cves
    assert verdict.fixed_in == "2.2.0"


@pytest.mark.parametrize(
    "server",
    [
        "Debian/6.18.44-fc-v595 UPnP/1.1 MiniUPnPd/2.3.1",  # the lab's miniupnpd
        "OpenWRT/23.05 UPnP/1.1 MiniUPnPd/2.3.4",
        "Linux UPnP/1.1 MiniUPnPd/2.1.20190502",  # a dated snapshot after 2.1
        "Linux/4.4.240, UPnP/1.0, Portable SDK for UPnP devices/1.12.1",
        "Linux, UPnP/1.0, Portable SDK for UPnP devices/1.6.18",
        "Linux, UPnP/1.0, Portable SDK for UPnP devices/1.8.0",
        "Synology/DSM/192.168.1.5",
        "nginx",
        "Linux UPnP/1.0 MiniUPnPd",  # no version: nothing to compare
        "Linux UPnP/1.0 Portable SDK for UPnP devices/",
        "NotMiniUPnPd/1.0",
        "",
    ],
)
def test_patched_unknown_and_unrelated_banners_give_no_verdict(server: str) -> None:
    assert vulnerable_stack(server) == ()


@pytest.mark.parametrize("version", ["1.0.4", "1.4.6", "1.6.6", "1.6.17"])
def test_libupnp_before_1_6_18_has_the_eight_2012_cves(version: str) -> None:
    (verdict,) = vulnerable_stack(
        f"Linux/2.6.21, UPnP/1.0, Portable SDK for UPnP devices/{version}"
    )
    assert verdict.key == "libupnp-2012"
    assert verdict.cves[0] == "CVE-2012-5958" and len(verdict.cves) == 8
    assert verdict.version == version


def test_the_intel_sdk_is_flagged_with_or_without_a_version() -> None:
    assert _keys("Linux/2.4, UPnP/1.0, Intel SDK for UPnP devices /1.2") == ["intel-upnp-sdk-2012"]
    assert _keys("WindRiver UPnP/1.0 Intel SDK for UPnP devices") == ["intel-upnp-sdk-2012"]


def test_a_recorded_old_libupnp_reply_is_recognised_end_to_end() -> None:
    reply = parse_ssdp_reply(capture("libupnp166_ssdp_reply.txt"), "198.51.100.4")
    assert reply is not None
    assert _keys(reply.server) == ["libupnp-2012"]


def test_a_huge_banner_is_read_in_bounded_time() -> None:
    assert vulnerable_stack("MiniUPnPd/" * 100_000) == ()
    assert vulnerable_stack("A" * 1000 + " MiniUPnPd/1.0" + "B" * 100_000) != ()


# The table itself, like prowler's metadata test: every entry sourced, every CVE well formed.


def test_every_stack_entry_names_known_sources_and_well_formed_cves() -> None:
    data = json.loads(files("exposure_audit.data").joinpath("upnp_stacks.json").read_text())
    sources = {s["id"]: s for s in data["sources"]}
    assert all(s["name"] and s["title"] for s in sources.values())
    for entry in data["stacks"]:
        assert entry["sources"], entry["key"]
        assert set(entry["sources"]) <= set(sources), entry["key"]
        assert all(re.fullmatch(r"CVE-\d{4}-\d{4,7}", c) for c in entry["cves"]), entry["key"]
        assert entry["fixed_in"], entry["key"]
        assert entry["impact"], entry["key"]
    used = {i for e in data["stacks"] for i in e["sources"]}
    assert used == set(sources), "every source is used"
    assert stack_table() == tuple(e["key"] for e in data["stacks"])


def test_the_reference_mappings_are_all_present() -> None:
    # docs/reference/upnp.md section 2: MiniUPnPd 1.0 -> CVE-2013-0229, <1.4 -> CVE-2013-0230,
    # libupnp < 1.6.18 -> CVE-2012-5958/5959 (Metasploit ssdp_msearch, Rapid7 2013).
    cves_10 = {c for v in vulnerable_stack("MiniUPnPd/1.0") for c in v.cves}
    assert {"CVE-2013-0229", "CVE-2013-0230"} <= cves_10
    cves_13 = {c for v in vulnerable_stack("MiniUPnPd/1.3") for c in v.cves}
    assert "CVE-2013-0230" in cves_13
    cves_lib = {c for v in vulnerable_stack("Portable SDK for UPnP devices/1.6.17") for c in v.cves}
    assert {"CVE-2012-5958", "CVE-2012-5959"} <= cves_lib
