"""Writing a :class:`~exposure_audit.report.Report` as the versioned JSON document.

Pure. :func:`to_dict` makes the ``exposure-audit/1`` document (docs/report-schema.md) that
``--format json`` prints, the history stores and :func:`~exposure_audit.codec.report_from_dict`
reads back. Derived fields (``summary``, ``identified_as``, a service's ``not_reachable_from``,
a name's ``notes``) are computed here, for readers that do not have this package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..findings import Finding
from ..observations import (
    HostObservation,
    ManagementObservation,
    NameResolution,
    PortMapping,
    ServiceObservation,
    UpnpObservation,
)
from ..report import HostReport, Report
from ..upnp import is_upnp_server_header
from ..upnp.inventory import mapping_to_dict

__all__ = [
    "FORWARDED_BY_UPNP",
    "SCHEMA",
    "finding_dict",
    "host_dict",
    "identify",
    "iso_time",
    "management_dict",
    "mapping_dict",
    "name_notes",
    "reported_services",
    "to_dict",
]

SCHEMA = "exposure-audit/1"
"""The document's schema: :func:`to_dict` writes it and
:func:`~exposure_audit.codec.report_from_dict` reads no other."""

FORWARDED_BY_UPNP = "upnp"
"""A service's ``forwarding`` when a UPnP mapping forwards it (any other value: a manual
forward seen in the host's forwarding table)."""

_INVENTORY_ONLY = ("enabled", "remote_host")


def iso_time(moment: datetime) -> str:
    """An instant as the document writes it: ISO 8601 at full precision, UTC as ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def mapping_dict(mapping: PortMapping) -> dict[str, Any]:
    """A port mapping as the report writes it: the inventory's shape
    (:func:`~exposure_audit.upnp.inventory.mapping_to_dict`) less ``enabled`` and
    ``remote_host``, which a report does not carry."""
    return {k: v for k, v in mapping_to_dict(mapping).items() if k not in _INVENTORY_ONLY}


def identify(service: ServiceObservation, host: HostObservation) -> str:
    """What answered on the port, in words: nmap calls 5000/tcp "upnp" whatever it is, so the
    report says whether it is DSM, a UPnP description server, another web server or else."""
    http = service.http
    if http is None:
        return service.service or "unknown"
    if http.dsm is not None:
        return "Synology DSM"
    if http.srm:
        return "Synology SRM"
    if http.management is not None:
        return http.management.name
    igd = host.upnp.igd if host.upnp else None
    serves_description = igd is not None and f":{service.port}/" in igd.url
    if serves_description or (http.server and is_upnp_server_header(http.server)):
        return "UPnP description server"
    return "web server"


def _service_dict(service: ServiceObservation, host: HostObservation) -> dict[str, Any]:
    http = service.http
    dsm = service.dsm
    tls = service.tls
    vantages: dict[str, Any] = {}
    if host.vantages:  # only in a run audited from several vantages: else as before
        vantages = {
            "reachable_from": list(service.reachable_from),
            "not_reachable_from": list(host.unreachable_from(service)),
            "untested_from": list(service.untested_from),
        }
    return {
        "port": service.port,
        "protocol": service.protocol,
        "state": service.state,
        **vantages,
        "service": service.service,
        "identified_as": identify(service, host),
        "unidentified": service.unidentified or None,
        "product": service.product,
        "version": service.version,
        "banner": service.banner,
        "cpe": list(service.cpe),
        "http": None
        if http is None
        else {
            "scheme": http.scheme,
            "status_code": http.status_code,
            "server": http.server,
            "title": http.title,
            "redirects": [
                {"from": r.from_url, "location": r.location, "status_code": r.status_code}
                for r in http.redirects
            ],
            "srm": http.srm,
            "also_plain_http": http.also_plain_http,
            "login_prompt": http.login_prompt,
        },
        "tls": None
        if tls is None
        else {
            "subject": tls.subject,
            "issuer": tls.issuer,
            "not_before": iso_time(tls.not_before),
            "not_after": iso_time(tls.not_after),
            "self_signed": tls.self_signed,
            "synology_default": tls.synology_default,
            "subject_alt_names": list(tls.subject_alt_names),
            "sha256": tls.sha256,
        },
        "dsm": None
        if dsm is None
        else {
            "version": dsm.version,
            "build": dsm.build,
            "update": dsm.update,
            "model": dsm.model,
            "markers": list(dsm.markers),
            "version_source": dsm.version_source,
        },
        "management": management_dict(service.management),
        "management_hints": [
            {"product": h.product, "name": h.name, "marker": h.marker}
            for h in (http.management_hints if http else ())
        ],
        "upnp_mapping": mapping_dict(service.upnp_mapping) if service.upnp_mapping else None,
        "forwarding": _forwarding(service, host),
    }


def management_dict(management: ManagementObservation | None) -> dict[str, Any] | None:
    """An identified management interface as the report writes it (None: none identified)."""
    if management is None:
        return None
    return {
        "product": management.product,
        "name": management.name,
        "vendor": management.vendor,
        "category": management.category,
        "version": management.version,
        "markers": list(management.markers),
        "unauthenticated": management.unauthenticated,
    }


def _forwarding(service: ServiceObservation, host: HostObservation) -> str | None:
    if service.upnp_mapping is not None:
        return FORWARDED_BY_UPNP
    if host.forwarding is not None and service.port in host.forwarding.unmapped_reachable:
        return "manual forward, DMZ or IPv6"
    return None


def _upnp_dict(upnp: UpnpObservation | None, host: HostObservation) -> dict[str, Any] | None:
    if upnp is None and host.forwarding is None:
        return None
    igd = upnp.igd if upnp else None
    forwarding = host.forwarding
    return {
        "ssdp": [
            {
                "responder": r.responder,
                "server": r.server,
                "location": r.location,
                "st": r.st,
                "usn": r.usn,
            }
            for r in (upnp.ssdp if upnp else ())
        ],
        "igd": None
        if igd is None
        else {
            "url": igd.url,
            "device_type": igd.device_type,
            "friendly_name": igd.friendly_name,
            "manufacturer": igd.manufacturer,
            "model_name": igd.model_name,
            "model_number": igd.model_number,
            "services": [
                {"service_type": x.service_type, "control_url": x.control_url} for x in igd.services
            ],
            "control_url": upnp.control_url if upnp else None,
            "mappings_readable": upnp.mappings_readable if upnp else False,
            "external_address": upnp.external_address if upnp else None,
        },
        "mappings": [mapping_dict(m) for m in (upnp.mappings if upnp else ())],
        "mappings_source": forwarding.source if forwarding else None,
        "mapped_but_unreachable": [
            mapping_dict(m) for m in (forwarding.mapped_unreachable if forwarding else ())
        ],
    }


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A finding as the report (and the diff's ``before``/``after``) write it."""
    return {
        "id": finding.id,
        "rule": finding.rule,
        "severity": finding.severity.label,
        "address": finding.address,
        "port": finding.port,
        "protocol": finding.protocol,
        "title": finding.title,
        "evidence": finding.evidence,
        "remediation": finding.remediation,
        "severity_reason": finding.severity_reason,
        "acceptance": None
        if finding.acceptance is None
        else {
            "reason": finding.acceptance.reason,
            "owner": finding.acceptance.owner,
            "expires": finding.acceptance.expires.isoformat(),
            "expired": finding.acceptance.expired,
        },
    }


