"""The lab's data model: which hosts exist, what listens on them, and what an auditor should say.

Plain frozen values; nothing here opens a socket. :class:`exposure_audit.lab.Lab` turns them
into listeners.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["GRADES", "SERVICE_KINDS", "ExpectedConsole", "LabHost", "LabService"]

#: What ``LabService.kind`` may be. ``http``/``https``: an HTTP/1.1 server answering from the
#: route table named by ``site``. ``banner``: a line-protocol service (greeting or
#: request/response) named by ``site``. ``silent``: accepts, reads, never says a byte.
SERVICE_KINDS = ("http", "https", "banner", "silent")

#: The grades an auditor gives, best first (the tool's ``?`` is never an expectation).
GRADES = ("A", "B", "C", "D", "F")


@dataclass(frozen=True)
class LabService:
    """One TCP listener of a lab host.

    ``site`` names a route table (:data:`exposure_audit.lab.sites.SITES`) for ``http`` and
    ``https``, or a banner service (:data:`exposure_audit.lab.banners.BANNERS`) for ``banner``;
    it is free text for ``silent``. ``note`` says why the service is there, for humans.

    Raises ``ValueError`` for a port outside 1-65535 or an unknown kind; whether ``site`` exists
    is checked when a :class:`~exposure_audit.lab.Lab` is built from it.
    """

    port: int
    kind: str
    site: str
    note: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is outside 1-65535")
        if self.kind not in SERVICE_KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(SERVICE_KINDS)}")


@dataclass(frozen=True)
class ExpectedConsole:
    """The management console a correct auditor finds on a lab host: the catalog ``product``
    id, the ``version`` it reads without a login (None when the box discloses none), and the
    ``rule`` id with the ``severity`` label its exposure deserves (``MGMT001`` critical over
    plain HTTP, ``MGMT002`` high over HTTPS, critical when it acts without a login; DSM and SRM
    keep their own rules)."""

    product: str
    version: str | None
    rule: str
    severity: str


@dataclass(frozen=True)
class LabHost:
    """One imitated box: an address, its listeners and the verdict a correct auditor reaches.

    ``address`` is a loopback address (127.0.0.0/8 or ::1): the lab never binds anything else,
    except for a host marked ``in_netns``. That flag is for network-namespace labs only (the
    UPnP lab in ``tests/netns`` runs a NAS on 192.168.50.10 inside a namespace it created):
    the address may then also be a private or documentation address (RFC 1918, RFC 5737, ...),
    never a globally routable one, and the lab must run inside the namespace that holds it
    (``ip netns exec NS python -m exposure_audit.lab nas --address ADDR``); elsewhere the bind
    fails because no interface has the address.
    ``expect_grade`` is one of :data:`GRADES`; ``expect_dsm`` is the DSM version-build a
    correct scanner reads from the box (``"4.3-3810"``), or None when the box is not DSM.
    ``extra_addresses`` are further loopback addresses of the same box (its IPv6 side); every
    service listens on them too. ``expect_console`` is the management console of the catalog
    the box shows, or None.

    Raises ``ValueError`` for a non-loopback address (a global one with ``in_netns``), an
    unknown grade or a port used twice.
    """

    name: str
    address: str
    role: str
    services: tuple[LabService, ...]
    expect_grade: str
    expect_dsm: str | None
    extra_addresses: tuple[str, ...] = ()
    in_netns: bool = False
    expect_console: ExpectedConsole | None = None

    def __post_init__(self) -> None:
        for address in (self.address, *self.extra_addresses):
            ip = ipaddress.ip_address(address)
            if ip.is_loopback:
                continue
            if not self.in_netns:
                raise ValueError(f"{self.name}: {address} is not a loopback address")
            if ip.is_global or not ip.is_private:
                raise ValueError(
                    f"{self.name}: {address} is neither a loopback nor a private or "
                    "documentation address (required even inside a network namespace)"
                )
        if self.expect_grade not in GRADES:
            raise ValueError(f"{self.name}: grade {self.expect_grade!r} is not one of {GRADES}")
        ports = [s.port for s in self.services]
        if len(ports) != len(set(ports)):
            raise ValueError(f"{self.name}: a port is listed twice in {sorted(ports)}")

    @property
    def ports(self) -> tuple[int, ...]:
        """The declared TCP ports, ascending."""
        return tuple(sorted(s.port for s in self.services))
