"""UPnP control (SOAP), read-only: building the three allowed requests, parsing their answers.

The scanner reads an IGD's state and never changes it. :data:`READ_ONLY_ACTIONS` is the whole
vocabulary: :func:`soap_request` refuses every other action name, so ``AddPortMapping``,
``DeletePortMapping`` and the like cannot even be built. The envelope, headers and answers
follow UDA 1.1 section 3.2 and the WANIPConnection:1 service template; the recorded miniupnpd
2.3.1 answers in tests/data/upnp show the shape in practice.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from ..observations import PortMapping
from ._xml import child, local_name, parse_xml, text_of
from .errors import UpnpParseError

__all__ = [
    "END_OF_TABLE_FAULTS",
    "FAULT_INVALID_INDEX",
    "FAULT_NO_SUCH_ENTRY",
    "MAX_SOAP_BYTES",
    "READ_ONLY_ACTIONS",
    "parse_external_ip",
    "parse_port_mapping_entry",
    "parse_soap_fault",
    "soap_request",
]

READ_ONLY_ACTIONS = frozenset(
    {"GetExternalIPAddress", "GetGenericPortMappingEntry", "GetStatusInfo"}
)

# The arguments each action takes (WANIPConnection:1 service template); nothing else is sent.
_ARGUMENTS: dict[str, frozenset[str]] = {
    "GetExternalIPAddress": frozenset(),
    "GetStatusInfo": frozenset(),
    "GetGenericPortMappingEntry": frozenset({"NewPortMappingIndex"}),
}

# GetGenericPortMappingEntry past the end of the table: 713 SpecifiedArrayIndexInvalid (the
# IGD:1 template; miniupnpd answers it, see tests/data/upnp/miniupnpd231_fault_713.xml); some
# stacks answer 714 NoSuchEntryInArray instead.
FAULT_INVALID_INDEX = 713
FAULT_NO_SUCH_ENTRY = 714
END_OF_TABLE_FAULTS = frozenset({FAULT_INVALID_INDEX, FAULT_NO_SUCH_ENTRY})

MAX_SOAP_BYTES = 64 * 1024  # a miniupnpd answer is under 1 KiB
_MAX_TEXT = 256
_SERVICE_TYPE = re.compile(
    r"urn:[A-Za-z0-9][A-Za-z0-9.-]{0,62}:service:[A-Za-z0-9_.-]{1,64}:[0-9]{1,3}"
)
_INDEX = re.compile(r"[0-9]{1,5}", re.ASCII)
_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
_ENCODING = "http://schemas.xmlsoap.org/soap/encoding/"


def soap_request(
    service_type: str, action: str, arguments: Mapping[str, str] | None = None
) -> tuple[dict[str, str], bytes]:
    """The headers and body of one read-only SOAP request to a control URL.

    ``service_type`` is the URN from the description (``urn:schemas-upnp-org:service:
    WANIPConnection:1``); it goes into the ``SOAPAction`` header and the body's namespace.
    ``arguments`` must be exactly the action's arguments (``NewPortMappingIndex`` for
    ``GetGenericPortMappingEntry``, a decimal 0-65535; none for the others).

    Raises ValueError for an action not in :data:`READ_ONLY_ACTIONS` (every state-changing
    action), missing or extra arguments, a bad index, or a malformed service type.
    """
    if action not in READ_ONLY_ACTIONS:
        raise ValueError(
            f"refusing to build SOAP action {action[:60]!r}: the scanner only sends "
            f"{', '.join(sorted(READ_ONLY_ACTIONS))}"
        )
    if not _SERVICE_TYPE.fullmatch(service_type):
        raise ValueError(f"service type {service_type[:80]!r} is not a UPnP service URN")
    given = dict(arguments or {})
    if set(given) != _ARGUMENTS[action]:
        expected = ", ".join(sorted(_ARGUMENTS[action])) or "none"
        raise ValueError(f"{action} takes arguments {expected}, not {sorted(given)}")
    index = given.get("NewPortMappingIndex")
    if index is not None and not (_INDEX.fullmatch(index) and int(index) <= 0xFFFF):
        raise ValueError(f"NewPortMappingIndex {index[:20]!r} must be a decimal 0-65535")
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in sorted(given.items()))
    body = (
        '<?xml version="1.0"?>\r\n'
        f'<s:Envelope xmlns:s="{_ENVELOPE}" s:encodingStyle="{_ENCODING}">'
        f'<s:Body><u:{action} xmlns:u="{service_type}">{inner}</u:{action}></s:Body>'
        "</s:Envelope>\r\n"
    )
    headers = {
        "Content-Type": 'text/xml; charset="utf-8"',
        "SOAPAction": f'"{service_type}#{action}"',
    }
    return headers, body.encode("utf-8")


def parse_port_mapping_entry(xml: bytes) -> PortMapping:
    """Read a ``GetGenericPortMappingEntryResponse`` as a :class:`PortMapping`.

    ``NewExternalPort``, ``NewProtocol``, ``NewInternalPort`` and ``NewInternalClient`` are
    required; ``NewRemoteHost``, ``NewEnabled`` (default true), ``NewPortMappingDescription`` and
    ``NewLeaseDuration`` (default 0, "permanent") are optional. The protocol is upper-cased;
    texts are cut to 256 characters.

    Raises :class:`UpnpParseError` when ``xml`` is not such a response (a fault included), a
    required field is missing, a port is outside 0-65535 or the lease outside 0-2^32-1.
    """
    response = _response(xml, "GetGenericPortMappingEntry")
    fields = {local_name(item.tag): (item.text or "").strip() for item in response}
    for name in ("NewExternalPort", "NewProtocol", "NewInternalPort", "NewInternalClient"):
        if not fields.get(name):
            raise UpnpParseError(f"GetGenericPortMappingEntry answer: {name} is missing or empty")
    return PortMapping(
        external_port=_integer(fields, "NewExternalPort", 0xFFFF),
        protocol=fields["NewProtocol"][:16].upper(),
        internal_client=fields["NewInternalClient"][:_MAX_TEXT],
        internal_port=_integer(fields, "NewInternalPort", 0xFFFF),
        description=fields.get("NewPortMappingDescription", "")[:_MAX_TEXT],
        lease_duration=_integer(fields, "NewLeaseDuration", 0xFFFFFFFF, default=0),
        enabled=fields.get("NewEnabled", "1").lower() not in ("0", "false", "no"),
        remote_host=fields.get("NewRemoteHost", "")[:_MAX_TEXT],
    )


def parse_external_ip(xml: bytes) -> str | None:
    """``NewExternalIPAddress`` from a ``GetExternalIPAddressResponse``.

    Returned normalised; None when the device does not know it (miniupnpd answers an empty
    string since 2.2.2) or answers something that is no IP address.
    Raises :class:`UpnpParseError` when ``xml`` is not such a response.
    """
    response = _response(xml, "GetExternalIPAddress")
    text = text_of(child(response, "NewExternalIPAddress"), _MAX_TEXT)
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def parse_soap_fault(xml: bytes) -> tuple[int | None, str]:
    """The UPnP error code and description of a SOAP fault (UDA 1.1 section 3.2.2).

    The code is ``detail/UPnPError/errorCode`` (None when absent or not a number); the
    description is ``errorDescription``, else the ``faultstring``. 713
    (SpecifiedArrayIndexInvalid) is the normal end of a mapping-table enumeration.

    Raises :class:`UpnpParseError` when ``xml`` is not a SOAP envelope holding a fault.
    """
    body = _body(xml, "SOAP fault")
    fault = child(body, "Fault")
    if fault is None:
        raise UpnpParseError("SOAP fault: the body holds no <Fault>")
    detail = child(fault, "detail")
    error = child(detail, "UPnPError") if detail is not None else None
    code_text = text_of(child(error, "errorCode"), 16) if error is not None else ""
    code = int(code_text) if code_text.isascii() and code_text.isdigit() else None
    description = text_of(child(error, "errorDescription"), _MAX_TEXT) if error is not None else ""
    return code, description or text_of(child(fault, "faultstring"), _MAX_TEXT)


def _body(xml: bytes, what: str) -> Element:
    envelope = parse_xml(xml, MAX_SOAP_BYTES, what)
    if local_name(envelope.tag) != "Envelope":
        raise UpnpParseError(f"{what}: not a SOAP envelope")
    body = child(envelope, "Body")
    if body is None:
        raise UpnpParseError(f"{what}: the envelope has no <Body>")
    return body


def _response(xml: bytes, action: str) -> Element:
    what = f"{action} answer"
    body = _body(xml, what)
    response = child(body, f"{action}Response")
    if response is not None:
        return response
    if child(body, "Fault") is not None:
        code, description = parse_soap_fault(xml)
        raise UpnpParseError(f"{what}: a SOAP fault ({code} {description})".rstrip())
    raise UpnpParseError(f"{what}: the body holds no <{action}Response>")


def _integer(fields: dict[str, str], name: str, top: int, default: int | None = None) -> int:
    text = fields.get(name, "")
    if not text and default is not None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= top):
        raise UpnpParseError(
            f"GetGenericPortMappingEntry answer: {name} {text[:20]!r} is not 0-{top}"
        )
    return int(text)
