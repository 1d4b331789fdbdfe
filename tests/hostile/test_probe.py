"""The HTTP/TLS probe against every server of the hostile corpus, all at once (one client, as in
a scan): each case ends within its bound with the observation it must give, no request leaves
the target, and the memory held for bodies stays within the cap and the budget."""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc
from dataclasses import dataclass

import pytest

from exposure_audit.probes import http as http_probe
from exposure_audit.probes.http import (
    HttpProbeSettings,
    PortFingerprint,
    fingerprint_port,
    make_client,
    parse_certificate,
)
from exposure_audit.text import printable

from .certs import odd_certificate
from .corpus import CASES, Corpus

FAST = HttpProbeSettings(request_timeout=1.0, identify_timeout=1.0)
# One identify GET (TLS and plain at once), one more GET; each ends within twice its timeout.
SLOW_BOUND = 2 * FAST.identify_timeout + 2 * FAST.request_timeout + 1.5
IDENTIFY_BOUND = 2 * FAST.identify_timeout + 1.0
PROBED = [c.name for c in CASES if c.name not in ("everything-open", "witness")]


@dataclass(frozen=True)
class Probed:
    result: PortFingerprint
    seconds: float


async def _probe_all(
    corpus: Corpus, names: list[str], settings: HttpProbeSettings
) -> dict[str, Probed]:
    async with make_client(settings) as client:

        async def one(name: str) -> tuple[str, Probed]:
            started = time.monotonic()
            result = await fingerprint_port(
                client, corpus.address(name), corpus.port(name), settings=settings
            )
            return name, Probed(result, time.monotonic() - started)

        results = dict(await asyncio.gather(*(one(n) for n in names)))
        # Every session gave its share of the memory budget back.
        assert http_probe._BUDGETS[client].held == 0
        return results


@pytest.fixture(scope="module")
def probed(corpus: Corpus) -> dict[str, Probed]:
    return asyncio.run(_probe_all(corpus, PROBED, FAST))


def _http(probed: dict[str, Probed], name: str) -> tuple[int, str | None, str | None]:
    http = probed[name].result.http
    assert http is not None, probed[name].result.attempt.reason
    return http.status_code, http.server, http.title


def test_the_whole_corpus_is_probed_at_once_within_the_slowest_bound(
    probed: dict[str, Probed],
) -> None:
    assert set(probed) == set(PROBED)
    slowest = max(p.seconds for p in probed.values())
    assert slowest < SLOW_BOUND, {n: round(p.seconds, 2) for n, p in probed.items()}


@pytest.mark.parametrize("name", ["tarpit", "drip-head", "tls-stall"])
def test_silent_servers_cost_at_most_the_identify_timeout_and_give_no_http(
    probed: dict[str, Probed], name: str
) -> None:
    case = probed[name]
    assert case.result.http is None and case.result.tls is None
    assert case.result.attempt.status.value == "unidentified"
    # No byte within the identify wait (the drip's first one comes later): "silent", so -sV
    # is spared the port, and the reason says how long it waited.
    assert case.result.silent
    assert case.result.attempt.reason.startswith("no answer within 1 s")
    assert case.seconds < IDENTIFY_BOUND


def test_a_body_dripping_slower_than_the_deadline_keeps_status_and_server(
    probed: dict[str, Probed],
) -> None:
    status, server, _ = _http(probed, "drip-body")
    assert (status, server) == (200, "dripping-body")
    assert (
        "bodies cut short: the request deadline passed" in probed["drip-body"].result.attempt.reason
    )
    assert probed["drip-body"].seconds < SLOW_BOUND


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("endless", "endless"),
        ("huge-length", "huge length"),
        ("gzip-bomb", "bomb"),
        ("deflate-bomb", "bomb"),
        ("zlib-bomb", "bomb"),
        ("charset-codec", "base64"),
        ("fast", "fast"),
    ],
)
def test_huge_lying_and_compressed_bodies_still_give_their_title(
    probed: dict[str, Probed], name: str, title: str
) -> None:
    assert _http(probed, name)[2] == title


def test_a_broken_gzip_stream_is_noted_not_a_crash(probed: dict[str, Probed]) -> None:
    assert _http(probed, "bad-gzip")[0] == 200
    assert "the compressed body is broken" in probed["bad-gzip"].result.attempt.reason


def test_a_body_shorter_than_its_content_length_is_noted(probed: dict[str, Probed]) -> None:
    assert "the body broke off" in probed["huge-length"].result.attempt.reason


@pytest.mark.parametrize(
    ("name", "location"),
    [
        ("redirect-metadata", "http://169.254.169.254/latest/meta-data/"),
        ("redirect-garbage", "http://[::1"),
    ],
)
def test_redirects_off_the_target_are_recorded_not_followed(
    probed: dict[str, Probed], name: str, location: str
) -> None:
    http = probed[name].result.http
    assert http is not None
    assert [r.location for r in http.redirects] == [location]


def test_redirects_to_another_host_or_port_never_reach_it(
    probed: dict[str, Probed], corpus: Corpus
) -> None:
    witness = corpus.address("witness")
    for name, target in (
        ("redirect-host", f"http://{witness}:{corpus.port('witness')}/"),
        ("redirect-port", f"http://{corpus.address('redirect-port')}:{corpus.port('witness', 1)}/"),
    ):
        http = probed[name].result.http
        assert http is not None and [r.location for r in http.redirects] == [target]
    assert corpus.hits("witness").connections == 0


