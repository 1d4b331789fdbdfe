"""Exceptions raised by exposure_audit.

The tree::

    ExposureAuditError            base of everything this package raises on purpose
    ├── UsageError                bad input from the user; nothing was scanned (exit 2)
    │   ├── TargetError           a target or exclusion item that fails the grammar or policy
    │   └── PortSpecError         a port list that fails the grammar
    └── RunError                  the run itself could not start or finish (exit 3)
        ├── ScannerUnavailable    the nmap binary is missing or unusable
        └── ProbeFailed           a probe failed in a way that stops the run (nmap crashed)

Per-host and per-name problems (a timeout, NXDOMAIN, a refused TLS handshake) are not
exceptions: they are recorded on the observations as probe attempts and errors, because
"could not test" must never read as "safe".
"""

from __future__ import annotations

__all__ = [
    "ExposureAuditError",
    "PortSpecError",
    "ProbeFailed",
    "RunError",
    "ScannerUnavailable",
    "TargetError",
    "UsageError",
]


class ExposureAuditError(Exception):
    """Base class of every error this package raises on purpose."""


class UsageError(ExposureAuditError):
    """Bad input from the user. Raised before anything touches the network."""


class TargetError(UsageError):
    """A target or exclusion item that fails the grammar or the scan policy.

    ``where`` names the origin ("targets.txt:12" or "argument 3") so the message can point at it.
    """

    def __init__(self, where: str, item: str, reason: str) -> None:
        self.where = where
        self.item = item
        self.reason = reason
        shown = item if len(item) <= _QUOTED else item[: _QUOTED - 1] + "…"
        super().__init__(f"{where}: {shown!r}: {reason}")


_QUOTED = 80
"""At most this many characters of an item are quoted in a message: the item may be a
300 MB line, and a message is read on a terminal."""


class PortSpecError(UsageError):
    """A port specification that fails the grammar (``22,80,5000-5001,U:161``)."""


class RunError(ExposureAuditError):
    """The run could not start or finish; whatever was found so far is still reported."""


class ScannerUnavailable(RunError):
    """The nmap binary is missing or does not run."""


class ProbeFailed(RunError):
    """A probe failed in a way that stops the run (nmap crashed or printed garbage)."""
