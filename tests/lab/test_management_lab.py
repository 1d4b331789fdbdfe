"""The management lab (every catalog product on its default port, ``management_lab``) audited
by the real CLI with real nmap, all hosts in one scan: each console is identified with its
category, its version where the page discloses one, and gets the rule its exposure deserves."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from exposure_audit.banners import catalog_advisories
from exposure_audit.lab import Lab
from exposure_audit.lab.catalog import demo_ports, management_lab
from exposure_audit.lab.sites import CONSOLE_PREFIX, SITES, consoles
from exposure_audit.mgmt import load_catalog
from tests.cli.runner import run_cli

NETWORK = "127.142.1.0/24"
# DSM and SRM keep their own detection and rules (DSM001-005, SVC002): no catalog match.
REFERENCE_ONLY = {"synology-dsm", "synology-srm"}


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, dict[str, Any]]]:
    lab = management_lab(NETWORK)
    out = tmp_path_factory.mktemp("management") / "report.json"
    ports = ",".join(str(p) for p in demo_ports(lab).tcp)
    with lab:
        assert not lab.skipped, lab.skipped  # we run as root: 80, 443 and 631 bind too
        result = run_cli(
            "scan", *lab.addresses(), "--allow-private", "--ports", ports, "--no-udp",
            "--format", "json", "-o", str(out), "--host-timeout", "30",
        )  # fmt: skip
    assert result.returncode == 1, result.stderr  # findings at or above the default fail-on
    yield lab, json.loads(out.read_text())


def _by_address(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {host["address"]: host for host in doc["hosts"]}


def test_the_lab_holds_every_catalog_product_once_on_its_own_address() -> None:
    lab = management_lab(NETWORK)
    products = [h.expect_console.product for h in lab.hosts if h.expect_console]
    assert products == [p.id for p in load_catalog()]
    assert len({h.address for h in lab.hosts}) == len(lab.hosts)
    catalog = {p.id: p for p in load_catalog()}
    for console in consoles():
        # The console listens on one of the catalog's default web ports for its product.
        defaults = {(d.port, d.scheme) for d in catalog[console.product].ports}
        assert (console.port, console.scheme) in defaults, console.product
        assert CONSOLE_PREFIX + console.product in SITES


def test_every_console_is_identified_with_its_category_and_disclosed_version(
    audited: tuple[Lab, dict[str, Any]],
) -> None:
    lab, doc = audited
    hosts = _by_address(doc)
    catalog = {p.id: p for p in load_catalog()}
    for lab_host in lab.hosts:
        expected = lab_host.expect_console
        assert expected is not None
        (service,) = [s for s in hosts[lab_host.address]["services"] if s["state"] == "open"]
        assert service["port"] == lab_host.ports[0], lab_host.name
        if expected.product == "synology-dsm":
            assert service["management"] is None  # never reported twice
            assert service["dsm"]["version"] == expected.version
            continue
        if expected.product == "synology-srm":
            assert service["management"] is None
            assert service["http"]["srm"] is True
            continue
        management = service["management"]
        assert management is not None, lab_host.name
        assert management["product"] == expected.product
        assert management["category"] == catalog[expected.product].category
        assert management["version"] == expected.version, lab_host.name
        assert len(management["markers"]) >= 2, lab_host.name  # two independent markers
        assert service["management_hints"] == [], lab_host.name


def test_every_console_gets_the_rule_its_exposure_deserves(
    audited: tuple[Lab, dict[str, Any]],
) -> None:
    lab, doc = audited
    hosts = _by_address(doc)
    with_advisories = {a.product for a in catalog_advisories()}
    for lab_host in lab.hosts:
        expected = lab_host.expect_console
        assert expected is not None
        host = hosts[lab_host.address]
        found = {(f["rule"], f["severity"]) for f in host["findings"]}
        assert (expected.rule, expected.severity) in found, (lab_host.name, found)
        # No other management rule than the deserved one, bar a "possibly" MGMT003 for a
        # product with catalog advisories whose version the page does not place.
        other = {
            f["rule"]: f
            for f in host["findings"]
            if f["rule"].startswith(("MGMT", "DSM00", "SVC")) and f["rule"] != expected.rule
        }
        if expected.product == "synology-dsm":
            other.pop("DSM005", None)  # the login page discloses the build: low
        possibly = other.pop("MGMT003", None)
        assert not other, (lab_host.name, sorted(other))
        if possibly is not None:
            assert expected.product in with_advisories
            assert possibly["severity"] == "high"
            assert "possibly" in possibly["evidence"]
        assert host["grade"] == lab_host.expect_grade, lab_host.name


def test_the_lab_runs_from_the_command_line_and_describes_its_consoles() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "exposure_audit.lab", "management", "--network", "127.142.2.0/24"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        described = json.loads(process.stdout.readline())
        assert process.stdout.readline().strip() == "ready"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(30) == 0
    jupyter = next(h for h in described["hosts"] if h["name"] == "mgmt-jupyter")
    assert jupyter["ports"] == [8888]
    assert jupyter["expect_console"] == {
        "product": "jupyter",
        "version": "2.14.2",
        "rule": "MGMT001",
        "severity": "critical",
    }