def test_a_redirect_loop_stops_and_an_unusable_same_origin_redirect_is_dropped(
    probed: dict[str, Probed], corpus: Corpus
) -> None:
    assert _http(probed, "redirect-loop")[0] == 302
    # identify (TLS and plain), the redirects, the legacy DSM login page
    assert len(corpus.hits("redirect-loop").requests) <= 2 + FAST.max_redirects + 1
    long = probed["redirect-long"].result.http
    assert long is not None and long.status_code == 302 and long.redirects == ()


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("garbage-status", "illegal status line"),
        ("no-colon", "illegal header line"),
        ("many-headers", "RemoteProtocolError"),
        ("nul-header", "illegal header line"),
    ],
)
def test_malformed_http_is_no_http_and_says_why(
    probed: dict[str, Probed], name: str, error: str
) -> None:
    result = probed[name].result
    assert result.http is None
    assert error in result.attempt.reason
    assert probed[name].seconds < IDENTIFY_BOUND


def test_a_tls_handshake_reset_midway_fails_fast(probed: dict[str, Probed]) -> None:
    assert probed["tls-reset"].result.http is None
    assert probed["tls-reset"].seconds < IDENTIFY_BOUND


@pytest.mark.parametrize("name", ["odd-cert", "refused-cert"])
def test_odd_certificates_are_read_field_by_field(probed: dict[str, Probed], name: str) -> None:
    result = probed[name].result
    assert result.http is not None and result.http.scheme == "https"
    cert = result.tls
    assert cert is not None
    assert (cert.not_before.year, cert.not_after.year) == (2090, 9999)
    assert cert.subject.startswith("CN=\ufffd") and len(cert.subject) <= 1024
    assert cert.self_signed and len(cert.sha256) == 64
    assert "\x1b" not in printable(cert.subject) and "\x00" not in printable(cert.subject)


def test_a_san_with_an_escape_sequence_is_kept_verbatim_for_the_renderers(
    probed: dict[str, Probed],
) -> None:
    cert = probed["odd-cert"].result.tls
    assert cert is not None
    # The second SAN is not ASCII: the extension does not decode, and only it is lost.
    assert cert.subject_alt_names in ((), ("evil\x1b[31m.example",))
    assert printable("evil\x1b[31m.example") == "evil\\x1b[31m.example"


def test_certificate_parsing_never_raises_on_truncated_or_flipped_der() -> None:
    der, _ = odd_certificate(0x14)
    for cut in range(0, len(der), 401):
        parse_certificate(der[:cut])
    for i in range(0, len(der), 211):
        flipped = bytearray(der)
        flipped[i] ^= 0xFF
        parse_certificate(bytes(flipped))


def test_hostile_text_reaches_the_observation_unchanged_for_the_renderers_to_escape(
    probed: dict[str, Probed],
) -> None:
    _, server, title = _http(probed, "inject-http")
    assert title is not None and server is not None
    assert title.startswith("=HYPERLINK(") and "\x1b[31m" in title and "<script>" in title
    # A header cannot carry an ESC byte; with invalid UTF-8 in it httpx reads it as Latin-1,
    # so the bidi override arrives as C1 controls (U+0080...).
    assert server.startswith("=HYPERLINK(") and "<script>" in server and "\x80" in server
    assert not any(0x80 <= ord(c) < 0xA0 for c in printable(server))
    _, c1_server, _ = _http(probed, "inject-c1")
    assert c1_server is not None and "\x9b" in c1_server


def test_every_request_the_probe_sent_was_a_get(probed: dict[str, Probed], corpus: Corpus) -> None:
    for case in CASES:
        for head in corpus.hits(case.name).requests:
            if head.startswith(b"\x16\x03"):
                continue  # a TLS ClientHello read by a server that does not speak TLS
            assert head.split(b" ", 1)[0] == b"GET", (case.name, head[:60])


def test_bombs_and_endless_bodies_hold_about_the_cap_in_memory(corpus: Corpus) -> None:
    names = ["gzip-bomb", "deflate-bomb", "zlib-bomb", "endless", "huge-length"]
    tracemalloc.start()
    try:
        asyncio.run(_probe_all(corpus, names, FAST))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Five bodies of at most 1 MiB each (and their text), not the gigabytes they inflate to.
    assert peak < 5 * 6 * FAST.max_body_bytes, peak


def test_the_memory_budget_cuts_bodies_past_it_and_says_so(corpus: Corpus) -> None:
    # Each endless or bomb body wants 4 MiB of budget (4 units a byte); 6 MiB admit one.
    tight = HttpProbeSettings(
        request_timeout=1.0, identify_timeout=1.0, memory_budget_bytes=6 << 20
    )
    names = ["gzip-bomb", "deflate-bomb", "zlib-bomb", "endless"]
    results = asyncio.run(_probe_all(corpus, names, tight))
    reasons = [results[n].result.attempt.reason for n in names]
    assert any("memory budget" in r for r in reasons), reasons
    assert all(results[n].result.http is not None for n in names)


def test_a_probe_cut_by_the_host_deadline_mid_body_gives_its_budget_back(corpus: Corpus) -> None:
    async def run() -> int:
        async with make_client(FAST) as client:
            for name in ("drip-body", "endless", "gzip-bomb"):
                probe = fingerprint_port(
                    client, corpus.address(name), corpus.port(name), settings=FAST
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(probe, 0.3)
            return http_probe._BUDGETS[client].held

    assert asyncio.run(run()) == 0
