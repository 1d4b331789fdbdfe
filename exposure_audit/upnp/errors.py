"""Exceptions raised by :mod:`exposure_audit.upnp`.

Everything UPnP sends us comes from a machine we do not control, so the parsers raise one
documented error and nothing else. The tree::

    ValueError
    ├── UpnpParseError     a device description, SOAP answer or fault that is not what UPnP
    │                      says it should be: not XML, too big, a DTD or entity declaration
    │                      (XML bombs, external entities), missing or out-of-range fields
    ├── InventoryError     an inventory document (``upnp-inventory`` JSON) that fails
    │                      validation; ``field`` names the bad field (``mappings[2].protocol``)
    └── UpnpDataError      a shipped ``exposure_audit/data/upnp_*.json`` file with the wrong
                           shape (a packaging bug; the data tests catch it)

They derive from :class:`ValueError` rather than ``exposure_audit.errors.ExposureAuditError``:
a hostile answer is an observation to record, not a reason to stop the run.
"""

from __future__ import annotations

__all__ = ["InventoryError", "UpnpDataError", "UpnpParseError"]


class UpnpParseError(ValueError):
    """What a UPnP device sent could not be read as the document it should be."""


class InventoryError(ValueError):
    """An inventory document failed validation. ``field`` is the path of the bad field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class UpnpDataError(ValueError):
    """A ``upnp_*.json`` data file does not have the expected shape."""
