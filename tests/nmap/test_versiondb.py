"""The shorter first-banner wait for -sV: only nmap's NULL probe changes, and a service that
waits to be asked is identified the same with it as with nmap's own file."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path

import pytest

from exposure_audit.nmap import versiondb as nmap_versiondb
from exposure_audit.nmap.scanner import NmapScanner, VersionInfo
from exposure_audit.nmap.versiondb import NULL_PROBE_WAIT_MS, quick_banner_versiondb

NMAP = shutil.which("nmap") or "nmap"
ADDRESS = "127.66.0.2"


def test_only_the_null_probes_waits_change_and_the_file_is_private() -> None:
    path = quick_banner_versiondb(NMAP)
    assert path is not None
    assert quick_banner_versiondb(NMAP) == path  # made once per process
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    derived = Path(path).read_text(errors="surrogateescape")
    original = Path("/usr/share/nmap/nmap-service-probes").read_text(errors="surrogateescape")
    null = derived.index("Probe TCP NULL q||")
    assert derived[null:].splitlines()[1:3] == [
        f"totalwaitms {NULL_PROBE_WAIT_MS}",
        f"tcpwrappedms {NULL_PROBE_WAIT_MS * 3 // 4}",
    ]
    # Every other probe, match and directive is nmap's, in nmap's order.
    after = derived.index("\nProbe ", null + 1)
    assert (
        derived[after:] == original[original.index("\nProbe ", original.index("Probe TCP NULL")) :]
    )
    assert derived[:null] == original[: original.index("Probe TCP NULL q||")]


def test_a_probe_file_that_does_not_look_like_nmaps_leaves_nmaps_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "nmap-service-probes").write_text("Probe TCP NULL q||\ntotalwaitms oops\n")
    monkeypatch.setenv("NMAPDIR", str(tmp_path))
    assert nmap_versiondb._derive(NMAP, 2000) is None
    (tmp_path / "nmap-service-probes").write_text(
        "Probe TCP NULL q||\ntotalwaitms 1000\ntcpwrappedms 500\n"
    )
    assert nmap_versiondb._derive(NMAP, 2000) is None  # already shorter: nothing to gain


def test_a_service_that_waits_to_be_asked_is_identified_the_same() -> None:
    # An FTP server that greets only once the client has said something: nmap's NULL probe
    # hears nothing, its next probe gets the greeting, matched by the NULL probe's patterns.
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await reader.read(100):
                writer.write(b"220 ProFTPD 1.3.5 Server (Debian) [::ffff:127.0.0.1]\r\n")
                await writer.drain()
                await reader.read(100)
        except OSError:
            pass
        finally:
            writer.close()

    async def both() -> list[VersionInfo]:
        server = await asyncio.start_server(handle, ADDRESS, 0)
        port = server.sockets[0].getsockname()[1]
        try:
            answers = []
            for quick in (True, False):
                scanner = NmapScanner(quick_banners=quick)
                found, cut = await scanner.versions({ADDRESS: [port]}, host_timeout=60)
                assert not cut
                answers.append(found[(ADDRESS, port)])
            return answers
        finally:
            server.close()
            await server.wait_closed()

    quick, nmaps_own = asyncio.run(both())
    assert quick == nmaps_own
    assert (quick.service, quick.product, quick.version) == ("ftp", "ProFTPD", "1.3.5")
