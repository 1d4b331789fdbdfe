"""The report as JSON Lines for a SIEM: one JSON object per finding per line, field names from
the Elastic Common Schema (ECS) where ECS has one.

Pure. Each line is one finding of the run (accepted ones too, flagged), nested objects as ECS
writes them (``{"rule": {"id": ...}}``, which Elasticsearch, OpenSearch, Splunk and Loki read
alike). A run without findings writes nothing: the metrics (``--metrics``), the history and
stderr say that a run happened, and what it could not audit. The mapping, with the reasons
for each choice, is in ``docs/integrations.md``:

=============================  ==============================================================
``@timestamp``                 the run's end (when the finding was last seen)
``event.kind/category/type``   ``state`` / ``["vulnerability"]`` / ``["info"]``: a scanner's
                               finding about the state of a host, as ECS describes it
``event.start``, ``event.end`` the run's start and end
``event.severity``             the severity as a number (info 0 ... critical 4)
``event.dataset``              ``exposure_audit.finding``
``host.ip``, ``host.name``     the audited address; its names, when the run resolved any
``destination.ip/port``        the service the finding is about (absent for a host-level one)
``network.transport``          ``tcp`` or ``udp`` (absent for a host-level finding)
``rule.id/name/description``   the rule id, the finding's title, the rule's rationale
``rule.reference``             the rule's first reference
``vulnerability.*``            ``severity`` (label), ``id`` (CVE ids named by the finding or
                               the rule), ``report_id`` (the history's run id),
                               ``scanner.vendor``, ``category``, ``reference``
``observer.*``                 the tool (product, vendor, version, type ``scanner``)
``message``                    one line: severity, rule, where, title
``exposure_audit.*``           no ECS field: finding id, evidence, remediation, severity
                               reason, acceptance, the host's grade, the run's id,
                               completeness and notes (:meth:`Report.run_notes`: targets not
                               audited, interrupted, UDP skipped, stale accepted risks); with
                               ``--compare``, ``change`` (new, changed or unchanged since
                               the compared run, and what changed)
=============================  ==============================================================

Text from targets is JSON-escaped (every line is ASCII) and made printable; a line never holds
a raw line break, so one finding is always one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ..codec import iso_time
from ..diff import ReportDiff
from ..findings import Finding
from ..report import HostReport, Report
from ..rules import RULES
from ..text import printable

__all__ = ["ECS_VERSION", "render_jsonl"]

ECS_VERSION = "8.11.0"
"""The ECS version the field names follow."""

_CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b")
_TEXT_LIMIT = 4000
"""Longest target-derived text kept in one field (evidence carries banners)."""


def render_jsonl(report: Report, run_id: int | None = None, diff: ReportDiff | None = None) -> str:
    """Every finding of ``report`` as one ECS-shaped JSON object per line (``\\n`` after each;
    empty for a run without findings). ``run_id`` is the history's id of the run (None when
    the run was not stored): ``vulnerability.report_id`` and ``exposure_audit.run.id``.
    ``diff`` (``--compare``: the changes since an earlier run) adds ``exposure_audit.change``
    to each finding: ``new``, ``changed`` (with what changed) or ``unchanged`` since that run."""
    changes = diff.states() if diff is not None else {}
    lines = []
    for host in report.hosts:
        for finding in host.findings:
            event = _event(report, host, finding, run_id)
            change = changes.get(finding.id)
            if diff is not None and change is not None:
                event["exposure_audit"]["change"] = {
                    "status": change[0],
                    "since_run": diff.old_run,
                    "details": [printable(c, _TEXT_LIMIT) for c in change[1]],
                }
            lines.append(json.dumps(event, ensure_ascii=True, sort_keys=False))
    return "".join(line + "\n" for line in lines)


def _event(
    report: Report, host: HostReport, finding: Finding, run_id: int | None
) -> dict[str, Any]:
    rule = RULES.get(finding.rule)
    title = printable(finding.title, _TEXT_LIMIT)
    references = rule.references if rule is not None else ()
    cves = _cves([finding.title, finding.evidence, *references])
    event: dict[str, Any] = {
        "@timestamp": iso_time(report.finished_at),
        "ecs": {"version": ECS_VERSION},
        "message": _message(finding, title),
        "event": {
            "kind": "state",
            "category": ["vulnerability"],
            "type": ["info"],
            "dataset": "exposure_audit.finding",
            "start": iso_time(report.started_at),
            "end": iso_time(report.finished_at),
            "severity": int(finding.severity),
        },
        "host": _host(host),
    }
    if finding.port:
        event["destination"] = {"ip": printable(finding.address), "port": finding.port}
        event["network"] = {"transport": printable(finding.protocol)}
    event["rule"] = {
        "id": printable(finding.rule),
        "name": title,
        "ruleset": "exposure_audit",
        **({"description": rule.rationale} if rule is not None else {}),
        **({"reference": references[0]} if references else {}),
    }
    vulnerability: dict[str, Any] = {
        "severity": finding.severity.label,
        "category": ["Network"],
        "scanner": {"vendor": "exposure-audit"},
    }
    if cves:
        vulnerability["id"] = cves
        vulnerability["enumeration"] = "CVE"
    if references:
        vulnerability["reference"] = references[0]
    if run_id is not None:
        vulnerability["report_id"] = str(run_id)
    event["vulnerability"] = vulnerability
    event["observer"] = {
        "product": "exposure-audit",
        "vendor": "exposure-audit",
        "version": report.tool_version,
        "type": "scanner",
    }
    event["exposure_audit"] = _own_fields(report, host, finding, run_id)
    return event


def _host(host: HostReport) -> dict[str, Any]:
    fields: dict[str, Any] = {"ip": [printable(host.address)]}
    names = [printable(n) for n in host.observation.hostnames]
    if names:
        fields["name"] = names[0]
    return fields


def _own_fields(
    report: Report, host: HostReport, finding: Finding, run_id: int | None
) -> dict[str, Any]:
    """What ECS has no field for, under the tool's own name (ECS's advice for custom fields)."""
    fields: dict[str, Any] = {
        "finding": {"id": finding.id},
        "evidence": printable(finding.evidence, _TEXT_LIMIT),
        "remediation": printable(finding.remediation, _TEXT_LIMIT),
        "accepted": not finding.counts,
        "host": {
            "grade": host.grade.value,
            "names": list(map(printable, host.observation.hostnames)),
        },
        "run": {
            "id": run_id,
            "complete": report.complete and not report.interrupted,
            "notes": [printable(n, _TEXT_LIMIT) for n in report.run_notes()],
        },
    }
    if finding.severity_reason:
        fields["severity_reason"] = printable(finding.severity_reason, _TEXT_LIMIT)
    acceptance = finding.acceptance
    if acceptance is not None:
        fields["acceptance"] = {
            "owner": printable(acceptance.owner),
            "reason": printable(acceptance.reason, _TEXT_LIMIT),
            "expires": acceptance.expires.isoformat(),
            "expired": acceptance.expired,
        }
    return fields


def _message(finding: Finding, title: str) -> str:
    where = printable(finding.address)
    if finding.port:
        where += f" port {finding.port}/{printable(finding.protocol)}"
    return f"{finding.severity.label.upper()} {printable(finding.rule)} {where}: {title}"


def _cves(texts: Iterable[str]) -> list[str]:
    """CVE ids named in ``texts``, first occurrence order, each once."""
    found: dict[str, None] = {}
    for text in texts:
        for match in _CVE.findall(text):
            found.setdefault(match, None)
    return list(found)
