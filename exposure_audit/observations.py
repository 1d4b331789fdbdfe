"""Observations: what the probes saw, as frozen values with no judgement attached.

Probes (``exposure_audit.probes``) produce these; rules read them. Nothing here carries a severity.
Every probe records a :class:`ProbeAttempt` so that "could not test" never reads as "safe".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "AddressFamily",
    "DsmFingerprint",
    "HostObservation",
    "HostStatus",
    "HttpObservation",
    "NameResolution",
    "ProbeAttempt",
    "ProbeStatus",
    "Redirect",
    "ServiceObservation",
    "TlsCertificate",
]


class AddressFamily(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"


class ProbeStatus(StrEnum):
    COMPLETED = "completed"
    ERROR = "error"
    SKIPPED = "skipped"
    TIMED_OUT = "timed_out"


class HostStatus(StrEnum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class ProbeAttempt:
    """One probe run against one host (or one port of it): what happened and why."""

    probe: str
    status: ProbeStatus
    reason: str = ""
    port: int | None = None


@dataclass(frozen=True)
class TlsCertificate:
    """The leaf certificate a TLS service presented (read without validating it)."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    self_signed: bool
    synology_default: bool
    subject_alt_names: tuple[str, ...] = ()
    sha256: str = ""

    def expired_at(self, moment: datetime) -> bool:
        return moment > self.not_after


@dataclass(frozen=True)
class DsmFingerprint:
    """Evidence that a port serves Synology DSM, and the version it leaked.

    ``markers`` names the independent anchors seen (``title``, ``meta-description``,
    ``synohdpack``, ...); a fingerprint exists only with two or more of them.
    ``version`` is ``x.y`` or ``x.y.z``; ``update`` is DSM's "Update N" (smallfixnumber) when
    the box leaked it, else None (unknown, not zero).
    """

    markers: tuple[str, ...]
    version: str | None = None
    build: int | None = None
    update: int | None = None
    model: str | None = None
    version_source: str | None = None


@dataclass(frozen=True)
class Redirect:
    """A redirect the scanner saw and did not follow because it leaves the target."""

    from_url: str
    location: str
    status_code: int


@dataclass(frozen=True)
class HttpObservation:
    """What an HTTP or HTTPS conversation on one port showed."""

    scheme: str
    status_code: int
    server: str | None = None
    title: str | None = None
    redirects: tuple[Redirect, ...] = ()
    dsm: DsmFingerprint | None = None
    srm: bool = False


@dataclass(frozen=True)
class ServiceObservation:
    """One port of one host as discovery and fingerprinting saw it.

    ``state`` is nmap's word (``open``, ``filtered``, ...). ``service`` is the best name known:
    ``http``/``https`` when the HTTP probe spoke to it, else nmap's guess.
    """

    port: int
    protocol: str
    state: str
    service: str = ""
    product: str = ""
    version: str = ""
    banner: str = ""
    http: HttpObservation | None = None
    tls: TlsCertificate | None = None

    @property
    def dsm(self) -> DsmFingerprint | None:
        return self.http.dsm if self.http else None


@dataclass(frozen=True)
class NameResolution:
    """What DNS said about one name: both families, the CNAME chain and any failure."""

    name: str
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    cname_chain: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    synology_domain: str | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.ipv4 + self.ipv6


@dataclass(frozen=True)
class HostObservation:
    """Everything the probes learned about one address."""

    address: str
    family: AddressFamily
    hostnames: tuple[str, ...] = ()
    services: tuple[ServiceObservation, ...] = ()
    status: HostStatus = HostStatus.COMPLETE
    attempts: tuple[ProbeAttempt, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def open_services(self) -> tuple[ServiceObservation, ...]:
        return tuple(s for s in self.services if s.state == "open")
