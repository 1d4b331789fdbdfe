"""What every topic module of the rules package builds on: a check, its match, and the record
that registers a rule's metadata together with its check.

Private to the package: importers use :mod:`exposure_audit.rules` (``RULES``, ``evaluate_host``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from ..findings import Rule, Severity
from ..observations import HostObservation, ServiceObservation


@dataclass(frozen=True)
class Match:
    """One thing a check found on a host; the registry turns it into a finding of its rule.

    ``service`` places the finding on a port (``None``: on the host, port 0). ``severity``
    overrides the rule's default severity when not ``None``; ``severity_reason`` then says why.
    """

    service: ServiceObservation | None
    evidence: str
    severity: Severity | None = None
    severity_reason: str = ""


Check = Callable[[HostObservation, datetime], Iterable[Match]]
"""A rule's check: reads one host's observations (``now`` dates certificates) and yields a
:class:`Match` for each finding of its rule. Pure: it reads nothing but its arguments."""


@dataclass(frozen=True)
class Registered:
    """A rule's metadata and the check that fires it: one entry of the registry."""

    rule: Rule
    check: Check
