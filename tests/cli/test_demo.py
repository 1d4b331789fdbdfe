"""``exposure-audit demo``: starts the lab, audits it, prints a graded report, stops the lab."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exposure_audit.lab import Lab
from exposure_audit.lab.catalog import start_demo_lab

from .runner import run_cli


def test_the_demo_prints_a_graded_report_of_the_lab() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exposure_audit", "demo", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["summary"]["grade"] == "F"
    grades = {h["address"]: h["grade"] for h in doc["hosts"]}
    assert grades["127.77.0.10"] == "F"
    assert grades["127.77.0.70"] == "A"
    # The hung host's 5001 takes connections and never answers: unidentified, never A.
    hung = next(h for h in doc["hosts"] if h["address"] == "127.77.0.80")
    assert [(f["rule"], f["port"]) for f in hung["findings"]] == [("UNK001", 5001)]
    assert hung["grade"] == "C"
    # The catalog consoles: QNAP QTS over plain HTTP, Proxmox VE over TLS on 8006.
    qnap = next(h for h in doc["hosts"] if h["address"] == "127.77.0.90")
    assert [(f["rule"], f["port"]) for f in qnap["findings"]] == [("MGMT001", 8080)]
    proxmox = next(h for h in doc["hosts"] if h["address"] == "127.77.0.91")
    assert [(f["rule"], f["port"]) for f in proxmox["findings"]] == [("MGMT002", 8006)]
    # The lab is stopped afterwards: its ports are free again (TIME_WAIT aside).
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.77.0.10", 5000))
        s.listen(1)


# -- demo anywhere: a busy default block, --network, two runs at once ------------------------

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_demo_lab(*args: str) -> Iterator[dict[str, object]]:
    """``python -m exposure_audit.lab demo ARGS`` (what a developer's running demo holds: its
    /24 and [::1]:5001) until the block ends; yields its description."""
    lab = subprocess.Popen(
        [sys.executable, "-m", "exposure_audit.lab", "demo", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert lab.stdout is not None
        described = json.loads(lab.stdout.readline() or "null")
        assert described is not None and lab.stdout.readline() == "ready\n", lab.stderr
        yield described
    finally:
        assert lab.stdin is not None
        lab.stdin.close()  # end of input stops the lab
        lab.wait(30)
        assert lab.stdout is not None and lab.stderr is not None
        lab.stdout.close()
        lab.stderr.close()


def _demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "exposure_audit", "demo", "--format", "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _block(doc: dict[str, Any]) -> ipaddress.IPv4Network:
    """The /24 every IPv4 host of a demo report lies in (asserting that there is one)."""
    blocks = {
        ipaddress.ip_network(f"{h['address']}/24", strict=False)
        for h in doc["hosts"]
        if h["family"] == "ipv4"
    }
    assert len(blocks) == 1, blocks
    (block,) = blocks
    assert isinstance(block, ipaddress.IPv4Network)
    return block


def test_two_demos_run_next_to_a_running_demo_each_on_a_free_block_of_its_own() -> None:
    # Given a demo lab holding the default block 127.77.0.0/24 and [::1]:5001
    with running_demo_lab() as held:
        assert {h["address"] for h in held["hosts"]} >= {"127.77.0.10"}  # type: ignore[union-attr]
        # When two more demos start at the same time, one picking its block, one told where
        picked, told = _demo(), _demo("--network", "127.77.9.0/24")
        outputs = [p.communicate(timeout=240) for p in (picked, told)]
        for process, (_, err) in zip((picked, told), outputs, strict=True):
            assert process.returncode == 0, err
        docs = [json.loads(out) for out, _ in outputs]
        # Then each audited its own block, never the one in use
        assert str(_block(docs[0])) == "127.77.1.0/24"
        assert str(_block(docs[1])) == "127.77.9.0/24"
        assert "127.77.0.0/24 is busy" in outputs[0][1] and "using 127.77.1.0/24" in outputs[0][1]
        assert "[::1]:5001 is taken" in outputs[0][1]
        for doc in docs:
            block = _block(doc)
            # the names of the demo's zone resolve into the chosen block
            named = {n: h["address"] for h in doc["hosts"] for n in h["hostnames"]}
            assert named["nas.example.net"] == str(block.network_address + 10)
            assert named["dsm7.example.net"] == str(block.network_address + 20)
            assert "::1" not in {h["address"] for h in doc["hosts"]}
            grades = {h["address"]: h["grade"] for h in doc["hosts"]}
            assert grades[str(block.network_address + 10)] == "F"
            assert grades[str(block.network_address + 70)] == "A"
        # And the running lab kept its ports throughout
        with socket.create_connection(("127.77.0.10", 5000), timeout=5):
            pass


def test_the_demo_refuses_a_network_that_is_not_a_loopback_24() -> None:
    for network in ("10.0.0.0/24", "127.77.0.0/16", "nonsense"):
        result = run_cli("demo", "--network", network)
        assert result.returncode == 2, (network, result.stderr)
        assert "--network" in result.stderr and "Traceback" not in result.stderr
        assert result.stdout == ""


def test_a_busy_network_given_with_network_fails_before_anything_is_scanned() -> None:
    with running_demo_lab("--network", "127.77.5.0/24"):
        result = run_cli("demo", "--network", "127.77.5.0/24")
    assert result.returncode == 3, result.stderr
    assert "the demo lab could not start" in result.stderr
    assert "127.77.5.10:5000" in result.stderr and "Address already in use" in result.stderr
    assert result.stdout == ""


@contextlib.contextmanager
def _stopping(lab: Lab) -> Iterator[Lab]:
    """A started lab, stopped at the end of the block."""
    try:
        yield lab
    finally:
        lab.stop()


def test_the_demo_lab_takes_the_first_free_block_and_keeps_ipv6_when_it_is_free() -> None:
    # Given something else listening on one of the demo's ports in the default block and in
    # the first fallback (not another demo: [::1]:5001 stays free)
    with contextlib.ExitStack() as stack:
        for address in ("127.77.0.40", "127.77.1.60"):
            squatter = stack.enter_context(socket.socket())
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT
            squatter.bind((address, 445 if address.endswith(".60") else 80))
            squatter.listen(1)
        lab, notes = start_demo_lab()
        with _stopping(lab):
            assert lab.host("syno43").address == "127.77.2.10"
            assert lab.host("syno72").extra_addresses == ("::1",)
            assert lab.zone["syno43.example.net"] == (("A", "127.77.2.10"),)
            assert notes == (
                "127.77.0.0/24 is busy (lab cannot listen on 127.77.0.40:80/tcp (web: http "
                "nginx): Address already in use): using 127.77.2.0/24",
            )
    # Without a squatter it stays where it always was, and says nothing
    lab, notes = start_demo_lab()
    with _stopping(lab):
        assert lab.host("syno43").address == "127.77.0.10" and notes == ()


def test_a_second_test_run_passes_next_to_this_one_and_a_running_demo() -> None:
    # Given this run (as root: in its own network namespace) holding the demo's default block
    assert os.geteuid() == 0, "a test run gets its own loopback only as root (CI is root)"
    with running_demo_lab():
        # When another test run starts and runs the demo test, which expects 127.77.0.0/24
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/cli/test_demo.py::test_the_demo_prints_a_graded_report_of_the_lab",
            ],
            capture_output=True,
            text=True,
            timeout=280,
            cwd=REPO,
            check=False,
        )
    # Then it passes: its loopback is its own
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert "1 passed" in second.stdout
