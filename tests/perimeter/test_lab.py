"""The filtered-perimeter lab: nmap from each vantage finds exactly the ground truth the lab
derives from its own layout and firewall rules (open, closed by the host, closed by the
firewall's reset, filtered), the vantages see different things where the rules say so, the
namespaces are connected as drawn and nothing else, and teardown leaves nothing behind."""

from __future__ import annotations

import collections
import ipaddress
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exposure_audit.lab.__main__ import main as lab_main
from exposure_audit.lab.catalog import PERIMETER_ROLES, perimeter_lab
from exposure_audit.ports import default_ports

from .lab import (
    CONTROL_ADDRESS,
    NAMESPACE_PREFIX,
    REJECTED_NETWORK,
    REJECTED_PORTS,
    NmapRun,
    PerimeterLab,
    compare,
    parse_nmap_states,
    sweep_stale_namespaces,
)


def _namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split(" ", 1)[0] for line in listing.stdout.splitlines()}


# -- the ground truth (pure: no root needed) --------------------------------------------------


def test_the_ground_truth_covers_every_address_and_default_port_with_every_kind_of_port() -> None:
    lab = PerimeterLab(("eu", "us"))
    truth = lab.expected("eu")
    assert len(lab.addresses) == 1024
    assert len(truth) == 1024 * len(default_ports().tcp)
    states = collections.Counter(truth.values())
    assert set(states) == {"open", "closed", "filtered"}
    # closed by the host (an allowed forward nothing listens on) and by the firewall's reset
    assert any(truth[k] == "closed" for k in lab.dead_forwards if k[1] in lab.ports)
    rejected = ipaddress.ip_network(REJECTED_NETWORK)
    assert {truth[(str(a), p)] for a in rejected for p in REJECTED_PORTS} == {"closed"}
    # a listening service the firewall drops is filtered
    assert {truth[k] for k in lab.blocked} == {"filtered"}
    # services are here and there: between 40 and 80 hosts, spread over all four /24s
    assert 40 <= len(lab.hosts) <= 80
    assert {h.address.split(".")[2] for h in lab.hosts} == {"0", "1", "2", "3"}


def test_the_vantages_differ_on_the_services_the_firewall_keeps_for_one_of_them() -> None:
    lab = PerimeterLab(("eu", "us"))
    differences = lab.vantage_differences()
    # one DSM's 5001 and one SSH only from eu; one SMB and one dead forward only from us
    assert collections.Counter(
        (port, states["eu"], states["us"]) for (_, port), states in differences.items()
    ) == {
        (22, "open", "filtered"): 1,
        (5001, "open", "filtered"): 1,
        (445, "filtered", "open"): 1,
        (445, "filtered", "closed"): 1,
    }
    assert PerimeterLab().vantage_differences() == {}


def test_the_perimeter_catalog_scatters_64_hosts_of_eight_kinds_over_the_22() -> None:
    hosts = perimeter_lab().hosts
    assert len(hosts) == 64
    assert [h.name for h in hosts[:3]] == ["p13-dsm43", "p21-dsm43", "p42-dsm72"]
    kinds = collections.Counter(h.name.split("-", 1)[1] for h in hosts)
    assert kinds == {kind: 8 for kind in PERIMETER_ROLES}
    assert all(h.in_netns and h.address.startswith("198.18.") for h in hosts)
    vulnerable = [h for h in hosts if h.expect_dsm == "4.3-3810"]
    assert {(h.ports, h.expect_grade) for h in vulnerable} == {((5000, 5001), "F")}
    # the same layout on loopback needs no namespace
    assert not any(h.in_netns for h in perimeter_lab("127.90.0.0/22").hosts)


@pytest.mark.parametrize("network", ["8.8.8.0/22", "198.18.0.0/24", "2001:db8::/118"])
def test_the_perimeter_catalog_refuses_public_or_mis_sized_networks(network: str) -> None:
    with pytest.raises(ValueError):
        perimeter_lab(network)
    assert lab_main(["perimeter", "--network", network]) == 2


