"""Name resolution through a real DNS server on loopback (the lab's, built on dnspython)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from exposure_audit.errors import UsageError
from exposure_audit.lab import DEMO_ZONE, Lab
from exposure_audit.observations import NameResolution
from exposure_audit.probes.dns import make_resolver, parse_resolver, resolve_names


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    with Lab([], zone=DEMO_ZONE) as lab:
        yield lab.resolver


def resolve(resolver: str, *names: str, timeout: float = 5.0) -> dict[str, NameResolution]:
    results = asyncio.run(resolve_names(names, make_resolver(resolver, timeout=timeout)))
    return {r.name: r for r in results}


def test_both_families_and_the_cname_chain_are_recorded(nameserver: str) -> None:
    found = resolve(nameserver, "nas.example.net", "dsm7.example.net")
    assert found["nas.example.net"].ipv4 == ("127.77.0.10",)
    assert found["nas.example.net"].cname_chain == ("syno43.example.net",)
    assert found["dsm7.example.net"].ipv4 == ("127.77.0.20",)
    assert found["dsm7.example.net"].ipv6 == ("::1",)
    assert not found["dsm7.example.net"].errors


def test_a_missing_family_is_not_an_error(nameserver: str) -> None:
    v4only = resolve(nameserver, "v4only.example.net")["v4only.example.net"]
    assert v4only.ipv4 == ("127.77.0.70",) and v4only.ipv6 == () and v4only.errors == ()


def test_nxdomain_is_reported_per_name_and_the_rest_resolve(nameserver: str) -> None:
    found = resolve(nameserver, "gone.example.net", "www.example.net")
    assert any("NXDOMAIN" in e for e in found["gone.example.net"].errors)
    assert found["www.example.net"].ipv4 == ("127.77.0.40",)


def test_synology_ddns_names_are_noted(nameserver: str) -> None:
    found = resolve(nameserver, "diskstation.myds.me", "www.example.net")
    assert found["diskstation.myds.me"].synology_domain == "myds.me"
    assert found["www.example.net"].synology_domain is None


def test_a_resolver_that_never_answers_is_a_per_name_timeout() -> None:
    # Given a UDP port that swallows queries, each name gets a timeout error within the lifetime.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        start = time.monotonic()
        found = resolve(f"127.0.0.1:{port}", "a.example.net", "b.example.net", timeout=1.0)
    assert time.monotonic() - start < 5
    for name in ("a.example.net", "b.example.net"):
        assert found[name].addresses == ()
        assert any("timeout" in e for e in found[name].errors)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_resolver_specs_parse(spec: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(spec) == expected


@pytest.mark.parametrize("spec", ["dns.example.net", "127.0.0.1:0", "127.0.0.1:x", "[::1]x"])
def test_bad_resolver_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError, match="--resolver"):
        parse_resolver(spec)
