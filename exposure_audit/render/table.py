"""Renderers: a :class:`~exposure_audit.report.Report` to text, in table or CSV form (the JSON
form is the codec's document: :func:`exposure_audit.render.render_json`).

Pure functions. Every string that came from a target (titles, banners, server headers, and the
evidence built from them) goes through :func:`~exposure_audit.text.printable` (table) or
:func:`~exposure_audit.text.csv_cell` (CSV) before output.
"""

from __future__ import annotations

import csv
import io

from tabulate import tabulate

from ..codec import reported_services
from ..findings import Finding
from ..observations import HostObservation, PortMapping, ServiceObservation
from ..report import HostReport, Report
from ..text import csv_cell, printable
from ._view import (
    dsm_summary,
    name_remarks,
    product_or_title,
    run_state,
    service_kind,
    service_reachability,
    where,
)

__all__ = ["render_csv", "render_table"]


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
    row = [
        f"{service.port}/{service.protocol}",
        service.state,
        printable(service_kind(service, host), 60),
        printable(product_or_title(service), 60),
        printable(dsm_summary(service.dsm), 60),
    ]
    if host.vantages:
        row.append(printable(service_reachability(service, host), 120))
    return row


def _host_block(host: HostReport) -> str:
    obs = host.observation
    names = f" ({', '.join(obs.hostnames)})" if obs.hostnames else ""
    vantages = f"  audited from {printable(', '.join(obs.vantages), 200)}" if obs.vantages else ""
    lines = [
        f"== {obs.address}{names}  [{obs.family.value}]  grade {host.grade.value}  "
        f"{obs.status.value}{vantages}"
    ]
    services = reported_services(obs)
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
        lines.append(
            f"   accepted: {f.rule} {where(f)} ({f.severity.label}) "
            f"by {printable(f.acceptance.owner)} until {f.acceptance.expires}: "
            f"{printable(f.acceptance.reason)}"
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
    state = "".join(f", {words}" for words in run_state(report))
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
        extra = name_remarks(name)
        head.append(f"name {name.name}{chain}: {addrs}" + (f" ({extra})" if extra else ""))
    for skipped in report.skipped:
        head.append(f"skipped {skipped.address} ({skipped.name}): {skipped.reason}")
    for error in report.errors:
        head.append(f"error: {printable(error)}")
    blocks = [_host_block(h) for h in report.hosts_by_risk()]
    return "\n\n".join(["\n".join(head), *blocks]) + "\n"