def test_nmap_xml_folded_ports_are_unfolded() -> None:
    xml = """<?xml version="1.0"?><nmaprun>
    <scaninfo type="connect" protocol="tcp" numservices="4" services="21-23,80"/>
    <host><address addr="198.18.0.5" addrtype="ipv4"/><ports>
      <extraports state="filtered" count="2">
        <extrareasons reason="no-response" count="2" proto="tcp" ports="21,23"/></extraports>
      <port protocol="tcp" portid="22"><state state="open"/></port>
      <port protocol="tcp" portid="80"><state state="closed"/></port></ports></host>
    <host><address addr="198.18.0.6" addrtype="ipv4"/><ports>
      <extraports state="filtered" count="3"/>
      <port protocol="tcp" portid="80"><state state="open"/></port></ports></host>
    </nmaprun>"""
    assert parse_nmap_states(xml) == {
        ("198.18.0.5", 21): "filtered",
        ("198.18.0.5", 22): "open",
        ("198.18.0.5", 23): "filtered",
        ("198.18.0.5", 80): "closed",
        ("198.18.0.6", 21): "filtered",
        ("198.18.0.6", 22): "filtered",
        ("198.18.0.6", 23): "filtered",
        ("198.18.0.6", 80): "open",
    }


def test_bad_vantages_are_refused() -> None:
    for vantages in ((), ("eu", "eu"), ("EU",), "eu", ("a-b",)):
        with pytest.raises(ValueError):
            PerimeterLab(vantages)


# -- nmap against the running lab -------------------------------------------------------------


@pytest.mark.parametrize("vantage", ["eu", "us"])
def test_nmap_from_each_vantage_finds_exactly_the_ground_truth(
    perimeter_lab: PerimeterLab, perimeter_scans: dict[str, NmapRun], vantage: str
) -> None:
    # Given nmap's connect scan of all 1,024 addresses x the default TCP ports from the vantage
    run = perimeter_scans[vantage]
    # Then every port is open, closed or filtered exactly as the lab's rules say
    expected = perimeter_lab.expected(vantage)
    assert compare(expected, run.states) == {}
    assert collections.Counter(run.states.values())["open"] == len(
        perimeter_lab.allowed(vantage) & perimeter_lab.listening
    )


def test_each_vantage_sees_what_only_it_is_allowed(
    perimeter_lab: PerimeterLab, perimeter_scans: dict[str, NmapRun]
) -> None:
    differences = perimeter_lab.vantage_differences()
    assert len(differences) == 4
    for key, states in differences.items():
        assert {v: perimeter_scans[v].states[key] for v in states} == states, key


