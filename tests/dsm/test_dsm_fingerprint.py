"""DSM markers, endpoint parsers and fingerprints from recorded responses."""

from __future__ import annotations

from pathlib import Path

import pytest

from exposure_audit.dsm import (
    DSM_PROBE_PATHS,
    USER_AGENT,
    HttpResponse,
    InfoCgi,
    fingerprint,
    is_srm,
    markers_in,
    parse_api_info,
    parse_fullversion,
    parse_info_cgi,
    parse_synodefs_build,
    parse_synohdpack,
    synolocker_exploitable,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "dsm"
HDPACK = "/synohdpack/synohdpack.version"
INFO_CGI = "/webman/info.cgi?host="
QUERY = "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=SYNO.API.Auth"
DSM6_HEADERS = {
    "server": "nginx",
    "p3p": 'CP="IDC DSP COR ADM DEVi TAIi PSA PSD IVAi IVDi CONi HIS OUR IND CNT"',
    "x-content-type-options": "nosniff",
    "content-type": 'text/plain; charset="UTF-8"',
}


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def resp(
    body: str, path: str = "/", status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    return HttpResponse(path=path, status=status, headers=headers or {}, body=body)


def not_found(path: str) -> HttpResponse:
    return resp("<html><body><h1>404 Not Found</h1></body></html>", path, 404)


# --- positive: one port's responses as the probe collects them ------------------------------


def dsm62_port() -> list[HttpResponse]:
    return [
        resp(read("dsm62_login.html")),
        resp(read("dsm62_login.html"), "/webman/index.cgi"),
        resp(read("dsm62_synohdpack.version"), HDPACK),
        not_found(INFO_CGI),
        resp(read("dsm62_query_api_auth.json"), QUERY, headers=DSM6_HEADERS),
    ]


def test_a_dsm_6_2_port_gives_6_2_4_build_25556_update_7_from_synohdpack() -> None:
    fp = fingerprint(dsm62_port())
    assert fp is not None
    assert (fp.version, fp.build, fp.update) == ("6.2.4", 25556, 7)
    assert fp.version_source == "synohdpack.version"
    assert fp.model is None
    assert {
        "title",
        "meta-description",
        "noscript",
        "desktop-api-script",
        "sds-jslib",
        "login-form",
        "synohdpack",
        "api-info",
        "p3p-header",
    } <= set(fp.markers)
    assert list(fp.markers) == sorted(fp.markers)


def test_the_dsm_6_2_login_page_alone_shows_the_html_anchors() -> None:
    assert markers_in(resp(read("dsm62_login.html"))) == {
        "title",
        "meta-description",
        "noscript",
        "desktop-api-script",
        "sds-jslib",
        "login-form",
    }


def test_a_dsm_7_2_port_gives_7_2_2_update_3_and_the_dsm_7_title_counts() -> None:
    fp = fingerprint(
        [
            resp(read("dsm72_login.html")),
            resp(read("dsm72_synohdpack.version"), HDPACK),
            resp(read("dsm72_query_api_auth.json"), QUERY),
        ]
    )
    assert fp is not None
    assert (fp.version, fp.build, fp.update) == ("7.2.2", 72806, 3)
    assert {"title", "meta-description", "noscript", "sds-jslib", "api-info"} <= set(fp.markers)


def test_a_dsm_4_3_port_gives_4_3_3810_and_the_model_from_info_cgi() -> None:
    fp = fingerprint(
        [
            resp(read("dsm43_index.cgi.html"), "/webman/index.cgi"),
            not_found(HDPACK),
            resp(read("dsm43_info.cgi.txt"), INFO_CGI),
            not_found(QUERY),
        ]
    )
    assert fp is not None
    assert (fp.version, fp.build, fp.update, fp.model) == ("4.3", 3810, None, "DS1813+")
    assert fp.version_source == "info.cgi"
    assert {"title", "sds-session", "login-form", "info-cgi"} <= set(fp.markers)
    assert synolocker_exploitable(fp.version, fp.build) is True


def test_without_info_cgi_dsm_4_3_is_read_from_the_login_pages_fullversion() -> None:
    fp = fingerprint([resp(read("dsm43_index.cgi.html"), "/webman/index.cgi")])
    assert fp is not None
    assert (fp.version, fp.build, fp.update) == ("4.3", 3810, None)
    assert fp.version_source == "login page fullversion"


def test_dsm_4_2_is_read_from_synodefs_cgi() -> None:
    fp = fingerprint([resp(read("dsm42_index.cgi.html"), "/webman/index.cgi")])
    assert fp is not None
    assert (fp.version, fp.build) == ("4.2", 3243)
    assert fp.version_source == "login page synodefs.cgi"
    assert synolocker_exploitable(fp.version, fp.build) is False


def test_a_fingerprint_without_any_version_source_still_reports_the_markers() -> None:
    fp = fingerprint([resp(read("dsm72_login.html"))])
    assert fp is not None
    assert fp.version is None and fp.build is None and fp.version_source is None


# --- negative corpus ------------------------------------------------------------------------

NEGATIVE = sorted(p.name for p in (DATA / "negative").iterdir())
# How each negative sample is served; everything else answers 200.
NEGATIVE_STATUS = {"not_found_diskstation.html": 404}


@pytest.mark.parametrize("name", NEGATIVE)
def test_nothing_in_the_negative_corpus_is_dsm_on_any_probe_path(name: str) -> None:
    body = read(f"negative/{name}")
    status = NEGATIVE_STATUS.get(name, 200)
    responses = [resp(body, path, status) for path in ("/", *DSM_PROBE_PATHS)]
    assert fingerprint(responses) is None


@pytest.mark.parametrize(
    "name",
    [
        "qnap_qts_login.html",
        "home_router_login.html",
        "nginx_default.html",
        "webstation_default.html",
        "router_upnp_rootdesc.xml",
        "echo_request.txt",
        "echo_httpbin.json",
    ],
)
def test_pages_of_other_things_show_no_marker_at_all(name: str) -> None:
    body = read(f"negative/{name}")
    for path in ("/", *DSM_PROBE_PATHS):
        assert markers_in(resp(body, path)) == frozenset(), path


def test_a_single_marker_page_is_not_enough() -> None:
    page = resp(read("negative/single_marker.html"))
    assert markers_in(page) == {"title"}
    assert fingerprint([page]) is None


def test_a_404_page_is_not_a_login_page_whatever_it_says() -> None:
    body = read("negative/not_found_diskstation.html")
    assert len(markers_in(resp(body))) >= 2  # the same page with 200 would count
    assert markers_in(resp(body, status=404)) == frozenset()
    assert fingerprint([resp(body, status=404), resp(body, "/webman/index.cgi", 404)]) is None


def test_the_echo_fixtures_carry_our_user_agent() -> None:
    assert USER_AGENT in read("negative/echo_request.txt")
    assert USER_AGENT in read("negative/echo_httpbin.json")


def test_an_echo_of_our_request_yields_no_markers_even_when_shaped_like_api_info() -> None:
    echo = read("negative/echo_httpbin.json")
    assert markers_in(resp(echo, QUERY)) == frozenset()
    # The same body without our User-Agent would pass as an API map: the echo rule decides.
    assert markers_in(resp(echo.replace(USER_AGENT, "curl/8.5.0"), QUERY)) == {"api-info"}


def test_a_body_echoing_our_user_agent_yields_no_markers_even_if_it_quotes_a_dsm_page() -> None:
    page = read("dsm62_login.html") + f"\n<!-- User-Agent: {USER_AGENT} -->\n"
    assert markers_in(resp(page)) == frozenset()


def test_a_header_echoing_our_user_agent_also_silences_the_response() -> None:
    page = resp(read("dsm62_login.html"), headers={"x-echo-user-agent": USER_AGENT})
    assert markers_in(page) == frozenset()


# --- SRM ----------------------------------------------------------------------------------


def test_an_srm_login_page_is_srm_and_never_a_dsm_fingerprint() -> None:
    page = resp(read("negative/srm_login.html"))
    assert is_srm(page)
    # It shares DSM's framework anchors, which is why SRM must be ruled out explicitly.
    assert {"sds-session", "sds-jslib", "noscript"} <= markers_in(page)
    assert fingerprint([page, resp(read("negative/srm_synohdpack.version"), HDPACK)]) is None


def test_an_srm_version_file_vetoes_the_fingerprint_and_is_no_marker() -> None:
    srm_file = resp(read("negative/srm_synohdpack.version"), HDPACK)
    assert markers_in(srm_file) == frozenset()
    assert fingerprint([resp(read("dsm62_login.html")), srm_file]) is None


@pytest.mark.parametrize(
    "name", ["dsm62_login.html", "dsm72_login.html", "negative/webstation_default.html"]
)
def test_dsm_and_web_station_pages_are_not_srm(name: str) -> None:
    assert not is_srm(resp(read(name)))


def test_a_page_that_only_mentions_synology_routers_is_not_srm() -> None:
    page = resp('<title>Synology Router review</title><meta content="Synology Router RT6600ax">')
    assert not is_srm(page)


# --- endpoint markers are tied to their paths -------------------------------------------------


def test_endpoint_bodies_count_only_on_their_own_path() -> None:
    assert markers_in(resp(read("dsm62_synohdpack.version"), "/")) == frozenset()
    assert markers_in(resp(read("dsm43_info.cgi.txt"), "/")) == frozenset()
    assert markers_in(resp(read("dsm62_query_api_auth.json"), "/")) == frozenset()
    assert markers_in(resp(read("dsm62_synohdpack.version"), HDPACK)) == {"synohdpack"}
    assert markers_in(resp(read("dsm43_info.cgi.txt"), INFO_CGI)) == {"info-cgi"}


def test_the_dsm_headers_are_markers_of_their_own() -> None:
    assert markers_in(resp("", QUERY, headers=DSM6_HEADERS)) == {"p3p-header"}
    assert markers_in(resp("", "/", headers={"server": "Synology/DSM/192.0.2.10"})) == {
        "server-header"
    }


def test_the_probe_paths_are_read_only_gets_that_never_log_in() -> None:
    assert DSM_PROBE_PATHS[0] == "/webman/index.cgi"
    assert all(p.startswith("/") for p in DSM_PROBE_PATHS)
    assert not any(
        word in p.lower() for p in DSM_PROBE_PATHS for word in ("login", "auth.cgi", "passwd")
    )


# --- parsers --------------------------------------------------------------------------------


def test_parse_synohdpack_reads_key_value_lines() -> None:
    fields = parse_synohdpack(read("dsm62_synohdpack.version"))
    assert fields is not None
    assert fields["productversion"] == "6.2.4"
    assert fields["buildnumber"] == "25556"
    assert fields["smallfixnumber"] == "7"


@pytest.mark.parametrize(
    "body",
    [
        "",
        'buildnumber="abc"',
        'productversion="7.2"',  # no buildnumber
        '<html>\nbuildnumber="25556"\n</html>',  # a page that merely contains such a line
        'buildnumber="1234567890"',  # too long to be a build
    ],
)
def test_parse_synohdpack_refuses_anything_but_the_version_file(body: str) -> None:
    assert parse_synohdpack(body) is None


def test_a_dsm_5_0_synohdpack_without_productversion_uses_major_and_minor() -> None:
    body = 'majorversion="5"\nminorversion="0"\nbuildnumber="4528"\n'
    fp = fingerprint([resp(read("dsm72_login.html")), resp(body, HDPACK)])
    assert fp is not None
    assert (fp.version, fp.build, fp.update) == ("5.0", 4528, None)


def test_parse_info_cgi_reads_version_build_and_model() -> None:
    assert parse_info_cgi(read("dsm43_info.cgi.txt")) == InfoCgi(4, 3, 3810, "DS1813+")
    info = parse_info_cgi("major=4&minor=2&build=3211&junior=0&unique=synology_x86_rs812")
    assert info is not None and info.model == "RS812" and info.version == "4.2"
    assert parse_info_cgi("major=4&minor=1&build=2851") == InfoCgi(4, 1, 2851, None)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<html>major=4&minor=3&build=3810</html>",
        "major=4&minor=3",
        "GET /webman/info.cgi?host= HTTP/1.1",
    ],
)
def test_parse_info_cgi_refuses_other_bodies(body: str) -> None:
    assert parse_info_cgi(body) is None


