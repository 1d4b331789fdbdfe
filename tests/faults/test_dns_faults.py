"""The DNS server down (a closed UDP port: the resolver's socket is not connected, so no ICMP
error reaches it and the query times out) or answering slowly: each name carries its own
error, the addresses are scanned all the same, the exit code is the usual one (not 3), and the
wait is bounded by the resolver's timeout (5 s)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from .support import DnsServer, dns_server, run_cli

CLOSED = "127.91.2.10"  # nothing listens: a clean host (grade A)
LATE_ANSWER = "127.91.2.11"
RESOLVER_TIMEOUT = 5.0


def _scan(resolver: str, *targets: str) -> tuple[int, dict[str, Any], str, float]:
    began = time.monotonic()
    result = run_cli(
        "scan",
        *targets,
        "--allow-private",
        "-p",
        "5000",
        "--resolver",
        resolver,
        "--no-history",
        "--format",
        "json",
    )
    elapsed = time.monotonic() - began
    return result.returncode, json.loads(result.stdout or "{}"), result.stderr, elapsed


def test_a_dns_server_that_is_down_fails_each_name_and_the_run_goes_on() -> None:
    # Given a resolver address with nothing listening on its UDP port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.91.2.53", 0))
        port = probe.getsockname()[1]
    # When two names and an address are scanned through it
    code, doc, stderr, elapsed = _scan(
        f"127.91.2.53:{port}", "nas.example.test", "www.example.test", CLOSED
    )
    # Then the run ends as usual: the clean address is graded, exit 0
    assert code == 0, stderr
    assert doc["complete"] is True
    assert [h["address"] for h in doc["hosts"]] == [CLOSED]
    # And each name says, for both families, that the server did not answer, and which one
    names = {n["name"]: n for n in doc["names"]}
    assert set(names) == {"nas.example.test", "www.example.test"}
    for name in names.values():
        assert name["ipv4"] == [] and name["ipv6"] == []
        assert name["errors"] == [
            f"timeout: no answer for {family} within 5 s from 127.91.2.53:{port}"
            for family in ("A", "AAAA")
        ]
    # And the names were asked at once: the run took one resolver timeout, not four
    assert elapsed < RESOLVER_TIMEOUT + 5


def test_a_slow_dns_server_is_cut_by_the_resolver_timeout_per_name() -> None:
    # Given a DNS server that answers one name after 1 s and never answers the other
    server = DnsServer(
        "127.91.2.54", LATE_ANSWER, delays={"slow.example.test": None}, default_delay=1.0
    )
    with dns_server(server):
        code, doc, stderr, elapsed = _scan(
            server.spec, "slow.example.test", "late.example.test", CLOSED
        )
    # Then the name never answered times out on its own, the late one resolves and is scanned
    assert code == 0, stderr
    names = {n["name"]: n for n in doc["names"]}
    assert names["late.example.test"]["ipv4"] == [LATE_ANSWER]
    assert names["late.example.test"]["errors"] == []
    slow = names["slow.example.test"]
    assert slow["ipv4"] == [] and slow["ipv6"] == []
    assert f"timeout: no answer for A within 5 s from {server.spec}" in slow["errors"]
    assert sorted(h["address"] for h in doc["hosts"]) == [CLOSED, LATE_ANSWER]
    # And the whole run took the resolver's timeout, not the sum of the slow answers
    assert RESOLVER_TIMEOUT <= elapsed < RESOLVER_TIMEOUT + 5
