"""Grading an imported nmap run: from recorded captures without probing (no network), and from a
real nmap run against the demo lab (loopback only) with the probes, which must give the same
findings as the project's own scan of the ports the XML covers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exposure_audit.errors import TargetError
from exposure_audit.grading import Grade
from exposure_audit.lab import demo_lab
from exposure_audit.nmap.scanner import NmapScanner
from exposure_audit.nmap.xml import NmapXmlError, parse_nmap_xml
from exposure_audit.observations import HostStatus, PortMapping
from exposure_audit.ports import PortSet
from exposure_audit.probes.dns import make_resolver
from exposure_audit.probes.http import HttpProbeSettings
from exposure_audit.report import Report
from exposure_audit.run.audit import Auditor, AuditSettings
from exposure_audit.run.grade_import import NmapReplay, grade_nmap_run, grade_nmap_xml
from exposure_audit.targets import parse_item, plan_targets
from exposure_audit.upnp import Inventory

DATA = Path(__file__).parents[1] / "data" / "nmap"
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)

# The demo lab on its own loopback /24 (host numbers as in 127.77.0.0/24), so that this module
# can run next to another demo lab (a demo, another test run).
LAB_NETWORK = "127.77.42.0/24"
LAB_PORTS = "23,445,5000,5001,8080,22"
# The recorded capture's hosts (DSM 4.3, DSM 6.2 on 8080 with SSH, Telnet and SMB), plus the
# UPnP description server (.50) for the UPnP probes.
LAB_HOSTS = ("127.77.42.10", "127.77.42.30", "127.77.42.50", "127.77.42.60")


def _findings(report: Report) -> set[tuple[str, str, str, int]]:
    return {(f.rule, f.address, f.protocol, f.port) for f in report.findings()}


def _grades(report: Report) -> dict[str, Grade]:
    return {h.address: h.grade for h in report.hosts}


def test_without_probes_nmaps_own_service_names_are_graded() -> None:
    # Given the recorded nmap run of the demo lab, graded without touching the network.
    run = parse_nmap_xml((DATA / "demo-lab.xml").read_bytes(), "demo-lab.xml")
    report = grade_nmap_run(run, now=NOW)
    # Then Telnet and SMB are critical data-plane findings and SSH is remote administration;
    # nmap's "Samba smbd 3.X - 4.X" range is only a possible SambaCry, never a graded version ...
    assert _findings(report) == {
        ("SVC001", "127.77.0.60", "tcp", 23),
        ("SVC001", "127.77.0.60", "tcp", 445),
        ("SVC002", "127.77.0.30", "tcp", 22),
        ("VULN001", "127.77.0.60", "tcp", 445),
    }
    sambacry = next(f for f in report.findings() if f.rule == "VULN001")
    assert "possibly affected" in sambacry.evidence
    assert "range guessed by nmap" in sambacry.evidence
    assert _grades(report) == {
        "127.77.0.10": Grade.A,
        "127.77.0.30": Grade.C,
        "127.77.0.60": Grade.F,
    }
    telnet = next(f for f in report.findings() if f.port == 23)
    assert "Synology DiskStation 1512+ NAS telnetd" in telnet.evidence
    # ... the DSM rules stay silent (they need the probes), and the report says so.
    assert any("grade --probe" in n for n in report.notes)
    assert report.notes[0].startswith("graded from nmap XML demo-lab.xml (nmap 7.93, started ")
    # The report's times and port set are nmap's.
    assert report.started_at == run.started_at and report.finished_at == run.finished_at
    assert report.ports == PortSet((22, 23, 445, 5000, 5001, 8080), ())
    assert report.complete


def test_hosts_cut_short_or_down_are_incomplete_and_never_graded_clean() -> None:
    run = parse_nmap_xml((DATA / "host-timeout.xml").read_bytes(), "host-timeout.xml")
    report = grade_nmap_run(run, now=NOW)
    assert _grades(report) == {"127.77.0.60": Grade.UNKNOWN, "127.77.0.10": Grade.A}
    edited = parse_nmap_xml((DATA / "edited-names-down-duplicates.xml").read_bytes(), "e.xml")
    report = grade_nmap_run(edited, now=NOW)
    hosts = {h.address: h for h in report.hosts}
    assert hosts["203.0.113.7"].grade is Grade.UNKNOWN
    assert hosts["203.0.113.7"].observation.status is HostStatus.INCOMPLETE
    # The merged host: SSH (SVC002) and Telnet (SVC001, from its second listing, where nmap
    # only named the port from its table: so it is also unidentified, UNK001).
    assert {(f.rule, f.port) for f in hosts["203.0.113.5"].findings} == {
        ("SVC001", 23),
        ("SVC002", 22),
        ("UNK001", 23),
    }
    assert hosts["203.0.113.5"].observation.hostnames == ("nas.example.net", "nas-ptr.example.net")


def test_an_inside_inventory_ties_open_ports_to_upnp_mappings_without_probing() -> None:
    run = parse_nmap_xml((DATA / "demo-lab.xml").read_bytes(), "demo-lab.xml")
    inventory = Inventory(
        igd_url="http://192.168.1.1:5000/rootDesc.xml",
        external_address="127.77.0.60",
        mappings=(PortMapping(23, "TCP", "192.168.1.20", 23, "telnet"),),
        taken_at="2026-11-27T12:00:00Z",
    )
    report = grade_nmap_run(run, now=NOW, inventory=inventory)
    assert ("UPNP003", "127.77.0.60", "tcp", 23) in _findings(report)


def test_probing_private_addresses_needs_allow_private_and_contacts_nothing_before() -> None:
    xml = (DATA / "demo-lab.xml").read_bytes()
    with pytest.raises(TargetError, match="--allow-private"):
        asyncio.run(grade_nmap_xml(xml, source="demo-lab.xml", probe=True))


def test_a_broken_file_is_a_usage_error_naming_it() -> None:
    with pytest.raises(NmapXmlError, match=r"^scan\.xml: ends early"):
        asyncio.run(grade_nmap_xml(b"<?xml version='1.0'?><nmaprun>", source="scan.xml"))


def test_the_replay_answers_discovery_and_versions_from_the_xml() -> None:
    run = parse_nmap_xml((DATA / "demo-lab.xml").read_bytes(), "demo-lab.xml")
    replay = NmapReplay(run)
    found = asyncio.run(
        replay.discover(["127.77.0.60", "127.77.0.99"], run.ports, udp=False, host_timeout=1)
    )
    # Discovery has names and states only, as a scan's; an address the XML lacks is "cut".
    telnet = next(s for s in found["127.77.0.60"].services if s.port == 23)
    assert (telnet.state, telnet.service, telnet.product) == ("open", "telnet", "")
    assert found["127.77.0.99"].timed_out
    versions, cut = asyncio.run(replay.versions({"127.77.0.60": [23, 22]}, host_timeout=1))
    assert cut == set()
    assert set(versions) == {("127.77.0.60", 23)}  # 22 is closed
    assert versions[("127.77.0.60", 23)].product == "Synology DiskStation 1512+ NAS telnetd"


# --- against the live demo lab (loopback only) ------------------------------------------------


@dataclass(frozen=True)
class _LiveRun:
    xml: bytes
    scanned: Report


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_LiveRun]:
    """The demo lab (running until the module's tests are done), one real nmap -oX run of it,
    and the project's own scan of the same ports."""
    out = tmp_path_factory.mktemp("nmap") / "lab.xml"
    with demo_lab(LAB_NETWORK, ipv6=None):
        command = ["nmap", "-sT", "-sV", "-Pn", "-n", "-p", LAB_PORTS, "-oX", str(out)]
        subprocess.run([*command, *LAB_HOSTS], check=True, capture_output=True, timeout=240)
        plan = plan_targets([parse_item(a, "test") for a in LAB_HOSTS], allow_private=True)
        settings = AuditSettings(
            ports=PortSet(tuple(sorted(int(p) for p in LAB_PORTS.split(","))), ()),
            http=HttpProbeSettings(request_timeout=10.0, identify_timeout=5.0),
        )
        auditor = Auditor(plan, settings, scanner=NmapScanner(), resolver=make_resolver(None))
        scanned = asyncio.run(auditor.run())
        yield _LiveRun(out.read_bytes(), scanned)


def test_graded_with_probes_the_nmap_xml_gives_the_scans_findings(live: _LiveRun) -> None:
    # Given the real nmap XML of the lab; When it is graded with the probes.
    report = asyncio.run(grade_nmap_xml(live.xml, source="lab.xml", probe=True, allow_private=True))
    # Then the findings (rule, address, port) and grades are the scan's own.
    assert _findings(report) == _findings(live.scanned)
    assert _grades(report) == _grades(live.scanned)
    found = _findings(report)
    assert ("DSM003", "127.77.42.10", "tcp", 5000) in found  # SynoLocker, seen by the HTTP probe
    assert ("DSM001", "127.77.42.30", "tcp", 8080) in found  # DSM moved off 5000
    assert ("UPNP002", "127.77.42.50", "tcp", 5000) in found  # the UPnP description probe
    assert ("SVC001", "127.77.42.60", "tcp", 445) in found
    assert _grades(report)["127.77.42.10"] is Grade.F
    assert report.complete and report.hosts[0].address == "127.77.42.10"
    assert any(n.startswith("HTTP/TLS, DSM and UPnP probes ran from ") for n in report.notes)


def test_graded_without_probes_the_same_xml_still_shows_telnet_and_smb(live: _LiveRun) -> None:
    # Nothing is contacted (the lab happens to be running for the other test).
    report = asyncio.run(grade_nmap_xml(live.xml, source="lab.xml", probe=False))
    found = _findings(report)
    assert {("SVC001", "127.77.42.60", "tcp", 23), ("SVC001", "127.77.42.60", "tcp", 445)} <= found
    assert not any(rule.startswith(("DSM", "UPNP", "TLS")) for rule, *_ in found)
    # Everything it found, the scan found too.
    assert found <= _findings(live.scanned)


NO_VERSIONS = DATA / "dsm43-no-versions.xml"  # DSM 4.3 on 127.64.0.10, nmap without -sV
NO_VERSIONS_HOST = "127.64.0.10"


def _grade_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exposure_audit", "grade", "--nmap-xml", str(NO_VERSIONS), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ports_nmap_only_named_from_its_table_are_unidentified_never_an_a() -> None:
    # Given nmap's run of a DSM 4.3 box without -sV: 5000 "upnp", 5001 "commplex-link" (its
    # port table's names, not what answered)
    # When it is graded without probing
    result = _grade_cli("--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (host,) = doc["hosts"]
    # Then both management ports are unidentified (UNK001), the host is not A ...
    assert {(f["rule"], f["port"]) for f in host["findings"]} == {
        ("UNK001", 5000),
        ("UNK001", 5001),
    }
    assert host["grade"] == "C" and doc["summary"]["grade"] == "C"
    assert all("port-table name" in s["unidentified"] for s in host["services"])
    assert {a["status"] for a in host["attempts"]} == {"unidentified"}
    # ... and the report says --probe verifies them.
    assert any("grade --probe verifies" in s["unidentified"] for s in host["services"])
    assert any("--probe" in note for note in doc["notes"])


def test_probing_the_same_xml_identifies_the_dsm_it_hides() -> None:
    # Given the same XML and the box itself answering on loopback
    with demo_lab(network="127.64.0.0/24", ipv6=None):
        result = _grade_cli("--probe", "--allow-private", "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    (host,) = json.loads(result.stdout)["hosts"]
    rules = {f["rule"] for f in host["findings"]}
    # Then the probes identify DSM 4.3 (SynoLocker-exploitable) and nothing is unidentified
    assert {"DSM001", "DSM003"} <= rules
    assert not rules & {"UNK001", "UNK002"}
    assert host["grade"] == "F"
