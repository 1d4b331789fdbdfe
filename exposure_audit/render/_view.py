"""How a thing is shown, written once for every renderer: an endpoint, a time, a service, a
DSM fingerprint, a name's remarks, where a finding is, and the parts of a diff.

Pure. These helpers return plain text as it came (target text included): each renderer makes
it safe for its own format (``printable``, ``md_text``, HTML autoescaping) when it prints it.
What the JSON document itself holds (``identified_as``, the listed services, a name's notes)
is decided by :mod:`exposure_audit.codec`; the helpers here build on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..codec import identify, iso_time, name_notes
from ..diff import FindingChange, ReportDiff, ServiceKey
from ..findings import Finding
from ..observations import DsmFingerprint, HostObservation, NameResolution, ServiceObservation
from ..report import Report

__all__ = [
    "DIFF_SECTIONS",
    "acceptance_state",
    "appeared_or_vanished",
    "bracketed",
    "change_finding",
    "diff_entries",
    "diff_runs",
    "dsm_summary",
    "endpoint",
    "hint_text",
    "management_text",
    "name_remarks",
    "product_or_title",
    "product_text",
    "reachability_changes",
    "reachability_text",
    "run_state",
    "service_kind",
    "service_reachability",
    "timestamp",
    "where",
]


# -- the run --------------------------------------------------------------------------------


def run_state(report: Report) -> list[str]:
    """What a report's headline must say beside the grade: ``nothing was audited`` and ``run
    interrupted``, when so (an empty list for a run that audited and finished)."""
    return [
        words
        for words, applies in (
            ("nothing was audited", report.audited_nothing),
            ("run interrupted", report.interrupted),
        )
        if applies
    ]


# -- places and times -----------------------------------------------------------------------


def bracketed(address: str) -> str:
    """An address as the host part of an authority: IPv6 in brackets (``[2001:db8::7]``)."""
    return f"[{address}]" if ":" in address else address


def endpoint(address: str, port: int, protocol: str) -> str:
    """``198.51.100.7:21/tcp``, ``[2001:db8::7]:21/tcp``; the bare address for port 0."""
    if not port:
        return address
    return f"{bracketed(address)}:{port}/{protocol}"


def where(finding: Finding) -> str:
    """Where on its host a finding is: ``5000/tcp``, or ``host`` for a host-level finding."""
    return f"{finding.port}/{finding.protocol}" if finding.port else "host"


def timestamp(moment: datetime) -> str:
    """An instant for a report people read: ISO 8601 to the second, UTC as ``Z``
    (``2026-11-27T12:00:00Z``). The JSON documents keep full precision (``codec.iso_time``)."""
    return iso_time(moment.replace(microsecond=0))


# -- services -------------------------------------------------------------------------------


def service_kind(service: ServiceObservation, host: HostObservation) -> str:
    """What answered on a port: ``https: Synology DSM`` for a web service (see
    :func:`~exposure_audit.codec.identify`), nmap's service name otherwise."""
    http = service.http
    return f"{http.scheme}: {identify(service, host)}" if http else service.service


def product_text(product: str, version: str) -> str:
    """nmap's product and version, as one text (empty when nmap named neither)."""
    return " ".join(p for p in (product, version) if p)


def product_or_title(service: ServiceObservation) -> str:
    """The identified management interface (:func:`management_text`), else the product and
    version, else the web page's title (``title: Welcome``); any "possibly" hint
    (:func:`hint_text`) comes before it."""
    http = service.http
    management = service.management
    if management is not None:
        shown = management_text(management.category, management.version)
    else:
        shown = product_text(service.product, service.version)
        if http is not None and http.title and not shown:
            shown = f"title: {http.title}"
    hints = [hint_text(h.name, h.marker) for h in http.management_hints] if http else []
    # The hint first: a narrow column cuts the end, and the title is the page's own text.
    return "; ".join(p for p in (*hints, shown) if p)


def management_text(category: str, version: str | None) -> str:
    """What an identified management interface is, beside its name (which ``identified as``
    shows): ``nas management interface 5.1.4`` (the version only when the box disclosed it)."""
    return f"{category} management interface{f' {version}' if version else ''}"


