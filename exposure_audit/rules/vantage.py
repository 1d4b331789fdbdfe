"""Vantage rules (VAN001): a port that answers from some vantage points and not from others.

Only a report merged from several vantages (``run.vantage``) carries what this rule reads: each
service's ``reachable_from`` and ``untested_from``, and the host's ``vantages``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ..findings import Rule, Severity
from ..observations import HostObservation
from ._base import Match, Registered


def _check_vantages(host: HostObservation, now: datetime) -> Iterator[Match]:
    # Only vantages that scanned the port count as "not reachable": one whose audit of the host
    # was cut short, that skipped the port or its protocol (untested_from), or that never
    # reported the host (not in host.vantages) proves nothing.
    for service in host.open_services():
        unreachable = host.unreachable_from(service)
        if not service.reachable_from or not unreachable:
            continue
        evidence = (
            f"{service.port}/{service.protocol} reachable from "
            f"{', '.join(service.reachable_from)}; not from {', '.join(unreachable)}"
        )
        if service.untested_from:
            evidence += f"; not tested from {', '.join(service.untested_from)}"
        yield Match(service, evidence)


# This topic's rules, in id order; the registry (rules/__init__.py) collects them into RULES.
REGISTERED: tuple[Registered, ...] = (
    Registered(
        Rule(
            "VAN001",
            "Service reachable from some vantage points and not from others",
            Severity.MEDIUM,
            "The same port answered from one vantage point and not from another that scanned "
            "the host to the end: the firewall lets one region or network in and not another. "
            "Such a rule set is inconsistent (a geo-block, a per-region allow-list or security "
            "group, a forward on one path only), and the exposure is as wide as the widest "
            "view: anyone where the port answers can attack it, while the vantages it hides "
            "from give false comfort. The service's own findings keep their severity.",
            "Decide who must reach the service. If nobody outside: close it on the router or "
            "firewall for every source and use a VPN. If some sources: restrict it explicitly "
            "to the intended source addresses rather than relying on what happens to be "
            "filtered on some paths. Then audit again from every vantage point.",
            (),
        ),
        _check_vantages,
    ),
)
