"""The timing policy's contract, on the filtered perimeter: the real ``exposure-audit scan``, run
from a scanner namespace with each ``--timing`` preset, finds every open port of the ground
truth and never calls a dropped port closed, and the DSM boxes behind the firewall are found
and graded.

The default preset audits the whole /22 (1,024 addresses x the default TCP ports); ``polite``
(300 probes/s at most) and ``fast`` audit a /26 that holds services of every kind, to keep the
suite's time in bounds.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from .lab import PerimeterLab

Key = tuple[str, int]


def audit(
    lab: PerimeterLab, tmp_path: Path, target: str, *flags: str, timeout: float = 240
) -> dict[str, Any]:
    """The real CLI in the ``eu`` scanner namespace; its JSON report."""
    report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
    argv = [sys.executable, "-m", "exposure_audit", "scan", target, "--allow-private", "-q"]
    argv += ["--no-udp", "--no-history", "--format", "json", "--fail-on", "never", "-o"]
    argv += [str(report), *flags]
    result = lab.run(lab.scanner("eu"), argv, timeout=timeout, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(report.read_text())
    return doc


def open_ports(doc: dict[str, Any]) -> set[Key]:
    return {
        (host["address"], service["port"])
        for host in doc["hosts"]
        for service in host["services"]
        if service["protocol"] == "tcp" and service["state"] == "open"
    }


def dropped_called_closed(doc: dict[str, Any], truth: dict[Key, str]) -> list[Key]:
    return [
        (host["address"], service["port"])
        for host in doc["hosts"]
        for service in host["services"]
        if service["state"] == "closed"
        and truth.get((host["address"], service["port"])) == "filtered"
    ]


def test_the_default_policy_finds_every_open_port_of_the_22(
    perimeter_lab: PerimeterLab, tmp_path: Path
) -> None:
    # Given 1,024 addresses, nearly all of their ports dropped by the firewall
    truth = perimeter_lab.expected("eu")
    expected_open = {key for key, state in truth.items() if state == "open"}
    # When the whole perimeter is audited with the default timing
    doc = audit(perimeter_lab, tmp_path, str(perimeter_lab.network))
    # Then every open port is in the report, nothing else is called open, no dropped port is
    # called closed, and the run is complete
    assert open_ports(doc) == expected_open
    assert dropped_called_closed(doc, truth) == []
    assert doc["complete"] is True
    assert len(doc["hosts"]) == 1024
    # and the vulnerable DSM 4.3 behind it is graded F with SynoLocker's rule
    dsm43 = [h for h in perimeter_lab.hosts if h.expect_dsm == "4.3-3810"]
    assert dsm43
    by_address = {h["address"]: h for h in doc["hosts"]}
    reachable = [h for h in dsm43 if (h.address, 5000) in expected_open]
    assert reachable
    for host in reachable:
        reported = by_address[host.address]
        assert reported["grade"] == "F"
        assert "DSM003" in {f["rule"] for f in reported["findings"]}


@pytest.mark.parametrize("preset", ["polite", "fast"])
def test_every_preset_finds_every_open_port_of_a_busy_block(
    perimeter_lab: PerimeterLab, tmp_path: Path, preset: str
) -> None:
    # The /26 with the most lab services (every kind of port state is in it)
    block = _busiest_block(perimeter_lab)
    addresses = [str(a) for a in block]
    truth = perimeter_lab.expected("eu", addresses=addresses)
    doc = audit(perimeter_lab, tmp_path, str(block), "--timing", preset)
    assert open_ports(doc) == {key for key, state in truth.items() if state == "open"}
    assert dropped_called_closed(doc, truth) == []
    assert doc["complete"] is True


def _busiest_block(lab: PerimeterLab) -> ipaddress.IPv4Network:
    blocks = list(lab.network.subnets(new_prefix=26))
    listening = {address for address, _ in lab.listening}

    def services(block: ipaddress.IPv4Network) -> int:
        return sum(1 for a in listening if ipaddress.IPv4Address(a) in block)

    return max(blocks, key=services)
