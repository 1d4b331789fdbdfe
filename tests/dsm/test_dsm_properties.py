"""Property tests: the fingerprinting layer takes any text a server sends and never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exposure_audit.dsm import (
    DSM_PROBE_PATHS,
    USER_AGENT,
    HttpResponse,
    assess,
    end_of_life,
    fingerprint,
    is_srm,
    is_synology_default_certificate,
    markers_in,
    parse_api_info,
    parse_fullversion,
    parse_info_cgi,
    parse_synodefs_build,
    parse_synohdpack,
    resolve_version,
    synolocker_exploitable,
    synology_ddns_domain,
)
from exposure_audit.observations import DsmFingerprint

# Fragments of real DSM bodies, so generated text often gets deep into the parsers.
FRAGMENTS = [
    "<title>",
    "</title>",
    "&nbsp;-&nbsp;Synology&nbsp;DiskStation",
    " - Synology NAS",
    '<meta name="description" content="DiskStation provides a full-featured',
    "<noscript><div class='syno-no-script'",
    'src="webapi/entry.cgi?api=SYNO.Core.Desktop.Defs',
    "SYNO.SDS.Session = {",
    'src="synoSDSjslib/sds.js"',
    'id="sds-login-dialog-form"',
    'src="synodefs.cgi?v=3243"',
    '"fullversion" : "3810-s0"',
    'buildnumber="25556"\n',
    'productversion="6.2.4"\n',
    'smallfixnumber="7"\n',
    "major=4&minor=3&build=3810&junior=0&unique=synology_cedarview_1813+",
    '{"data":{"SYNO.API.Auth":{"maxVersion":7,"path":"entry.cgi"}}}',
    "SynologyRouter",
    'content="Synology Router',
    USER_AGENT,
    "[" * 50,
    "{" * 50,
    "\x00",
    "\ufeff",
]

bodies = st.one_of(
    st.text(max_size=2000),
    st.binary(max_size=2000).map(lambda b: b.decode("utf-8", errors="replace")),
    st.binary(max_size=2000).map(lambda b: b.decode("latin-1")),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=30).map("".join),
)
paths = st.one_of(st.sampled_from(("/", *DSM_PROBE_PATHS)), st.text(max_size=50))
headers = st.dictionaries(
    st.sampled_from(["server", "p3p", "content-type", "x-anything"]) | st.text(max_size=10),
    st.text(max_size=80),
    max_size=4,
)
responses = st.builds(
    HttpResponse, path=paths, status=st.integers(-1, 700), headers=headers, body=bodies
)


@settings(max_examples=300, deadline=None)
@given(st.lists(responses, max_size=6))
def test_fingerprint_and_markers_never_raise_on_arbitrary_responses(
    batch: list[HttpResponse],
) -> None:
    result = fingerprint(batch)
    for item in batch:
        assert isinstance(markers_in(item), frozenset)
        assert isinstance(is_srm(item), bool)
    if result is not None:
        assert len(result.markers) >= 2
        assess(result)


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_the_parsers_never_raise_on_arbitrary_text(body: str) -> None:
    parse_synohdpack(body)
    parse_info_cgi(body)
    parse_api_info(body)
    parse_fullversion(body)
    parse_synodefs_build(body)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=12)),
    st.one_of(st.none(), st.integers(-10, 10**12)),
    st.one_of(st.none(), st.integers(-5, 50)),
    st.one_of(st.none(), st.text(max_size=12)),
)
def test_version_judgements_never_raise_on_arbitrary_values(
    version: str | None, build: int | None, update: int | None, model: str | None
) -> None:
    resolve_version(version, build)
    synolocker_exploitable(version, build)
    end_of_life(version, build)
    assess(DsmFingerprint(("a", "b"), version, build, update, model))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_name_and_certificate_checks_never_raise(first: str, second: str) -> None:
    synology_ddns_domain(first)
    is_synology_default_certificate(first, second)
