"""Correlation of UPnP port mappings with what was reachable from outside.

Pure: given a host's observations and a list of mappings (read from the router over the WAN,
or from an inventory taken inside the LAN), mark every reachable service that a mapping
forwards, and list the mappings nothing answered on and the reachable ports no mapping explains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..observations import HostObservation, PortMapping, UpnpForwarding

__all__ = ["apply_mappings"]


def apply_mappings(
    host: HostObservation, mappings: Sequence[PortMapping], source: str
) -> HostObservation:
    """Return ``host`` with ``upnp_mapping`` set on the open services a mapping forwards and
    ``forwarding`` summarising the rest. Matching is by external port and protocol."""
    by_port = {(m.external_port, m.protocol.lower()): m for m in mappings}
    services = []
    reachable: set[tuple[int, str]] = set()
    for service in host.services:
        key = (service.port, service.protocol)
        if service.state == "open":
            reachable.add(key)
            if key in by_port:
                service = dataclasses.replace(service, upnp_mapping=by_port[key])
        services.append(service)
    unreachable = tuple(m for k, m in by_port.items() if k not in reachable)
    unmapped = tuple(
        sorted(p for p, proto in reachable if proto == "tcp" and (p, proto) not in by_port)
    )
    forwarding = UpnpForwarding(source, unreachable, unmapped)
    return dataclasses.replace(host, services=tuple(services), forwarding=forwarding)
