"""The HTML report: one self-contained page for people who would rather look than read.

Pure: :func:`render_html` turns a :class:`~exposure_audit.report.Report` (plus, optionally, the
history's trend and a :class:`~exposure_audit.diff.ReportDiff`) into one HTML document. The page
loads nothing: no script, font, image or stylesheet from anywhere. Its CSS is inline and its
Content-Security-Policy (a ``<meta>`` tag) allows that one ``<style>`` element by its SHA-256
hash and nothing else (``default-src 'none'``, no ``script-src`` at all), so even markup that
slipped through could neither run nor load anything. The trend chart is inline SVG whose
geometry is computed here, in Python.

Text from targets (banners, titles, server headers, and the evidence built from them) is shown
verbatim and inert: Jinja2 autoescaping makes ``<script>`` text, and every string a template
prints first goes through :func:`~exposure_audit.text.printable` (the templates' ``finalize``
hook), so ANSI escapes, NULs and bidi overrides show as ``\\x1b`` / ``\\u202e`` instead of
acting on the page. Templates never print a target string any other way (no ``|safe``, no
``|join`` on target text: joins are made here).

The page's data comes from the JSON document's own shapes
(:func:`~exposure_audit.codec.host_dict`,
:func:`~exposure_audit.codec.finding_dict`), so the HTML shows what ``--format json`` holds.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..codec import host_dict, reported_services
from ..diff import FindingChange, ReportDiff
from ..findings import Finding, Severity
from ..grading import Grade
from ..observations import NameResolution, ServiceObservation
from ..report import HostReport, Report
from ..text import plural, printable
from ._view import (
    DIFF_SECTIONS,
    FIX_FIRST_SHOWN,
    Action,
    acceptance_state,
    action_places,
    appeared_or_vanished,
    change_finding,
    diff_entries,
    diff_runs,
    endpoint,
    first_actions,
    fix_first,
    hint_text,
    name_remarks,
    reachability_changes,
    reachability_text,
    service_category,
    service_product,
    timestamp,
    verdict,
    where,
)

__all__ = ["TREND_LIMIT", "TrendPoint", "render_html"]

TREND_LIMIT = 52
"""At most this many runs (the newest) are drawn in the trend chart: a year of weekly runs."""

# Longest target text shown; longer text ends in "…". Banners are capped upstream too; this
# keeps one pathological title from making the page unreadable.
_TEXT_LIMIT = 2000
_SEVERITIES = tuple(sorted(Severity, reverse=True))  # critical first


@dataclass(frozen=True)
class TrendPoint:
    """One stored run, as the trend chart draws it.

    ``run_id`` is the history store's run id; ``grade`` the run's grade (None for a run that
    recorded no host yet); ``counts`` its counting findings by severity label (``critical`` ...
    ``info``; missing labels count 0, accepted risks are not in it); ``complete`` False for a
    run that was cut short or interrupted (its bar is drawn faded: could not test is not
    safe). Built by the caller from :class:`~exposure_audit.history.store.RunSummary` (``id``,
    ``started_at``, ``grade``, ``counts``, ``complete``).
    """

    run_id: int
    started_at: datetime
    grade: Grade | None
    counts: Mapping[str, int]
    complete: bool = True


def render_html(
    report: Report, *, trend: Sequence[TrendPoint] = (), diff: ReportDiff | None = None
) -> str:
    """Render ``report`` as one self-contained HTML document (UTF-8 text).

    ``trend``: the runs to chart, in any order (drawn oldest to newest; only the newest
    :data:`TREND_LIMIT`); no chart when empty. ``diff``: the changes since an earlier run,
    shown in their own section when given. Hosts are shown worst grade first. Pure and
    deterministic: the same arguments give the same bytes. Never raises for any report value.
    """
    env = _environment()
    # Each listed action's finding ids, numbered as the run's "fix first" list shows them.
    listed = {
        f.id: number
        for number, action in enumerate(fix_first(report)[:FIX_FIRST_SHOWN], 1)
        for f in action.findings
    }
    css = env.get_template("report.css").render()
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return env.get_template("report.html").render(
        css=Markup(css),  # noqa: S704 - the package's own stylesheet: no target text in it
        style_hash=f"sha256-{digest}",
        report=_report_view(report),
        hosts=[_host_view(h, report, listed) for h in report.hosts_by_risk()],
        chart=_chart(trend) if trend else None,
        diff=_diff_view(diff) if diff is not None else None,
    )


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("exposure_audit", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _finalize(value: object) -> object:
    """Every ``{{ value }}`` passes here before autoescaping: strings are made printable."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _shown(value)
    return value


