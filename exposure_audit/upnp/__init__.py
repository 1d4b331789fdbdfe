"""What exposure_audit knows about UPnP, as pure functions over plain values.

- :mod:`.ssdp`: M-SEARCH requests, SSDP replies, LOCATION rewriting, ``Server`` banners;
- :mod:`.description`: device descriptions (defusedxml) and the IGD's WAN connection service;
- :mod:`.soap`: the three read-only SOAP actions the scanner may send, and their answers;
- :mod:`.stacks`: UPnP stacks with known flaws, from ``exposure_audit/data/upnp_stacks.json``;
- :mod:`.inventory`: the inside inventory and its JSON document;
- :mod:`.errors`: the exception tree.

Nothing here touches the network: ``exposure_audit.probes.upnp`` does, with these functions.
"""

from __future__ import annotations

from .description import (
    MAX_DESCRIPTION_BYTES,
    WAN_CONNECTION_TYPES,
    description_paths,
    parse_description,
    wan_connection_service,
)
from .errors import InventoryError, UpnpDataError, UpnpParseError
from .inventory import (
    INVENTORY_SCHEMA,
    Inventory,
    inventory_from_dict,
    inventory_to_dict,
    mapping_from_dict,
    mapping_to_dict,
)
from .soap import (
    END_OF_TABLE_FAULTS,
    MAX_SOAP_BYTES,
    READ_ONLY_ACTIONS,
    parse_external_ip,
    parse_port_mapping_entry,
    parse_soap_fault,
    soap_request,
)
from .ssdp import (
    IGD_SEARCH_TARGET,
    SEARCH_TARGETS,
    SSDP_MULTICAST_ADDRESS,
    SSDP_PORT,
    build_msearch,
    is_upnp_server_header,
    parse_ssdp_reply,
    rewrite_location,
)
from .stacks import StackVerdict, vulnerable_stack

__all__ = [
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
