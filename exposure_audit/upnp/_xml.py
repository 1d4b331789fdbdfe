"""Reading XML from untrusted devices: defusedxml, a size cap, namespace-blind lookups.

defusedxml refuses every DTD (``forbid_dtd``), so entity-expansion bombs ("billion laughs",
quadratic blowup) and external entities (``<!ENTITY x SYSTEM "file:///etc/passwd">``) fail
before anything expands or is fetched. UPnP documents never need a DTD.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from .errors import UpnpParseError

__all__ = ["child", "children", "local_name", "parse_xml", "text_of"]


def parse_xml(data: bytes, cap: int, what: str) -> Element:
    """Parse ``data`` (at most ``cap`` bytes) into its root element.

    Raises :class:`UpnpParseError` naming ``what`` when it is too big, not well-formed XML, or
    declares a DTD or entities.
    """
    if len(data) > cap:
        raise UpnpParseError(f"{what}: larger than {cap} bytes")
    if not data.strip():
        raise UpnpParseError(f"{what}: empty")
    try:
        root = defusedxml.ElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DTDForbidden:
        raise UpnpParseError(f"{what}: refused, it declares a DTD (XML bomb or entities)") from None
    except defusedxml.EntitiesForbidden:
        raise UpnpParseError(f"{what}: refused, it declares entities") from None
    except defusedxml.ExternalReferenceForbidden:
        raise UpnpParseError(f"{what}: refused, it references an external resource") from None
    except (ParseError, ValueError, LookupError, UnicodeError) as exc:
        # LookupError: an unknown encoding in the XML declaration; ValueError covers the rest
        # of defusedxml's refusals and odd declarations.
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise UpnpParseError(f"{what}: not well-formed XML ({detail})") from None
    return root


def local_name(tag: object) -> str:
    """``{urn:schemas-upnp-org:device-1-0}device`` -> ``device`` (comments and PIs -> "")."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def child(element: Element, name: str) -> Element | None:
    """The first direct child whose local name is ``name``, whatever its namespace."""
    for item in element:
        if local_name(item.tag) == name:
            return item
    return None


def children(element: Element, name: str) -> list[Element]:
    """Every direct child whose local name is ``name``."""
    return [item for item in element if local_name(item.tag) == name]


def text_of(element: Element | None, limit: int) -> str:
    """The element's own text, stripped and cut to ``limit`` characters ("" when absent)."""
    if element is None or element.text is None:
        return ""
    return element.text.strip()[:limit]
