"""Recognising a management interface from what a web probe saw on one port.

:func:`identify` compares a :class:`WebSighting` with every catalog product. A product is
*identified* (:class:`ManagementMatch`) only when at least two independent markers match (two
different evidence keys: a title and a header, a header and a path ...). A single marker gives
a :class:`PossibleManagement`: callers must show it as a note ("looks like X"), never as an
identification, because one marker is exactly what a blog post, a proxy error page or a
honeypot can carry.

Hostile input: every field is cut to a fixed size before matching, catalog regexes are bounded
by :func:`~exposure_audit.mgmt.catalog.check_pattern`, body markers are literal substring
searches, and versions are read from a short window after a literal anchor; a version is
reported only when it consists of version characters. Nothing here raises on arbitrary text.

Which markers count where: title and body markers only on a 2xx page (an error page naming a
product is not the product); header, cookie, certificate, favicon and nmap markers on any
status (a 401 or a redirect still carries the server's own headers); path markers on the
status the catalog names for that path.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .catalog import Marker, MarkerKind, Product, VersionPlace, load_catalog

__all__ = [
    "BODY_LIMIT",
    "FIELD_LIMIT",
    "Identification",
    "ManagementMatch",
    "PathAnswer",
    "PossibleManagement",
    "Sighting",
    "WebSighting",
    "favicon_hash",
    "identify",
    "paths_worth_fetching",
]

# Bytes of body (as text) searched for markers. Management login pages are tens of KiB; the
# cap bounds the work a multi-megabyte hostile page can cause.
BODY_LIMIT = 256 * 1024
# Characters kept of a title, header value, certificate name or nmap string.
FIELD_LIMIT = 512
_MAX_HEADERS = 100
_MAX_COOKIES = 50
_MAX_PATHS = 64
# At most this many anchor occurrences are tried per version place, each on a short window.
_MAX_ANCHORS = 16
_VERSION_WINDOW = 96
_VERSION_TEXT = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,31}")
_VERSION_CHAR = re.compile(r"[0-9A-Za-z._+-]")
_WHITESPACE = re.compile(r"\s{1,64}")
_TITLE_OPEN = re.compile(r"<title\b[^>]{0,256}>", re.IGNORECASE)
_TITLE_CLOSE = re.compile(r"</title", re.IGNORECASE)


@dataclass(frozen=True)
class PathAnswer:
    """The answer to one extra read-only GET: status, headers in order, a body prefix."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""


@dataclass(frozen=True)
class WebSighting:
    """What a web probe saw on one port, after following same-host redirects.

    ``headers`` in the order received (names any case); ``cookie_names`` from ``Set-Cookie``;
    ``title`` None lets :func:`identify` take the first ``<title>`` of ``body``; ``body`` a
    prefix of the decoded body (it is cut to :data:`BODY_LIMIT` anyway); certificate subject
    and issuer as RFC 4514 text; ``favicon_mmh3`` from :func:`favicon_hash` of ``/favicon.ico``;
    ``nmap_product``/``nmap_extrainfo`` from nmap's service detection; ``paths`` the answers of
    the extra paths fetched (keys as in :func:`paths_worth_fetching`).
    """

    port: int
    scheme: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    cookie_names: tuple[str, ...] = ()
    title: str | None = None
    body: str = ""
    cert_subject: str | None = None
    cert_issuer: str | None = None
    favicon_mmh3: int | None = None
    nmap_product: str | None = None
    nmap_extrainfo: str | None = None
    paths: Mapping[str, PathAnswer] = field(default_factory=dict)


# The short name the rest of the audit may use.
Sighting = WebSighting


@dataclass(frozen=True)
class ManagementMatch:
    """An identified management interface: two or more independent markers matched.

    ``markers`` are catalog descriptions of the matched markers (never server text);
    ``version`` is set only when an unauthenticated place disclosed one, and then holds only
    version characters. ``unauthenticated_control`` is the catalog's statement that this
    product *can* be left able to act without credentials (a rule must still check it).
    """

    product_id: str
    name: str
    vendor: str
    category: str
    port: int
    markers: tuple[str, ...]
    version: str | None
    unauthenticated_control: bool
    reference_only: bool