def _shown(text: str) -> str:
    """``printable`` (controls, bidi and zero-width characters as visible escapes, capped),
    plus lone surrogates escaped too: they cannot be encoded as UTF-8 when the page is saved."""
    shown = printable(text, _TEXT_LIMIT)
    if shown.isascii():
        return shown
    return "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in shown)


# -- the run --------------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    """``2026-11-27 12:00 UTC`` for people; the ``<time>`` element keeps the ISO form."""
    text = moment.strftime("%Y-%m-%d %H:%M")
    return f"{text} UTC" if moment.utcoffset() == timedelta(0) else text


def _report_view(report: Report) -> dict[str, Any]:
    counts = report.severity_counts()
    actions = fix_first(report)
    return {
        "tool_version": report.tool_version,
        "grade": report.grade.value,
        "verdict": verdict(report),
        "grade_class": _grade_class(report.grade),
        "started_at": timestamp(report.started_at),
        "started": _when(report.started_at),
        "finished_at": timestamp(report.finished_at),
        "finished": _when(report.finished_at),
        "complete": report.complete,
        "host_count": len(report.hosts),
        "incomplete_count": len(report.incomplete_hosts()),
        "counts": [{"severity": label, "count": counts[label]} for label in counts],
        "finding_count": sum(counts.values()),
        "accepted_count": report.accepted_count(),
        "ports": report.ports.describe(),
        "names": [_name_view(n) for n in report.names],
        "skipped": [
            {"address": s.address, "name": s.name, "reason": s.reason} for s in report.skipped
        ],
        "errors": list(report.errors),
        "notes": report.run_notes(),
        "audited_nothing": report.audited_nothing,
        "interrupted": report.interrupted,
        "vantages": ", ".join(report.vantages),
        "vantage_count": len(report.vantages),
        "fix_first": [_fix_view(a) for a in actions[:FIX_FIRST_SHOWN]],
        "fix_first_more": max(len(actions) - FIX_FIRST_SHOWN, 0),
    }


def _fix_view(action: Action) -> dict[str, Any]:
    """One entry of the run's "fix first" list: the remediation, where (host and port) and
    which rules, as the table's list says it."""
    return {
        "text": action.text,
        "severity": action.severity.label,
        "places": f"{action_places(action)}; {', '.join(action.rules)}",
    }


def _name_view(resolution: NameResolution) -> dict[str, Any]:
    return {
        "name": resolution.name,
        "addresses": ", ".join(resolution.addresses) or "no address",
        "chain": " → ".join(resolution.cname_chain),
        "notes": name_remarks(resolution),
    }


def _grade_class(grade: Grade | None) -> str:
    if grade is None:
        return "grade-none"
    return "grade-unknown" if grade is Grade.UNKNOWN else f"grade-{grade.value.lower()}"


# -- hosts ----------------------------------------------------------------------------------


def _host_view(host: HostReport, report: Report, listed: Mapping[str, int]) -> dict[str, Any]:
    doc = host_dict(host)
    counting = sorted(
        (f for f in host.findings if f.counts), key=lambda f: (-f.severity, f.rule, f.port)
    )
    accepted = [f for f in host.findings if not f.counts]
    counts = {s.label: 0 for s in _SEVERITIES}
    for finding in counting:
        counts[finding.severity.label] += 1
    first = first_actions(host)
    # A finding whose remediation is a step of "what to do first" points there instead.
    steps = {f.id: n for n, a in enumerate(first, 1) for f in a.findings}
    return {
        "anchor": f"host-{host.address}",
        "address": host.address,
        "family": doc["family"],
        "hostnames": ", ".join(doc["hostnames"]),
        "vantages": ", ".join(doc.get("vantages", [])),
        "grade": host.grade.value,
        "grade_class": _grade_class(host.grade),
        "status": doc["status"],
        "counts": [{"severity": k, "count": v} for k, v in counts.items() if v],
        "first": [
            _action_view(a, min((listed[f.id] for f in a.findings if f.id in listed), default=None))
            for a in first
        ],
        "services": [
            _service_view(s, report.started_at, service, host)
            for s, service in zip(doc["services"], reported_services(host.observation), strict=True)
        ],
        "groups": _finding_groups(counting, steps),
        "accepted": [_accepted_view(f) for f in accepted],
        "upnp": _upnp_view(doc),
        "problems": [*doc["errors"], *_attempt_lines(doc["attempts"])],
        "notes": list(doc["notes"]),
    }


