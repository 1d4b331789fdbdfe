"""The report as Markdown, for e-mail, tickets and chat: the table report's structure, compact.

Pure. One headline (grade, "nothing was audited" or "run interrupted" when so), the verdict
(:func:`~._view.verdict`), counts by severity, the run's notes
(:meth:`~exposure_audit.report.Report.run_notes`), errors, names and skipped addresses, then
each host worst first: what to do first (:func:`~._view.first_actions`), its findings as a
table (severity, rule, port, title, evidence), the rest's remediation once per text, its
services (product and category), accepted risks apart, UPnP mappings, and what could not be
tested.

Every string that did not come from this package (banners, titles, server headers, evidence built
from them, host names, acceptance reasons) goes through :func:`md_text`: control and format
characters become visible escapes (:func:`~exposure_audit.text.printable`), and everything
Markdown would act on is backslash-escaped, so target text can open no link, image, HTML tag,
code span or emphasis and cannot end a table cell or row. GitHub-flavoured autolinks
(``http://``, ``www.``, ``user@host``) are broken with escapes too.
"""

from __future__ import annotations

from ..codec import reported_services
from ..findings import Finding
from ..observations import HostObservation, PortMapping, ServiceObservation
from ..report import HostReport, Report
from ..rules import describe_mapping
from ..text import md_text
from ._view import (
    FIX_FIRST_SHOWN,
    Action,
    action_places,
    first_actions,
    fix_first,
    host_actions,
    plural,
    run_state,
    service_category,
    service_product,
    service_reachability,
    timestamp,
    verdict,
    where,
)

__all__ = ["md_text", "render_markdown"]  # md_text lives in .text, shared with render_diff


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return lines


def _headline(report: Report, fix: list[str]) -> list[str]:
    counts = report.severity_counts()
    incomplete = len(report.incomplete_hosts())
    state = run_state(report)
    lines = [
        f"# Exposure audit: grade {report.grade.value}"
        + (f" ({', '.join(state)})" if state else ""),
        "",
        f"**Verdict**: {md_text(verdict(report), 2000)}",
        "",
        *fix,
        f"{plural(len(report.hosts), 'host')}, {incomplete} incomplete; "
        f"scanned {timestamp(report.started_at)} to {timestamp(report.finished_at)} "
        f"by exposure-audit {md_text(report.tool_version, 40)}; "
        f"ports tcp {','.join(map(str, report.ports.tcp)) or '-'}, "
        f"udp {','.join(map(str, report.ports.udp)) or '-'}"
        + (f"; vantages {md_text(', '.join(report.vantages), 200)}" if report.vantages else ""),
        "",
    ]
    lines += _table(
        [label.capitalize() for label in counts] + ["Accepted"],
        [[str(n) for n in counts.values()] + [str(report.accepted_count())]],
    )
    if not report.complete:
        lines += ["", "**Run incomplete**: the run was cut short; what was found is below."]
    notes = [f"- note: {md_text(n, 2000)}" for n in report.run_notes()]
    if notes:
        lines += ["", *notes]
    extra = [f"- error: {md_text(e)}" for e in report.errors]
    for name in report.names:
        addresses = ", ".join(name.addresses) or "no address"
        chain = f" via {' -> '.join(md_text(c, 100) for c in name.cname_chain)}"
        problems = "; ".join(md_text(e) for e in name.errors)
        extra.append(
            f"- name {md_text(name.name, 100)}{chain if name.cname_chain else ''}: "
            f"{md_text(addresses)}" + (f" ({problems})" if problems else "")
        )
    extra += [
        f"- skipped {md_text(s.address, 60)} ({md_text(s.name, 100)}): {md_text(s.reason)}"
        for s in report.skipped
    ]
    if extra:
        lines += ["", *extra]
    return lines


def _fix_first(report: Report) -> tuple[list[str], dict[frozenset[str], int]]:
    """The run's numbered "fix first" list (each action once, naming host and port), as the
    table opens with it, and the findings' ids of each listed action with its number; nothing
    when no host has a finding above info."""
    actions = fix_first(report)
    if not actions:
        return [], {}
    lines = ["**Fix first**", ""]
    numbered: dict[frozenset[str], int] = {}
    for number, action in enumerate(actions[:FIX_FIRST_SHOWN], 1):
        head = f"{action_places(action)} ({', '.join(action.rules)}; {action.severity.label})"
        lines.append(f"{number}. {md_text(head, 1000)}: {md_text(action.text, 4000)}")
        numbered[frozenset(f.id for f in action.findings)] = number
    more = len(actions) - FIX_FIRST_SHOWN
    if more > 0:
        lines += ["", f"_and {plural(more, 'more action')} in the hosts below_"]
    return [*lines, ""], numbered


def _first_items(host: HostReport, numbered: dict[frozenset[str], int]) -> list[str]:
    """A host's "what to do first": a pointer to each run-level "fix first" entry that covers
    it (its text is not repeated), then its own actions in full."""
    items: list[str] = []
    for action in first_actions(host):
        ids = {f.id for f in action.findings}
        number = next((n for key, n in numbered.items() if ids & key), None)
        if number is None:
            items.append(_action_item(action, len(items) + 1))
        else:
            items.append(f"{len(items) + 1}. Fix first {number} above ({action.rule_places()})")
    return items


