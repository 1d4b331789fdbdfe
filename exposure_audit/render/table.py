"""Renderers: a :class:`~exposure_audit.report.Report` to text, in table, JSON or CSV form.

Pure functions. Every string that came from a target (titles, banners, server headers, and the
evidence built from them) goes through :func:`~exposure_audit.text.printable` (table) or
:func:`~exposure_audit.text.csv_cell` (CSV) before output; JSON escapes everything non-ASCII.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

from tabulate import tabulate

from ..findings import Finding
from ..observations import (
    HostObservation,
    NameResolution,
    PortMapping,
    ServiceObservation,
    UpnpObservation,
)
from ..report import HostReport, Report
from ..text import csv_cell, printable
from ..upnp import is_upnp_server_header

__all__ = [
    "FORMATS",
    "SCHEMA",
    "finding_dict",
    "host_dict",
    "reachability_text",
    "render",
    "render_csv",
    "render_json",
    "render_table",
    "to_dict",
]

SCHEMA = "exposure-audit/1"


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def mapping_dict(mapping: PortMapping) -> dict[str, Any]:
    """A port mapping in the shape the report and the inventory file share."""
    return {
        "external_port": mapping.external_port,
        "protocol": mapping.protocol,
        "internal_client": mapping.internal_client,
        "internal_port": mapping.internal_port,
        "description": mapping.description,
        "lease_duration": mapping.lease_duration,
    }


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
    igd = host.upnp.igd if host.upnp else None
    serves_description = igd is not None and f":{service.port}/" in igd.url
    if serves_description or (http.server and is_upnp_server_header(http.server)):
        return "UPnP description server"
    return "web server"


def reachability_text(
    reachable: Sequence[str], unreachable: Sequence[str], untested: Sequence[str]
) -> str:
    """A service's view from each vantage, in words: ``reachable from eu; not from us``, with
    ``; not tested from ap`` for vantages that could not tell. Vantage names are not made
    printable here (the caller's output format does that)."""
    parts = [f"reachable from {', '.join(reachable)}" if reachable else "reachable from none"]
    if unreachable:
        parts.append(f"not from {', '.join(unreachable)}")
    if untested:
        parts.append(f"not tested from {', '.join(untested)}")
    return "; ".join(parts)


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
        },
        "tls": None
        if tls is None
        else {
            "subject": tls.subject,
            "issuer": tls.issuer,
            "not_before": _iso(tls.not_before),
            "not_after": _iso(tls.not_after),
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
        "upnp_mapping": mapping_dict(service.upnp_mapping) if service.upnp_mapping else None,
        "forwarding": _forwarding(service, host),
    }


def _forwarding(service: ServiceObservation, host: HostObservation) -> str | None:
    if service.upnp_mapping is not None:
        return "upnp"
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


def _reported_services(host: HostObservation) -> list[ServiceObservation]:
    return [s for s in host.services if s.state != "closed"]


def host_dict(host: HostReport) -> dict[str, Any]:
    obs = host.observation
    vantages = {"vantages": list(obs.vantages)} if obs.vantages else {}
    return {
        "address": obs.address,
        "family": obs.family.value,
        "hostnames": list(obs.hostnames),
        "grade": host.grade.value,
        "status": obs.status.value,
        **vantages,
        "services": [_service_dict(s, obs) for s in _reported_services(obs)],
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


def _name_notes(name: NameResolution) -> list[str]:
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
        "started_at": _iso(report.started_at),
        "finished_at": _iso(report.finished_at),
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
                "notes": _name_notes(n),
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


def render_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=True) + "\n"


_CSV_COLUMNS = (
    "address",
    "hostnames",
    "port",
    "protocol",
    "rule",
    "severity",
    "title",
    "evidence",
    "remediation",
    "id",
    "host_grade",
    "host_status",
)


_CSV_VANTAGE_COLUMNS = ("reachable_from", "not_reachable_from", "untested_from")


def _vantage_cells(finding: Finding, host: HostObservation) -> tuple[str, str, str]:
    """The finding's service as seen from each vantage (space-separated names, like
    ``hostnames``); empty for host-level findings and ports that are not a listed service."""
    for service in host.services:
        if (service.port, service.protocol) == (finding.port, finding.protocol):
            return (
                " ".join(service.reachable_from),
                " ".join(host.unreachable_from(service)),
                " ".join(service.untested_from),
            )
    return ("", "", "")


def _run_status(report: Report) -> str:
    if report.interrupted:
        return "interrupted"
    return "complete" if report.complete else "incomplete"


