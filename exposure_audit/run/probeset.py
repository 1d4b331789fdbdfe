"""The probes one audit runs, bundled into one injected value.

After resolving names, an :class:`~exposure_audit.run.audit.Auditor` asks three things of the
outside world: a port scanner (discovery and ``-sV``), the HTTP/TLS fingerprint of an open TCP
port, and UPnP (SSDP replies, an IGD's description and mapping table). :class:`ProbeSet`
holds one of each behind a protocol, with the factory of the HTTP client the web and UPnP
probes share during a run, so a test can hand in a fake for any of them.
:func:`default_probes` is the one place the real probes are put together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from ..nmap.installed import match_http_response
from ..nmap.scanner import Scanner
from ..observations import SsdpReply
from ..probes.http import HttpProbeSettings, PortFingerprint, fingerprint_port, make_client
from ..probes.upnp import IgdReadResult, probe_description_ports, probe_ssdp, read_igd

__all__ = [
    "NetworkUpnpProber",
    "ProbeSet",
    "UpnpProber",
    "WebFingerprinter",
    "default_probes",
    "fingerprint_named",
]


class WebFingerprinter(Protocol):
    """The HTTP/TLS (and DSM) fingerprint of one open TCP port, over the run's ``client``:
    :func:`~exposure_audit.probes.http.fingerprint_port`, or a fake with its contract (never
    raises for network trouble or for anything a server sends; failures are in the returned
    attempt)."""

    def __call__(
        self,
        client: httpx.AsyncClient,
        address: str,
        port: int,
        *,
        hostname: str | None,
        settings: HttpProbeSettings,
    ) -> Awaitable[PortFingerprint]: ...


class UpnpProber(Protocol):
    """The UPnP probes, read-only, with the contracts of :mod:`exposure_audit.probes.upnp`:
    none raises for network trouble or hostile answers."""

    async def ssdp_replies(
        self, addresses: Sequence[str], *, wait: float
    ) -> dict[str, tuple[SsdpReply, ...]]:
        """Unicast SSDP searches to ``addresses``: replies per address, one wait of ``wait`` s."""
        ...

    async def read_igd(
        self, client: httpx.AsyncClient, location: str, *, public_address: str
    ) -> IgdReadResult:
        """The IGD a LOCATION names, fetched from ``public_address`` only."""
        ...

    async def find_descriptions(
        self, client: httpx.AsyncClient, address: str, ports: Sequence[int]
    ) -> list[IgdReadResult]:
        """UPnP descriptions (and the IGD behind one) on the usual paths of open ``ports``."""
        ...


@dataclass(frozen=True)
class NetworkUpnpProber:
    """The real :class:`UpnpProber`: :mod:`exposure_audit.probes.upnp` with its defaults."""

    async def ssdp_replies(
        self, addresses: Sequence[str], *, wait: float
    ) -> dict[str, tuple[SsdpReply, ...]]:
        return await probe_ssdp(addresses, wait=wait)

    async def read_igd(
        self, client: httpx.AsyncClient, location: str, *, public_address: str
    ) -> IgdReadResult:
        return await read_igd(client, location, public_address=public_address)

    async def find_descriptions(
        self, client: httpx.AsyncClient, address: str, ports: Sequence[int]
    ) -> list[IgdReadResult]:
        return await probe_description_ports(client, address, ports)


@dataclass(frozen=True)
class ProbeSet:
    """The probes of one audit. ``http_client`` makes the one HTTP client that ``web`` and
    ``upnp`` share for a run (the Auditor opens it when the run starts and closes it at its
    end, so its connection limit and request budget hold across both)."""

    scanner: Scanner
    web: WebFingerprinter
    upnp: UpnpProber
    http_client: Callable[[HttpProbeSettings], httpx.AsyncClient] = make_client


async def fingerprint_named(
    client: httpx.AsyncClient,
    address: str,
    port: int,
    *,
    hostname: str | None,
    settings: HttpProbeSettings,
) -> PortFingerprint:
    """:func:`~exposure_audit.probes.http.fingerprint_port` naming each web server as
    ``nmap -sV`` would, from the installed nmap's service probes
    (:func:`~exposure_audit.nmap.installed.match_http_response`; no name when nmap's file is
    not found)."""
    return await fingerprint_port(
        client, address, port, hostname=hostname, settings=settings, namer=match_http_response
    )


def default_probes(scanner: Scanner) -> ProbeSet:
    """The real probes around ``scanner`` (nmap, or a replay of an nmap run): HTTP/TLS by
    :mod:`~exposure_audit.probes.http` with nmap's web names (:func:`fingerprint_named`), UPnP
    by :mod:`~exposure_audit.probes.upnp`."""
    return ProbeSet(scanner, fingerprint_named, NetworkUpnpProber())