def test_parse_api_info_returns_the_auth_max_version() -> None:
    assert parse_api_info(read("dsm62_query_api_auth.json")) == 6
    assert parse_api_info(read("dsm72_query_api_auth.json")) == 7
    assert parse_api_info('{"data":{"SYNO.API.Auth":{"path":"auth.cgi"}}}') is None
    assert parse_api_info('{"data":{"SYNO.API.Info":{"path":"query.cgi","maxVersion":1}}}') is None
    assert parse_api_info("[1, 2]") is None
    assert parse_api_info("not json") is None


def test_parse_fullversion_reads_the_build_but_not_dsm_7_timestamps() -> None:
    assert parse_fullversion('"fullversion" : "3810-s0"') == 3810
    assert parse_fullversion('"fullversion":"5022"') == 5022
    # DSM 7 sharing pages put a timestamp there (public client fixture): not a build.
    assert parse_fullversion('"fullversion" : "1781661654"') is None
    assert parse_fullversion("no such key") is None


def test_parse_synodefs_build_only_trusts_dsm_4_2_and_older() -> None:
    assert parse_synodefs_build(read("dsm42_index.cgi.html")) == 3243
    assert parse_synodefs_build('<script src="synodefs.cgi?v=3810"></script>') is None
    assert parse_synodefs_build(read("dsm43_index.cgi.html")) is None  # a timestamp there
    assert parse_synodefs_build("<p>nothing</p>") is None
