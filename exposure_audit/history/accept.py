"""Accepted risks: findings the owner has decided to live with, until a date.

An entry names a finding by its id (``DSM005-3f1c0e9a2b7d``) or by rule, address and port
(``protocol`` optional), and carries a reason, an owner and an expiry date. Applied to a report
(:func:`apply_acceptances`), a matching finding stays in the report with
:attr:`~exposure_audit.findings.Finding.acceptance` set: it no longer counts for the host grade
or the exit code, until the day after ``expires``, when it counts again and is flagged
"acceptance expired". An entry that matches nothing is returned as stale, so the list does not
rot silently.

The file format (also the ``[[accept]]`` tables of the config file)::

    [[accept]]
    id = "DSM005-3f1c0e9a2b7d"
    reason = "version endpoint cannot be turned off; DSM stays patched"
    owner = "alice@example.net"
    expires = 2027-03-31

    [[accept]]
    rule = "SVC002"
    address = "198.51.100.7"
    port = 22
    reason = "SSH with keys only, Auto Block on"
    owner = "bob"
    expires = 2026-12-31

Pure: parsers take the text and the name of the file it came from (the CLI reads files).
The file is read with :class:`~exposure_audit.tomlfile.TomlDocument`, so every error is a
:class:`~exposure_audit.tomlfile.TomlFileError` naming the file, the line and the dotted key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ..findings import Acceptance, Finding
from ..grading import grade_host
from ..report import Report
from ..tomlfile import KeyPath, TomlDocument, TomlFileError

__all__ = [
    "AcceptedRisk",
    "TomlFileError",  # what parse_accepted raises, named here for its callers
    "accepted_from",
    "apply_acceptances",
    "parse_accepted",
]


@dataclass(frozen=True, kw_only=True)
class AcceptedRisk:
    """One accepted-risk entry: a finding ``id``, or ``rule`` + ``address`` + ``port`` (and
    optionally ``protocol``; None matches any), with why, who and until when.

    ``where`` says where the entry was written (``accepted.toml:12``) for messages about it.
    Raises ``ValueError`` unless exactly one of the two ways of naming a finding is given.
    """

    id: str | None = None
    rule: str | None = None
    address: str | None = None
    port: int | None = None
    protocol: str | None = None
    reason: str
    owner: str
    expires: date
    where: str

    def __post_init__(self) -> None:
        by_key = (self.rule, self.address, self.port)
        if self.id is None and None in by_key:
            raise ValueError("an accepted risk needs an id, or a rule, an address and a port")
        if self.id is not None and any(v is not None for v in (*by_key, self.protocol)):
            raise ValueError("an accepted risk names a finding by id or by rule+address+port")

    def matches(self, finding: Finding) -> bool:
        if self.id is not None:
            return finding.id == self.id
        return (
            finding.rule == self.rule
            and finding.address == self.address
            and finding.port == self.port
            and (self.protocol is None or finding.protocol == self.protocol)
        )

    def expired(self, today: date) -> bool:
        """True from the day after ``expires``."""
        return today > self.expires

    def acceptance(self, today: date) -> Acceptance:
        return Acceptance(self.reason, self.owner, self.expires, expired=self.expired(today))


def apply_acceptances(
    report: Report, risks: Sequence[AcceptedRisk], today: date
) -> tuple[Report, list[AcceptedRisk]]:
    """Mark the findings that ``risks`` match and regrade their hosts.

    Returns the report with every finding's ``acceptance`` set from ``risks`` (None where none
    matches, so applying twice gives the same report) and each host graded again with
    :func:`~exposure_audit.grading.grade_host` (live acceptances do not count, expired ones
    do), and the stale entries: those that matched no finding, in their given order. When
    several entries match one finding the live one expiring last wins. Pure; never raises.
    """
    used: set[int] = set()
    hosts = []
    for host in report.hosts:
        findings = []
        for finding in host.findings:
            matching = [i for i, risk in enumerate(risks) if risk.matches(finding)]
            used.update(matching)
            best = max(
                (risks[i] for i in matching),
                key=lambda r: (not r.expired(today), r.expires),
                default=None,
            )
            acceptance = best.acceptance(today) if best is not None else None
            findings.append(dataclasses.replace(finding, acceptance=acceptance))
        marked = tuple(findings)
        grade = grade_host(marked, host.observation)
        hosts.append(dataclasses.replace(host, findings=marked, grade=grade))
    stale = [risk for i, risk in enumerate(risks) if i not in used]
    return dataclasses.replace(report, hosts=tuple(hosts)), stale


def parse_accepted(text: str, source: str) -> list[AcceptedRisk]:
    """Parse an accepted-risks file: ``[[accept]]`` tables and nothing else.

    ``source`` names the file in errors and in each entry's ``where``. Raises
    :class:`TomlFileError` naming the file, the line and the key for bad TOML, an unknown key,
    a wrong type, a missing ``reason``/``owner``/``expires`` or a finding named both or neither
    way.
    """
    doc = TomlDocument.parse(text, source)
    doc.check_keys((), doc.data, ("accept",))
    return accepted_from(doc, ("accept",))


_ENTRY_KEYS = ("id", "rule", "address", "port", "protocol", "reason", "owner", "expires")
_REQUIRED = "every entry needs reason, owner and expires"
_ENTRY_HINTS = {
    "finding": "unknown key (name the finding with id, or with rule, address and port)",
    "expiry": "unknown key (the key is expires)",
    "expires_on": "unknown key (the key is expires)",
    "until": "unknown key (the key is expires)",
}


def accepted_from(doc: TomlDocument, path: KeyPath) -> list[AcceptedRisk]:
    """Read the array of accept tables at ``path`` of ``doc`` (none there: an empty list).

    Raises ``doc``'s error type (see :meth:`TomlDocument.fail`), as :func:`parse_accepted` does.
    """
    entries = doc.value(path)
    if entries is None:
        return []
    if not isinstance(entries, list):
        doc.fail(path, "must be an array of tables ([[accept]] entries)")
    return [_entry(doc, (*path, i), entry) for i, entry in enumerate(entries)]


def _entry(doc: TomlDocument, path: KeyPath, entry: object) -> AcceptedRisk:
    if not isinstance(entry, dict):
        doc.fail(path, f"must be a table of {', '.join(_ENTRY_KEYS)}, not {doc.kind(entry)}")
    doc.check_keys(path, entry, _ENTRY_KEYS, _ENTRY_HINTS)
    finding_id = doc.text(path, entry, "id")
    rule = doc.text(path, entry, "rule")
    address = doc.text(path, entry, "address")
    port = doc.integer(path, entry, "port", 0, 65_535)
    protocol = doc.choice(path, entry, "protocol", ("tcp", "udp"))
    by_key = {"rule": rule, "address": address, "port": port}
    if finding_id is not None:
        extra = [k for k in (*by_key, "protocol") if k in entry]
        if extra:
            doc.fail((*path, extra[0]), "name the finding by id or by rule+address+port, not both")
    else:
        missing = [k for k, v in by_key.items() if v is None]
        if missing:
            doc.fail(
                (*path, missing[0]),
                "missing (name the finding by id, or by rule, address and port)",
            )
    if address is not None:
        try:
            address = ipaddress.ip_address(address).compressed
        except ValueError:
            doc.fail((*path, "address"), f"{doc.quote(address)} is not an IP address")
    return AcceptedRisk(
        id=finding_id,
        rule=rule.upper() if rule is not None else None,
        address=address,
        port=port,
        protocol=protocol,
        reason=doc.require((*path, "reason"), doc.text(path, entry, "reason"), _REQUIRED),
        owner=doc.require((*path, "owner"), doc.text(path, entry, "owner"), _REQUIRED),
        expires=doc.require((*path, "expires"), doc.day(path, entry, "expires"), _REQUIRED),
        where=doc.where(path),
    )
