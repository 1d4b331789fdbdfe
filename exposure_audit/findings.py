"""Findings: judgements made by rules over observations.

A :class:`Rule` is metadata (stable id, title stated as a condition, default severity,
rationale, remediation, references). A :class:`Finding` is one rule matched on one
address/protocol/port, with an id derived only from those four values so that two runs can be
diffed and a finding can be accepted by id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from enum import IntEnum

__all__ = ["Acceptance", "Finding", "Rule", "Severity", "finding_id"]


class Severity(IntEnum):
    """Ordered severities; comparisons follow the order (``Severity.HIGH > Severity.LOW``)."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Read ``"high"`` (any case) as :attr:`HIGH`; raise ``ValueError`` naming the choices."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (choose from {choices})") from None


@dataclass(frozen=True)
class Rule:
    """A rule's metadata. Ids never change meaning once published (like ruff's E501)."""

    id: str
    title: str
    severity: Severity
    rationale: str
    remediation: str
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Acceptance:
    """An accepted risk that matched a finding: who accepted it, why, and until when.

    ``expired`` is True from the day after ``expires``: the finding then counts again and the
    report flags "acceptance expired".
    """

    reason: str
    owner: str
    expires: date
    expired: bool = False


@dataclass(frozen=True)
class Finding:
    """One rule matched on one address, protocol and port.

    ``severity`` may differ from the rule's default; ``severity_reason`` then says why.
    ``port`` is 0 and ``protocol`` is ``""`` for host-level findings.
    """

    id: str
    rule: str
    severity: Severity
    address: str
    port: int
    protocol: str
    title: str
    evidence: str
    remediation: str
    severity_reason: str = ""
    acceptance: Acceptance | None = None

    @property
    def counts(self) -> bool:
        """Whether the finding counts for grades and exit codes (not under a live acceptance)."""
        return self.acceptance is None or self.acceptance.expired


def finding_id(rule: str, address: str, protocol: str, port: int) -> str:
    """Return the deterministic id of a finding: the same inputs give the same id in every run.

    The id depends on nothing volatile (no evidence, no time), so a finding keeps its id while
    its evidence changes (a DSM update changes the evidence of DSM004, not its id).
    """
    key = f"{rule}|{address}|{protocol}|{port}".encode()
    return f"{rule}-{hashlib.sha256(key).hexdigest()[:12]}"