def _action_view(action: Action, listed: int | None = None) -> dict[str, Any]:
    """One step of a host's "what to do first": the remediation and where each rule applies;
    ``listed``, the number of the run's "fix first" entry that holds it (its text is then not
    repeated: the step points there)."""
    return {
        "text": action.text,
        "severity": action.severity.label,
        "places": action.rule_places(),
        "listed": listed,
    }


def _service_view(
    service: Mapping[str, Any],
    started_at: datetime,
    observed: ServiceObservation,
    host: HostReport,
) -> dict[str, Any]:
    http = service["http"]
    details: list[dict[str, Any]] = []  # label, text, and whether the text is the target's

    def detail(label: str, text: str, *, verbatim: bool = True) -> None:
        details.append({"label": label, "text": text, "verbatim": verbatim})

    if http is not None:
        detail("HTTP", f"{http['scheme']} {http['status_code']}", verbatim=False)
        if http["server"]:
            detail("server", http["server"])
        if http["title"]:
            detail("title", http["title"])
        for redirect in http["redirects"]:
            detail(
                "redirect (not followed)",
                f"{redirect['status_code']} {redirect['from']} → {redirect['location']}",
            )
    if service["banner"]:
        detail("banner", service["banner"])
    tls = service["tls"]
    if tls is not None:
        detail("TLS certificate", _tls_text(tls, started_at))
    if service["forwarding"]:
        detail("forwarded", service["forwarding"], verbatim=False)
    management = service.get("management")
    if management is not None and management["unauthenticated"]:
        detail("acts without a login", management["unauthenticated"], verbatim=False)
    for hint in service.get("management_hints", []):
        detail("possibly", hint_text(hint["name"], hint["marker"]), verbatim=False)
    # The product without the hints (they are details here) nor the title (a detail too).
    product = service_product(_without_hints(observed), host.observation, title=False)
    return {
        "port": f"{service['port']}/{service['protocol']}",
        "state": service["state"],
        "identified_as": service["identified_as"],
        "service": service["service"],
        "product": product,
        "category": service_category(observed),
        "details": details,
        "reachability": reachability_text(
            service["reachable_from"], service["not_reachable_from"], service["untested_from"]
        )
        if "reachable_from" in service
        else "",
        "unreachable": bool(service.get("not_reachable_from")),
    }


def _without_hints(service: ServiceObservation) -> ServiceObservation:
    http = service.http
    if http is None or not http.management_hints:
        return service
    return replace(service, http=replace(http, management_hints=()))


def _tls_text(tls: Mapping[str, Any], started_at: datetime) -> str:
    parts = [tls["subject"] or "no subject"]
    if tls["synology_default"]:
        parts.append("Synology default certificate")
    elif tls["self_signed"]:
        parts.append("self-signed")
    not_after = datetime.fromisoformat(tls["not_after"].replace("Z", "+00:00"))
    if started_at.tzinfo is None or not_after.tzinfo is None:  # a report's times are UTC
        not_after, started_at = not_after.replace(tzinfo=None), started_at.replace(tzinfo=None)
    expired = not_after < started_at
    parts.append(f"{'expired' if expired else 'valid until'} {tls['not_after'][:10]}")
    return "; ".join(parts)


def _finding_groups(findings: Sequence[Finding], steps: Mapping[str, int]) -> list[dict[str, Any]]:
    """Findings of one rule and severity together: the remediation is shown once per group,
    or, when it is a step of the host's "what to do first" (``steps``: finding id -> step
    number), the group points at that step."""
    groups: list[dict[str, Any]] = []
    for finding in findings:
        key = (finding.rule, finding.severity.label, finding.title, finding.remediation)
        if not groups or groups[-1]["key"] != key:
            groups.append(
                {
                    "key": key,
                    "rule": finding.rule,
                    "severity": finding.severity.label,
                    "title": finding.title,
                    "remediation": finding.remediation,
                    "step": steps.get(finding.id, 0),
                    "occurrences": [],
                }
            )
        expired = finding.acceptance
        groups[-1]["occurrences"].append(
            {
                "id": finding.id,
                "where": where(finding),
                "evidence": finding.evidence,
                "severity_reason": finding.severity_reason,
                "expired": ""
                if expired is None
                else f"acceptance by {expired.owner} expired {expired.expires.isoformat()}",
            }
        )
    return groups


