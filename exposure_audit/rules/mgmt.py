"""Management-interface rules (MGMT001, MGMT002, MGMT004): web consoles on the Internet.

The HTTP probe leaves a :class:`~exposure_audit.observations.ManagementObservation` on a port
where two independent catalog markers matched (:mod:`exposure_audit.mgmt`). MGMT001 fires for
such a console served over plain HTTP (critical), MGMT002 over HTTPS (high); either is critical
whatever the scheme when the probe saw the console act without a login (its evidence is in the
finding). MGMT004 fires for a password prompt (an HTTP 401 challenge, or a password field on
the landing page) that nothing identified: what a console with a login looks like when the
catalog does not know it or it hides its name (Syncthing with a GUI password).
MGMT003, known-exploited versions, lives in :mod:`.mgmt_exploited`.

A port that speaks TLS and plain HTTP alike (CUPS 2.4 on 631) and served the console over
plain HTTP is judged by the worse: MGMT001, whichever scheme answered first.

Not here: DSM and SRM (the catalog's ``reference_only`` products: their observation names them
for the report, and DSM001-DSM005 and SVC002 judge them), and single-marker "looks like" hints,
which are notes in the report and never a finding or a grade change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ..findings import Rule, Severity
from ..mgmt import load_catalog
from ..observations import HostObservation, ManagementObservation, ServiceObservation
from ..ports import is_management_port
from ._base import Match, Registered

__all__ = ["REGISTERED", "product_advice"]

_SYNOLOCKER_REF = "https://www.synology.com/en-global/security/advisory/SynoLocker"
_OFF_INTERNET = (
    "Take the management interface off the Internet: remove the router's port forward (and any "
    "UPnP mapping) that exposes it, bind it to the LAN, and reach it through a VPN instead. "
    "Keep it patched: every pre-authentication bug it ever has is reachable while it is exposed. "
    "The finding's evidence names the product and what to change on it."
)

# What to change on the product itself, beyond "off the Internet, through a VPN". Written from
# the vendors' own settings (docs/reference/management.md names the products and sources).
_ADVICE: dict[str, str] = {
    "qnap-qts": "QTS: turn off myQNAPcloud's auto router configuration (UPnP) and keep QTS "
    "updated (Control Panel > Firmware Update)",
    "asustor-adm": "ADM: turn off EZ-Router / UPnP port forwarding and keep ADM updated",
    "terramaster-tos": "TOS: turn off UPnP port forwarding and keep TOS updated",
    "wd-mycloud": "My Cloud: turn off cloud/remote access port forwarding and keep the firmware "
    "updated (older models get no more updates: keep them off the Internet)",
    "vmware-esxi": "ESXi: never forward 443/902 to the host; restrict the management network",
    "vmware-vcenter": "vCenter: never forward it; restrict access to the management network",
    "proxmox-ve": "Proxmox VE: restrict 8006 with the datacenter firewall to the admin network",
    "dell-idrac": "iDRAC: put the BMC on a dedicated management network",
    "hpe-ilo": "iLO: put the BMC on a dedicated management network",
    "supermicro-bmc": "the BMC: put it on a dedicated management network",
    "cockpit": "Cockpit: bind cockpit.socket to the LAN address (ListenStream) or stop it",
    "webmin": "Webmin: restrict allowed IPs (Webmin Configuration > IP Access Control)",
    "portainer": "Portainer: create the administrator account at once, or stop the container",
    "jupyter": "Jupyter: never run with an empty token and password; set a password "
    "(jupyter server password) and listen on 127.0.0.1",
    "home-assistant": "Home Assistant: finish onboarding (create the owner account) at once",
    "syncthing": "Syncthing: set a GUI user and password (Actions > Settings > GUI) and "
    "listen on 127.0.0.1:8384",
    "transmission": "Transmission: set rpc-authentication-required true with a user and "
    "password, and an rpc-whitelist",
    "cups": "CUPS: listen on localhost only (Listen localhost:631 in cupsd.conf)",
    "supervisor": "Supervisor: set username and password in [inet_http_server] and bind it "
    "to 127.0.0.1, or use [unix_http_server] only",
    "rabbitmq-management": "RabbitMQ: bind the management listener to the LAN "
    "(management.tcp.ip) and remove the guest user",
    "netdata": "Netdata: bind the web server to localhost ([web] bind to) or use a VPN",
}


def product_advice(product: str) -> str:
    """What to change on ``product`` (a catalog id) itself; "" when the catalog has nothing
    product-specific beyond taking it off the Internet."""
    return _ADVICE.get(product, "")


def _consoles(host: HostObservation) -> Iterator[tuple[ServiceObservation, ManagementObservation]]:
    """The identified consoles, bar the ``reference_only`` products (DSM, SRM), which have
    their own rules."""
    reference = {p.id for p in load_catalog() if p.reference_only}
    for service in host.open_services():
        management = service.management
        if management is not None and management.product not in reference:
            yield service, management


def _plain(service: ServiceObservation) -> bool:
    """Whether the console was served over plain HTTP (first, or beside TLS)."""
    http = service.http
    return http is not None and (http.scheme == "http" or http.also_plain_http)


def _describe(management: ManagementObservation) -> str:
    """``QNAP QTS / QuTS hero 5.1.4 (nas)``: name, version when disclosed, category."""
    version = f" {management.version}" if management.version else ""
    return f"{management.name}{version} ({management.category})"


def _consoles_over(host: HostObservation, plain: bool, transport: str) -> Iterator[Match]:
    """A match per identified console served over plain HTTP (``plain``) or only over HTTPS;
    critical when it was seen to act without a login."""
    for service, management in _consoles(host):
        if service.http is None or _plain(service) != plain:
            continue
        advice = product_advice(management.product)
        both = " (the port speaks TLS too)" if service.http.also_plain_http else ""
        evidence = (
            f"{_describe(management)} reachable over {transport} on {service.port}/tcp{both} "
            f"(markers: {', '.join(management.markers)})" + (f"; {advice}" if advice else "")
        )
        if management.unauthenticated:
            yield Match(
                service,
                f"{evidence}; acts without a login: {management.unauthenticated}",
                Severity.CRITICAL,
                f"acts without a login: {management.unauthenticated}",
            )
        else:
            yield Match(service, evidence)


def _default_port_owners() -> dict[int, tuple[str, ...]]:
    """Catalog product names by the TCP ports they use by default (DSM's 5000/5001 included)."""
    owners: dict[int, list[str]] = {}
    for product in load_catalog():
        for default in product.ports:
            owners.setdefault(default.port, []).append(product.name)
    return {port: tuple(dict.fromkeys(names)) for port, names in owners.items()}


def _check_login_prompt(host: HostObservation, now: datetime) -> Iterator[Match]:
    """A password prompt (a 401 challenge, or a password field on the landing page) that
    nothing identified: medium on a port a management product uses by default, low elsewhere
    (often a password-protected site)."""
    owners = _default_port_owners()
    for service in host.open_services():
        http = service.http
        if http is None or http.login_prompt is None:
            continue
        if http.management is not None or http.dsm is not None or http.srm:
            continue  # identified: MGMT001/MGMT002 or the DSM rules judge it
        evidence = (
            f"{service.port}/tcp answers {http.scheme.upper()} with a password prompt "
            f"({http.login_prompt}); the product was not identified"
        )
        if http.scheme == "http":
            evidence += "; over plain HTTP the password would cross the Internet in clear text"
        looks_like = [f"{hint.name} ({hint.marker})" for hint in http.management_hints]
        if looks_like:
            evidence += f"; looks like {', '.join(looks_like)}"
        names = owners.get(service.port, ())
        if names or is_management_port(service.protocol, service.port):
            owner = f" of {', '.join(names)}" if names else " of a management interface"
            yield Match(service, f"{evidence}; {service.port} is the default port{owner}")
        else:
            yield Match(
                service,
                evidence,
                Severity.LOW,
                f"{service.port} is no management product's default port",
            )


def _check_plain(host: HostObservation, now: datetime) -> Iterator[Match]:
    return _consoles_over(host, True, "plain HTTP")


def _check_tls(host: HostObservation, now: datetime) -> Iterator[Match]:
    return _consoles_over(host, False, "HTTPS")


_RATIONALE = (
    "A web management interface (NAS, hypervisor, BMC, router, server or container console, "
    "notebook, download or sync client) answers from the Internet. SynoLocker (2014) ransomed "
    "Synology boxes through exactly this; QNAP (Qlocker, DeadBolt), ASUSTOR and ESXi boxes "
    "were ransomed the same way later. Exposed, the console meets every pre-authentication "
    "bug it will ever have, and password guessing. A console that acts without a login "
    "(Jupyter without a token, Supervisor, Transmission without a password, Portainer before "
    "its first account) is handed to the first visitor: critical whatever the scheme."
)

REGISTERED: tuple[Registered, ...] = (
    Registered(
        Rule(
            "MGMT001",
            "Management interface reachable over plain HTTP",
            Severity.CRITICAL,
            _RATIONALE + " Over plain HTTP its passwords and sessions also cross the Internet "
            "in clear text.",
            _OFF_INTERNET,
            (_SYNOLOCKER_REF,),
        ),
        _check_plain,
    ),
    Registered(
        Rule(
            "MGMT002",
            "Management interface reachable over HTTPS",
            Severity.HIGH,
            _RATIONALE + " TLS protects the password in transit, not the interface.",
            _OFF_INTERNET,
            (_SYNOLOCKER_REF,),
        ),
        _check_tls,
    ),
    Registered(
        Rule(
            "MGMT004",
            "Password prompt of an unidentified web interface reachable",
            Severity.MEDIUM,
            "A port answers with a password prompt (a 401 and its WWW-Authenticate "
            "challenge, or a login page with a password field) and nothing names the product, "
            "so the scanner cannot tell what it guards. A prompt is how most management "
            "interfaces greet a stranger (routers, cameras, NAS boxes, BMCs; Syncthing's GUI "
            "with a password shows nothing else), and every password on the Internet is "
            "guessed at. Medium on a port that a "
            "management product uses by default, low elsewhere, where it is often a "
            "password-protected site. Not identified is not safe: the product behind it "
            "keeps its own flaws.",
            "Find which device answers (the router's port forwards and UPnP mappings). If it "
            "is a management interface, take it off the Internet and reach it through a VPN; "
            "if it must stay, keep it patched, serve it over HTTPS only and give it a long "
            "unique password. Then audit again.",
            (_SYNOLOCKER_REF,),
        ),
        _check_login_prompt,
    ),
)
