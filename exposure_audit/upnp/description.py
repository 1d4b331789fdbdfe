"""UPnP device descriptions: parsing the XML a LOCATION points at, finding the IGD's WAN service.

A description (UDA 1.1 section 2.3) is ``<root><URLBase>?<device>`` where a device has a
``serviceList`` of services (``serviceType``, ``controlURL``, ``SCPDURL``) and a ``deviceList``
of embedded devices. An Internet Gateway Device nests them: InternetGatewayDevice > WANDevice >
WANConnectionDevice > WANIPConnection or WANPPPConnection, whose control URL answers the
port-mapping actions (the miniupnpd capture in tests/data/upnp shows the shape).
"""

from __future__ import annotations

from functools import cache
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element

from ..observations import IgdDescription, IgdService
from ._data import get_list, get_str, load
from ._xml import child, children, local_name, parse_xml, text_of
from .errors import UpnpDataError, UpnpParseError

__all__ = [
    "MAX_DESCRIPTION_BYTES",
    "WAN_CONNECTION_TYPES",
    "description_paths",
    "parse_description",
    "wan_connection_service",
]

MAX_DESCRIPTION_BYTES = 256 * 1024  # miniupnpd's is 3 KiB; the biggest real ones are ~30 KiB
_MAX_DEPTH = 8
_MAX_DEVICES = 32
_MAX_SERVICES = 64
_MAX_NAME = 256
_MAX_URL = 2048

# The services whose control URL answers GetGenericPortMappingEntry, best first: IGD v2's
# WANIPConnection:2 still has it, WANPPPConnection:1 serves PPP links (miniupnpd lists both).
WAN_CONNECTION_TYPES = (
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)


def parse_description(xml: bytes, url: str) -> IgdDescription:
    """Read a device description fetched from ``url``.

    The top-level device gives the names; services are collected from it and every embedded
    device (depth-first, in document order, at most 8 levels, 32 devices and 64 services).
    ``controlURL`` and ``SCPDURL`` are made absolute against ``URLBase`` when it is an http(s)
    URL, else against ``url``; an absent or unusable one becomes "". The URLs are what the
    device wrote: a caller that contacts them must first pin their host (see
    :func:`~.ssdp.rewrite_location`).

    Raises :class:`UpnpParseError` when ``xml`` is larger than 256 KiB, not well-formed,
    declares a DTD or entities, or is not a ``<root>`` with a ``<device>``.
    """
    root = parse_xml(xml, MAX_DESCRIPTION_BYTES, "device description")
    if local_name(root.tag) != "root":
        raise UpnpParseError(
            f"device description: the root element is <{local_name(root.tag)[:40]}>, not <root>"
        )
    device = child(root, "device")
    if device is None:
        raise UpnpParseError("device description: <root> has no <device>")
    base = text_of(child(root, "URLBase"), _MAX_URL)
    if not _is_http_url(base):
        base = url
    services: list[IgdService] = []
    _collect(device, base, services, depth=0, budget=[_MAX_DEVICES])
    return IgdDescription(
        url=url,
        device_type=text_of(child(device, "deviceType"), _MAX_NAME),
        friendly_name=text_of(child(device, "friendlyName"), _MAX_NAME),
        manufacturer=text_of(child(device, "manufacturer"), _MAX_NAME),
        model_name=text_of(child(device, "modelName"), _MAX_NAME),
        model_number=text_of(child(device, "modelNumber"), _MAX_NAME),
        services=tuple(services),
    )


def wan_connection_service(description: IgdDescription) -> IgdService | None:
    """The service to read port mappings from: WANIPConnection:2, :1, then WANPPPConnection:1.

    Only services with a control URL count. None when the device is no gateway (a NAS, a media
    server) or names no usable control URL.
    """
    for wanted in WAN_CONNECTION_TYPES:
        for service in description.services:
            if service.service_type == wanted and service.control_url:
                return service
    return None


@cache
def description_paths() -> tuple[str, ...]:
    """The usual description paths to try on a port, most common first, from
    ``exposure_audit/data/upnp_description_paths.json`` (each with its source).

    Raises :class:`UpnpDataError` when the file is malformed."""
    where = "upnp_description_paths.json"
    data = load(where)
    paths = tuple(get_str(item, "path", where) for item in get_list(data, "paths", where))
    for path in paths:
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise UpnpDataError(f"{where}: path {path!r} must start with / and hold no spaces")
    if len(set(paths)) != len(paths):
        raise UpnpDataError(f"{where}: duplicate paths")
    return paths


def _collect(
    device: Element, base: str, services: list[IgdService], depth: int, budget: list[int]
) -> None:
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        return
    service_list = child(device, "serviceList")
    for item in children(service_list, "service") if service_list is not None else []:
        if len(services) >= _MAX_SERVICES:
            return
        service_type = text_of(child(item, "serviceType"), _MAX_NAME)
        if not service_type:
            continue
        services.append(
            IgdService(
                service_type=service_type,
                control_url=_absolute(base, text_of(child(item, "controlURL"), _MAX_URL)),
                scpd_url=_absolute(base, text_of(child(item, "SCPDURL"), _MAX_URL)),
            )
        )
    device_list = child(device, "deviceList")
    for embedded in children(device_list, "device") if device_list is not None else []:
        _collect(embedded, base, services, depth + 1, budget)


def _absolute(base: str, reference: str) -> str:
    if not reference:
        return ""
    try:
        joined = urljoin(base, reference)
        urlsplit(joined).port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return ""
    return joined[:_MAX_URL]


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
