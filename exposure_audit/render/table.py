"""Renderers: a :class:`~exposure_audit.report.Report` to text, in table or CSV form (the JSON
form is the codec's document: :func:`exposure_audit.render.render_json`).

Pure functions. Every string that came from a target (titles, banners, server headers, and the
evidence built from them) goes through :func:`~exposure_audit.text.printable` (table) or
:func:`~exposure_audit.text.csv_cell` (CSV) before output.
"""

from __future__ import annotations

import csv
import io

from ..codec import reported_services
from ..diff import ReportDiff
from ..findings import Finding
from ..observations import HostObservation, PortMapping, ServiceObservation
from ..report import HostReport, Report
from ..text import csv_cell, printable
from ._fit import DEFAULT_WIDTH, MIN_WIDTH, clip, fit_table, wrap
from ._view import (
    FIX_FIRST_SHOWN,
    Action,
    action_places,
    diff_runs,
    first_actions,
    fix_first,
    host_actions,
    name_remarks,
    plural,
    service_category,
    service_product,
    service_reachability,
    verdict,
    where,
)
from .diff import render_diff_table

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
        printable(service.http.scheme if service.http else service.service, 40),
        printable(service_product(service, host), 120),
        service_category(service),
    ]
    if host.vantages:
        row.append(printable(service_reachability(service, host), 120))
    return row


def _action_line(action: Action, label: str, width: int) -> list[str]:
    places = printable(action_places(action), 1000)
    head = f"{places} ({', '.join(action.rules)}; {action.severity.label})"
    return wrap(f"{head}: {printable(action.text, 4000)}", width, label, " " * len(label))


def _host_block(host: HostReport, width: int, numbered: dict[tuple[str, ...], int]) -> list[str]:
    """One host: its headline, what to do first, its services and findings, the remediation
    of everything else (each text once), accepted risks, UPnP, what could not be tested.

    ``numbered`` maps the findings' ids of each action in the run's "fix first" list to its
    number there: the host refers to it instead of repeating its text."""
    obs = host.observation
    names = f" ({', '.join(obs.hostnames)})" if obs.hostnames else ""
    vantages = f"  audited from {', '.join(obs.vantages)}" if obs.vantages else ""
    lines = wrap(
        printable(
            f"== {obs.address}{names}  [{obs.family.value}]  grade {host.grade.value}  "
            f"{obs.status.value}{vantages}",
            1000,
        ),
        width,
        "",
        "   ",
    )
    shown: set[str] = set()  # ids of the findings whose remediation this host already shows
    refs: list[int] = []
    own: list[Action] = []
    for action in first_actions(host):
        ids = {f.id for f in action.findings}
        number = next((n for key, n in numbered.items() if ids & set(key)), None)
        if number is None:
            own.append(action)
        elif number not in refs:
            refs.append(number)
        shown |= ids
    if refs:
        listed = ", ".join(map(str, sorted(refs)))
        lines += wrap(f"do first: fix first {listed} above", width, "   ", "   ")
    if own:
        lines.append("   do first:")
        for action in own:
            lines += wrap(
                f"{', '.join(action.places(host.address))} ({', '.join(action.rules)}): "
                f"{printable(action.text, 4000)}",
                width,
                "   - ",
                "     ",
            )
    services = reported_services(obs)
    if services:
        headers = ["port", "state", "service", "product", "category"]
        headers += ["vantages"] if obs.vantages else []
        flexible = {3, 5} if obs.vantages else {3}
        lines += fit_table(
            headers,
            [_service_row(s, obs) for s in services],
            width,
            flexible=flexible | {2, 4},
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
        lines += fit_table(
            ["severity", "rule", "port", "finding", "evidence"],
            rows,
            width,
            flexible={3, 4},
            caps=[None, None, None, 40, 60],
        )
        rest = [a for a in host_actions(host) if not {f.id for f in a.findings} <= shown]
        if rest:
            lines.append("")
            lines.append("   remediation:")
            for action in rest:
                lines += wrap(
                    f"{', '.join(action.rules)}: {printable(action.text, 4000)}",
                    width,
                    "   ",
                    "     ",
                )
    for f in accepted:
        assert f.acceptance is not None
        lines += wrap(
            f"accepted: {f.rule} {where(f)} ({f.severity.label}) "
            f"by {printable(f.acceptance.owner)} until {f.acceptance.expires}: "
            f"{printable(f.acceptance.reason)}",
            width,
            "   ",
            "     ",
        )
    extra = _upnp_lines(obs)
    extra += [f"! {printable(error)}" for error in obs.errors]
    for attempt in obs.attempts:
        if attempt.status.value in ("timed_out", "error"):
            port = f" on port {attempt.port}" if attempt.port else ""
            extra.append(
                f"! {attempt.probe} {attempt.status.value}{port}: {printable(attempt.reason)}"
            )
    extra += [f"note: {printable(note)}" for note in obs.notes]
    for line in extra:
        lines += wrap(line, width, "   ", "     ")
    return lines


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
                f"SSDP answer: SERVER {printable(reply.server, 120)}; "
                f"LOCATION {printable(reply.location, 120)}"
            )
        if upnp.igd is not None:
            lines.append(f"IGD description reachable: {printable(upnp.igd.url, 120)}")
        for mapping in upnp.mappings:
            lines.append(f"UPnP mapping (read over the WAN): {_mapping_text(mapping)}")
    forwarding = obs.forwarding
    if forwarding is not None:
        for service in obs.open_services():
            if service.upnp_mapping is not None:
                lines.append(
                    f"{service.port}/{service.protocol} forwarded by UPnP "
                    f"({forwarding.source}): {_mapping_text(service.upnp_mapping)}"
                )
        for mapping in forwarding.mapped_unreachable:
            lines.append(
                f"mapped but not reachable from here (filtered upstream? CGNAT?): "
                f"{_mapping_text(mapping)}"
            )
        for port in forwarding.unmapped_reachable:
            lines.append(f"{port}/tcp reachable with no UPnP mapping: manual forward, DMZ or IPv6")
    return lines