def reported_services(host: HostObservation) -> list[ServiceObservation]:
    """The services a report lists: every one but the closed ports."""
    return [s for s in host.services if s.state != "closed"]


def host_dict(host: HostReport) -> dict[str, Any]:
    """One entry of the report's ``hosts`` (what the history stores per finished host)."""
    obs = host.observation
    vantages = {"vantages": list(obs.vantages)} if obs.vantages else {}
    return {
        "address": obs.address,
        "family": obs.family.value,
        "hostnames": list(obs.hostnames),
        "grade": host.grade.value,
        "status": obs.status.value,
        **vantages,
        "services": [_service_dict(s, obs) for s in reported_services(obs)],
        "findings": [finding_dict(f) for f in host.findings],
        "errors": list(obs.errors),
        "notes": list(obs.notes),
        "upnp": _upnp_dict(obs.upnp, obs),
        "attempts": [
            {"probe": a.probe, "status": a.status.value, "port": a.port, "reason": a.reason}
            for a in obs.attempts
            if a.status.value != "completed" or a.reason
        ],
    }


def name_notes(name: NameResolution) -> list[str]:
    """What is worth saying about a name that resolved (missing record types, a Synology
    DDNS domain); nothing about its records when its lookup failed (the errors say it)."""
    notes = []
    if not name.errors:
        if not name.ipv4:
            notes.append("no A (IPv4) record")
        if not name.ipv6:
            notes.append("no AAAA (IPv6) record")
    if name.synology_domain:
        notes.append(f"Synology DDNS/QuickConnect domain ({name.synology_domain})")
    return notes


def to_dict(report: Report) -> dict[str, Any]:
    """The versioned JSON document (``"schema": "exposure-audit/1"``; docs/report-schema.md)."""
    return {
        "schema": SCHEMA,
        "tool": {"name": "exposure-audit", "version": report.tool_version},
        "started_at": iso_time(report.started_at),
        "finished_at": iso_time(report.finished_at),
        "complete": report.complete,
        "interrupted": report.interrupted,
        "summary": {
            "grade": report.grade.value,
            "hosts": len(report.hosts),
            "hosts_incomplete": len(report.incomplete_hosts()),
            "not_audited": len(report.not_audited),
            "findings": report.severity_counts(),
            "names": len(report.names),
            "skipped": len(report.skipped),
        },
        "ports": {"tcp": list(report.ports.tcp), "udp": list(report.ports.udp)},
        **({"vantages": list(report.vantages)} if report.vantages else {}),
        "names": [
            {
                "name": n.name,
                "ipv4": list(n.ipv4),
                "ipv6": list(n.ipv6),
                "cname_chain": list(n.cname_chain),
                "errors": list(n.errors),
                "synology_domain": n.synology_domain,
                "notes": name_notes(n),
            }
            for n in report.names
        ],
        "skipped": [
            {"address": s.address, "name": s.name, "reason": s.reason} for s in report.skipped
        ],
        "not_audited": [{"target": t.target, "reason": t.reason} for t in report.not_audited],
        "hosts": [host_dict(h) for h in report.hosts],
        "errors": list(report.errors),
        "notes": list(report.notes),
    }
