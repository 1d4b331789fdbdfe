"""UPnP rules (UPNP001-UPNP004): what the router's or a device's UPnP tells the Internet.

UPNP001: SSDP answers discovery from outside; UPNP002: the IGD description or control URL is
reachable; UPNP003: an exposed service is forwarded by a UPnP port mapping; UPNP004: the SSDP
SERVER banner names a stack with known remote flaws (the knowledge is :mod:`exposure_audit.upnp`).
:func:`describe_mapping` writes a port mapping the way findings and tables show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlsplit

from ..findings import Rule, Severity
from ..observations import HostObservation, PortMapping, ServiceObservation
from ..upnp import vulnerable_stack
from ._base import Match, Registered

_UPNP_OFF = (
    "Turn off UPnP on the router (at the very least on its WAN side), turn off DSM's automatic "
    "router configuration (Control Panel > External Access > Router Configuration), and remove "
    "the listed port mappings; forward by hand only what must be public, and nothing that "
    "manages the NAS."
)


def _ssdp_port(host: HostObservation) -> ServiceObservation:
    # SSDP has no nmap-discovered service: findings about it sit on 1900/udp.
    return ServiceObservation(1900, "udp", "open", "ssdp")


def _check_ssdp(host: HostObservation, now: datetime) -> Iterator[Match]:
    if host.upnp is None or not host.upnp.ssdp:
        return
    first = host.upnp.ssdp[0]
    parts = [f"{len(host.upnp.ssdp)} SSDP answer(s) to M-SEARCH on 1900/udp"]
    if first.server:
        parts.append(f"SERVER {first.server}")
    if first.location:
        parts.append(f"LOCATION {first.location}")
    yield Match(_ssdp_port(host), "; ".join(parts))


def _check_igd(host: HostObservation, now: datetime) -> Iterator[Match]:
    upnp = host.upnp
    # Only a gateway's description matters here: a NAS's own device description (DSM's
    # desc-DSM-eth0.xml) has no port-mapping table to read or write.
    if upnp is None or upnp.igd is None or not (upnp.igd.is_gateway or upnp.control_url):
        return
    igd = upnp.igd
    port = urlsplit(igd.url).port or 80
    what = igd.friendly_name or igd.model_name or igd.device_type or "UPnP device"
    evidence = f"device description {igd.url} ({what}) answered from outside"
    if upnp.mappings_readable:
        evidence += (
            f"; control URL {upnp.control_url} answered: {len(upnp.mappings)} port mapping(s) "
            "readable by anyone"
        )
    elif upnp.control_url:
        evidence += f"; control URL {upnp.control_url} did not give its mapping table"
    yield Match(ServiceObservation(port, "tcp", "open", "upnp"), evidence)


def describe_mapping(mapping: PortMapping) -> str:
    """``5000/TCP -> 192.168.50.10:5000 'DSM 5000' (lease 0 s)``, for evidence and tables."""
    lease = "permanent" if mapping.lease_duration == 0 else f"lease {mapping.lease_duration} s"
    return (
        f"{mapping.external_port}/{mapping.protocol.upper()} -> {mapping.internal_client}:"
        f"{mapping.internal_port} '{mapping.description}' ({lease})"
    )


def _check_forwarded(host: HostObservation, now: datetime) -> Iterator[Match]:
    source = host.forwarding.source if host.forwarding else "router"
    for service in host.open_services():
        if service.upnp_mapping is not None:
            yield Match(
                service,
                f"{service.port}/{service.protocol} is forwarded by the UPnP mapping "
                f"{describe_mapping(service.upnp_mapping)} (seen in the {source} table)",
            )


def _check_stack(host: HostObservation, now: datetime) -> Iterator[Match]:
    if host.upnp is None:
        return
    seen: dict[str, str] = {}
    reliable = False
    for reply in host.upnp.ssdp:
        for verdict in vulnerable_stack(reply.server):
            reliable = reliable or verdict.banner_reliable
            maybe = "" if verdict.banner_reliable else "possibly, "
            seen.setdefault(
                verdict.key,
                f"SERVER '{reply.server}': {verdict.product} {verdict.version} "
                f"({maybe}fixed in {verdict.fixed_in}): {', '.join(verdict.cves)}",
            )
    if seen:
        yield Match(
            _ssdp_port(host),
            "; ".join(seen.values()),
            None if reliable else Severity.HIGH,
            ""
            if reliable
            else "possibly vulnerable: vendors backport fixes without changing "
            "the version in the banner",
        )


# This topic's rules, in id order; the registry (rules/__init__.py) collects them into RULES.
REGISTERED: tuple[Registered, ...] = (
    Registered(
        Rule(
            "UPNP001",
            "SSDP answers M-SEARCH on the Internet-facing address",
            Severity.HIGH,
            "A UPnP device that answers discovery from the Internet tells anyone its stack and "
            "where its description lives (LOCATION often leaks a private LAN address and port), "
            "and can be abused for SSDP reflection (Rapid7 counted 81 million such devices in "
            "2013).",
            _UPNP_OFF,
            ("https://www.rapid7.com/research/report/security-flaws-in-universal-plug-and-play/",),
        ),
        _check_ssdp,
    ),
    Registered(
        Rule(
            "UPNP002",
            "IGD description or control URL reachable from the Internet",
            Severity.CRITICAL,
            "A router that serves its Internet Gateway Device description and control URL on its "
            "WAN side lets anyone read its port-mapping table and, on bad firmware, add mappings "
            "that forward the Internet into the LAN (Akamai's UPnProxy found 65,000+ routers "
            "abused this way).",
            _UPNP_OFF + " Update the router's firmware.",
            ("https://www.akamai.com/blog/security/upnproxy-blackhat-seo-and-compromised-routers",),
        ),
        _check_igd,
    ),
    Registered(
        Rule(
            "UPNP003",
            "A service reachable from the Internet is forwarded by a UPnP mapping",
            Severity.MEDIUM,
            "The port was opened by a device on the LAN asking the router over UPnP (DSM's router "
            "configuration does this for 5000/5001), often without the owner knowing. The "
            "service's own findings keep their severity and name the mapping.",
            _UPNP_OFF,
            (),
        ),
        _check_forwarded,
    ),
    Registered(
        Rule(
            "UPNP004",
            "SSDP SERVER names a UPnP stack with known remote vulnerabilities",
            Severity.CRITICAL,
            "The UPnP stack named in the SSDP answer has published remote code execution or "
            "memory corruption flaws reachable with one UDP packet (Rapid7 2013: MiniUPnPd before "
            "1.4, libupnp before 1.6.18).",
            "Update the router's or device's firmware; until then, "
            + _UPNP_OFF[0].lower()
            + _UPNP_OFF[1:],
            ("https://www.rapid7.com/research/report/security-flaws-in-universal-plug-and-play/",),
        ),
        _check_stack,
    ),
)
