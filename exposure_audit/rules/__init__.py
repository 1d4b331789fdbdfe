"""Rules: the judgement layer. Each rule reads a host's observations and yields findings.

One explicit registry (:data:`RULES`, in id order) holds every rule with its metadata; ids are
stable and opaque (``DSM001``), so renaming a title never breaks history or accepted risks.
The advice behind every remediation is the SynoLocker-era one, still true: patch, and never
expose a management interface to the Internet (use a VPN), and turn off UPnP port forwarding
for the NAS on the router.

Where each rule lives (its id prefix names the topic; UNK rules sit with the services):

- :mod:`.dsm`: DSM001-DSM005, the DSM management interface (HTTP, HTTPS, SynoLocker,
  advisories and end of life, version disclosed);
- :mod:`.mgmt`: MGMT001 and MGMT002, a catalog management console over plain HTTP or HTTPS;
- :mod:`.mgmt_exploited`: MGMT003, a console version with a known-exploited flaw;
- :mod:`.banners`: VULN001, a service banner with a known-exploited flaw;
- :mod:`.services`: SVC001 (cleartext and data-plane services), SVC002 (remote administration:
  SSH, SRM), UNK001 and UNK002 (open ports nothing identified);
- :mod:`.tls`: TLS001, certificates;
- :mod:`.upnp`: UPNP001-UPNP004 (SSDP, IGD, forwarded mappings, vulnerable stacks) and
  :func:`describe_mapping`;
- :mod:`.vantage`: VAN001, reachable from some vantage points only;
- :mod:`._base`: what they share (``Match``, ``Check``, ``Registered``).

A new rule: write its check in its topic's module and add a ``Registered`` entry to that
module's ``REGISTERED`` tuple (a new topic: a new module, and its tuple in ``_REGISTRY`` below);
the registry picks it up and keeps ``RULES`` in id order. Give it the next free id of its
prefix: ids are stable, never renamed and never reused, since history, accepted risks and SARIF
output name them. Document it in ``docs/rules.md`` (a test checks every rule is there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from itertools import pairwise

from ..findings import Finding, Rule, finding_id
from ..observations import HostObservation
from . import banners, dsm, mgmt, mgmt_exploited, services, tls, upnp, vantage
from ._base import Registered
from .upnp import describe_mapping

__all__ = ["RULES", "describe_mapping", "evaluate_host", "rule_by_id"]


def _in_id_order(entries: Iterable[Registered]) -> tuple[Registered, ...]:
    """The entries sorted by rule id; ``ValueError`` naming any id registered twice."""
    ordered = sorted(entries, key=lambda entry: entry.rule.id)
    twice = sorted({a.rule.id for a, b in pairwise(ordered) if a.rule.id == b.rule.id})
    if twice:
        raise ValueError(f"rule ids registered twice: {', '.join(twice)}")
    return tuple(ordered)


# Sorted by id rather than concatenated by topic: evaluate_host reports in this order, which must
# not depend on where a rule lives (services holds UNK001 and UNK002, which sort after TLS001).
_REGISTRY: tuple[Registered, ...] = _in_id_order(
    (
        *banners.REGISTERED,
        *dsm.REGISTERED,
        *mgmt.REGISTERED,
        *mgmt_exploited.REGISTERED,
        *services.REGISTERED,
        *tls.REGISTERED,
        *upnp.REGISTERED,
        *vantage.REGISTERED,
    )
)

RULES: dict[str, Rule] = {entry.rule.id: entry.rule for entry in _REGISTRY}


def rule_by_id(rule_id: str) -> Rule:
    """The rule with this id (case-insensitive); ``KeyError`` naming the known ids otherwise."""
    try:
        return RULES[rule_id.upper()]
    except KeyError:
        raise KeyError(f"no rule {rule_id!r}; known: {', '.join(RULES)}") from None


def evaluate_host(host: HostObservation, now: datetime) -> tuple[Finding, ...]:
    """Run every rule on one host; findings come in rule order, then port order."""
    findings: list[Finding] = []
    for entry in _REGISTRY:
        for match in entry.check(host, now):
            rule = entry.rule
            port = match.service.port if match.service else 0
            protocol = match.service.protocol if match.service else ""
            findings.append(
                Finding(
                    id=finding_id(rule.id, host.address, protocol, port),
                    rule=rule.id,
                    severity=match.severity if match.severity is not None else rule.severity,
                    address=host.address,
                    port=port,
                    protocol=protocol,
                    title=rule.title,
                    evidence=match.evidence,
                    remediation=rule.remediation,
                    severity_reason=match.severity_reason,
                )
            )
    return tuple(_name_mappings(host, findings))


def _name_mappings(host: HostObservation, findings: list[Finding]) -> list[Finding]:
    """A service's own findings keep their severity and name the UPnP mapping behind it."""
    mapped = {
        (s.port, s.protocol): s.upnp_mapping for s in host.services if s.upnp_mapping is not None
    }
    named = []
    for finding in findings:
        mapping = mapped.get((finding.port, finding.protocol))
        if mapping is not None and finding.rule != "UPNP003":
            finding = replace(
                finding, evidence=f"{finding.evidence} [UPnP mapping {describe_mapping(mapping)}]"
            )
        named.append(finding)
    return named
