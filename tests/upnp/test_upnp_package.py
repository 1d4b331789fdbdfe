"""The UPnP package's public surface (pinned, as httpx pins its own) and its purity."""

from __future__ import annotations

import ast
from pathlib import Path

import exposure_audit.upnp as upnp

FORBIDDEN = {"httpx", "socket", "asyncio", "subprocess", "dns", "nmap"}


def test_the_public_surface_is_pinned() -> None:
    assert upnp.__all__ == [
        "END_OF_TABLE_FAULTS",
        "IGD_SEARCH_TARGET",
        "INVENTORY_SCHEMA",
        "MAX_DESCRIPTION_BYTES",
        "MAX_SOAP_BYTES",
        "READ_ONLY_ACTIONS",
        "SEARCH_TARGETS",
        "SSDP_MULTICAST_ADDRESS",
        "SSDP_PORT",
        "WAN_CONNECTION_TYPES",
        "Inventory",
        "InventoryError",
        "StackVerdict",
        "UpnpDataError",
        "UpnpParseError",
        "build_msearch",
        "description_paths",
        "inventory_from_dict",
        "inventory_to_dict",
        "is_upnp_server_header",
        "mapping_from_dict",
        "mapping_to_dict",
        "parse_description",
        "parse_external_ip",
        "parse_port_mapping_entry",
        "parse_soap_fault",
        "parse_ssdp_reply",
        "rewrite_location",
        "soap_request",
        "vulnerable_stack",
        "wan_connection_service",
    ]
    assert all(hasattr(upnp, name) for name in upnp.__all__)


def test_the_package_parses_xml_only_through_defusedxml() -> None:
    for path in Path(upnp.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.module == "xml.etree.ElementTree":
                    # Only the types may come from the stdlib parser module.
                    assert {a.name for a in node.names} <= {"Element", "ParseError"}, path
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, (path, name)
                assert not name.startswith(("xml.dom", "xml.sax.expatreader", "lxml")), (path, name)
