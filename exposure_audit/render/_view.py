"""How a thing is shown, written once for every renderer: an endpoint, a time, a service, a
DSM fingerprint, a name's remarks, where a finding is, and the parts of a diff.

Pure. These helpers return plain text as it came (target text included): each renderer makes
it safe for its own format (``printable``, ``md_text``, HTML autoescaping) when it prints it.
What the JSON document itself holds (``identified_as``, the listed services, a name's notes)
is decided by :mod:`exposure_audit.codec`; the helpers here build on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from ..codec import identify, iso_time, name_notes
from ..diff import FindingChange, ReportDiff, ServiceKey
from ..findings import Finding, Severity
from ..mgmt import load_catalog
from ..observations import (
    DsmFingerprint,
    HostObservation,
    HostStatus,
    NameResolution,
    ServiceObservation,
)
from ..report import HostReport, Report
from ..text import plural

__all__ = [
    "DIFF_SECTIONS",
    "FIX_FIRST_SHOWN",
    "PLACES_SHOWN",
    "Action",
    "acceptance_state",
    "action_places",
    "appeared_or_vanished",
    "bracketed",
    "category_text",
    "change_finding",
    "diff_entries",
    "diff_runs",
    "dsm_text",
    "endpoint",
    "first_actions",
    "fix_first",
    "hint_text",
    "host_actions",
    "name_remarks",
    "plural",
    "product_text",
    "reachability_changes",
    "reachability_text",
    "run_state",
    "service_category",
    "service_product",
    "service_reachability",
    "timestamp",
    "verdict",
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


def verdict(report: Report) -> str:
    """The run's verdict in one sentence, never a false all-clear: the grade with what it
    rests on (the worst finding, or why nothing can be said), then every part of the run the
    grade does not cover, as unknown (targets not audited, incomplete hosts, open services
    nothing identified, an interrupted run). A grade is a lower bound: what was seen is
    certain, what was not seen never improves it.

    ``grade F: critical findings on 1 of 2 hosts; unknown: 1 host incomplete`` or
    ``grade ?: nothing was audited: unknown, not an all-clear``.
    """
    grade = report.grade
    if report.audited_nothing:
        return f"grade {grade.value}: nothing was audited: unknown, not an all-clear"
    hosts = report.hosts
    worst = report.worst_severity()
    if worst is not None and worst > Severity.INFO:
        with_it = sum(1 for h in hosts if any(f.counts and f.severity == worst for f in h.findings))
        head = f"{worst.label} findings on {with_it} of {plural(len(hosts), 'host')}"
        if len(hosts) == 1:
            head = f"{worst.label} findings on the one host audited"
    else:
        # An A (or a ?) speaks only for what was seen: the unknown parts follow.
        head = f"nothing above info on what was seen ({plural(len(hosts), 'host')})"
    unknown = _unknown_parts(report)
    text = f"grade {grade.value}: {head}"
    if unknown:
        text += "; unknown (not clean): " + ", ".join(unknown)
    return text


def _unknown_parts(report: Report) -> list[str]:
    """What a run's grade does not cover, each counted: targets not audited, hosts cut short,
    hosts with an open service nothing identified, and an interrupted run."""
    parts = []
    if report.not_audited:
        parts.append(f"{plural(len(report.not_audited), 'target')} not audited")
    incomplete = len(report.incomplete_hosts())
    if incomplete:
        parts.append(f"{plural(incomplete, 'host')} incomplete")
    unidentified = sum(
        1
        for h in report.hosts
        if h.observation.status is not HostStatus.INCOMPLETE
        and h.observation.unidentified_services()
    )
    if unidentified:
        parts.append(f"{plural(unidentified, 'host')} with an open service nothing identified")
    if report.interrupted:
        parts.append("the run was interrupted")
    elif not report.complete:
        parts.append("the run was cut short")
    return parts


# -- what to do first -------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One remediation to carry out, and every finding it answers.

    ``text`` is the remediation (a finding's own, or the longest of several that say the same:
    one whose text holds another's whole answers both); ``severity`` the worst of its
    findings; ``findings`` in the order met (host worst first, then severity)."""

    text: str
    severity: Severity
    findings: tuple[Finding, ...]

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule ids it answers, each once, in order."""
        return tuple(dict.fromkeys(f.rule for f in self.findings))

    def places(self, address: str | None = None) -> list[str]:
        """Where it applies, each once: ``5000/tcp`` (or ``host``) on one host when ``address``
        is given, else ``198.51.100.7:5000/tcp`` (the bare address for a host-level finding)."""
        if address is not None:
            picked = [where(f) for f in self.findings if f.address == address]
        else:
            picked = [endpoint(f.address, f.port, f.protocol) for f in self.findings]
        return list(dict.fromkeys(picked))

    def addresses(self) -> list[str]:
        return list(dict.fromkeys(f.address for f in self.findings))

    def rule_places(self) -> str:
        """Each rule with where it applies on the host: ``DSM001 on 5000/tcp; DSM002 on
        5001/tcp`` (for an action of one host)."""
        parts = []
        for rule in self.rules:
            ports = dict.fromkeys(where(f) for f in self.findings if f.rule == rule)
            parts.append(f"{rule} on {', '.join(ports)}")
        return "; ".join(parts)


def _said(text: str) -> str:
    """A remediation compared with another: case, spacing and the final stop do not count."""
    return " ".join(text.split()).lower().rstrip(".")


def _group(findings: Iterable[Finding]) -> list[Action]:
    """Counting findings grouped by remediation: the same text, or a text another one holds
    whole (DSM002's "take DSM off the Internet" inside DSM001's), is one action. Worst first;
    a contained text joins its container only when the container is at least as severe."""
    given = [f for f in findings if f.counts and f.remediation]
    # Longest first within a severity: a container is met before what it contains.
    ordered = sorted(given, key=lambda f: (-f.severity, -len(f.remediation)))
    texts: list[str] = []
    members: list[list[Finding]] = []
    for finding in ordered:
        said = _said(finding.remediation)
        for i, text in enumerate(texts):
            if said in _said(text):
                members[i].append(finding)
                break
        else:
            texts.append(finding.remediation)
            members.append([finding])
    actions = [
        Action(text, max(f.severity for f in group), tuple(group))
        for text, group in zip(texts, members, strict=True)
    ]
    # Worst first, then in the caller's order (hosts worst first, a host's rules in order).
    first_seen = {id(a): min(given.index(f) for f in a.findings) for a in actions}
    return sorted(actions, key=lambda a: (-a.severity, first_seen[id(a)]))


def host_actions(host: HostReport) -> list[Action]:
    """Every remediation a host's counting findings call for, each once, worst first."""
    return _group(host.findings)


