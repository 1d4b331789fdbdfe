"""VULN001 end to end: a real loopback SSH-like server, the real CLI, the real nmap -sV.

Two servers on this suite's own loopback block (127.66.0.0/24) greet exactly as Debian
bookworm's sshd does, one before the regreSSHion fix (deb12u2) and one with it (deb12u3).
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from tests.cli.runner import run_cli
from tests.servers import Server, serve

pytestmark = pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed")

AFFECTED = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2\r\n"
FIXED = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


def _greeter(banner: bytes):  # type: ignore[no-untyped-def]
    async def greet(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        # As sshd: the identification line first, then read the client's and hang up.
        writer.write(banner)
        await writer.drain()
        try:
            async with asyncio.timeout(5):
                await reader.read(4096)
        except TimeoutError:
            pass

    return greet


def _scan(address: str, port: int) -> dict[str, object]:
    result = run_cli(
        "scan",
        "--allow-private",
        "--no-udp",
        "-p",
        str(port),
        address,
        "--format",
        "json",
        "--fail-on",
        "never",
    )
    assert result.returncode == 0, result.stderr
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def _findings(doc: dict[str, object]) -> list[dict[str, object]]:
    hosts = doc["hosts"]
    assert isinstance(hosts, list) and len(hosts) == 1
    findings = hosts[0]["findings"]
    assert isinstance(findings, list)
    return findings


def test_a_debian_sshd_before_the_regresshion_fix_is_vuln001() -> None:
    with serve(_greeter(AFFECTED), host="127.66.0.1") as server:
        doc = _scan(server.host, server.port)
    vuln = [f for f in _findings(doc) if f["rule"] == "VULN001"]
    assert len(vuln) == 1, _findings(doc)
    (finding,) = vuln
    assert finding["port"] == server.port
    assert finding["severity"] == "high"  # certainly affected; CVE-2024-6387 is not in KEV
    evidence = str(finding["evidence"])
    assert "CVE-2024-6387" in evidence
    assert "9.2p1 Debian 2+deb12u2" in evidence
    assert "nmap -sV" in evidence and "1:9.2p1-2+deb12u3" in evidence
    # Every CPE -sV printed for the port, OpenSSH's first (python-nmap keeps only the last)
    (service,) = doc["hosts"][0]["services"]  # type: ignore[index]
    assert service["cpe"][:2] == ["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]


def test_the_same_sshd_with_the_fixed_package_is_not_vuln001() -> None:
    with serve(_greeter(FIXED), host="127.66.0.2") as server:
        doc = _scan(server.host, server.port)
    rules = {f["rule"] for f in _findings(doc)}
    assert "VULN001" not in rules
    assert "SVC002" in rules  # the SSH port itself is still reported
