"""The UPnP network-namespace lab itself, in each mode, with its real parts: the DSM site is
reachable from the scanner only through the UPnP forward, the NAS's mappings are in the
router's table, SSDP and the IGD answer on the WAN exactly in the ``wan-*`` modes, and
teardown leaves no namespace and no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exposure_audit.upnp.ssdp import SSDP_MULTICAST_ADDRESS

from .lab import PROBE, REPO, LabError, Mapping, UpnpLab, sweep_stale_namespaces

pytestmark = pytest.mark.netns

EXPECTED_MAPPINGS = (
    Mapping(5000, "TCP", "192.168.50.10", 5000, "DSM 5000"),
    Mapping(5001, "TCP", "192.168.50.10", 5001, "DSM 5001"),
    Mapping(6690, "TCP", "192.168.50.10", 6690, "Drive"),
)


def probe(lab: UpnpLab, namespace: str, *args: str, timeout: float = 30) -> object:
    """Run tests/netns/probe.py inside ``namespace``; its JSON answer."""
    result = lab.run(namespace, sys.executable, PROBE, *args, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def get(lab: UpnpLab, *urls: str, timeout: float = 3) -> list[dict[str, object]]:
    """GET each of ``urls`` from the scanner: ``status``, ``headers``, ``text`` or ``error``."""
    answers = probe(lab, lab.scanner, "get", str(timeout), *urls)
    assert isinstance(answers, list)
    return answers


# -- every mode ---------------------------------------------------------------------------


def test_the_scanner_gets_the_dsm43_site_through_the_forward(upnp_lab: UpnpLab) -> None:
    # Given any lab, when the scanner fetches DSM's pages on the router's WAN address
    login, info, tls_login = get(
        upnp_lab,
        "http://203.0.113.1:5000/webman/index.cgi",
        "http://203.0.113.1:5000/webman/info.cgi",
        "https://203.0.113.1:5001/webman/index.cgi",
    )
    # Then the NAS's DSM 4.3-3810 answers over HTTP and HTTPS
    assert login["status"] == 200
    assert "Synology&nbsp;DiskStation" in str(login["text"])
    assert "build=3810" in str(info["text"])
    assert tls_login["status"] == 200
    assert "Synology&nbsp;DiskStation" in str(tls_login["text"])


def test_the_nas_lists_exactly_its_three_mappings(upnp_lab: UpnpLab) -> None:
    assert upnp_lab.mappings() == EXPECTED_MAPPINGS


def test_only_forwarded_ports_are_open_and_the_drive_mapping_is_filtered_upstream(
    upnp_lab: UpnpLab,
) -> None:
    # When the scanner connects to the WAN address
    states = probe(upnp_lab, upnp_lab.scanner, "tcp", "203.0.113.1", "5000", "5001", "6690", "22")
    # Then DSM's mapped ports are open, the mapped 6690 looks filtered (the upstream drops
    # it), and everything not forwarded is dropped
    assert states == {"5000": "open", "5001": "open", "6690": "filtered", "22": "filtered"}


def test_the_scanner_cannot_reach_the_lan_directly(upnp_lab: UpnpLab) -> None:
    states = probe(upnp_lab, upnp_lab.scanner, "tcp", "192.168.50.10", "5000")
    assert states == {"5000": "filtered"}  # no route: the LAN is behind NAT


def test_the_nas_discovers_the_igd_by_ssdp_multicast(upnp_lab: UpnpLab) -> None:
    # upnp-inventory runs on the LAN and discovers the IGD this way
    replies = probe(upnp_lab, upnp_lab.nas, "msearch", SSDP_MULTICAST_ADDRESS, "1.5")
    assert isinstance(replies, list) and replies
    locations = {r["LOCATION"] for r in replies}
    assert locations == {"http://192.168.50.1:2189/rootDesc.xml"}


# -- UPnP from the WAN ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["upnp_lab_wan_exposed", "upnp_lab_wan_insecure"])
def test_ssdp_and_the_igd_answer_the_scanner_in_the_wan_modes(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    lab: UpnpLab = request.getfixturevalue(fixture)
    # When the scanner sends a unicast M-SEARCH to the WAN address
    replies = probe(lab, lab.scanner, "msearch", "203.0.113.1", "1.5")
    # Then MiniUPnPd answers, pointing at its description on the WAN address
    assert isinstance(replies, list) and replies
    assert all(r["from"] == "203.0.113.1:1900" for r in replies)
    assert all("MiniUPnPd/2.3.1" in r["SERVER"] for r in replies)
    assert {r["LOCATION"] for r in replies} == {"http://203.0.113.1:2189/rootDesc.xml"}
    assert "urn:schemas-upnp-org:device:InternetGatewayDevice:2" in {r["ST"] for r in replies}
    # And the description answers from outside
    (description,) = get(lab, lab.wan_igd_url)
    assert description["status"] == 200
    assert "InternetGatewayDevice" in str(description["text"])
    assert "Lab IGD router" in str(description["text"])


@pytest.mark.parametrize("fixture", ["upnp_lab_wan_exposed", "upnp_lab_wan_insecure"])
def test_the_mapping_table_is_readable_from_the_wan(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    lab: UpnpLab = request.getfixturevalue(fixture)
    from .lab import parse_upnpc_list

    listed = lab.run(lab.scanner, "upnpc", "-u", lab.wan_igd_url, "-l", timeout=15)
    assert parse_upnpc_list(listed.stdout) == EXPECTED_MAPPINGS


def test_lan_only_upnp_is_invisible_from_the_wan(upnp_lab_lan_only: UpnpLab) -> None:
    lab = upnp_lab_lan_only
    assert probe(lab, lab.scanner, "msearch", "203.0.113.1", "1.5") == []
    (description,) = get(lab, lab.wan_igd_url, timeout=1)
    assert "ConnectTimeout" in str(description["error"])  # dropped, not refused
    assert probe(lab, lab.scanner, "tcp", "203.0.113.1", "2189") == {"2189": "filtered"}


@pytest.mark.parametrize(("mode", "accepted"), [("wan-exposed", False), ("wan-insecure", True)])
def test_only_the_insecure_mode_lets_the_wan_add_a_mapping(mode: str, accepted: bool) -> None:
    # Given a lab of our own (the session's labs must keep their table)
    with UpnpLab(mode) as lab:
        # When the scanner asks the router to forward 8080 to the NAS's DSM
        added = lab.run(
            lab.scanner,
            "upnpc", "-u", lab.wan_igd_url,
            "-e", "proxy", "-a", "192.168.50.10", "5000", "8080", "TCP",
            timeout=15,
        )  # fmt: skip
        table = lab.mappings()
        # Then only secure_mode=no accepts it, and the DSM is then reachable on 8080
        assert (Mapping(8080, "TCP", "192.168.50.10", 5000, "proxy") in table) is accepted
        if accepted:
            assert "is redirected to internal" in added.stdout
            reach = probe(lab, lab.scanner, "tcp", "203.0.113.1", "8080")
            assert reach == {"8080": "open"}
        else:
            assert table == EXPECTED_MAPPINGS
            assert "failed with code" in added.stdout


# -- life cycle ----------------------------------------------------------------------------


def _namespaces() -> set[str]:
    listing = Path("/run/netns")
    return {p.name for p in listing.iterdir()} if listing.is_dir() else set()


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return f"{pid} (gone)"


def _running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("mode", ["lan-only", "wan-exposed", "wan-insecure"])
def test_teardown_leaves_no_namespace_process_or_file(mode: str) -> None:
    # Given a lab that is up
    lab = UpnpLab(mode)
    lab.start()
    try:
        pids = lab.alive_pids()
        workdir = lab.workdir
        assert len(pids) == 3  # STUN responder, DSM site, miniupnpd
        assert set(lab.namespaces) <= _namespaces()
        assert lab.up_seconds is not None and lab.up_seconds < 5
    finally:
        # When it is torn down
        lab.stop()
    # Then nothing of it is left
    assert not {n for n in _namespaces() if n.startswith(lab.prefix)}
    assert not [pid for pid in pids if _running(pid)]
    assert workdir is not None and not workdir.exists()
    # Bounded: a daemon slow to honour SIGTERM (miniupnpd, when the signal lands just before
    # its select(): it waits for its next timer) is killed after its 3 s grace, so teardown
    # ends within two graces and the rest
    assert lab.down_seconds is not None and lab.down_seconds < 7
    lab.stop()  # and stopping again is harmless


def test_a_lab_whose_names_are_taken_fails_without_touching_the_other(
    upnp_lab_lan_only: UpnpLab,
) -> None:
    # Given a running lab, when a second one tries the same namespace names
    intruder = UpnpLab("lan-only", prefix=upnp_lab_lan_only.prefix)
    with pytest.raises(LabError, match="netns add"):
        intruder.start()
    # Then the first lab still has its namespaces, processes and mappings
    assert set(upnp_lab_lan_only.namespaces) <= _namespaces()
    assert len(upnp_lab_lan_only.alive_pids()) == 3
    assert upnp_lab_lan_only.mappings() == EXPECTED_MAPPINGS


def test_labs_are_isolated_from_each_other(upnp_lab_lan_only: UpnpLab) -> None:
    # Two labs with the same addresses: a mapping in one never shows in the other.
    with UpnpLab("lan-only") as other:
        added = other.upnpc("-e", "only here", "-a", "192.168.50.10", "5000", "2222", "TCP")
        assert added.returncode == 0, added.stdout
        assert Mapping(2222, "TCP", "192.168.50.10", 5000, "only here") in other.mappings()
        assert upnp_lab_lan_only.mappings() == EXPECTED_MAPPINGS


def test_the_lab_processes_run_inside_the_lab_namespaces(upnp_lab: UpnpLab) -> None:
    own = {
        name: os.readlink(f"/proc/{process.pid}/ns/net")
        for name, process in upnp_lab.processes.items()
    }
    with upnp_lab.netns(upnp_lab.router):
        router_ns = os.readlink("/proc/thread-self/ns/net")
    assert own["miniupnpd"] == router_ns
    assert len(set(own.values())) == 3  # scanner, nas, router: three different namespaces
    assert os.readlink("/proc/thread-self/ns/net") not in own.values()


CRASHING_TEST_PROCESS = """
import os, sys
sys.path.insert(0, os.getcwd())
from tests.netns.lab import UpnpLab
lab = UpnpLab("lan-only")
lab.start()
print(lab.prefix, lab.workdir, *lab.alive_pids(), flush=True)
os._exit(9)  # dies without tearing down
"""


def test_a_crashed_test_process_leaves_no_daemon_and_the_sweep_removes_the_rest() -> None:
    # Given a process that built a lab and died without tearing it down
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_TEST_PROCESS],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert crashed.returncode == 9, crashed.stderr
    prefix, workdir, *pids = crashed.stdout.split()
    # Then its daemons die with it (the kernel SIGKILLs them when their parent dies)
    deadline = time.monotonic() + 5
    while [p for p in pids if _running(int(p))] and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in pids if _running(int(p))]
    assert not left, [_command(int(p)) for p in left]
    # And the sweep the fixtures run first removes its namespaces and work directory
    left_behind = {n for n in _namespaces() if n.startswith(prefix)}
    assert left_behind
    swept = sweep_stale_namespaces()
    # (a test run going on at the same time may sweep some of them first)
    assert left_behind - set(swept) <= left_behind - _namespaces()
    assert not {n for n in _namespaces() if n.startswith(prefix)}
    assert not Path(workdir).exists()
