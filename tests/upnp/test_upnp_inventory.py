"""The inside inventory document: JSON round trip and validation that names the bad field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exposure_audit.observations import PortMapping
from exposure_audit.upnp import (
    INVENTORY_SCHEMA,
    Inventory,
    InventoryError,
    inventory_from_dict,
    inventory_to_dict,
    mapping_from_dict,
    mapping_to_dict,
)

INVENTORY = Inventory(
    igd_url="http://192.168.50.1:2189/rootDesc.xml",
    external_address="203.0.113.1",
    mappings=(
        PortMapping(5000, "TCP", "192.168.50.10", 5000, "DSM HTTP", 604800),
        PortMapping(5001, "TCP", "192.168.50.10", 5001, "DSM HTTPS", 0),
        PortMapping(51413, "UDP", "192.168.50.20", 51413, "Transmission", 0, False, "198.51.100.1"),
    ),
    taken_at="2026-11-27T10:00:00+00:00",
    errors=("upnp http://192.168.50.1:2189/ctl/IPConn: GetExternalIPAddress: HTTP 500",),
)


def test_an_inventory_survives_a_json_round_trip() -> None:
    document = json.loads(json.dumps(inventory_to_dict(INVENTORY)))
    assert document["schema"] == INVENTORY_SCHEMA == "exposure-audit-upnp-inventory/1"
    assert inventory_from_dict(document) == INVENTORY


def test_an_inventory_without_an_igd_round_trips_with_nulls() -> None:
    empty = Inventory(None, None, (), "2026-11-27T10:00:00+00:00", ("no IGD answered",))
    document = inventory_to_dict(empty)
    assert document["igd_url"] is None and document["mappings"] == []
    assert inventory_from_dict(document) == empty


def test_a_mapping_has_port_mapping_field_names() -> None:
    mapping = INVENTORY.mappings[0]
    assert mapping_to_dict(mapping) == {
        "external_port": 5000,
        "protocol": "TCP",
        "internal_client": "192.168.50.10",
        "internal_port": 5000,
        "description": "DSM HTTP",
        "lease_duration": 604800,
        "enabled": True,
        "remote_host": "",
    }
    minimal = {
        "external_port": 22,
        "protocol": "tcp",
        "internal_client": "10.0.0.2",
        "internal_port": 22,
    }
    assert mapping_from_dict(minimal) == PortMapping(22, "TCP", "10.0.0.2", 22)


def _document(**changes: Any) -> dict[str, Any]:
    document = inventory_to_dict(INVENTORY)
    document.update(changes)
    return document


def _with_mapping(index: int, **changes: Any) -> dict[str, Any]:
    document = inventory_to_dict(INVENTORY)
    document["mappings"][index].update(changes)
    return document


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "inventory"),
        (_document(schema="exposure-audit-upnp-inventory/2"), "schema"),
        ({k: v for k, v in _document().items() if k != "schema"}, "schema"),
        (_document(external_address="not-an-ip"), "external_address"),
        (_document(external_address=17), "external_address"),
        (_document(igd_url=""), "igd_url"),
        (_document(taken_at="yesterday"), "taken_at"),
        ({k: v for k, v in _document().items() if k != "taken_at"}, "taken_at"),
        (_document(mappings={}), "mappings"),
        (_document(mappings=[1]), "mappings[0]"),
        (_document(errors="oops"), "errors"),
        (_with_mapping(2, external_port=70000), "mappings[2].external_port"),
        (_with_mapping(1, internal_port="5001"), "mappings[1].internal_port"),
        (_with_mapping(0, external_port=True), "mappings[0].external_port"),
        (_with_mapping(0, protocol=""), "mappings[0].protocol"),
        (_with_mapping(0, protocol="T" * 17), "mappings[0].protocol"),
        (_with_mapping(1, internal_client=None), "mappings[1].internal_client"),
        (_with_mapping(0, lease_duration=-1), "mappings[0].lease_duration"),
        (_with_mapping(0, enabled="yes"), "mappings[0].enabled"),
        (_with_mapping(0, description="x" * 2000), "mappings[0].description"),
    ],
)
def test_a_bad_document_raises_an_error_naming_the_field(document: object, field: str) -> None:
    with pytest.raises(InventoryError) as raised:
        inventory_from_dict(document)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert isinstance(raised.value, ValueError)


def test_a_missing_required_mapping_field_is_named() -> None:
    document = inventory_to_dict(INVENTORY)
    del document["mappings"][1]["internal_client"]
    with pytest.raises(InventoryError, match=r"mappings\[1\]\.internal_client: is missing"):
        inventory_from_dict(document)


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    assert inventory_from_dict(_document(comment="taken by hand")) == INVENTORY