def _accepted_view(finding: Finding) -> dict[str, Any]:
    acceptance = finding.acceptance
    assert acceptance is not None  # only findings under a live acceptance come here
    return {
        "id": finding.id,
        "rule": finding.rule,
        "severity": finding.severity.label,
        "where": where(finding),
        "title": finding.title,
        "evidence": finding.evidence,
        "owner": acceptance.owner,
        "expires": acceptance.expires.isoformat(),
        "reason": acceptance.reason,
    }


def _mapping_view(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "external": f"{mapping['external_port']}/{mapping['protocol'].lower()}",
        "internal": f"{mapping['internal_client']}:{mapping['internal_port']}",
        "description": mapping["description"],
        "lease": "permanent" if not mapping["lease_duration"] else f"{mapping['lease_duration']} s",
    }


def _upnp_view(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    upnp = doc["upnp"]
    manual = [
        s["port"]
        for s in doc["services"]
        if s["forwarding"] is not None and s["forwarding"] != "upnp"
    ]
    if upnp is None and not manual:
        return None
    upnp = upnp or {"ssdp": [], "igd": None, "mappings": [], "mapped_but_unreachable": []}
    igd = upnp["igd"]
    return {
        "ssdp": [
            {"responder": r["responder"], "server": r["server"], "location": r["location"]}
            for r in upnp["ssdp"]
        ],
        "igd": None
        if igd is None
        else {
            "url": igd["url"],
            "device": " / ".join(
                p for p in (igd["friendly_name"], igd["manufacturer"], igd["model_name"]) if p
            ),
            "readable": igd["mappings_readable"],
            "external_address": igd["external_address"] or "",
        },
        "source": {"wan": "read from the router over the Internet", "inventory": "inventory"}.get(
            upnp.get("mappings_source") or "", ""
        ),
        "mappings": [_mapping_view(m) for m in upnp["mappings"]],
        "unreachable": [_mapping_view(m) for m in upnp["mapped_but_unreachable"]],
        "manual": ", ".join(f"{p}/tcp" for p in manual),
    }


def _attempt_lines(attempts: Iterable[Mapping[str, Any]]) -> list[str]:
    lines = []
    for attempt in attempts:
        if attempt["status"] not in ("timed_out", "error"):
            continue
        port = f" on port {attempt['port']}" if attempt["port"] else ""
        status = attempt["status"].replace("_", " ")
        lines.append(f"{attempt['probe']} probe {status}{port}: {attempt['reason']}")
    return lines


# -- the diff -------------------------------------------------------------------------------


def _change_view(change: FindingChange, section: str) -> dict[str, Any]:
    finding = change_finding(change)
    return {
        "id": change.id,
        "rule": change.rule,
        "severity": finding.severity.label,
        "where": endpoint(change.address, change.port, change.protocol),
        "title": finding.title,
        "changes": "; ".join(change.changes),
        "mark": acceptance_state(finding),
        "remediation": finding.remediation if section == "new" else "",
    }


def _diff_view(diff: ReportDiff) -> dict[str, Any]:
    old_run, new_run = diff_runs(diff)
    reach = [
        {"what": "service reachability changed", "subject": subject, "detail": change}
        for subject, change in reachability_changes(diff)
    ]
    return {
        "old_run": old_run,
        "new_run": new_run,
        "old_grade": diff.old_grade.value,
        "old_grade_class": _grade_class(diff.old_grade),
        "new_grade": diff.new_grade.value,
        "new_grade_class": _grade_class(diff.new_grade),
        "has_changes": diff.has_changes,
        "unchanged": len(diff.unchanged),
        "sections": [
            {
                "key": key,
                "title": title,
                "entries": [_change_view(c, key) for c in diff_entries(diff, key)],
            }
            for key, title in DIFF_SECTIONS.items()
        ],
        "moved": [
            {"what": what, "subject": subject, "detail": ""}
            for what, subject in appeared_or_vanished(diff)
        ]
        + reach,
    }


# -- the trend chart ------------------------------------------------------------------------

# Geometry of the chart in SVG user units; the SVG scales down to its container.
_SLOT = 56  # horizontal room per run (more when there are few runs: see _PLOT_WIDTH)
_BAR = 32  # bar width (wider with wider slots, up to _BAR_MAX)
_BAR_MAX = 56
_PLOT_WIDTH = 420  # a few runs are spread over at least this width
_LEFT = 40  # room for the y-axis labels
_RIGHT = 12
_TOP = 30  # room for the grade letters above the bars
_PLOT = 160  # height of the plot area
_BOTTOM = 54  # room for the run labels: run id, date, time of day
_MAX_LABELS = 16  # more runs than this: label every n-th bar


@dataclass(frozen=True)
class _Segment:
    severity: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class _Bar:
    run_id: int
    x: float
    center: float
    top: float
    segments: tuple[_Segment, ...]
    total: int
    grade: str
    letter: str
    complete: bool
    label: bool
    date: str
    time: str
    when: str
    title: str


@dataclass(frozen=True)
class _Chart:
    width: int
    height: int
    base: int
    left: int
    right: int
    ticks: tuple[tuple[float, int], ...]
    bars: tuple[_Bar, ...]
    bar_width: int
    shown: int
    total_runs: int
    label_y: int
    date_y: int
    time_y: int
    summary: str


def _scale_top(largest: int) -> tuple[int, int]:
    """A round top for the y axis and its tick step: at most 4 steps of 1, 2 or 5 x 10^n."""
    if largest <= 0:
        return 1, 1
    for exponent in range(12):
        for mantissa in (1, 2, 5):
            step = mantissa * 10**exponent
            if math.ceil(largest / step) <= 4:
                return math.ceil(largest / step) * step, step
    return largest, largest  # pragma: no cover - beyond 5e11 findings


def _chart(trend: Sequence[TrendPoint]) -> _Chart:
    """Stacked bars (critical at the bottom) of each run's findings, its grade above."""
    ordered = sorted(trend, key=lambda p: (p.started_at, p.run_id))
    shown = ordered[-TREND_LIMIT:]
    totals = [sum(max(0, p.counts.get(s.label, 0)) for s in _SEVERITIES) for p in shown]
    top, step = _scale_top(max(totals, default=0))
    base = _TOP + _PLOT
    every = math.ceil(len(shown) / _MAX_LABELS)
    slot = max(_SLOT, min(2 * _SLOT, _PLOT_WIDTH // max(1, len(shown))))
    bar_width = min(_BAR_MAX, max(_BAR, round(slot * 0.55)))
    # Several runs on one day (a re-run after a fix) differ by their time of day; to the
    # second when two of them started in the same minute.
    minutes = [p.started_at.strftime("%Y-%m-%d %H:%M") for p in shown]
    clock = "%H:%M:%S" if len(set(minutes)) < len(minutes) else "%H:%M"
    bars = []
    for i, (point, total) in enumerate(zip(shown, totals, strict=True)):
        x = _LEFT + i * slot + (slot - bar_width) / 2
        segments = []
        y = float(base)
        for severity in _SEVERITIES:
            count = max(0, point.counts.get(severity.label, 0))
            if not count:
                continue
            height = round(count / top * _PLOT, 2)
            y = round(y - height, 2)
            segments.append(_Segment(severity.label, count, y, height))
        counts = ", ".join(
            f"{point.counts.get(s.label, 0)} {s.label}"
            for s in _SEVERITIES
            if point.counts.get(s.label, 0)
        )
        grade = point.grade.value if point.grade is not None else "–"
        title = (
            f"run {point.run_id}, {_when(point.started_at)}: grade {grade}, "
            f"{counts or 'no findings'}" + ("" if point.complete else " (incomplete)")
        )
        bars.append(
            _Bar(
                run_id=point.run_id,
                x=x,
                center=x + bar_width / 2,
                top=min(y, base - 1),
                segments=tuple(segments),
                total=total,
                grade=grade,
                letter=_grade_class(point.grade).removeprefix("grade-"),
                complete=point.complete,
                label=(len(shown) - 1 - i) % every == 0,  # the newest run is always labelled
                date=point.started_at.strftime("%m-%d"),
                time=point.started_at.strftime(clock),
                when=_when(point.started_at),
                title=title,
            )
        )
    ticks = tuple((round(base - v / top * _PLOT, 2), v) for v in range(0, top + 1, step))
    grades = ", ".join(f"run {b.run_id} {b.grade}" for b in bars)
    return _Chart(
        width=_LEFT + len(shown) * slot + _RIGHT,
        height=_TOP + _PLOT + _BOTTOM,
        base=base,
        left=_LEFT,
        right=_LEFT + len(shown) * slot,
        ticks=ticks,
        bars=tuple(bars),
        bar_width=bar_width,
        shown=len(shown),
        total_runs=len(ordered),
        label_y=base + 16,
        date_y=base + 31,
        time_y=base + 45,
        summary=f"Findings by severity and grade over {plural(len(shown), 'run')}: {grades}",
    )
