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
    "IgdDescription",
    "IgdService",
    "ManagementHint",
    "ManagementObservation",
    "NameResolution",
    "PortMapping",
    "ProbeAttempt",
    "ProbeStatus",
    "Redirect",
    "ServiceObservation",
    "SsdpReply",
    "TlsCertificate",
    "UpnpForwarding",
    "UpnpObservation",
]


class AddressFamily(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"


class ProbeStatus(StrEnum):
    """How a probe attempt ended. ``UNIDENTIFIED``: the port is open and the probes ran to
    the end, but what answers there could not be told (never read as "completed")."""

    COMPLETED = "completed"
    ERROR = "error"
    SKIPPED = "skipped"
    TIMED_OUT = "timed_out"
    UNIDENTIFIED = "unidentified"


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
class ManagementObservation:
    """A management interface of the catalog (``exposure_audit.mgmt``) identified on a port:
    two or more independent markers matched.

    ``product`` is the catalog id (``qnap-qts``), ``name``/``vendor``/``category`` the
    catalog's words for it; ``markers`` the catalog descriptions of what matched (never
    server text); ``version`` only when an unauthenticated place disclosed one.
    ``unauthenticated`` is the evidence, seen by the probe, that this console acts without a
    login (Jupyter's kernel list answering without a token, ...); None when that was not seen,
    which is "not shown", never "it requires a login".
    """

    product: str
    name: str
    vendor: str
    category: str
    markers: tuple[str, ...]
    version: str | None = None
    unauthenticated: str | None = None


@dataclass(frozen=True)
class ManagementHint:
    """One catalog marker alone on a port: "looks like ``name``" (``marker`` says which).
    A note for the reader, never an identification, a finding or a grade change."""

    product: str
    name: str
    marker: str


@dataclass(frozen=True)
class HttpObservation:
    """What an HTTP or HTTPS conversation on one port showed.

    ``management`` is the catalog product identified there (for a DSM or SRM page, the
    catalog's ``synology-dsm``/``synology-srm`` entry built from ``dsm``/``srm``, which keep
    their own rules); ``management_hints`` the single-marker possibilities, notes only.
    ``also_plain_http`` is True when ``scheme`` is https and the same port served the console
    over plain HTTP as well (one port speaking both, as CUPS 2.4 does on 631).
    ``login_prompt`` says what asked a visitor for a password on the page they land on (made
    printable, cut): ``WWW-Authenticate: <challenge>`` for a 401, ``a password field in the
    page at <path>`` for a login form. None when nothing did, or when that was not seen.
    """

    scheme: str
    status_code: int
    server: str | None = None
    title: str | None = None
    redirects: tuple[Redirect, ...] = ()
    dsm: DsmFingerprint | None = None
    srm: bool = False
    management: ManagementObservation | None = None
    management_hints: tuple[ManagementHint, ...] = ()
    also_plain_http: bool = False
    login_prompt: str | None = None


@dataclass(frozen=True)
class SsdpReply:
    """One answer to an SSDP M-SEARCH: who answered and the headers that matter.

    ``location`` is verbatim (it often names a private LAN address and port); ``headers`` keeps
    every header (lower-case names) for the report.
    """

    responder: str
    server: str = ""
    location: str = ""
    st: str = ""
    usn: str = ""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PortMapping:
    """One entry of an IGD's port-mapping table (GetGenericPortMappingEntry's fields)."""

    external_port: int
    protocol: str
    internal_client: str
    internal_port: int
    description: str = ""
    lease_duration: int = 0
    enabled: bool = True
    remote_host: str = ""


@dataclass(frozen=True)
class IgdService:
    """A service of a UPnP device description (absolute URLs)."""

    service_type: str
    control_url: str
    scpd_url: str = ""


@dataclass(frozen=True)
class IgdDescription:
    """A UPnP device description as fetched (``url`` is the URL actually fetched)."""

    url: str
    device_type: str = ""
    friendly_name: str = ""
    manufacturer: str = ""
    model_name: str = ""
    model_number: str = ""
    services: tuple[IgdService, ...] = ()

    @property
    def is_gateway(self) -> bool:
        return any(_is_wan_connection(s.service_type) for s in self.services)


def _is_wan_connection(service_type: str) -> bool:
    return "WANIPConnection" in service_type or "WANPPPConnection" in service_type


@dataclass(frozen=True)
class UpnpObservation:
    """What UPnP said about one address, seen from where the scan ran.

    ``mappings`` were read from the IGD's control URL (read-only) when it answered;
    ``mappings_readable`` says whether it did. ``external_address`` is GetExternalIPAddress.
    """

    ssdp: tuple[SsdpReply, ...] = ()
    igd: IgdDescription | None = None
    control_url: str | None = None
    mappings_readable: bool = False
    mappings: tuple[PortMapping, ...] = ()
    external_address: str | None = None

    @property
    def answered(self) -> bool:
        return bool(self.ssdp) or self.igd is not None


@dataclass(frozen=True)
class UpnpForwarding:
    """How UPnP mappings line up with what was reachable from outside, for one address.

    ``source`` says where the mappings came from: ``"wan"`` (read from the router over the
    Internet) or ``"inventory"`` (taken inside the LAN with ``upnp-inventory``).
    ``mapped_unreachable`` are mappings whose external port did not answer from outside
    ("mapped but filtered upstream": a CGNAT or ISP block sign); ``unmapped_reachable`` are
    reachable TCP ports no mapping explains ("manual forward, DMZ or IPv6").
    """

    source: str
    mapped_unreachable: tuple[PortMapping, ...] = ()
    unmapped_reachable: tuple[int, ...] = ()


@dataclass(frozen=True)
class ServiceObservation:
    """One port of one host as discovery and fingerprinting saw it.

    ``state`` is nmap's word (``open``, ``filtered``, ...). ``service`` is the best name known:
    ``http``/``https`` when the HTTP probe spoke to it, else nmap's guess. ``product``,
    ``version`` and ``banner`` (nmap's extra info) are what nmap's service detection names:
    ``-sV`` for a port that did not speak HTTP; for a web port, the installed nmap's
    ``nmap-service-probes`` matched against the answer to ``/`` (no ``-sV``), with the
    ``cpe`` names its line gives. Empty: nmap named nothing (unknown, never "clean").

    In a run audited from several vantage points (``exposure_audit.run.vantage``),
    ``reachable_from`` names the vantages (sorted) from which the port was seen open and
    ``untested_from`` those that audited the host but could not tell (the host was incomplete
    there, or the port or its protocol was not scanned from there); every other vantage of the
    host saw it not open. Both are empty in a run without vantages.

    ``unidentified`` says why nothing could tell what answers on an open TCP port (no answer
    within N s, unknown bytes, a stalled TLS handshake); "" when the service was identified
    (an HTTP/TLS fingerprint or an ``-sV`` match) or the question does not apply (a closed,
    filtered or UDP port, a port never probed).
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
    upnp_mapping: PortMapping | None = None
    reachable_from: tuple[str, ...] = ()
    untested_from: tuple[str, ...] = ()
    unidentified: str = ""
    cpe: tuple[str, ...] = ()

    @property
    def dsm(self) -> DsmFingerprint | None:
        return self.http.dsm if self.http else None

    @property
    def management(self) -> ManagementObservation | None:
        return self.http.management if self.http else None


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
    """Everything the probes learned about one address.

    ``vantages`` names the vantage points (sorted) whose reports held this host, in a run
    audited from several; empty in a run without vantages. A vantage whose audit of the host
    failed outright is not among them: it says nothing about the host's reachability.
    """

    address: str
    family: AddressFamily
    hostnames: tuple[str, ...] = ()
    services: tuple[ServiceObservation, ...] = ()
    status: HostStatus = HostStatus.COMPLETE
    attempts: tuple[ProbeAttempt, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    upnp: UpnpObservation | None = None
    forwarding: UpnpForwarding | None = None
    vantages: tuple[str, ...] = ()

    def open_services(self) -> tuple[ServiceObservation, ...]:
        return tuple(s for s in self.services if s.state == "open")

    def unidentified_services(self) -> tuple[ServiceObservation, ...]:
        """Open services nothing could identify: what answers there is not known."""
        return tuple(s for s in self.open_services() if s.unidentified)

    def unreachable_from(self, service: ServiceObservation) -> tuple[str, ...]:
        """The host's vantages from which ``service`` was scanned and not seen open (sorted);
        empty in a run without vantages."""
        return tuple(
            v
            for v in self.vantages
            if v not in service.reachable_from and v not in service.untested_from
        )