@dataclass(frozen=True)
class PossibleManagement:
    """One marker only: a note for the reader ("looks like X"), never an identification."""

    product_id: str
    name: str
    port: int
    marker: str


@dataclass(frozen=True)
class Identification:
    """All identified products (strongest first) and all single-marker possibilities."""

    matches: tuple[ManagementMatch, ...]
    possible: tuple[PossibleManagement, ...]


@dataclass(frozen=True)
class _View:
    """A sighting cut to size and normalised once, so each marker test is cheap."""

    ok: bool
    title: str
    body: str
    headers: Mapping[str, tuple[str, ...]]
    cookies: tuple[str, ...]
    cert_subject: str
    cert_issuer: str
    nmap: tuple[str, ...]
    favicon: int | None
    paths: Mapping[str, PathAnswer]


def identify(sighting: WebSighting, products: Iterable[Product] | None = None) -> Identification:
    """Match ``sighting`` against the catalog (or ``products``); never raises on its text."""
    view = _view(sighting)
    matches: list[tuple[int, ManagementMatch]] = []
    possible: list[PossibleManagement] = []
    for product in load_catalog() if products is None else products:
        matched = [m for m in product.markers if _matches(m, view)]
        evidence = {m.evidence for m in matched}
        if len(evidence) >= 2:
            matches.append((len(evidence), _identified(product, sighting, matched, view)))
        elif matched:
            possible.append(
                PossibleManagement(product.id, product.name, sighting.port, matched[0].describe())
            )
    matches.sort(key=lambda pair: -pair[0])
    return Identification(tuple(m for _, m in matches), tuple(possible))


def paths_worth_fetching(
    port: int, candidates: Iterable[str] = (), products: Iterable[Product] | None = None
) -> tuple[str, ...]:
    """Extra paths to GET (read-only, no credentials) after "/" on ``port``.

    The marker and version paths of the products whose default ports include ``port`` and of
    the product ids in ``candidates`` (typically the possible and identified products after
    "/"), without duplicates, in catalog order.
    """
    wanted = set(candidates)
    paths: list[str] = []
    for product in load_catalog() if products is None else products:
        if product.id in wanted or any(p.port == port for p in product.ports):
            paths.extend(product.probe_paths)
    return tuple(dict.fromkeys(paths))


def favicon_hash(data: bytes) -> int:
    """Shodan's favicon hash: signed 32-bit MurmurHash3 (seed 0) of the base64 text of
    ``data`` with a newline every 76 characters and at the end (``base64.encodebytes``)."""
    return _murmur3_32(base64.encodebytes(data))