def first_actions(host: HostReport) -> list[Action]:
    """What to do first on a host: the actions of its worst findings (those at its worst
    severity, low or above), each once, with any lesser finding the same action answers.
    Empty for a host with nothing above info."""
    actions = host_actions(host)
    if not actions or actions[0].severity <= Severity.INFO:
        return []
    worst = actions[0].severity
    return [a for a in actions if a.severity == worst]


FIX_FIRST_SHOWN = 5
"""Actions of the run's "fix first" list a renderer shows; it says how many more there are."""
PLACES_SHOWN = 3
"""Hosts named per "fix first" action; the rest are counted."""


def action_places(action: Action) -> str:
    """Where an action applies, by host: ``198.51.100.7 5000/tcp, 5001/tcp; 203.0.113.5 host``
    (the first :data:`PLACES_SHOWN` hosts, then how many more). Raw target text: the caller
    makes it safe for its format."""
    addresses = action.addresses()
    shown = [f"{a} {', '.join(action.places(a))}" for a in addresses[:PLACES_SHOWN]]
    more = len(addresses) - PLACES_SHOWN
    return "; ".join(shown) + (f"; and {plural(more, 'more host')}" if more > 0 else "")


def fix_first(report: Report) -> list[Action]:
    """The run's "fix first" list: every host's first actions (:func:`first_actions`), hosts
    worst first, an action that several hosts share listed once with all their places; worst
    first. A renderer shows the head of it and says how many more there are."""
    chosen = [f for h in report.hosts_by_risk() for a in first_actions(h) for f in a.findings]
    return _group(chosen)


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


# How the catalog's category ids read in a report.
_CATEGORY_WORDS = {"nas": "NAS", "bmc": "BMC", "router-firewall": "router/firewall"}


def category_text(category: str) -> str:
    """A catalog category as words: ``NAS``, ``router/firewall``, ``storage array``."""
    return _CATEGORY_WORDS.get(category, category.replace("-", " "))


@cache
def _synology_category(product: str) -> str:
    """The catalog's category of a Synology product (``synology-dsm``: ``nas``), whose deep
    detection (:mod:`exposure_audit.dsm`) reports no catalog match of its own."""
    return next((p.category for p in load_catalog() if p.id == product), "")


def service_category(service: ServiceObservation) -> str:
    """What kind of thing a management interface on the port manages (``NAS``, ``hypervisor``,
    ``notebook``, ...); empty when the port is not one (or only "possibly" one)."""
    http = service.http
    if http is None:
        return ""
    if http.dsm is not None:
        return category_text(_synology_category("synology-dsm"))
    if http.srm:
        return category_text(_synology_category("synology-srm"))
    if http.management is not None:
        return category_text(http.management.category)
    return ""


def dsm_text(dsm: DsmFingerprint) -> str:
    """``DSM 4.3-3810 Update 2 (DS1512+)`` (``DSM version unknown`` when no version was read)."""
    text = f"DSM {dsm.version or 'version unknown'}"
    if dsm.build is not None:
        text += f"-{dsm.build}"
    if dsm.update is not None:
        text += f" Update {dsm.update}"
    if dsm.model:
        text += f" ({dsm.model})"
    return text


def service_product(
    service: ServiceObservation, host: HostObservation, *, title: bool = True
) -> str:
    """What product answers on a port, with its version when known: the catalog's name for an
    identified management interface (``Proxmox Virtual Environment 8.2``), ``Synology DSM
    7.2.2-72806 Update 3`` for DSM, ``Synology SRM``, else nmap's product and version, else
    for a web port what it is and (unless ``title`` is False: the HTML shows it apart) its page
    title (``web server, title: Welcome``). Any "possibly" hint (:func:`hint_text`) comes
    first: a narrow column cuts the end."""
    http = service.http
    management = service.management
    if http is not None and http.dsm is not None:
        shown = f"Synology {dsm_text(http.dsm)}"
    elif http is not None and http.srm:
        shown = "Synology SRM"
    elif management is not None:
        shown = " ".join(p for p in (management.name, management.version) if p)
    else:
        shown = product_text(service.product, service.version)
        if http is not None and not shown:
            shown = identify(service, host)
            if http.title and title:
                shown += f", title: {http.title}"
    hints = [hint_text(h.name, h.marker) for h in http.management_hints] if http else []
    return "; ".join(p for p in (*hints, shown) if p)


def product_text(product: str, version: str) -> str:
    """nmap's product and version, as one text (empty when nmap named neither)."""
    return " ".join(p for p in (product, version) if p)


def hint_text(name: str, marker: str) -> str:
    """A single-marker possibility, worded as a note: ``possibly QNAP QTS / QuTS hero (title
    only)``; never an identification."""
    return f"possibly {name} ({marker} only)"


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