def _changes(diff: ReportDiff | None, width: int) -> list[str]:
    """The ``--compare`` section, right after the verdict."""
    if diff is None:
        return ["changes: no earlier complete run to compare with"]
    old, _ = diff_runs(diff)
    return [f"changes since {old}:", *render_diff_table(diff, width=width).rstrip("\n").split("\n")]


def _fix_first(report: Report, width: int) -> tuple[list[str], dict[tuple[str, ...], int]]:
    """The numbered "fix first" list (the head of :func:`fix_first`), and the findings' ids
    of each numbered action with its number."""
    actions = fix_first(report)
    if not actions:
        return [], {}
    lines = ["fix first:"]
    numbered: dict[tuple[str, ...], int] = {}
    for number, action in enumerate(actions[:FIX_FIRST_SHOWN], 1):
        lines += _action_line(action, f"{number:2d}. ", width)
        numbered[tuple(f.id for f in action.findings)] = number
    more = len(actions) - FIX_FIRST_SHOWN
    if more > 0:
        lines.append(f"    and {plural(more, 'more action')} in the hosts below")
    return lines, numbered


def render_table(
    report: Report,
    *,
    width: int = DEFAULT_WIDTH,
    diff: ReportDiff | None = None,
    compared: bool = False,
) -> str:
    """The terminal report, every line at most ``width`` cells (see :mod:`._fit`).

    It opens with the run's verdict (:func:`~._view.verdict`: the grade and what it does not
    cover, never a false all-clear); then, when the user asked to compare (``compared``), the
    changes since the earlier run (``diff``; None: there was none to compare with); then a short
    numbered "fix first" list (each action once, naming host and port); then the run's
    counts, ports, notes (:meth:`~exposure_audit.report.Report.run_notes`) and errors; then
    each host worst first (what to do first, services, findings, the rest's remediation once);
    last the names resolved and the addresses skipped."""
    width = max(width, MIN_WIDTH)
    head = wrap(f"verdict: {verdict(report)}", width, "", "  ")
    if compared or diff is not None:
        head += ["", *_changes(diff, width)]
    fix, numbered = _fix_first(report, width)
    if fix:
        head += ["", *fix]
    counts = ", ".join(f"{k} {v}" for k, v in report.severity_counts().items() if v) or "none"
    incomplete = len(report.incomplete_hosts())
    run = [
        f"exposure-audit {report.tool_version}: {plural(len(report.hosts), 'host')} "
        f"({incomplete} incomplete), findings: {counts}",
        f"ports: {report.ports.describe()}",
    ]
    if report.vantages:
        run.append(f"vantages: {printable(', '.join(report.vantages), 200)}")
    if not report.complete:
        run.append("RUN INCOMPLETE: the run was cut short; what was found is below")
    run += [f"note: {printable(note, 2000)}" for note in report.run_notes()]
    run += [f"error: {printable(error)}" for error in report.errors]
    tail = []
    for name in report.names:
        addrs = ", ".join(name.addresses) or "no address"
        chain = f" via {' -> '.join(name.cname_chain)}" if name.cname_chain else ""
        extra = name_remarks(name)
        tail.append(
            printable(f"name {name.name}{chain}: {addrs}" + (f" ({extra})" if extra else ""), 2000)
        )
    for skipped in report.skipped:
        skip = f"skipped {skipped.address} ({skipped.name}): {skipped.reason}"
        tail.append(printable(skip, 2000))
    lines = [*head, ""]
    for line in run:
        lines += wrap(line, width, "", "  ")
    for host in report.hosts_by_risk():
        lines += ["", *_host_block(host, width, numbered)]
    if tail:
        lines.append("")
        for line in tail:
            lines += wrap(line, width, "", "  ")
    return "\n".join(clip(lines, width)) + "\n"