def _csv_run_rows(report: Report) -> list[tuple[str, ...]]:
    """The run's errors and notes as rows before the findings: ``rule`` empty, ``title``
    ``run error`` or ``run note``, the text in ``evidence``, the run's grade and status in
    ``host_grade`` and ``host_status`` (so a run that audited nothing still says ``?``)."""
    grade, status = report.grade.value, _run_status(report)
    texts = [("run error", e) for e in report.errors]
    texts += [("run note", n) for n in report.run_notes()]
    return [("", "", "", "", "", "", title, text, "", "", grade, status) for title, text in texts]


def render_csv(report: Report) -> str:
    """One row per finding; cells are made inert for spreadsheets (no formula injection).

    The run's errors and notes come first, one row each, with an empty ``rule`` (see
    :func:`_csv_run_rows`). A run audited from several vantages has three more columns
    (``reachable_from``, ``not_reachable_from``, ``untested_from``: the finding's service as
    each vantage saw it).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS + (_CSV_VANTAGE_COLUMNS if report.vantages else ()))
    for run_row in _csv_run_rows(report):
        extra = ("", "", "") if report.vantages else ()
        writer.writerow([csv_cell(cell) for cell in run_row + extra])
    for host in report.hosts_by_risk():
        obs = host.observation
        for f in host.findings:
            row: tuple[str, ...] = (
                f.address,
                " ".join(obs.hostnames),
                str(f.port),
                f.protocol,
                f.rule,
                f.severity.label,
                f.title,
                f.evidence,
                f.remediation,
                f.id,
                host.grade.value,
                obs.status.value,
            )
            if report.vantages:
                row += _vantage_cells(f, obs)
            writer.writerow([csv_cell(cell) for cell in row])
    return out.getvalue()


def _service_row(service: ServiceObservation, host: HostObservation) -> list[str]:
    http = service.http
    what = service.service
    if http is not None:
        what = f"{http.scheme}: {identify(service, host)}"
    product = " ".join(p for p in (service.product, service.version) if p)
    if http is not None and http.title:
        product = product or f"title: {http.title}"
    dsm = service.dsm
    dsm_text = ""
    if dsm is not None:
        dsm_text = " ".join(
            p
            for p in (
                dsm.version or "DSM",
                f"build {dsm.build}" if dsm.build is not None else "",
                f"Update {dsm.update}" if dsm.update is not None else "",
                dsm.model or "",
            )
            if p
        )
    row = [
        f"{service.port}/{service.protocol}",
        service.state,
        printable(what, 60),
        printable(product, 60),
        printable(dsm_text, 60),
    ]
    if host.vantages:
        row.append(
            printable(
                reachability_text(
                    service.reachable_from, host.unreachable_from(service), service.untested_from
                ),
                120,
            )
        )
    return row


def _host_block(host: HostReport) -> str:
    obs = host.observation
    names = f" ({', '.join(obs.hostnames)})" if obs.hostnames else ""
    vantages = f"  audited from {printable(', '.join(obs.vantages), 200)}" if obs.vantages else ""
    lines = [
        f"== {obs.address}{names}  [{obs.family.value}]  grade {host.grade.value}  "
        f"{obs.status.value}{vantages}"
    ]
    services = _reported_services(obs)
    if services:
        headers = ["port", "state", "service", "product / title", "DSM"]
        lines.append(
            tabulate(
                [_service_row(s, obs) for s in services],
                headers=headers + (["vantages"] if obs.vantages else []),
                tablefmt="simple",
            )
        )
    else:
        lines.append("   no open ports found")
    accepted = [f for f in host.findings if not f.counts]
    counting = [f for f in host.findings if f.counts]
    if counting:
        rows = [
            [
                f.severity.label.upper() + (" (acceptance expired)" if f.acceptance else ""),
                f.rule,
                f"{f.port}/{f.protocol}" if f.port else "-",
                printable(f.title),
                printable(f.evidence),
            ]
            for f in sorted(counting, key=lambda f: (-f.severity, f.rule, f.port))
        ]
        lines.append("")
        lines.append(
            tabulate(
                rows,
                headers=["severity", "rule", "port", "finding", "evidence"],
                tablefmt="simple",
                maxcolwidths=[None, None, None, 40, 60],
            )
        )
        lines.append("")
        lines.append("   remediation:")
        seen: dict[str, str] = {}
        for f in counting:
            seen.setdefault(f.rule, f.remediation)
        lines.extend(f"   {rule}: {text}" for rule, text in seen.items())
    for f in accepted:
        assert f.acceptance is not None
        where = f"{f.port}/{f.protocol}" if f.port else "host"
        lines.append(
            f"   accepted: {f.rule} {where} ({f.severity.label}) by {printable(f.acceptance.owner)}"
            f" until {f.acceptance.expires}: {printable(f.acceptance.reason)}"
        )
    lines.extend(_upnp_lines(obs))
    for error in obs.errors:
        lines.append(f"   ! {printable(error)}")
    for attempt in obs.attempts:
        if attempt.status.value in ("timed_out", "error"):
            port = f" on port {attempt.port}" if attempt.port else ""
            lines.append(
                f"   ! {attempt.probe} {attempt.status.value}{port}: {printable(attempt.reason)}"
            )
    for note in obs.notes:
        lines.append(f"   note: {printable(note)}")
    return "\n".join(lines)


def _mapping_text(m: PortMapping) -> str:
    return (
        f"{m.external_port}/{m.protocol.upper()} -> {m.internal_client}:{m.internal_port} "
        f"'{printable(m.description, 80)}'"
    )


def _upnp_lines(obs: HostObservation) -> list[str]:
    lines: list[str] = []
    upnp = obs.upnp
    if upnp is not None:
        for reply in upnp.ssdp[:3]:
            lines.append(
                f"   SSDP answer: SERVER {printable(reply.server, 120)}; "
                f"LOCATION {printable(reply.location, 120)}"
            )
        if upnp.igd is not None:
            lines.append(f"   IGD description reachable: {printable(upnp.igd.url, 120)}")
        for mapping in upnp.mappings:
            lines.append(f"   UPnP mapping (read over the WAN): {_mapping_text(mapping)}")
    forwarding = obs.forwarding
    if forwarding is not None:
        for service in obs.open_services():
            if service.upnp_mapping is not None:
                lines.append(
                    f"   {service.port}/{service.protocol} forwarded by UPnP "
                    f"({forwarding.source}): {_mapping_text(service.upnp_mapping)}"
                )
        for mapping in forwarding.mapped_unreachable:
            lines.append(
                f"   mapped but not reachable from here (filtered upstream? CGNAT?): "
                f"{_mapping_text(mapping)}"
            )
        for port in forwarding.unmapped_reachable:
            lines.append(
                f"   {port}/tcp reachable with no UPnP mapping: manual forward, DMZ or IPv6"
            )
    return lines


def render_table(report: Report) -> str:
    """The terminal report: a summary line (the grade, and "nothing was audited" or "run
    interrupted" when so), the run's notes (:meth:`~exposure_audit.report.Report.run_notes`),
    names and errors, then each host worst first."""
    counts = ", ".join(f"{k} {v}" for k, v in report.severity_counts().items() if v) or "none"
    incomplete = len(report.incomplete_hosts())
    state = "".join(
        f", {words}"
        for words, applies in (
            ("nothing was audited", report.audited_nothing),
            ("run interrupted", report.interrupted),
        )
        if applies
    )
    head = [
        f"exposure-audit {report.tool_version}: grade {report.grade.value}{state}, "
        f"{len(report.hosts)} hosts ({incomplete} incomplete), findings: {counts}",
        f"ports: {report.ports.describe()}",
    ]
    if report.vantages:
        head.append(f"vantages: {printable(', '.join(report.vantages), 200)}")
    if not report.complete:
        head.append("RUN INCOMPLETE: the run was cut short; what was found is below")
    head += [f"note: {printable(note, 2000)}" for note in report.run_notes()]
    for name in report.names:
        addrs = ", ".join(name.addresses) or "no address"
        chain = f" via {' -> '.join(name.cname_chain)}" if name.cname_chain else ""
        extra = "; ".join(list(name.errors) + _name_notes(name))
        head.append(f"name {name.name}{chain}: {addrs}" + (f" ({extra})" if extra else ""))
    for skipped in report.skipped:
        head.append(f"skipped {skipped.address} ({skipped.name}): {skipped.reason}")
    for error in report.errors:
        head.append(f"error: {printable(error)}")
    blocks = [_host_block(h) for h in report.hosts_by_risk()]
    return "\n\n".join(["\n".join(head), *blocks]) + "\n"


FORMATS: dict[str, Callable[[Report], str]] = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
}


def render(report: Report, fmt: str) -> str:
    """Render in ``fmt`` (a key of :data:`FORMATS`); ``KeyError`` for an unknown format."""
    return FORMATS[fmt](report)