def test_the_perimeter_serves_the_catalog_s_dsm_and_ssh(perimeter_lab: PerimeterLab) -> None:
    dsm43 = next(h for h in perimeter_lab.hosts if h.expect_dsm == "4.3-3810")
    ssh = next(h for h in perimeter_lab.hosts if h.role == "ssh")
    assert {(dsm43.address, 5000), (ssh.address, 22)} <= perimeter_lab.allowed("eu")
    code = (
        "import socket, sys, urllib.request\n"
        f"page = urllib.request.urlopen('http://{dsm43.address}:5000/webman/info.cgi', timeout=5)\n"
        "print(page.read().decode())\n"
        f"s = socket.create_connection(('{ssh.address}', 22), timeout=5)\n"
        "print(s.recv(100).decode())\n"
    )
    result = perimeter_lab.run(perimeter_lab.scanner("eu"), [sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    assert "build=3810" in result.stdout
    assert "SSH-2.0-OpenSSH" in result.stdout


def test_scanners_route_only_to_the_perimeter_and_ctl_not_at_all(
    perimeter_lab: PerimeterLab,
) -> None:
    # ``ip route get`` only looks the route up: nothing is sent.
    def route(namespace: str, address: str) -> int:
        return perimeter_lab.run(namespace, ["ip", "route", "get", address]).returncode

    for namespace in perimeter_lab.scanners.values():
        assert route(namespace, "198.18.2.9") == 0
        assert route(namespace, "192.168.1.1") != 0  # no default route
    assert perimeter_lab.ctl is not None
    assert route(perimeter_lab.ctl, "198.18.2.9") != 0
    assert route(perimeter_lab.router, "192.168.1.1") != 0
    # the scanners do not forward, so ctl could not reach the perimeter through them either
    for namespace in perimeter_lab.scanners.values():
        forwarding = perimeter_lab.run(namespace, ["cat", "/proc/sys/net/ipv4/ip_forward"])
        assert forwarding.stdout.strip() == "0"


def test_ctl_and_the_scanners_reach_each_other_over_their_links(
    perimeter_lab: PerimeterLab,
) -> None:
    assert perimeter_lab.ctl is not None
    assert perimeter_lab.control_address == CONTROL_ADDRESS
    # Given a listener on ctl's control address and one on each scanner's control address
    listen = (
        "import socket, sys\n"
        "s = socket.create_server((sys.argv[1], 8786))\n"
        "print('ready', flush=True)\n"
        "c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()\n"
    )
    connect = (
        "import socket, sys\n"
        "print(socket.create_connection((sys.argv[1], 8786), timeout=5).recv(64).decode())\n"
    )
    pairs = [(perimeter_lab.ctl, perimeter_lab.control_address, perimeter_lab.scanner("eu"))]
    pairs += [
        (perimeter_lab.scanner(v), perimeter_lab.scanner_control_address(v), perimeter_lab.ctl)
        for v in perimeter_lab.vantages
    ]
    for server_ns, address, client_ns in pairs:
        server = perimeter_lab.popen(
            server_ns, [sys.executable, "-c", listen, address], stdout=subprocess.PIPE
        )
        assert server.stdout is not None
        assert server.stdout.readline().strip() == b"ready"
        # When the other side connects, then it reaches the listener
        result = perimeter_lab.run(client_ns, [sys.executable, "-c", connect, address])
        assert result.stdout.strip() == address, result.stderr
        server.wait(5)
        server.stdout.close()


# -- life cycle -------------------------------------------------------------------------------


def test_teardown_leaves_no_namespace_process_or_file(lab_prerequisites: None) -> None:
    lab = PerimeterLab(("eu", "us"), control=True)
    with lab:
        assert set(lab.namespaces) <= _namespaces()
        assert lab.workdir is not None
        workdir = lab.workdir
        # a process of the caller's and one it forked (which the lab never saw)
        lab.popen(lab.scanner("us"), ["sh", "-c", "sleep 60 & wait"])
        assert lab.ctl is not None
        lab.popen(lab.ctl, ["sleep", "60"])
        time.sleep(0.1)
        pids = lab.alive_pids()
        assert len(pids) >= 4  # the servers, sh, its sleep, the other sleep
    assert not {n for n in _namespaces() if n.startswith(lab.prefix)}
    assert not [p for p in pids if Path(f"/proc/{p}").exists() and _state(p) != "Z"]
    assert not workdir.exists()
    assert lab.up_seconds is not None and lab.up_seconds < 10
    assert lab.down_seconds is not None and lab.down_seconds < 5


def test_the_sweep_deletes_only_namespaces_whose_creator_is_gone(lab_prerequisites: None) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    # A token of this run's own: two test runs at once must not add the same name.
    token = secrets.token_hex(3)
    stale = f"{NAMESPACE_PREFIX}{gone.pid}-{token}-router"
    alive = f"{NAMESPACE_PREFIX}1-{token}-router"  # PID 1 never dies
    for name in (stale, alive):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        deleted = sweep_stale_namespaces()
        assert alive not in deleted
        assert stale not in _namespaces()  # (another test session's sweep may have won)
        assert alive in _namespaces()
    finally:
        for name in (stale, alive):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    return next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
