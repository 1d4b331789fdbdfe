"""Web ports get the product and version nmap -sV would give, from the response already held:
the installed nmap's own match lines, its template rules, and no way for a server to hang the
matcher or write into the report."""

from __future__ import annotations

import http.server
import platform
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from exposure_audit.nmap.installed import default_matcher, match_http_response
from exposure_audit.nmap.probefile import parse_web_lines, pcre_compatible, required_literal
from exposure_audit.nmap.servicematch import MAX_RESPONSE_BYTES, WebMatcher
from exposure_audit.probes.rawhttp import RAW_RESPONSE_BYTES, response_bytes

DATE = b"Date: Mon, 01 Jan 2024 00:00:00 GMT"


def _response(*headers: bytes, status: bytes = b"HTTP/1.1 200 OK", body: bytes = b"") -> bytes:
    return status + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


# Raw answers as these servers write them (header order and case as they send them).
SERVERS = {
    "nginx": (
        _response(b"Server: nginx/1.22.1", DATE, b"Content-Type: text/html"),
        ("nginx", "1.22.1"),
    ),
    "Apache on Debian": (
        _response(DATE, b"Server: Apache/2.4.62 (Debian)", b"Content-Type: text/html"),
        ("Apache httpd", "2.4.62"),
    ),
    "lighttpd": (
        _response(b"Content-Type: text/html", DATE, b"Server: lighttpd/1.4.69"),
        ("lighttpd", "1.4.69"),
    ),
    "Python http.server": (
        _response(
            b"Server: SimpleHTTP/0.6 Python/3.11.2",
            DATE,
            b"Content-type: text/html",
            status=b"HTTP/1.0 200 OK",
        ),
        ("SimpleHTTPServer", "0.6"),
    ),
    "Twisted": (
        _response(b"Server: TwistedWeb/22.4.0", DATE, b"Content-Type: text/html"),
        ("TwistedWeb httpd", "22.4.0"),
    ),
    "Jetty": (
        _response(DATE, b"Content-Type: text/html", b"Server: Jetty(9.4.43.v20210629)"),
        ("Jetty", "9.4.43.v20210629"),
    ),
    "IIS": (
        _response(
            b"Content-Type: text/html", b"Accept-Ranges: bytes", b"Server: Microsoft-IIS/10.0", DATE
        ),
        ("Microsoft IIS httpd", "10.0"),
    ),
    "DSM's nginx (no version)": (
        _response(
            b"Server: nginx",
            DATE,
            b'Content-Type: text/html; charset="UTF-8"',
            body=b"<!DOCTYPE html><html><head><title>Synology&nbsp;DiskStation</title>",
        ),
        ("nginx", None),
    ),
}


@pytest.fixture(scope="module")
def installed() -> WebMatcher:
    matcher = default_matcher()
    if matcher is None:
        pytest.skip("no nmap-service-probes installed")
    return matcher


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_a_known_server_gets_nmaps_product_and_version(installed: WebMatcher, name: str) -> None:
    raw, (product, version) = SERVERS[name]
    found = installed.match(raw)
    assert found is not None
    assert (found.service, found.product, found.version) == ("http", product, version)
    assert not found.soft
    # The line is nmap's own: its number points at a match line of the installed file.
    assert found.line_number in {line.line_number for line in installed.lines}


def test_the_installed_file_loads_once_and_every_web_line_compiles(installed: WebMatcher) -> None:
    assert default_matcher() is installed
    stats = installed.compile_all()
    assert stats.lines > 1000  # nmap 7.9x has thousands of http lines
    assert stats.compiled + stats.failed_to_compile == stats.lines
    assert stats.failed_to_compile <= stats.lines // 100


def test_the_prefilter_never_changes_the_answer(installed: WebMatcher) -> None:
    """Skipping lines whose required literal is absent gives what trying every line gives."""
    everything = WebMatcher(installed.lines, prefilter=False)
    everything.compile_all()
    extra = [
        _response(b"Server: Apache", DATE, status=b"HTTP/1.1 404 Not Found"),
        _response(b"Server: mini_httpd/1.30 26Oct2018", DATE),
        _response(b"Server: Boa/0.94.14rc21", DATE),
        _response(b"Content-Type: text/html", body=b"<title>Router</title>"),
        _response(b"Server: GoAhead-Webs", DATE, status=b"HTTP/1.0 302 Redirect"),
    ]
    for raw in [raw for raw, _ in SERVERS.values()] + extra:
        assert installed.match(raw) == everything.match(raw)


def test_a_real_python_server_on_loopback_is_named_like_nmap_names_it() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        response = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    found = match_http_response(response_bytes(response))
    assert found is not None
    assert (found.product, found.version) == ("SimpleHTTPServer", http.server.__version__)
    assert found.info == f"Python {platform.python_version()}"


