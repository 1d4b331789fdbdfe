"""The report as SARIF 2.1.0, for code-scanning dashboards and other security tools.

Pure. One ``run``; ``tool.driver.rules`` holds every rule of :data:`~exposure_audit.rules.RULES`
(id, a PascalCase ``name``, the title as ``shortDescription``, the rationale as
``fullDescription``, the remediation and references as ``help``) with a
``security-severity`` score and tags; every finding is one ``result``.

Scores (``properties.security-severity``, a string as GitHub code scanning reads it, which
buckets them as over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low)::

    critical 9.5    high 8.0    medium 5.5    low 3.0    info 0.0

Levels: critical and high are ``error``, medium ``warning``, low and info ``note``.

Locations: there is no source file. GitHub code scanning rejects a result without
``physicalLocation.artifactLocation.uri`` (and a URI whose first path segment holds a colon),
so each result names the service as the relative reference ``exposure-audit/<address>/<protocol>/
<port>`` (``exposure-audit/<address>`` for a host-level finding) against the ``uriBaseId``
:data:`URI_BASE_ID`, which ``originalUriBaseIds`` describes as "not a file". It carries no
``region``: the finding is about the whole service (SARIF 2.1.0 section 3.29.4). A
``logicalLocation`` of kind ``resource`` holds ``address:port`` as its name and
``tcp://address:port`` as its fully qualified name.

Identity: ``partialFingerprints`` and ``fingerprints`` hold the finding's deterministic id
(rule, address, protocol, port), so dashboards match a finding across runs as the history does.
An accepted risk still in force is a result with an ``external`` suppression whose
justification is the reason; an expired acceptance counts again and has no suppression.

Run-level notes (:meth:`~exposure_audit.report.Report.run_notes`: nothing audited, targets
not audited, interrupted, UDP skipped, stale accepted risks) are ``warning`` notifications in
``invocations[0].toolExecutionNotifications``, after the run errors (``error``) and before the
hosts that could not be fully tested (``warning``). A run that audited no host has
``executionSuccessful`` false. The run's ``properties`` hold ``grade``, ``interrupted`` and
``notAudited`` (each target of which no address was audited, with the reason), as the JSON
report's ``summary.grade``, ``interrupted`` and ``not_audited`` do.

A run audited from several vantage points (``exposure_audit.run.vantage``) adds ``vantages`` to the
run's and each host's properties, and to a result on a service ``reachableFrom``,
``notReachableFrom`` and ``untestedFrom`` (vantage names); without vantages none of these keys
appear.

Text from targets is JSON-escaped (the file is ASCII) and made printable in ``message.text``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..codec import iso_time
from ..findings import Finding, Rule, Severity
from ..report import HostReport, Report
from ..rules import RULES
from ..text import printable
from ._view import bracketed

__all__ = [
    "INFORMATION_URI",
    "SARIF_SCHEMA",
    "SECURITY_SEVERITY",
    "URI_BASE_ID",
    "render_sarif",
    "result_uri",
]

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
# A reserved name (RFC 2606): the project has no web site of its own to point at.
INFORMATION_URI = "https://example.invalid/exposure-audit"
URI_BASE_ID = "EXPOSURE_AUDIT_TARGETS"

SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}

_LEVEL: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}

# What a rule is about, by its id's prefix, for the tags code-scanning tools filter on.
_AREA = {
    "DSM": "synology-dsm",
    "SVC": "network-service",
    "TLS": "tls",
    "UPNP": "upnp",
    "VAN": "reachability",
}

_FINGERPRINT = "exposureAuditFindingId/v1"


def _name(title: str) -> str:
    """``DSM management interface reachable over plain HTTP`` ->
    ``DsmManagementInterfaceReachableOverPlainHttp``."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:].lower() for w in words) or "Rule"


def _tags(rule_id: str) -> list[str]:
    area = _AREA.get(re.sub(r"\d+$", "", rule_id))
    return ["security", "external-exposure"] + ([area] if area else [])


def _descriptor(rule: Rule) -> dict[str, Any]:
    references = "".join(f"\n- {ref}" for ref in rule.references)
    help_text = rule.remediation + (f"\n\nReferences:{references}" if references else "")
    help_md = f"**Remediation**: {rule.remediation}" + (
        f"\n\n**References**:{references}" if references else ""
    )
    return {
        "id": rule.id,
        "name": _name(rule.title),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.rationale},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "severity": rule.severity.label,
            "tags": _tags(rule.id),
        },
    }


def _unknown_rule(finding: Finding) -> Rule:
    """A stored run may name a rule this version no longer has: describe it from the finding."""
    return Rule(
        finding.rule,
        finding.title or finding.rule,
        finding.severity,
        "A rule of another version of exposure-audit.",
        finding.remediation or "See the finding's evidence.",
    )


def result_uri(finding: Finding) -> str:
    """``exposure-audit/198.51.100.7/tcp/5000``: the artifact URI of a finding (relative to
    :data:`URI_BASE_ID`); a host-level finding (port 0) gets ``exposure-audit/<address>``."""
    if not finding.port:
        return f"exposure-audit/{finding.address}"
    return f"exposure-audit/{finding.address}/{finding.protocol}/{finding.port}"


