"""The real exposure-audit in the network-namespace lab: from the "Internet" (scanner
namespace) against the router's WAN address, and inside the LAN (NAS namespace) for the
inventory. Real miniupnpd, real upnpc, real nmap, nftables NAT. A scan must change nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .lab import UpnpLab

pytestmark = pytest.mark.netns


def audit(lab: UpnpLab, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run ``exposure-audit scan`` in the scanner namespace against the WAN address."""
    result = lab.run(
        lab.scanner,
        sys.executable,
        "-m",
        "exposure_audit",
        "scan",
        lab.wan_address,
        "--allow-private",
        "--format",
        "json",
        "--fail-on",
        "never",
        "--host-timeout",
        "60",
        *args,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def _findings(host: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(f["rule"], f["port"]): f for f in host["findings"]}


@pytest.mark.parametrize("mode", ["wan-exposed", "wan-insecure"])
def test_upnp_on_the_wan_is_found_read_and_graded_without_changing_anything(
    mode: str, request: pytest.FixtureRequest
) -> None:
    lab: UpnpLab = request.getfixturevalue(f"upnp_lab_{mode.replace('-', '_')}")
    before = lab.mappings()
    _, doc, _ = audit(lab)
    after = lab.mappings()
    assert after == before  # read-only: the table is exactly as it was

    (host,) = doc["hosts"]
    findings = _findings(host)
    assert findings[("UPNP001", 1900)]["severity"] == "high"
    assert "MiniUPnPd" in findings[("UPNP001", 1900)]["evidence"]
    assert findings[("UPNP002", lab.igd_port)]["severity"] == "critical"
    # The leaked mapping table, with its internal clients.
    leaked = {
        (m["external_port"], m["internal_client"], m["description"])
        for m in host["upnp"]["mappings"]
    }
    assert leaked == {
        (5000, lab.nas_address, "DSM 5000"),
        (5001, lab.nas_address, "DSM 5001"),
        (6690, lab.nas_address, "Drive"),
    }
    assert host["upnp"]["igd"]["external_address"] == lab.wan_address
    assert host["upnp"]["ssdp"][0]["location"].endswith(f":{lab.igd_port}/rootDesc.xml")
    # The forwarded DSM is graded, and its findings name the mapping.
    assert host["grade"] == "F"
    assert findings[("DSM001", 5000)]["severity"] == "critical"
    assert "UPnP mapping 5000/TCP -> 192.168.50.10:5000" in findings[("DSM001", 5000)]["evidence"]
    assert findings[("UPNP003", 5000)]["severity"] == "medium"
    assert findings[("UPNP003", 5001)]["severity"] == "medium"
    # Drive's mapping exists but the ISP drops 6690: mapped but not reachable.
    assert [m["external_port"] for m in host["upnp"]["mapped_but_unreachable"]] == [6690]
    service = next(s for s in host["services"] if s["port"] == 5000)
    assert service["identified_as"] == "Synology DSM"
    assert service["upnp_mapping"]["internal_client"] == lab.nas_address


def test_with_upnp_on_the_lan_only_the_outside_sees_no_upnp(upnp_lab_lan_only: UpnpLab) -> None:
    _, doc, _ = audit(upnp_lab_lan_only)
    (host,) = doc["hosts"]
    rules = {f["rule"] for f in host["findings"]}
    assert not rules & {"UPNP001", "UPNP002", "UPNP003", "UPNP004"}
    assert host["grade"] == "F"  # the forwarded DSM 4.3 itself


@pytest.mark.parametrize("discover", [True, False])
def test_the_inside_inventory_marks_exactly_the_forwarded_services(
    upnp_lab_lan_only: UpnpLab, tmp_path: Path, discover: bool
) -> None:
    lab = upnp_lab_lan_only
    inventory = tmp_path / "inventory.json"
    igd = [] if discover else ["--igd", lab.igd_url]
    inside = lab.run(
        lab.nas,
        sys.executable,
        "-m",
        "exposure_audit",
        "upnp-inventory",
        *igd,
        "-o",
        str(inventory),
        timeout=60,
    )
    assert inside.returncode == 0, inside.stderr
    taken = json.loads(inventory.read_text())
    assert taken["external_address"] == lab.wan_address
    assert {(m["external_port"], m["internal_client"]) for m in taken["mappings"]} == {
        (5000, lab.nas_address),
        (5001, lab.nas_address),
        (6690, lab.nas_address),
    }

    before = lab.mappings()
    _, doc, _ = audit(lab, "--upnp-inventory", str(inventory))
    assert lab.mappings() == before
    (host,) = doc["hosts"]
    forwarded = {s["port"] for s in host["services"] if s["upnp_mapping"]}
    assert forwarded == {5000, 5001}
    assert host["upnp"]["mappings_source"] == "inventory"
    assert [m["external_port"] for m in host["upnp"]["mapped_but_unreachable"]] == [6690]
    upnp003 = {f["port"] for f in host["findings"] if f["rule"] == "UPNP003"}
    assert upnp003 == {5000, 5001}


def test_the_inside_inventory_table_lists_the_real_mappings_and_what_failed(
    upnp_lab_lan_only: UpnpLab,
) -> None:
    lab = upnp_lab_lan_only

    def inventory(url: str) -> subprocess.CompletedProcess[str]:
        return lab.run(
            lab.nas,
            sys.executable,
            "-m",
            "exposure_audit",
            "upnp-inventory",
            "--igd",
            url,
            "--format",
            "table",
            timeout=60,
        )

    # The real miniupnpd: three mappings, nothing failed
    table = inventory(lab.igd_url)
    assert table.returncode == 0, table.stderr
    assert "3 mapping(s)" in table.stdout.splitlines()[0] and "errors" not in table.stdout
    # Nothing listens on port 9 of the router: the table says what failed, not "0 mappings"
    closed = urlsplit(lab.igd_url)._replace(netloc=f"{urlsplit(lab.igd_url).hostname}:9")
    refused = inventory(closed.geturl())
    assert refused.returncode == 3
    assert "no mapping table read" in refused.stdout and "description not fetched" in refused.stdout
    assert "0 mapping" not in refused.stdout
    assert f"the gateway at --igd {closed.geturl()} could not be read" in refused.stderr
    assert "pass --igd" not in refused.stderr