@pytest.fixture
def raw_server() -> Iterator[tuple[list[bytes], int]]:
    """A loopback server that answers every connection with the bytes put in its list."""
    answers: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(answers[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield answers, listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def test_the_text_keeps_the_status_line_and_header_case_the_server_sent(
    raw_server: tuple[list[bytes], int],
) -> None:
    answers, port = raw_server
    answers.append(
        b"HTTP/1.1 200 Fine Thanks\r\nSERVER: Apache/2.4.7 (Ubuntu)\r\nx-Odd:  a\r\n"
        b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"
    )
    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert response_bytes(response) == (
        b"HTTP/1.1 200 Fine Thanks\r\nSERVER: Apache/2.4.7 (Ubuntu)\r\nx-Odd: a\r\n"
        b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"
    )


def test_a_huge_body_is_cut_to_the_bound(raw_server: tuple[list[bytes], int]) -> None:
    answers, port = raw_server
    body = b"x" * (MAX_RESPONSE_BYTES * 4)
    answers.append(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    text = response_bytes(response)
    assert len(text) == MAX_RESPONSE_BYTES == RAW_RESPONSE_BYTES  # what the matcher looks at
    assert text.startswith(b"HTTP/1.1 200 OK\r\nContent-Length:")


def test_escape_codes_from_a_banner_come_back_visible_not_live(installed: WebMatcher) -> None:
    evil = _response(b"Server: nginx/1.2\x1b[2J\x1b]0;pwned\x07", DATE)
    synthetic = WebMatcher.from_text(
        _probe_file(r"match http m|^HTTP/1\.1 200 OK\r\nServer: ([^\r\n]+)\r\n| p/$1/ i/$P(1)/")
    )
    found = synthetic.match(evil)
    assert found is not None and found.product is not None and found.info is not None
    assert "\x1b" not in found.product and "\x07" not in found.product
    assert "\\x1b[2J" in found.product  # shown, as text
    assert found.info == "nginx/1.2[2J]0;pwned"  # $P keeps printable characters only
    real = installed.match(_response(DATE, b"Server: Apache/2.4.1 (\x1b[2JEvil)"))
    assert real is not None and real.product == "Apache httpd"
    assert real.info == "(\\x1b[2JEvil)"


def _probe_file(*match_lines: str) -> str:
    return "Probe TCP GetRequest q|GET / HTTP/1.0\\r\\n\\r\\n|\nrarity 1\n" + "\n".join(match_lines)


def test_template_helpers_fill_fields_as_nmap_does() -> None:
    matcher = WebMatcher.from_text(
        _probe_file(
            r"match http m|^HTTP/1\.1 200 OK\r\nServer: Box_(\d+_\d+) +\r\n| p/Box/ "
            r'v/$SUBST(1,"_",".")/ cpe:/a:acme:box:$1/',
            r"match http m|^HTTP/1\.1 200 OK\r\nX-Id: (....)\r\n|s p/Counter/ "
            r'v/$I(1,">")/ i/little-endian $I(1,"<")/',
            r"match http m|^HTTP/1\.1 200 OK\r\nX-Wide: ((?:\w\0)+)| p/$P(1)/ h/$2/",
            r"match http m=^HTTP/1\.1 200 OK\r\nServer: Thing (\S+) ([\w ]+)\r\n=i "
            r"p/Thing/ v/$1, / d/$2/ cpe:/a:thing:thing:$1:$2/a",
        )
    )
    box = matcher.match(_response(b"Server: Box_4_20  "))
    assert box is not None
    assert (box.product, box.version, box.cpes) == ("Box", "4.20", ("cpe:/a:acme:box:4_20",))
    counter = matcher.match(_response(b"X-Id: \x00\x00\x01\x02"))
    assert counter is not None
    assert (counter.version, counter.info) == ("258", "little-endian 33619968")
    wide = matcher.match(_response(b"X-Wide: W\0O\0R\0K\0"))
    assert wide is not None
    # $P drops the NULs; h/$2/ names a capture the pattern lacks, so the field stays empty.
    assert (wide.product, wide.hostname) == ("WORK", None)
    thing = matcher.match(_response(b"server: thing V2.0/b Beta One"))
    assert thing is not None
    # Trailing ", " is cut; CPE values are lower-cased, '/' escaped, spaces become '_'.
    assert (thing.version, thing.device_type) == ("V2.0/b", "Beta One")
    assert thing.cpes == ("cpe:/a:thing:thing:v2.0%2Fb:beta_one",)


def test_one_cpe_per_part_is_kept_the_last_of_each_as_nmap_reports_them() -> None:
    # nmap's getVersionStr writes each template into the buffer of its part (a, h, o): a
    # later template of a part overwrites an earlier one.
    matcher = WebMatcher.from_text(
        _probe_file(
            r"match http m|^HTTP/1\.1 200 OK\r\nServer: Kit/(\d+)\r\n| p/Kit/ v/$1/ "
            r"cpe:/o:acme:os/ cpe:/a:acme:runtime:$1/ cpe:/h:acme:box/a cpe:/a:acme:kit:$1/",
        )
    )
    found = matcher.match(_response(b"Server: Kit/7"))
    assert found is not None
    assert found.cpes == ("cpe:/a:acme:kit:7", "cpe:/h:acme:box", "cpe:/o:acme:os")


def test_a_hard_match_wins_over_an_earlier_soft_one_and_file_order_decides() -> None:
    matcher = WebMatcher.from_text(
        _probe_file(
            r"softmatch http m|^HTTP/1\.[01] \d\d\d|",
            r"match http m|^HTTP/1\.1 200 OK\r\nServer: Acme| p/first/",
            r"match http m|^HTTP/1\.1 200 OK\r\nServer: Acme/1| p/second/",
        )
    )
    found = matcher.match(_response(b"Server: Acme/1.0"))
    assert found is not None and (found.product, found.soft) == ("first", False)
    soft = matcher.match(_response(b"Server: Other"))
    assert soft is not None and (soft.service, soft.product, soft.soft) == ("http", None, True)
    assert matcher.match(b"SSH-2.0-OpenSSH_9.2\r\n") is None


def test_lines_that_do_not_compile_or_parse_are_counted_not_fatal() -> None:
    matcher = WebMatcher.from_text(
        _probe_file(
            r"match http m|^HTTP/1\.1 200 OK\r\n(unclosed| p/broken/",
            r"match http m|^HTTP/1\.1 200 OK| p/broken delimiters",
            r"match http m|^HTTP/1\.1 200 OK\r\nServer: Fine| p/fine/",
        )
    )
    found = matcher.match(_response(b"Server: Fine"))
    assert found is not None and found.product == "fine"
    stats = matcher.compile_all()
    assert (stats.lines, stats.malformed, stats.failed_to_compile) == (2, 1, 1)


def test_a_pathological_body_is_cut_off_and_the_matcher_stays_usable() -> None:
    """(a|a)*b backtracks exponentially on a run of a's: a hostile server's cheap CPU bomb."""
    bombs = [rf"match http m=^HTTP/1\.1 200 OK\r\n.*(a|a)*b{n}=s p/bomb/" for n in range(40)]
    matcher = WebMatcher.from_text(
        _probe_file(*bombs, r"match http m|^HTTP/1\.1 200 OK\r\nServer: Fine| p/fine/")
    )
    hostile = _response(b"Server: Evil", body=b"a" * 5000)
    started = time.monotonic()
    assert matcher.match(hostile) is None
    assert time.monotonic() - started < 10  # budget 0.5 s; generous for a loaded machine
    assert matcher.stats().timeouts >= 1
    fine = matcher.match(_response(b"Server: Fine"))
    assert fine is not None and fine.product == "fine"


def test_web_lines_are_http_responses_from_the_web_probes_in_nmaps_order() -> None:
    text = "\n".join(
        [
            "Probe TCP NULL q||",
            r"match ssh m|^SSH-2\.0| p/OpenSSH/",
            r"match http m|^HTTP/1\.0 \d\d\d .*\r\nServer: SonicWALL\r\n| p/SonicWALL/",
            r"Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|",
            r"match upnp m|^HTTP/1\.1 200 OK\r\nServer: miniupnpd| p/MiniUPnP/",
            r"match ftp m|^220 | p/some ftpd/",
            r"match http-proxy m|^HTTP/1\.0 407 | p/proxy/",
            r"Probe UDP GetRequest q|x|",
            r"match http m|^HTTP/1\.1 | p/udp is not web/",
        ]
    )
    parsed = parse_web_lines(text)
    assert [(line.probe, line.service) for line in parsed.lines] == [
        ("GetRequest", "upnp"),
        ("GetRequest", "http-proxy"),
        ("NULL", "http"),
    ]


@pytest.mark.parametrize(
    ("pattern", "ignore_case", "literal"),
    [
        (
            rb"^HTTP/1\.1 200 OK\r\nServer: nginx/([\d.]+)\r\n",
            False,
            b"HTTP/1.1 200 OK\r\nServer: nginx/",
        ),
        (rb"^HTTP/1\.[01] \d+ .*\r\nServer: Boa/?x", False, b"\r\nServer: Boa"),
        (rb"Server: (?:Apache|httpd)", True, b"server: "),
        (rb"^abc|^def", False, None),
        (rb"(?i)Server: X", False, None),
        (rb"ab{0,3}cdefg", False, b"cdefg"),
        (rb"\012345", False, None),
        (rb"\x41BC\xZ", False, b"ABC"),
    ],
)
def test_the_required_literal_is_one_every_match_contains(
    pattern: bytes, ignore_case: bool, literal: bytes | None
) -> None:
    assert required_literal(pattern, ignore_case) == literal


def test_a_brace_that_opens_no_quantifier_is_a_literal_as_in_pcre() -> None:
    assert pcre_compatible(rb"function sf\(\){document}") == rb"function sf\(\)\{document}"
    assert pcre_compatible(rb"a{2,3}[{]x{,4}") == rb"a{2,3}[{]x\{,4}"