def _murmur3_32(data: bytes, seed: int = 0) -> int:
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[whole:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


# --- the view ------------------------------------------------------------------------


def _view(sighting: WebSighting) -> _View:
    body = sighting.body[:BODY_LIMIT]
    title = sighting.title if sighting.title is not None else _first_title(body)
    headers: dict[str, list[str]] = {}
    for name, value in sighting.headers[:_MAX_HEADERS]:
        headers.setdefault(name[:64].lower(), []).append(value[:FIELD_LIMIT])
    nmap = tuple(s[:FIELD_LIMIT] for s in (sighting.nmap_product, sighting.nmap_extrainfo) if s)
    paths = dict(list(sighting.paths.items())[:_MAX_PATHS])
    return _View(
        ok=200 <= sighting.status < 300,
        title=_normalise_title(title or ""),
        body=body,
        headers={k: tuple(v) for k, v in headers.items()},
        cookies=tuple(c[:128] for c in sighting.cookie_names[:_MAX_COOKIES]),
        cert_subject=(sighting.cert_subject or "")[:FIELD_LIMIT],
        cert_issuer=(sighting.cert_issuer or "")[:FIELD_LIMIT],
        nmap=nmap,
        favicon=sighting.favicon_mmh3,
        paths=paths,
    )


def _first_title(body: str) -> str:
    opened = _TITLE_OPEN.search(body[:BODY_LIMIT])
    if opened is None:
        return ""
    rest = body[opened.end() : opened.end() + 4 * FIELD_LIMIT]
    closed = _TITLE_CLOSE.search(rest)
    return rest[: closed.start()] if closed else ""


def _normalise_title(raw: str) -> str:
    text = html.unescape(raw[: 4 * FIELD_LIMIT]).replace("\xa0", " ")
    return _WHITESPACE.sub(" ", text).strip()[:FIELD_LIMIT]


# --- markers -------------------------------------------------------------------------


def _matches(marker: Marker, view: _View) -> bool:
    kind = marker.kind
    if kind is MarkerKind.TITLE:
        return view.ok and _full(marker.pattern, view.title)
    if kind is MarkerKind.BODY:
        return view.ok and marker.literal is not None and marker.literal in view.body
    if kind is MarkerKind.HEADER:
        values = view.headers.get(marker.name or "", ())
        return any(_search(marker.pattern, value) for value in values)
    if kind is MarkerKind.COOKIE:
        return _cookie(marker, view.cookies)
    if kind is MarkerKind.PATH:
        return _path(marker, view.paths)
    if kind is MarkerKind.FAVICON:
        return view.favicon is not None and view.favicon == marker.favicon
    if kind is MarkerKind.CERT_SUBJECT:
        return _search(marker.pattern, view.cert_subject)
    if kind is MarkerKind.CERT_ISSUER:
        return _search(marker.pattern, view.cert_issuer)
    return any(_search(marker.pattern, text) for text in view.nmap)


def _full(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is not None and bool(text) and pattern.fullmatch(text) is not None


def _search(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is not None and bool(text) and pattern.search(text) is not None


def _cookie(marker: Marker, cookies: tuple[str, ...]) -> bool:
    name = marker.literal or ""
    if marker.prefix:
        return any(c.startswith(name) for c in cookies)
    return name in cookies


def _path(marker: Marker, paths: Mapping[str, PathAnswer]) -> bool:
    answer = paths.get(marker.path or "")
    if answer is None or answer.status != marker.status:
        return False
    return marker.literal is None or marker.literal in answer.body[:BODY_LIMIT]


# --- identification and version --------------------------------------------------------


def _identified(
    product: Product, sighting: WebSighting, matched: list[Marker], view: _View
) -> ManagementMatch:
    return ManagementMatch(
        product_id=product.id,
        name=product.name,
        vendor=product.vendor,
        category=product.category,
        port=sighting.port,
        markers=tuple(dict.fromkeys(m.describe() for m in matched)),
        version=_version(product, sighting, view),
        unauthenticated_control=product.control.possible,
        reference_only=product.reference_only,
    )


def _version(product: Product, sighting: WebSighting, view: _View) -> str | None:
    for place in product.versions:
        found = _read_version(place, sighting, view)
        if found is not None:
            return found
    return None


def _read_version(place: VersionPlace, sighting: WebSighting, view: _View) -> str | None:
    if place.path == "/":
        status, headers, body = sighting.status, sighting.headers, view.body
    else:
        answer = view.paths.get(place.path)
        if answer is None:
            return None
        status, headers, body = answer.status, answer.headers, answer.body[:BODY_LIMIT]
    if place.header is not None:
        for name, value in headers[:_MAX_HEADERS]:
            if name.lower() == place.header:
                found = place.pattern.search(value[:FIELD_LIMIT])
                if found:
                    return _clean(found)
        return None
    if not 200 <= status < 300 or place.anchor is None:
        return None
    return _after_anchor(place.anchor, place.pattern, body)


def _after_anchor(anchor: str, pattern: re.Pattern[str], body: str) -> str | None:
    start = 0
    for _ in range(_MAX_ANCHORS):
        at = body.find(anchor, start)
        if at < 0:
            return None
        window_start = at + len(anchor)
        found = pattern.match(body[window_start : window_start + _VERSION_WINDOW])
        if found:
            return _clean(found)
        start = window_start
    return None


def _clean(found: re.Match[str]) -> str | None:
    """The captured version, or None when it is not version text or was cut short by a
    pattern bound (a version character follows it: "9999..." is junk, not version 9999)."""
    text = found.group(1)
    following = found.string[found.end(1) : found.end(1) + 1]
    if text is None or not _VERSION_TEXT.fullmatch(text) or _VERSION_CHAR.fullmatch(following):
        return None
    return text
