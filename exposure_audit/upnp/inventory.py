"""The inside inventory: an IGD's mapping table read on the LAN, as a JSON document.

``exposure-audit upnp-inventory`` writes it inside the network; ``scan --upnp-inventory`` reads
it back to tie what is reachable from outside to the mappings that opened it. The document::

    {
      "schema": "exposure-audit-upnp-inventory/1",
      "igd_url": "http://192.168.1.1:2189/rootDesc.xml",      (null: no IGD found)
      "external_address": "203.0.113.1",                       (null: unknown)
      "taken_at": "2026-11-27T10:00:00+00:00",
      "mappings": [{"external_port": 5000, "protocol": "TCP", "internal_client": "192.168.1.5",
                    "internal_port": 5000, "description": "DSM", "lease_duration": 0,
                    "enabled": true, "remote_host": ""}],
      "errors": []
    }

A mapping has :class:`~exposure_audit.observations.PortMapping`'s field names; ``enabled`` and
``remote_host`` may be absent (true and "").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..observations import PortMapping
from .errors import InventoryError

__all__ = [
    "INVENTORY_SCHEMA",
    "Inventory",
    "inventory_from_dict",
    "inventory_to_dict",
    "mapping_from_dict",
    "mapping_to_dict",
]

INVENTORY_SCHEMA = "exposure-audit-upnp-inventory/1"
_MAX_MAPPINGS = 65536
_MAX_TEXT = 1024


@dataclass(frozen=True)
class Inventory:
    """An IGD's state as read from inside the LAN.

    ``igd_url`` is the description URL read (None when no IGD was found); ``external_address``
    is GetExternalIPAddress (None when unknown); ``taken_at`` an ISO 8601 time. ``errors`` says
    what could not be read: an inventory with errors may be incomplete, not empty.
    """

    igd_url: str | None
    external_address: str | None
    mappings: tuple[PortMapping, ...]
    taken_at: str
    errors: tuple[str, ...] = ()


def mapping_to_dict(mapping: PortMapping) -> dict[str, Any]:
    """A port mapping as the inventory (and the report) write it."""
    return {
        "external_port": mapping.external_port,
        "protocol": mapping.protocol,
        "internal_client": mapping.internal_client,
        "internal_port": mapping.internal_port,
        "description": mapping.description,
        "lease_duration": mapping.lease_duration,
        "enabled": mapping.enabled,
        "remote_host": mapping.remote_host,
    }


def mapping_from_dict(data: object, where: str = "mapping") -> PortMapping:
    """Read one mapping written by :func:`mapping_to_dict`.

    Raises :class:`InventoryError` naming the field (``where`` prefixes it) when a field is
    missing or wrong: ports 0-65535, a non-empty protocol and internal client, a lease 0-2^32-1.
    """
    obj = _object(data, where)
    protocol = _text(obj, "protocol", where, required=True)
    if len(protocol) > 16:
        raise InventoryError(f"{where}.protocol", "longer than 16 characters")
    return PortMapping(
        external_port=_integer(obj, "external_port", where, 0xFFFF),
        protocol=protocol.upper(),
        internal_client=_text(obj, "internal_client", where, required=True),
        internal_port=_integer(obj, "internal_port", where, 0xFFFF),
        description=_text(obj, "description", where),
        lease_duration=_integer(obj, "lease_duration", where, 0xFFFFFFFF, default=0),
        enabled=_boolean(obj, "enabled", where, default=True),
        remote_host=_text(obj, "remote_host", where),
    )


def inventory_to_dict(inventory: Inventory) -> dict[str, Any]:
    """The inventory as a JSON-ready dict (see the module docstring for the shape)."""
    return {
        "schema": INVENTORY_SCHEMA,
        "igd_url": inventory.igd_url,
        "external_address": inventory.external_address,
        "taken_at": inventory.taken_at,
        "mappings": [mapping_to_dict(m) for m in inventory.mappings],
        "errors": list(inventory.errors),
    }


def inventory_from_dict(data: object) -> Inventory:
    """Read an inventory document (parsed JSON) back.

    Raises :class:`InventoryError` (a ValueError) naming the bad field: ``schema`` when the
    document is not an ``exposure-audit-upnp-inventory/1``, ``external_address`` when it is not
    an IP address, ``taken_at`` when it is not ISO 8601, ``mappings[3].internal_port`` ...
    Unknown keys are ignored.
    """
    obj = _object(data, "inventory")
    schema = obj.get("schema")
    if schema != INVENTORY_SCHEMA:
        raise InventoryError("schema", f"must be {INVENTORY_SCHEMA!r}, not {_show(schema)}")
    igd_url = _optional_text(obj, "igd_url")
    external = _optional_text(obj, "external_address")
    if external is not None:
        try:
            external = ipaddress.ip_address(external).compressed
        except ValueError:
            raise InventoryError(
                "external_address", f"{_show(external)} is not an IP address"
            ) from None
    taken_at = _text(obj, "taken_at", "", required=True)
    try:
        datetime.fromisoformat(taken_at)
    except ValueError:
        raise InventoryError("taken_at", f"{_show(taken_at)} is not an ISO 8601 time") from None
    raw_mappings = obj.get("mappings")
    if not isinstance(raw_mappings, list):
        raise InventoryError("mappings", f"must be a list, not {_kind(raw_mappings)}")
    if len(raw_mappings) > _MAX_MAPPINGS:
        raise InventoryError("mappings", f"more than {_MAX_MAPPINGS} entries")
    mappings = tuple(mapping_from_dict(m, f"mappings[{i}]") for i, m in enumerate(raw_mappings))
    raw_errors = obj.get("errors", [])
    if not isinstance(raw_errors, list) or not all(isinstance(e, str) for e in raw_errors):
        raise InventoryError("errors", "must be a list of strings")
    return Inventory(
        igd_url=igd_url,
        external_address=external,
        mappings=mappings,
        taken_at=taken_at,
        errors=tuple(str(e) for e in raw_errors),
    )


def _object(data: object, where: str) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise InventoryError(where, f"must be an object, not {_kind(data)}")
    return data


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _text(obj: Mapping[str, object], key: str, where: str, *, required: bool = False) -> str:
    if required and key not in obj:
        raise InventoryError(_field(where, key), "is missing")
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise InventoryError(_field(where, key), f"must be a string, not {_kind(value)}")
    if required and not value:
        raise InventoryError(_field(where, key), "must not be empty")
    if len(value) > _MAX_TEXT:
        raise InventoryError(_field(where, key), f"longer than {_MAX_TEXT} characters")
    return value


def _optional_text(obj: Mapping[str, object], key: str) -> str | None:
    if obj.get(key) is None:
        return None
    return _text(obj, key, "", required=True)


def _integer(
    obj: Mapping[str, object], key: str, where: str, top: int, default: int | None = None
) -> int:
    if default is None and key not in obj:
        raise InventoryError(_field(where, key), "is missing")
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InventoryError(_field(where, key), f"must be an integer, not {_kind(value)}")
    if not 0 <= value <= top:
        raise InventoryError(_field(where, key), f"{value} is outside 0-{top}")
    return value


def _boolean(obj: Mapping[str, object], key: str, where: str, *, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise InventoryError(_field(where, key), f"must be true or false, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: object) -> str:
    return repr(value)[:60]
