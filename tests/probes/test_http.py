"""The HTTP/TLS probe against real servers on loopback: the DSM positives and the negative
corpus of the lab, and hostile servers (tarpits, huge and compressed bodies, redirects away)."""

from __future__ import annotations

import asyncio
import resource
import ssl
import time
import zlib
from collections.abc import Iterator

import pytest
import trustme

from exposure_audit.lab import Lab, corpus_lab
from exposure_audit.probes.http import (
    HttpProbeSettings,
    PortFingerprint,
    fingerprint_port,
    make_client,
)

from ..servers import Server, read_request, serve

FAST = HttpProbeSettings(request_timeout=3.0, identify_timeout=2.0)


@pytest.fixture(scope="module")
def corpus() -> Iterator[Lab]:
    with corpus_lab() as lab:
        yield lab


def probe(
    address: str, port: int, hostname: str | None = None, settings: HttpProbeSettings = FAST
) -> PortFingerprint:
    async def run() -> PortFingerprint:
        async with make_client(settings) as client:
            return await fingerprint_port(
                client, address, port, hostname=hostname, settings=settings
            )

    return asyncio.run(run())


def test_dsm_is_found_on_every_positive_with_its_version(corpus: Lab) -> None:
    for host in corpus.hosts:
        if host.expect_dsm is None:
            continue
        service = host.services[0]
        result = probe(host.address, service.port)
        assert result.http is not None and result.http.dsm is not None, host.name
        dsm = result.http.dsm
        assert f"{dsm.version}-{dsm.build}" == host.expect_dsm
        assert len(dsm.markers) >= 2
        assert result.http.scheme == service.kind


def test_no_negative_of_the_corpus_passes_for_dsm(corpus: Lab) -> None:
    for host in corpus.hosts:
        if host.expect_dsm is not None:
            continue
        result = probe(host.address, host.services[0].port)
        assert result.http is not None, host.name
        assert result.http.dsm is None, host.name
    srm = corpus.host("neg-srm")
    srm_result = probe(srm.address, 5000)
    assert srm_result.http is not None and srm_result.http.srm


def test_a_dsm_72_over_tls_shows_its_default_certificate(corpus: Lab) -> None:
    result = probe(corpus.host("pos-dsm72").address, 5001)
    assert result.tls is not None
    assert result.tls.synology_default
    assert "Synology Inc. CA" in result.tls.issuer
    assert result.http is not None and result.http.dsm is not None
    assert result.http.dsm.update == 3


def test_a_port_without_http_or_tls_gives_no_observation() -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        writer.write(b"SSH-2.0-OpenSSH_8.2p1\r\n")
        await writer.drain()

    with serve(banner) as server:
        start = time.monotonic()
        result = probe(server.host, server.port)
    assert result.http is None and result.tls is None
    assert time.monotonic() - start < 2


def test_a_tarpit_costs_at_most_the_identify_timeout() -> None:
    async def tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await asyncio.sleep(60)

    with serve(tarpit) as server:
        start = time.monotonic()
        result = probe(server.host, server.port)
        elapsed = time.monotonic() - start
    assert result.http is None
    assert elapsed < 2 * FAST.identify_timeout + 1
    assert "HTTP" in result.attempt.reason


def _gzip_bomb() -> bytes:
    """64 MiB of zeros after a title, gzip-compressed chunk by chunk (about 64 KiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(b"<title>x</title>")]
    zeros = b"\0" * (1 << 20)
    parts += [packer.compress(zeros) for _ in range(64)]
    return b"".join([*parts, packer.flush()])


_GZIP_BOMB = _gzip_bomb()


def _huge(body_chunks: int, gzip_it: bool = False):  # type: ignore[no-untyped-def]
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await read_request(reader, s)
        if gzip_it:
            payload = _GZIP_BOMB
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(payload)}\r\n"
            )
            writer.write(head.encode() + b"Content-Type: text/html\r\n\r\n" + payload)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<title>x</title>")
            for _ in range(body_chunks):
                writer.write(b"A" * 65536)
                await writer.drain()
        await writer.drain()

    return handler


@pytest.mark.parametrize("gzip_it", [False, True])
def test_huge_and_compressed_bodies_are_read_with_a_cap(gzip_it: bool) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with serve(_huge(body_chunks=1600, gzip_it=gzip_it)) as server:  # 100 MiB plain
        result = probe(server.host, server.port)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.http is not None and result.http.title == "x"
    assert grown_mib < 64  # a 1 MiB cap, not 64-100 MiB in memory


def test_redirects_away_from_the_target_are_recorded_not_followed() -> None:
    async def away(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await read_request(reader, s)
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        await writer.drain()

    with serve(away) as server:
        result = probe(server.host, server.port)
    assert result.http is not None
    assert [r.location for r in result.http.redirects] == [
        "http://169.254.169.254/latest/meta-data/"
    ]
    # Only our own GETs reached this server; nothing else was requested anywhere.
    assert all(r.startswith(b"GET ") for r in server.requests)


def test_a_redirect_loop_on_the_same_port_stops() -> None:
    async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await read_request(reader, s)
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    with serve(loop) as server:
        result = probe(server.host, server.port)
    assert result.http is not None and result.http.status_code == 302
    assert len(server.requests) <= 2 + FAST.max_redirects + 2


def test_host_header_and_sni_carry_the_host_name() -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("nas.example.net").configure_cert(context)

    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await read_request(reader, s)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n<title>hi</title>\r\n")
        await writer.drain()

    with serve(page, tls=context) as server:
        result = probe(server.host, server.port, hostname="nas.example.net")
    assert result.http is not None and result.http.scheme == "https"
    assert "nas.example.net" in server.sni
    assert any(
        f"host: nas.example.net:{server.port}".encode() in r.lower() for r in server.requests
    )
    assert result.tls is not None and "nas.example.net" in result.tls.subject_alt_names


def test_every_request_is_a_read_only_get(corpus: Lab) -> None:
    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await read_request(reader, s)
        # Pretend to be DSM so that every DSM endpoint is asked for too.
        body = (
            b"<title>x&nbsp;-&nbsp;Synology&nbsp;NAS</title>"
            b"<noscript><div class='syno-no-script'>js</div></noscript>"
        )
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    with serve(record) as server:
        probe(server.host, server.port)
    methods = {r.split(b" ", 1)[0] for r in server.requests}
    assert methods == {b"GET"}
    paths = {r.split(b" ")[1].decode() for r in server.requests}
    assert "/synohdpack/synohdpack.version" in paths
    assert not any("login" in p or "auth.cgi" in p for p in paths)


def test_a_login_form_is_seen_and_a_page_of_half_open_inputs_is_not_one() -> None:
    def page(body: bytes):  # type: ignore[no-untyped-def]
        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
        ) -> None:
            await read_request(reader, s)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}"
            writer.write(head.encode() + b"\r\n\r\n" + body)
            await writer.drain()

        return handle

    with serve(page(b"<form><input type='password' name=p></form>")) as server:
        result = probe(server.host, server.port)
    assert result.http is not None
    assert result.http.login_prompt == "a password field in the page at /"
    # A hostile megabyte of unclosed <input tags: scanned within its bound, no prompt
    with serve(page(b"<input " * 150_000)) as server:
        started = time.monotonic()
        result = probe(server.host, server.port)
    assert result.http is not None and result.http.login_prompt is None
    assert time.monotonic() - started < FAST.request_timeout * 2