def hint_text(name: str, marker: str) -> str:
    """A single-marker possibility, worded as a note: ``possibly QNAP QTS / QuTS hero (title
    only)``; never an identification."""
    return f"possibly {name} ({marker} only)"


def dsm_summary(dsm: DsmFingerprint | None) -> str:
    """``DSM 7.1 build 42962 Update 1 DS918+`` (``DSM`` when the version is unknown); empty
    when the port is not DSM. The HTML page has its own sentence form (``DSM 7.1-42962``)."""
    if dsm is None:
        return ""
    return " ".join(
        p
        for p in (
            dsm.version or "DSM",
            f"build {dsm.build}" if dsm.build is not None else "",
            f"Update {dsm.update}" if dsm.update is not None else "",
            dsm.model or "",
        )
        if p
    )


def reachability_text(
    reachable: Sequence[str], unreachable: Sequence[str], untested: Sequence[str]
) -> str:
    """A service's view from each vantage, in words: ``reachable from eu; not from us``, with
    ``; not tested from ap`` for vantages that could not tell."""
    parts = [f"reachable from {', '.join(reachable)}" if reachable else "reachable from none"]
    if unreachable:
        parts.append(f"not from {', '.join(unreachable)}")
    if untested:
        parts.append(f"not tested from {', '.join(untested)}")
    return "; ".join(parts)


def service_reachability(service: ServiceObservation, host: HostObservation) -> str:
    """:func:`reachability_text` for a service of a host audited from several vantages."""
    return reachability_text(
        service.reachable_from, host.unreachable_from(service), service.untested_from
    )


def name_remarks(name: NameResolution) -> str:
    """A name's lookup errors and notes, ``; ``-separated (empty when there is nothing to say)."""
    return "; ".join([*name.errors, *name_notes(name)])


# -- diffs ----------------------------------------------------------------------------------

DIFF_SECTIONS: dict[str, str] = {
    "new": "New",
    "resolved": "Resolved",
    "changed": "Changed",
    "not_rechecked": "Not re-checked",
    "not_confirmed": "Not confirmed",
}
"""The sections a diff is shown in, in order, with their titles (unchanged findings are only
counted)."""


def diff_entries(diff: ReportDiff, section: str) -> tuple[FindingChange, ...]:
    """The changes of one section (a key of :data:`DIFF_SECTIONS`, or ``unchanged``)."""
    return {
        "new": diff.new,
        "resolved": diff.resolved,
        "changed": diff.changed,
        "unchanged": diff.unchanged,
        "not_confirmed": diff.not_confirmed,
        "not_rechecked": diff.not_rechecked,
    }[section]


def change_finding(change: FindingChange) -> Finding:
    """The finding a change shows: the new run's, or the old run's when it is gone."""
    finding = change.after if change.after is not None else change.before
    assert finding is not None  # a FindingChange always has one side
    return finding


def acceptance_state(finding: Finding) -> str:
    """``accepted``, ``acceptance expired``, or empty for a finding never accepted."""
    if finding.acceptance is None:
        return ""
    return "acceptance expired" if finding.acceptance.expired else "accepted"


def diff_runs(diff: ReportDiff) -> tuple[str, str]:
    """The two runs compared, in words: (``run 4`` or ``previous run``, ``run 5`` or
    ``this run``)."""
    old = f"run {diff.old_run}" if diff.old_run is not None else "previous run"
    new = f"run {diff.new_run}" if diff.new_run is not None else "this run"
    return old, new


def appeared_or_vanished(diff: ReportDiff) -> list[tuple[str, str]]:
    """(what, subject) pairs for hosts and services that appeared or vanished."""
    lines = [("host appeared", a) for a in diff.hosts_appeared]
    lines += [("host vanished", a) for a in diff.hosts_vanished]
    lines += [("service opened", _service_endpoint(k)) for k in diff.services_appeared]
    lines += [("service closed", _service_endpoint(k)) for k in diff.services_vanished]
    return lines


def reachability_changes(diff: ReportDiff) -> list[tuple[str, str]]:
    """(endpoint, change) pairs for services whose per-vantage reachability changed."""
    return [(_service_endpoint(c.key), c.describe()) for c in diff.services_changed]


def _service_endpoint(key: ServiceKey) -> str:
    address, port, protocol = key
    return endpoint(address, port, protocol)