def _logical(finding: Finding) -> dict[str, Any]:
    if not finding.port:
        return {"name": finding.address, "fullyQualifiedName": finding.address, "kind": "resource"}
    authority = f"{bracketed(finding.address)}:{finding.port}"
    return {
        "name": authority,
        "fullyQualifiedName": f"{finding.protocol}://{authority}",
        "kind": "resource",
    }


def _result(finding: Finding, host: HostReport, index: dict[str, int]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "severity": finding.severity.label,
        "security-severity": SECURITY_SEVERITY[finding.severity],
        "address": finding.address,
        "protocol": finding.protocol,
        "port": finding.port,
        "hostnames": list(host.observation.hostnames),
        "hostGrade": host.grade.value,
        "hostStatus": host.observation.status.value,
    }
    if finding.severity_reason:
        properties["severityReason"] = finding.severity_reason
    properties.update(_reachability(finding, host))
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": index[finding.rule],
        "level": _LEVEL[finding.severity],
        "message": {"text": printable(finding.evidence, 2000) or finding.title},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": result_uri(finding), "uriBaseId": URI_BASE_ID}
                },
                "logicalLocations": [_logical(finding)],
            }
        ],
        "partialFingerprints": {_FINGERPRINT: finding.id},
        "fingerprints": {_FINGERPRINT: finding.id},
    }
    acceptance = finding.acceptance
    if acceptance is not None:
        properties["acceptance"] = {
            "reason": acceptance.reason,
            "owner": acceptance.owner,
            "expires": acceptance.expires.isoformat(),
            "expired": acceptance.expired,
        }
        if not acceptance.expired:
            result["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": printable(acceptance.reason, 2000),
                    "properties": {
                        "owner": acceptance.owner,
                        "expires": acceptance.expires.isoformat(),
                    },
                }
            ]
    result["properties"] = properties
    return result


def _reachability(finding: Finding, host: HostReport) -> dict[str, Any]:
    """In a run audited from several vantages: the host's vantages, and for a finding on a
    listed service the vantages it was reachable from, not reachable from and not tested
    from."""
    obs = host.observation
    if not obs.vantages:
        return {}
    properties: dict[str, Any] = {"vantages": list(obs.vantages)}
    for service in obs.services:
        if (service.port, service.protocol) == (finding.port, finding.protocol):
            properties["reachableFrom"] = list(service.reachable_from)
            properties["notReachableFrom"] = list(obs.unreachable_from(service))
            properties["untestedFrom"] = list(service.untested_from)
            break
    return properties


def _notifications(report: Report) -> list[dict[str, Any]]:
    """Run errors, the run's notes (nothing audited, targets not audited, interrupted, UDP
    skipped, stale accepted risks: ``Report.run_notes``), and every host that could not be
    fully tested: not tested is not safe."""
    notes: list[dict[str, Any]] = [
        {"level": "error", "message": {"text": printable(error, 2000)}} for error in report.errors
    ]
    notes += [
        {"level": "warning", "message": {"text": printable(note, 2000)}}
        for note in report.run_notes()
    ]
    for host in report.hosts_by_risk():
        obs = host.observation
        why = [
            f"{a.probe} {a.status.value}" + (f" on port {a.port}" if a.port else "")
            for a in obs.attempts
            if a.status.value in ("timed_out", "error")
        ] + list(obs.errors)
        if obs.status.value != "complete" or obs.errors:
            notes.append(
                {
                    "level": "warning",
                    "message": {
                        "text": printable(
                            f"{obs.address} {obs.status.value}, graded {host.grade.value}"
                            + (f": {'; '.join(why)}" if why else ""),
                            2000,
                        )
                    },
                }
            )
    return notes


def render_sarif(report: Report) -> str:
    """The report as one SARIF 2.1.0 log (JSON, ASCII, ending in a newline)."""
    rules = dict(RULES)
    for finding in report.findings():
        rules.setdefault(finding.rule, _unknown_rule(finding))
    index = {rule_id: i for i, rule_id in enumerate(rules)}
    results = [
        _result(f, host, index)
        for host in report.hosts_by_risk()
        for f in sorted(host.findings, key=lambda f: (-f.severity, f.rule, f.port, f.protocol))
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "exposure-audit",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(rule) for rule in rules.values()],
            }
        },
        "invocations": [
            {
                # A run that audited no host did not do its job (exit 3), complete or not.
                "executionSuccessful": report.complete and not report.audited_nothing,
                "startTimeUtc": iso_time(report.started_at),
                "endTimeUtc": iso_time(report.finished_at),
                "toolExecutionNotifications": _notifications(report),
            }
        ],
        "originalUriBaseIds": {
            URI_BASE_ID: {
                "description": {
                    "text": "Not a file: network services audited from outside, named "
                    "exposure-audit/<address>/<protocol>/<port>."
                }
            }
        },
        "results": results,
        "properties": {
            "grade": report.grade.value,
            "interrupted": report.interrupted,
            "notAudited": [{"target": t.target, "reason": t.reason} for t in report.not_audited],
            "ports": {"tcp": list(report.ports.tcp), "udp": list(report.ports.udp)},
            "hosts": [
                {
                    "address": h.address,
                    "grade": h.grade.value,
                    "status": h.observation.status.value,
                    **(
                        {"vantages": list(h.observation.vantages)} if h.observation.vantages else {}
                    ),
                }
                for h in report.hosts_by_risk()
            ],
            **({"vantages": list(report.vantages)} if report.vantages else {}),
        },
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, ensure_ascii=True) + "\n"
