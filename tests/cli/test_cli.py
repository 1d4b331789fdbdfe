"""The CLI end to end: the real nmap, the loopback demo lab, its DNS server, all formats,
and the exit codes a cron job or a CI pipeline relies on."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from exposure_audit.lab import Lab, demo_lab
from exposure_audit.lab.catalog import demo_ports

from .runner import run_cli

NAMES = (
    "nas.example.net",
    "dsm7.example.net",
    "diskstation.myds.me",
    "v4only.example.net",
    "gone.example.net",
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with demo_lab() as running:
        yield running


@pytest.fixture(scope="module")
def json_report(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("cli") / "report.json"
    targets = [h.address for h in lab.hosts]
    result = run_cli(
        "scan",
        *targets,
        *NAMES,
        "--allow-private",
        "--resolver",
        lab.resolver,
        "--format",
        "json",
        "-o",
        str(out),
        "--host-timeout",
        "30",
        # The demo's catalog consoles listen on 8006, 8888 and 9090, outside the default set.
        "--ports",
        _demo_ports(lab),
    )
    # Findings at or above the default --fail-on high: exit 1.
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    doc: dict[str, object] = json.loads(out.read_text())
    return doc


def _demo_ports(lab: Lab) -> str:
    ports = demo_ports(lab)
    return ",".join([*map(str, ports.tcp), *(f"U:{p}" for p in ports.udp)])


def _hosts(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    hosts = doc["hosts"]
    assert isinstance(hosts, list)
    return {h["address"]: h for h in hosts}


def test_each_lab_host_gets_the_grade_a_correct_auditor_gives(
    lab: Lab, json_report: dict[str, object]
) -> None:
    hosts = _hosts(json_report)
    for host in lab.hosts:
        if any(host.name in line for line in lab.skipped):
            continue
        assert hosts[host.address]["grade"] == host.expect_grade, host.name
        assert hosts[host.address]["status"] == "complete", host.name
    summary = json_report["summary"]
    assert isinstance(summary, dict) and summary["grade"] == "F"


def test_dsm_versions_are_read_from_every_dsm_host(
    lab: Lab, json_report: dict[str, object]
) -> None:
    hosts = _hosts(json_report)
    for host in lab.hosts:
        services = hosts[host.address]["services"]
        assert isinstance(services, list)
        found = {
            f"{s['dsm']['version']}-{s['dsm']['build']}" for s in services if s["dsm"] is not None
        }
        if host.expect_dsm is None:
            assert found == set(), host.name
        else:
            assert found == {host.expect_dsm}, host.name


def test_the_synolocker_host_carries_its_findings_with_remediation(
    json_report: dict[str, object],
) -> None:
    nas = _hosts(json_report)["127.77.0.10"]
    findings = {(f["rule"], f["port"]): f for f in nas["findings"]}  # type: ignore[union-attr]
    assert findings[("DSM001", 5000)]["severity"] == "critical"
    assert findings[("DSM003", 5000)]["severity"] == "critical"
    assert findings[("DSM002", 5001)]["severity"] == "high"
    assert ("TLS001", 5001) in findings  # legacy cert, expired
    assert "VPN" in findings[("DSM001", 5000)]["remediation"]
    assert nas["hostnames"] == ["nas.example.net"]


def test_names_are_resolved_in_both_families_with_chains_and_errors(
    json_report: dict[str, object],
) -> None:
    names = {n["name"]: n for n in json_report["names"]}  # type: ignore[union-attr]
    assert names["nas.example.net"]["cname_chain"] == ["syno43.example.net"]
    assert names["dsm7.example.net"]["ipv6"] == ["::1"]
    assert "no AAAA (IPv6) record" in names["v4only.example.net"]["notes"]
    assert any("NXDOMAIN" in e for e in names["gone.example.net"]["errors"])
    assert names["diskstation.myds.me"]["synology_domain"] == "myds.me"
    hosts = _hosts(json_report)
    assert hosts["::1"]["family"] == "ipv6"
    assert hosts["::1"]["hostnames"] == ["dsm7.example.net"]
    assert any("Synology DDNS" in n for n in hosts["127.77.0.30"]["notes"])  # type: ignore[union-attr]


def test_the_moved_dsm_is_found_off_its_default_port(json_report: dict[str, object]) -> None:
    moved = _hosts(json_report)["127.77.0.30"]
    dsm_ports = [s["port"] for s in moved["services"] if s["dsm"]]  # type: ignore[union-attr]
    assert dsm_ports == [8080]


def test_the_upnp_description_server_on_5000_is_not_dsm(json_report: dict[str, object]) -> None:
    upnp = _hosts(json_report)["127.77.0.50"]
    service = next(s for s in upnp["services"] if s["port"] == 5000)  # type: ignore[union-attr]
    assert service["state"] == "open" and service["dsm"] is None
    assert service["identified_as"] == "UPnP description server"
    # Its IGD description is readable from outside: that is UPNP002, not a DSM finding.
    assert [f["rule"] for f in upnp["findings"]] == ["UPNP002"]  # type: ignore[union-attr]


def test_table_and_csv_formats_show_grades_and_rule_ids(lab: Lab) -> None:
    table = run_cli("scan", "127.77.0.10", "--allow-private", "--fail-on", "never", "-q")
    assert table.returncode == 0, table.stderr
    assert "grade F" in table.stdout and "DSM003" in table.stdout and "4.3" in table.stdout
    as_csv = run_cli("scan", "127.77.0.60", "--allow-private", "--format", "csv")
    assert as_csv.returncode == 1
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {(r["rule"], r["port"], r["severity"]) for r in rows} >= {
        ("SVC001", "23", "critical"),
        ("SVC001", "445", "critical"),
    }


def test_a_clean_host_exits_zero(lab: Lab) -> None:
    result = run_cli("scan", "127.77.0.70", "--allow-private", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["grade"] == "A"


def test_fail_on_sets_the_threshold(lab: Lab) -> None:
    # syno72 has DSM002 (high) and DSM005 (low): critical is not reached, low is.
    assert (
        run_cli("scan", "127.77.0.20", "--allow-private", "--fail-on", "critical").returncode == 0
    )
    assert run_cli("scan", "127.77.0.20", "--allow-private", "--fail-on", "low").returncode == 1


def test_a_bad_line_in_a_targets_file_is_exit_2_and_nothing_is_scanned(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("# ok\n198.51.100.7\n--script=http-shellshock\n")
    result = run_cli("scan", "-i", str(targets), "--allow-private", "-o", str(tmp_path / "r"))
    assert result.returncode == 2
    assert f"{targets}:3" in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_private_target_is_refused_with_the_flag_named() -> None:
    result = run_cli("scan", "10.0.0.1")
    assert result.returncode == 2
    assert "--allow-private" in result.stderr and "private" in result.stderr


def test_dry_run_prints_targets_and_ports_and_scans_nothing() -> None:
    result = run_cli(
        "scan",
        "198.51.100.0/30",
        "--exclude",
        "198.51.100.1",
        "--allow-private",
        "-p",
        "22,5000-5001",
        "--dry-run",
    )
    assert result.returncode == 0
    assert "198.51.100.0" in result.stdout and "198.51.100.1" not in result.stdout
    assert "tcp 22,5000,5001" in result.stdout


def test_an_unwritable_output_is_refused_before_scanning(lab: Lab, tmp_path: Path) -> None:
    # Refused up front (exit 2): a scan whose report could not be written would be lost work.
    # A write that fails later (a full disk) still falls back to stdout with exit 3
    # (tests/cli/test_output_safety.py).
    result = run_cli(
        "scan",
        "127.77.0.70",
        "--allow-private",
        "--format",
        "json",
        "-o",
        str(tmp_path / "missing-dir" / "r.json"),
    )
    assert result.returncode == 2
    assert "missing-dir" in result.stderr and result.stdout == ""


def test_rules_and_explain() -> None:
    listing = run_cli("rules", "--format", "json")
    ids = [r["id"] for r in json.loads(listing.stdout)]
    assert {"DSM001", "DSM003", "SVC001", "TLS001"} <= set(ids)
    explained = run_cli("explain", "dsm003")
    assert explained.returncode == 0 and "SynoLocker" in explained.stdout
    assert run_cli("explain", "NOPE01").returncode == 2


def test_a_name_resolving_to_a_private_address_is_skipped_and_the_run_goes_on(lab: Lab) -> None:
    result = run_cli(
        "scan",
        "nas.example.net",
        "gone.example.net",
        "--resolver",
        lab.resolver,
        "--format",
        "json",
    )
    # Every name skipped or gone: nothing was audited, which is no all-clear (exit 3).
    assert result.returncode == 3, result.stderr
    assert "nothing was audited: nas.example.net: 127.77.0.10 skipped" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["hosts"] == []
    assert [t["target"] for t in doc["not_audited"]] == ["nas.example.net", "gone.example.net"]
    assert doc["skipped"] == [
        {
            "address": "127.77.0.10",
            "name": "nas.example.net",
            "reason": "not a public address: loopback; --allow-private scans it",
        }
    ]
    names = {n["name"]: n for n in doc["names"]}
    assert names["gone.example.net"]["errors"]


def test_grade_reads_an_nmap_xml_file_without_rescanning() -> None:
    capture = Path(__file__).parents[1] / "data" / "nmap" / "demo-lab.xml"
    result = run_cli("grade", "--nmap-xml", str(capture), "--format", "json")
    assert result.returncode == 1, result.stderr  # Telnet and SMB: critical
    doc = json.loads(result.stdout)
    found = {(f["rule"], f["address"], f["port"]) for h in doc["hosts"] for f in h["findings"]}
    assert {("SVC001", "127.77.0.60", 23), ("SVC001", "127.77.0.60", 445)} <= found
    bad = run_cli("grade", "--nmap-xml", str(Path(__file__)))
    assert bad.returncode == 2 and "test_cli.py" in bad.stderr


@pytest.mark.parametrize("fmt", ["markdown", "sarif", "html"])
def test_every_report_format_is_offered_by_scan(lab: Lab, fmt: str) -> None:
    result = run_cli(
        "scan",
        "127.77.0.60",
        "--allow-private",
        "-p",
        "23",
        "--format",
        fmt,
        "--fail-on",
        "never",
        "--no-history",
    )
    assert result.returncode == 0, result.stderr
    assert "SVC001" in result.stdout
    if fmt == "sarif":
        assert json.loads(result.stdout)["version"] == "2.1.0"


def test_the_demo_management_consoles_are_found_with_their_category_and_rule(
    lab: Lab, json_report: dict[str, object]
) -> None:
    hosts = _hosts(json_report)
    expected = {
        "qnap": (8080, "qnap-qts", "nas", "MGMT001", "critical"),
        "proxmox": (8006, "proxmox-ve", "hypervisor", "MGMT002", "high"),
        "jupyter": (8888, "jupyter", "notebook", "MGMT001", "critical"),
        "cockpit": (9090, "cockpit", "server-console", "MGMT002", "high"),
    }
    for name, (port, product, category, rule, severity) in expected.items():
        host = hosts[lab.host(name).address]
        (service,) = [s for s in host["services"] if s["port"] == port]
        assert (service["management"]["product"], service["management"]["category"]) == (
            product,
            category,
        ), name
        assert [(f["rule"], f["port"], f["severity"]) for f in host["findings"]] == [
            (rule, port, severity)
        ], name
    jupyter = hosts[lab.host("jupyter").address]
    assert "api/kernels" in jupyter["findings"][0]["severity_reason"]
    # DSM ports keep DSM's rules and their dsm object, and also name the product in
    # management, without a second (MGMT) finding.
    syno = hosts[lab.host("syno43").address]
    web = [s for s in syno["services"] if s["dsm"] is not None]
    assert web
    for service in web:
        assert service["management"]["product"] == "synology-dsm"
        assert service["management"]["category"] == "nas"
        assert service["management"]["version"] == service["dsm"]["version"]
    assert not [f for f in syno["findings"] if f["rule"].startswith("MGMT")]
    assert {f["rule"] for f in syno["findings"]} & {"DSM001", "DSM002"}
