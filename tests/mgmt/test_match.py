"""Two independent markers identify a management interface; one is only a note."""

from __future__ import annotations

import dataclasses
import time

import pytest

from exposure_audit.mgmt import (
    PathAnswer,
    WebSighting,
    favicon_hash,
    identify,
    load_catalog,
    paths_worth_fetching,
)
from exposure_audit.mgmt.catalog import parse_catalog

from .samples import load, sighting

POSITIVE = load("positive")
NEGATIVE = load("negative")


def test_every_product_has_a_positive_sample() -> None:
    assert {p.id for p in load_catalog()} == set(POSITIVE)


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_a_composed_sighting_identifies_its_product_and_only_it(name: str) -> None:
    doc = POSITIVE[name]
    result = identify(sighting(doc))
    assert [m.product_id for m in result.matches] == [doc["expect"]["product"]]
    match = result.matches[0]
    assert len(match.markers) >= 2
    assert match.version == doc["expect"]["version"]


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_the_negative_corpus_identifies_nothing(name: str) -> None:
    assert identify(sighting(NEGATIVE[name])).matches == ()


def test_a_honeypot_with_one_marker_is_only_a_possible() -> None:
    result = identify(sighting(NEGATIVE["honeypot-qnap-title"]))
    assert [(p.product_id, p.marker) for p in result.possible] == [("qnap-qts", "title")]


def test_a_blog_quoting_markers_of_many_products_gives_notes_not_identifications() -> None:
    result = identify(sighting(NEGATIVE["blog-qnap-proxmox-idrac"]))
    assert result.matches == ()
    # Markers quoted as escaped HTML (&lt;idrac-start-screen&gt;) are text, not markers.
    assert {"proxmox-ve", "portainer", "supervisor"} <= {p.product_id for p in result.possible}


def test_an_error_page_naming_a_product_does_not_count_its_title_or_body() -> None:
    doc = dict(POSITIVE["proxmox-ve"])
    base = sighting(doc)
    error = dataclasses.replace(base, status=502, headers=(), cert_issuer=None, favicon_mmh3=None)
    assert identify(error).matches == ()


def test_a_version_that_is_not_version_text_is_not_reported() -> None:
    base = sighting(POSITIVE["webmin"])
    hostile = dataclasses.replace(base, headers=(("Server", "MiniServ/1.0<script>x"),))
    match = identify(hostile).matches[0]
    assert match.product_id == "webmin" and match.version == "1.0"  # the tag is not kept
    junk = dataclasses.replace(base, headers=(("Server", "MiniServ/" + "9" * 40),))
    assert identify(junk).matches[0].version is None


def test_transmission_without_a_password_is_recognised_from_its_rpc_answer() -> None:
    seen = WebSighting(
        port=9091,
        scheme="http",
        status=301,
        headers=(("Server", "Transmission"), ("Location", "/transmission/web/")),
        paths={"/transmission/rpc": PathAnswer(409, (("X-Transmission-Session-Id", "abc"),))},
    )
    match = identify(seen).matches[0]
    assert match.product_id == "transmission" and match.unauthenticated_control


def test_paths_worth_fetching_cover_default_port_and_candidate_products() -> None:
    on_8006 = paths_worth_fetching(8006)
    assert on_8006 == ()  # Proxmox needs no extra path: its page carries the version
    on_443 = paths_worth_fetching(443)
    assert "/sysmgmt/2015/bmc/info" in on_443 and "/xmldata?item=all" in on_443
    assert "/api/v1/info" in paths_worth_fetching(8080, candidates=["netdata"])
    assert len(on_443) == len(set(on_443))


def test_pathological_input_is_bounded() -> None:
    # A hostile page built to make naive patterns backtrack: long runs of the characters the
    # catalog patterns use, huge headers, many anchors, many cookies.
    evil = "a" * 300_000 + "!" + " - " * 50_000 + "pvemanagerlib.js?ver=" * 20_000
    seen = WebSighting(
        port=443,
        scheme="https",
        status=200,
        headers=tuple(("Server", "x" * 100_000 + "OPNsense") for _ in range(1000)),
        cookie_names=tuple(f"c{i}" for i in range(10_000)),
        title=" - " * 100_000 + "Synology NAS",
        body=evil,
        cert_subject="CN=" + "(" * 100_000,
        nmap_product="V" * 100_000,
        paths={f"/p{i}": PathAnswer(200, (), evil) for i in range(500)},
    )
    started = time.monotonic()
    result = identify(seen)
    assert time.monotonic() - started < 5.0  # a deadline, not a speed claim
    assert result.matches == ()


def test_a_catalog_with_a_catastrophic_pattern_cannot_be_loaded() -> None:
    data = {
        "sources": [{"id": "S"}],
        "products": [
            {
                "id": "evil",
                "name": "Evil",
                "vendor": "x",
                "category": "nas",
                "reference_only": False,
                "ports": [{"port": 1, "scheme": "http"}],
                "markers": [
                    {"kind": "title", "regex": "(a+)+$", "note": "n"},
                    {"kind": "body", "contains": "x", "note": "n"},
                ],
                "versions": [],
                "unauthenticated_control": {"possible": False, "how": None},
                "sources": ["S"],
            }
        ],
    }
    with pytest.raises(ValueError, match="unbounded"):
        parse_catalog(data)


def test_favicon_hash_is_murmur3_of_the_base64_text_as_shodan_computes_it() -> None:
    # Expected values computed with the mmh3 5.3.1 wheel (mmh3.hash(base64.encodebytes(data)));
    # the pure-Python hash agreed with it on 2000 random inputs when this was written.
    assert favicon_hash(b"foo") == 851989093
    assert favicon_hash(bytes(range(256)) * 4) == -1082603952
    assert favicon_hash(b"") == 0
