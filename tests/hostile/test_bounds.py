"""The bounds are flags with documented defaults, and the body cap counts inflated bytes."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from exposure_audit.probes.http import (
    HttpProbeSettings,
    PortFingerprint,
    fingerprint_port,
    make_client,
)

from .corpus import CASES, Case, Corpus, answer

DOC = Path(__file__).resolve().parents[2] / "docs" / "hostile.md"
PADDED = "127.90.3.1"  # before the corpus shifts it
PADDING = b"<!--" + b"x" * 8192 + b"-->"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exposure_audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_defaults_are_shown_by_a_dry_run() -> None:
    done = cli("scan", "198.51.100.7", "--allow-private", "--dry-run", "--no-history")
    assert done.returncode == 0, done.stderr
    assert "bounds: host-timeout 60 s, request-timeout 10 s, max-body 1048576 bytes" in done.stdout


def test_the_flags_set_the_bounds() -> None:
    done = cli(
        "scan",
        "198.51.100.7",
        "--allow-private",
        "--dry-run",
        "--no-history",
        "--host-timeout",
        "8",
        "--request-timeout",
        "2.5",
        "--max-body",
        "4096",
    )
    assert done.returncode == 0, done.stderr
    assert "bounds: host-timeout 8 s, request-timeout 2.5 s, max-body 4096 bytes" in done.stdout


@pytest.mark.parametrize(
    ("value", "message"),
    [("10", "--max-body must be at least 1024 bytes"), ("lots", "--max-body: invalid int")],
)
def test_a_bad_max_body_is_a_usage_error(value: str, message: str) -> None:
    done = cli("scan", "198.51.100.7", "--allow-private", "--dry-run", "--max-body", value)
    assert done.returncode == 2
    assert message in done.stderr


def _padded(compress: bool) -> bytes:
    body = PADDING + b"<title>after the padding</title>"
    encoding = b""
    if compress:
        body, encoding = gzip.compress(body), b"Content-Encoding: gzip\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), encoding) + body


def _probe(server: Corpus, name: str, cap: int) -> PortFingerprint:
    settings = HttpProbeSettings(request_timeout=2.0, identify_timeout=2.0, max_body_bytes=cap)

    async def run() -> PortFingerprint:
        async with make_client(settings) as client:
            return await fingerprint_port(
                client, server.address(name), server.port(name), settings=settings
            )

    return asyncio.run(run())


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_max_body_caps_what_is_read_counting_inflated_bytes(compress: bool) -> None:
    name = "padded-gzip" if compress else "padded"
    case = Case(name, PADDED, answer(_padded(compress)), "a title after 8 KiB")
    with Corpus([], extra=[case]) as server:
        small = _probe(server, name, 4096)
        large = _probe(server, name, 16384)
    # gzip makes the 8 KiB of padding a few dozen bytes on the wire: the cap still applies.
    assert small.http is not None and small.http.title is None
    assert large.http is not None and large.http.title == "after the padding"


def test_docs_name_every_bound_with_its_flag_and_default_and_every_case() -> None:
    text = DOC.read_text()
    for flag, default in (
        ("--request-timeout", "10 s"),
        ("--host-timeout", "60 s"),
        ("--max-body", "1 MiB"),
    ):
        assert flag in text and default in text, flag
    assert "400 MB" in text
    for case in CASES:
        assert f"`{case.name}`" in text, case.name