def _finding_rows(findings: list[Finding]) -> list[list[str]]:
    rows = []
    for f in sorted(findings, key=lambda f: (-f.severity, f.rule, f.port)):
        severity = f"**{f.severity.label}**"
        if f.acceptance is not None:
            severity += " (acceptance expired)"
        rows.append([severity, f.rule, where(f), md_text(f.title, 200), md_text(f.evidence)])
    return rows


def _service_row(service: ServiceObservation, host: HostObservation) -> list[str]:
    product = service_product(service, host)
    if service.banner:
        product = f"{product} ({service.banner})" if product else service.banner
    row = [
        f"{service.port}/{service.protocol}",
        service.state,
        md_text(service.http.scheme if service.http else service.service, 60),
        md_text(product, 200),
        md_text(service_category(service), 60),
    ]
    if host.vantages:
        row.append(md_text(service_reachability(service, host), 200))
    return row


def _action_item(action: Action, number: int) -> str:
    """``1. Take DSM off the Internet ... (DSM001 on 5000/tcp; DSM002 on 5001/tcp)``."""
    return f"{number}. {md_text(action.text, 4000)} ({action.rule_places()})"


def _mapping(mapping: PortMapping) -> str:
    return md_text(describe_mapping(mapping), 200)


def _upnp_lines(obs: HostObservation) -> list[str]:
    lines: list[str] = []
    upnp = obs.upnp
    if upnp is not None:
        lines += [
            f"- SSDP answer: SERVER {md_text(r.server, 120)}; LOCATION {md_text(r.location, 120)}"
            for r in upnp.ssdp[:3]
        ]
        if upnp.igd is not None:
            lines.append(f"- IGD description reachable: {md_text(upnp.igd.url, 120)}")
        lines += [f"- mapping read over the WAN: {_mapping(m)}" for m in upnp.mappings]
    forwarding = obs.forwarding
    if forwarding is not None:
        source = md_text(forwarding.source, 40)
        lines += [
            f"- {s.port}/{s.protocol} forwarded by UPnP ({source}): {_mapping(s.upnp_mapping)}"
            for s in obs.open_services()
            if s.upnp_mapping is not None
        ]
        lines += [
            f"- mapped but not reachable from here (filtered upstream? CGNAT?): {_mapping(m)}"
            for m in forwarding.mapped_unreachable
        ]
        lines += [
            f"- {port}/tcp reachable with no UPnP mapping: manual forward, DMZ or IPv6"
            for port in forwarding.unmapped_reachable
        ]
    return lines


def _problem_lines(obs: HostObservation) -> list[str]:
    lines = [f"- error: {md_text(e)}" for e in obs.errors]
    for attempt in obs.attempts:
        if attempt.status.value in ("timed_out", "error"):
            port = f" on port {attempt.port}" if attempt.port else ""
            lines.append(
                f"- {md_text(attempt.probe, 40)} {attempt.status.value}{port}: "
                f"{md_text(attempt.reason)}"
            )
    lines += [f"- note: {md_text(n)}" for n in obs.notes]
    return lines


def _host_block(host: HostReport, numbered: dict[frozenset[str], int]) -> list[str]:
    obs = host.observation
    names = f" ({', '.join(md_text(n, 100) for n in obs.hostnames)})" if obs.hostnames else ""
    lines = [
        f"## {md_text(obs.address, 60)}{names}, grade {host.grade.value}",
        "",
        f"{obs.family.value}, {obs.status.value}"
        + (f", audited from {md_text(', '.join(obs.vantages), 200)}" if obs.vantages else ""),
    ]
    counting = [f for f in host.findings if f.counts]
    accepted = [f for f in host.findings if not f.counts]
    first = first_actions(host)
    if first:
        lines += ["", "### What to do first", "", *_first_items(host, numbered)]
    if counting:
        lines += ["", "### Findings", ""]
        lines += _table(
            ["Severity", "Rule", "Port", "Finding", "Evidence"], _finding_rows(counting)
        )
        shown = {f.id for a in first for f in a.findings}
        rest = [a for a in host_actions(host) if not {f.id for f in a.findings} <= shown]
        if rest:
            lines += ["", "**Remediation**" + (" (the rest)" if first else ""), ""]
            lines += [f"- **{', '.join(a.rules)}**: {md_text(a.text, 4000)}" for a in rest]
    services = reported_services(obs)
    lines += ["", "### Services", ""]
    if services:
        lines += _table(
            ["Port", "State", "Service", "Product", "Category"]
            + (["Vantages"] if obs.vantages else []),
            [_service_row(s, obs) for s in services],
        )
    else:
        lines.append("No open ports found.")
    if accepted:
        lines += ["", "### Accepted risks (not counted)", ""]
        for f in accepted:
            assert f.acceptance is not None
            lines.append(
                f"- {f.rule} {where(f)} ({f.severity.label}): {md_text(f.title, 200)}; "
                f"accepted by {md_text(f.acceptance.owner, 100)} until "
                f"{f.acceptance.expires.isoformat()}: {md_text(f.acceptance.reason)}"
            )
    upnp = _upnp_lines(obs)
    if upnp:
        lines += ["", "### UPnP", "", *upnp]
    problems = _problem_lines(obs)
    if problems:
        lines += ["", "### Not tested, errors and notes", "", *problems]
    return lines


def render_markdown(report: Report) -> str:
    """The report as one Markdown document (CommonMark with GFM tables), hosts worst first."""
    fix, numbered = _fix_first(report)
    lines = _headline(report, fix)
    for host in report.hosts_by_risk():
        lines += ["", *_host_block(host, numbered)]
    return "\n".join(lines) + "\n"
