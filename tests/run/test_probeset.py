"""The Auditor's probe seam: a fake web fingerprinter, scanner and UPnP prober, no network.

What the fingerprinter says decides what -sV is asked and what the report shows: the
Auditor's logic, on the ProbeSet it was handed, touches no socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import dns.asyncresolver
import httpx
import pytest

from exposure_audit.nmap.scanner import DiscoveryRequest, DiscoveryResult, Scanner, VersionInfo
from exposure_audit.observations import (
    HostStatus,
    HttpObservation,
    ProbeAttempt,
    ProbeStatus,
    ServiceObservation,
    SsdpReply,
)
from exposure_audit.ports import parse_ports
from exposure_audit.probes.http import HttpProbeSettings, PortFingerprint
from exposure_audit.probes.upnp import IgdReadResult
from exposure_audit.run.audit import Auditor, AuditSettings
from exposure_audit.run.probeset import ProbeSet, default_probes
from exposure_audit.targets import parse_item, plan_targets

HOST = "192.0.2.44"  # TEST-NET-1: never contacted, every probe here is a fake


class _Scanner(Scanner):
    """Discovery finds 22 and 5000 open; -sV says 22 is OpenSSH, and records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[dict[str, list[int]]] = []

    async def _discover(self, request: DiscoveryRequest) -> dict[str, DiscoveryResult]:
        services = tuple(ServiceObservation(p, "tcp", "open") for p in (22, 5000))
        return {a: DiscoveryResult(a, services) for a in request.addresses}

    async def versions(
        self, targets: Mapping[str, Sequence[int]], *, host_timeout: float
    ) -> tuple[dict[tuple[str, int], VersionInfo], set[str]]:
        self.asked.append({a: list(p) for a, p in targets.items()})
        found = {(a, 22): VersionInfo("ssh", "OpenSSH", "9.6p1", identified=True) for a in targets}
        return found, set()


class _NoUpnp:
    async def ssdp_replies(
        self, addresses: Sequence[str], *, wait: float
    ) -> dict[str, tuple[SsdpReply, ...]]:
        return {}

    async def read_igd(
        self, client: httpx.AsyncClient, location: str, *, public_address: str
    ) -> IgdReadResult:
        raise AssertionError("no SSDP reply names a LOCATION")

    async def find_descriptions(
        self, client: httpx.AsyncClient, address: str, ports: Sequence[int]
    ) -> list[IgdReadResult]:
        return []


def test_a_fake_web_fingerprinter_decides_what_version_detection_is_asked() -> None:
    settings = AuditSettings(
        ports=parse_ports("22,5000"), http=HttpProbeSettings(request_timeout=3.0)
    )
    fingerprinted: list[tuple[str, int, HttpProbeSettings]] = []

    async def web(
        client: httpx.AsyncClient,
        address: str,
        port: int,
        *,
        hostname: str | None,
        settings: HttpProbeSettings,
    ) -> PortFingerprint:
        fingerprinted.append((address, port, settings))
        if port == 5000:
            http = HttpObservation("http", 200, server="nginx", title="Synology DiskStation")
            return PortFingerprint(http, None, ProbeAttempt("http", ProbeStatus.COMPLETED))
        return PortFingerprint(None, None, ProbeAttempt("http", ProbeStatus.UNIDENTIFIED))

    scanner = _Scanner()
    auditor = Auditor(
        plan_targets([parse_item(HOST, "test")], allow_private=True),
        settings,
        probes=ProbeSet(scanner, web, _NoUpnp()),
        resolver=dns.asyncresolver.Resolver(configure=False),
    )
    report = asyncio.run(auditor.run())

    # Every open port went through the injected fingerprinter, with the run's HTTP settings.
    assert sorted(fingerprinted) == [(HOST, 22, settings.http), (HOST, 5000, settings.http)]
    # -sV is asked only about the port that did not speak HTTP.
    assert scanner.asked == [{HOST: [22]}]
    (host,) = report.hosts
    services = {s.port: s for s in host.observation.services}
    assert services[5000].http is not None and services[5000].http.server == "nginx"
    assert services[22].product == "OpenSSH" and not services[22].unidentified
    assert host.observation.status is HostStatus.COMPLETE
    assert report.complete


def test_an_auditor_takes_probes_or_a_scanner_not_both_nor_neither() -> None:
    plan = plan_targets([parse_item(HOST, "test")], allow_private=True)
    settings = AuditSettings(ports=parse_ports("22"))
    resolver = dns.asyncresolver.Resolver(configure=False)
    scanner = _Scanner()
    # A scanner alone is short for the real HTTP/TLS and UPnP probes around it.
    assert Auditor(plan, settings, scanner=scanner, resolver=resolver).probes == default_probes(
        scanner
    )
    with pytest.raises(TypeError):
        Auditor(plan, settings, resolver=resolver)
    with pytest.raises(TypeError):
        Auditor(plan, settings, probes=default_probes(scanner), scanner=scanner, resolver=resolver)
