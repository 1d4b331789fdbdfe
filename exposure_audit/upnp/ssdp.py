"""SSDP, the discovery half of UPnP: M-SEARCH requests, their replies, LOCATION rewriting.

The message formats follow the UPnP Device Architecture 1.1 (UDA), section 1.3: an M-SEARCH is
``M-SEARCH * HTTP/1.1`` with ``HOST``, ``MAN: "ssdp:discover"``, ``MX`` and ``ST``; devices answer
with ``HTTP/1.1 200 OK`` carrying ``ST``, ``USN``, ``SERVER`` and ``LOCATION`` (the URL of the
device description), and announce themselves with ``NOTIFY * HTTP/1.1`` carrying ``NT``.
Scanners send the unicast form with the multicast ``HOST`` line (nmap ``upnp-info``, Metasploit
``ssdp_msearch``, GRC's UPnP exposure test), and that is what devices answer in practice
(docs/reference/lab.md section 5.5: miniupnpd 2.3.1 answers it from the WAN side).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

from ..observations import SsdpReply

__all__ = [
    "IGD_SEARCH_TARGET",
    "MAX_SSDP_BYTES",
    "MAX_SSDP_HEADERS",
    "SEARCH_TARGETS",
    "SSDP_MULTICAST_ADDRESS",
    "SSDP_PORT",
    "build_msearch",
    "is_upnp_server_header",
    "parse_ssdp_reply",
    "rewrite_location",
]

SSDP_MULTICAST_ADDRESS = "239.255.255.250"
SSDP_PORT = 1900
# What the outside probe asks for: everything, and root devices (Metasploit's choice), since
# some stacks answer only one of the two.
SEARCH_TARGETS = ("ssdp:all", "upnp:rootdevice")
IGD_SEARCH_TARGET = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"

MAX_SSDP_BYTES = 8192  # miniupnpd's own SSDP packets are at most 1 KiB (SSDP_PACKET_MAX_LEN)
MAX_SSDP_HEADERS = 64
_MAX_NAME = 64
_MAX_VALUE = 1024
_MAX_URL = 2048

_STATUS_LINE = re.compile(r"HTTP/1\.[01][ \t]+200(?:[ \t].*)?", re.IGNORECASE | re.ASCII)
_NOTIFY_LINE = re.compile(r"NOTIFY[ \t]+\*[ \t]+HTTP/1\.[01]", re.IGNORECASE | re.ASCII)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", re.ASCII)  # RFC 9110 token
_SEARCH_TARGET = re.compile(r"[\x21-\x7e]{1,256}", re.ASCII)
_UPNP_TOKEN = re.compile(r"(?<![A-Za-z0-9])UPnP/[12]\.[0-9]", re.IGNORECASE | re.ASCII)
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?",
    re.ASCII,
)


def build_msearch(st: str = "ssdp:all", mx: int | None = 1) -> bytes:
    """The bytes of one M-SEARCH for search target ``st`` (UDA 1.1 section 1.3.2).

    ``HOST`` is always the multicast group ``239.255.255.250:1900``, also when the datagram is
    sent unicast to one address (what devices expect). ``mx`` is the seconds a device may wait
    before answering (1 to 5); None leaves ``MX`` out. Raises ValueError for an ``st`` that is not
    1-256 printable ASCII characters without spaces, or an ``mx`` outside 1-5.
    """
    if not _SEARCH_TARGET.fullmatch(st):
        raise ValueError(f"search target {st!r}: must be 1-256 printable ASCII characters")
    if mx is not None and not 1 <= mx <= 5:
        raise ValueError(f"MX {mx}: must be 1 to 5 seconds")
    lines = [
        "M-SEARCH * HTTP/1.1",
        f"HOST: {SSDP_MULTICAST_ADDRESS}:{SSDP_PORT}",
        'MAN: "ssdp:discover"',
    ]
    if mx is not None:
        lines.append(f"MX: {mx}")
    lines.append(f"ST: {st}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def parse_ssdp_reply(data: bytes, responder: str) -> SsdpReply | None:
    """Read one datagram as an SSDP answer (``HTTP/1.1 200``) or announcement (``NOTIFY``).

    ``responder`` is the address the datagram came from. Header names are matched without
    regard to case and stored lower-case; values are kept verbatim (decoded as UTF-8 with
    replacement), cut to 1024 characters. Only the first 8 KiB and the first 64 headers are
    read. For a NOTIFY, ``st`` is its ``NT``. Returns None for anything else (an M-SEARCH, an
    error status, junk); never raises.
    """
    if not data:
        return None
    text = data[:MAX_SSDP_BYTES].decode("utf-8", errors="replace")
    lines = text.replace("\r\n", "\n").split("\n")
    first = lines[0].strip()
    notify = bool(_NOTIFY_LINE.fullmatch(first))
    if not notify and not _STATUS_LINE.fullmatch(first):
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            break  # the blank line ends the headers
        if len(headers) >= MAX_SSDP_HEADERS:
            break
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or len(name) > _MAX_NAME or not _HEADER_NAME.fullmatch(name):
            continue
        headers.append((name.lower(), value.strip()[:_MAX_VALUE]))
    first_of: dict[str, str] = {}
    for name, value in headers:
        first_of.setdefault(name, value)
    st = first_of.get("st", "")
    if notify and not st:
        st = first_of.get("nt", "")
    return SsdpReply(
        responder=responder,
        server=first_of.get("server", ""),
        location=first_of.get("location", ""),
        st=st,
        usn=first_of.get("usn", ""),
        headers=tuple(headers),
    )


def rewrite_location(location: str, public_address: str) -> str | None:
    """``location`` with its host replaced by ``public_address``; port, path and query kept.

    A LOCATION (or control URL) usually names the device's LAN address, unreachable from
    outside; the scanner asks the address it is auditing instead, and never a third party.
    User information and fragments are dropped. IPv6 addresses are bracketed. Returns None
    when ``location`` is not an absolute ``http``/``https`` URL with a host (or has a bad
    port). Raises ValueError when ``public_address`` is neither an IP address nor a host name.
    """
    host = _authority_host(public_address)
    text = location.strip()
    if not text or len(text) > _MAX_URL or any(c.isspace() or ord(c) < 0x20 for c in text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or port == 0:
        return None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def is_upnp_server_header(server: str) -> bool:
    """True when a ``Server``/``SERVER`` header names a UPnP stack (``UPnP/1.0``, ``UPnP/1.1``).

    UDA requires the ``OS/version UPnP/1.x product/version`` form in SSDP and HTTP answers of
    UPnP devices, so it tells a UPnP description server on 5000/tcp (OpenWrt's miniupnpd
    default; nmap names the port "upnp") from DSM, whose web server says ``nginx``.
    """
    return bool(_UPNP_TOKEN.search(server[:_MAX_VALUE]))


def _authority_host(address: str) -> str:
    bare = address.strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    try:
        parsed = ipaddress.ip_address(bare)
    except ValueError:
        if not _HOST_NAME.fullmatch(bare):
            raise ValueError(f"{address!r} is neither an IP address nor a host name") from None
        return bare.lower()
    if parsed.version == 6:
        return "[" + parsed.compressed.replace("%", "%25") + "]"  # RFC 6874 zone identifier
    return parsed.compressed
