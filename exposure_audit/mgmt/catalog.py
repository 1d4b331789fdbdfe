"""The management-interface catalog (``exposure_audit/data/management_catalog.json``) as values.

Each :class:`Product` names a web management interface (a NAS, a hypervisor, a BMC, a router,
a server console ...), its default ports, the *markers* public scanners recognise it by, the
unauthenticated places that disclose its version, and its sources. The facts and their sources
are in ``docs/reference/management.md``.

:func:`load_catalog` reads and checks the file once. A wrong shape raises :class:`CatalogError`
naming the product and the field: a malformed catalog is a packaging bug, and the data tests
catch it before release. Every regular expression in the file must pass :func:`check_pattern`,
which refuses the constructs that can backtrack without bound; with the size caps applied in
:mod:`.match` that keeps matching linear in practice on attacker-controlled pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from ._json import (
    CatalogError,
    JsonObject,
    as_object,
    get_bool,
    get_int,
    get_list,
    get_str,
    get_str_list,
    get_str_or_none,
    load_object,
)

__all__ = [
    "CATALOG_FILE",
    "CATEGORIES",
    "MAX_QUANTIFIER",
    "CatalogError",
    "DefaultPort",
    "Marker",
    "MarkerKind",
    "Product",
    "UnauthenticatedControl",
    "VersionPlace",
    "check_pattern",
    "load_catalog",
    "parse_catalog",
]

CATALOG_FILE = "management_catalog.json"

# The categories a product may have; the data file must use exactly these.
CATEGORIES: tuple[str, ...] = (
    "nas",
    "storage-array",
    "hypervisor",
    "bmc",
    "router-firewall",
    "server-console",
    "container-manager",
    "notebook",
    "home-automation",
    "file-sync",
    "download-client",
    "print-server",
    "process-manager",
    "message-broker",
    "monitoring",
)

# The largest repetition count a catalog pattern may use ({0,128}); bounded repetition keeps the
# work per starting position small.
MAX_QUANTIFIER = 128
_MAX_PATTERN = 300
# Paths are fetched with a plain GET: printable ASCII only, no fragment, no traversal.
_PATH = re.compile(r"/[A-Za-z0-9._~/?=&%:+-]{0,127}")
_PRODUCT_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+){0,5}")


class MarkerKind(StrEnum):
    """How a marker is recognised; each kind reads one part of what the probe saw."""

    TITLE = "title"  # the page title, entities decoded, whitespace collapsed; full match
    HEADER = "header"  # one response header's value; search
    COOKIE = "cookie"  # the name of a cookie the server sets (exact, or a prefix)
    BODY = "body"  # a literal substring of the bounded body prefix (case-sensitive)
    PATH = "path"  # an extra path's answer: its status, and a literal in its body
    FAVICON = "favicon"  # Shodan's favicon hash (mmh3 of the base64 text), exact
    CERT_SUBJECT = "cert_subject"  # the certificate subject (RFC 4514 text); search
    CERT_ISSUER = "cert_issuer"  # the certificate issuer; search
    NMAP = "nmap"  # nmap's product or extra-info string for the port; search


@dataclass(frozen=True)
class Marker:
    """One independent anchor for a product.

    ``pattern`` is set for the regex kinds (title, header, cert_*, nmap), ``literal`` for body,
    cookie (the cookie name) and path (what the path's body must contain, or None for "status
    only"), ``name`` for header (lower-case header name), ``path``/``status`` for path,
    ``favicon`` for favicon. ``evidence`` is the independence key: two matched markers count as
    two only when their keys differ (two substrings of one body are one piece of evidence).
    """

    kind: MarkerKind
    note: str
    pattern: re.Pattern[str] | None = None
    literal: str | None = None
    name: str | None = None
    prefix: bool = False
    path: str | None = None
    status: int | None = None
    favicon: int | None = None

    @property
    def evidence(self) -> str:
        """The independence key (kind, plus header name or path where the kind has one)."""
        if self.kind is MarkerKind.HEADER:
            return f"header:{self.name}"
        if self.kind is MarkerKind.PATH:
            return f"path:{self.path}"
        return self.kind.value

    def describe(self) -> str:
        """A short, stable description for reports (catalog text only, never server text)."""
        if self.kind is MarkerKind.HEADER:
            return f"header {self.name}"
        if self.kind is MarkerKind.PATH:
            return f"path {self.path}"
        if self.kind is MarkerKind.COOKIE:
            return f"cookie {self.literal}{'*' if self.prefix else ''}"
        return self.kind.value


@dataclass(frozen=True)
class VersionPlace:
    """An unauthenticated place that discloses the version.

    ``path`` is "/" for the page itself or an extra path; ``header`` names a header to read
    instead of the body. In a body the version is read right after the literal ``anchor`` with
    ``pattern`` (one group) applied to a short window, so a hostile body costs one linear
    search per anchor occurrence.
    """

    path: str
    pattern: re.Pattern[str]
    note: str
    anchor: str | None = None
    header: str | None = None


@dataclass(frozen=True)
class UnauthenticatedControl:
    """Whether the interface can be reachable *and able to act* without credentials."""

    possible: bool
    how: str | None


@dataclass(frozen=True)
class DefaultPort:
    """A port the product listens on out of the box, with its scheme."""

    port: int
    scheme: str


@dataclass(frozen=True)
class Product:
    """One catalog entry. ``reference_only`` products (Synology DSM, SRM) are recognised
    here for completeness, but the audit's deep detection for them lives in
    :mod:`exposure_audit.dsm`."""

    id: str
    name: str
    vendor: str
    category: str
    ports: tuple[DefaultPort, ...]
    markers: tuple[Marker, ...]
    versions: tuple[VersionPlace, ...]
    control: UnauthenticatedControl
    sources: tuple[str, ...]
    reference_only: bool

    @property
    def probe_paths(self) -> tuple[str, ...]:
        """The extra paths (besides "/") worth a read-only GET: marker and version paths."""
        paths = [m.path for m in self.markers if m.path is not None]
        paths += [v.path for v in self.versions if v.path != "/"]
        return tuple(dict.fromkeys(paths))


def check_pattern(pattern: str, where: str) -> re.Pattern[str]:
    """Compile a catalog regex, refusing constructs that can backtrack without bound.

    Refused: ``*``, ``+`` and open ``{n,}`` repetition (use ``{0,N}`` with N <= 128), any
    repetition of a group other than ``?`` (nested quantifiers are the exponential case),
    backreferences, and patterns longer than 300 characters. Compiled case-insensitive.
    """
    if len(pattern) > _MAX_PATTERN:
        raise CatalogError(f"{where}: pattern longer than {_MAX_PATTERN} characters")
    in_class = False
    previous = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1 : index + 2]
            if escaped.isdigit() and not in_class:
                raise CatalogError(f"{where}: backreferences are not allowed: {pattern!r}")
            previous = "atom"
            index += 2
            continue
        if in_class:
            in_class = char != "]"
            index += 1
            continue
        if char == "[":
            in_class = True
            previous = "atom"
        elif char in "*+":
            raise CatalogError(f"{where}: unbounded {char!r} in {pattern!r}; use {{0,N}}")
        elif char == "{":
            close = pattern.find("}", index)
            bounds = pattern[index + 1 : close] if close > 0 else ""
            _check_bounds(bounds, pattern, where)
            if previous == "group":
                raise CatalogError(f"{where}: a repeated group in {pattern!r}")
            index = close + 1
            previous = "quantifier"
            continue
        elif char == "?":
            if previous == "quantifier":
                raise CatalogError(f"{where}: lazy quantifiers are not allowed in {pattern!r}")
            # "(?" opens group syntax; otherwise "?" makes the atom or group optional.
            previous = "atom" if previous == "open" else "quantifier"
        elif char == "(":
            previous = "open"
            index += 1
            continue
        elif char == ")":
            previous = "group"
            index += 1
            continue
        else:
            previous = "atom"
        index += 1
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise CatalogError(f"{where}: invalid pattern {pattern!r}: {error}") from None


def _check_bounds(bounds: str, pattern: str, where: str) -> None:
    low, comma, high = bounds.partition(",")
    if not low.isdigit() or (comma and not high.isdigit()):
        raise CatalogError(f"{where}: repetition must be {{m}} or {{m,N}} in {pattern!r}")
    top = int(high) if comma else int(low)
    if top > MAX_QUANTIFIER:
        raise CatalogError(f"{where}: repetition above {MAX_QUANTIFIER} in {pattern!r}")


@cache
def load_catalog() -> tuple[Product, ...]:
    """The packaged catalog, read and checked once."""
    return parse_catalog(load_object(CATALOG_FILE))


def parse_catalog(data: JsonObject) -> tuple[Product, ...]:
    """Check and convert a catalog object (the parsed JSON file).

    Raises :class:`CatalogError` naming the product id and field on any wrong shape, unknown
    category or marker kind, unsafe pattern, bad path, a product with fewer than two marker
    kinds or no source, or a duplicated product id.
    """
    sources = {get_str(as_object(s, "sources"), "id", "sources") for s in _list(data, "sources")}
    products = tuple(
        _product(as_object(item, "products"), sources) for item in _list(data, "products")
    )
    ids = [p.id for p in products]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise CatalogError(f"{CATALOG_FILE}: duplicated product ids {duplicated}")
    return products


def _list(obj: JsonObject, key: str) -> list[object]:
    return get_list(obj, key, CATALOG_FILE)


def _product(obj: JsonObject, known_sources: set[str]) -> Product:
    product_id = get_str(obj, "id", "product")
    where = f"product {product_id!r}"
    if not _PRODUCT_ID.fullmatch(product_id):
        raise CatalogError(f"{where}: 'id' must be lower-case words joined by '-'")
    category = get_str(obj, "category", where)
    if category not in CATEGORIES:
        raise CatalogError(f"{where}: 'category' {category!r} is not one of {CATEGORIES}")
    markers = tuple(
        _marker(as_object(m, f"{where} markers"), f"{where} markers[{i}]")
        for i, m in enumerate(get_list(obj, "markers", where))
    )
    if len({m.kind for m in markers}) < 2:
        raise CatalogError(f"{where}: 'markers' must hold at least two distinct kinds")
    sources = get_str_list(obj, "sources", where)
    if not sources:
        raise CatalogError(f"{where}: 'sources' must name at least one source")
    unknown = [s for s in sources if s not in known_sources]
    if unknown:
        raise CatalogError(f"{where}: 'sources' names unknown source ids {unknown}")
    return Product(
        id=product_id,
        name=get_str(obj, "name", where),
        vendor=get_str(obj, "vendor", where),
        category=category,
        ports=tuple(
            _port(as_object(p, f"{where} ports"), f"{where} ports[{i}]")
            for i, p in enumerate(get_list(obj, "ports", where))
        ),
        markers=markers,
        versions=tuple(
            _version(as_object(v, f"{where} versions"), f"{where} versions[{i}]")
            for i, v in enumerate(get_list(obj, "versions", where))
        ),
        control=_control(obj, where),
        sources=sources,
        reference_only=get_bool(obj, "reference_only", where),
    )


def _port(obj: JsonObject, where: str) -> DefaultPort:
    port = get_int(obj, "port", where)
    scheme = get_str(obj, "scheme", where)
    if not 0 < port < 65536 or scheme not in ("http", "https", "tcp"):
        raise CatalogError(f"{where}: 'port'/'scheme' out of range: {port} {scheme!r}")
    return DefaultPort(port, scheme)


def _path(obj: JsonObject, where: str) -> str:
    path = get_str(obj, "path", where)
    if not _PATH.fullmatch(path) or ".." in path:
        raise CatalogError(f"{where}: 'path' {path!r} is not a plain absolute path")
    return path


def _marker(obj: JsonObject, where: str) -> Marker:
    kind_text = get_str(obj, "kind", where)
    try:
        kind = MarkerKind(kind_text)
    except ValueError:
        raise CatalogError(f"{where}: unknown marker 'kind' {kind_text!r}") from None
    note = get_str(obj, "note", where)
    if kind in (MarkerKind.TITLE, MarkerKind.CERT_SUBJECT, MarkerKind.CERT_ISSUER, MarkerKind.NMAP):
        return Marker(kind, note, pattern=check_pattern(get_str(obj, "regex", where), where))
    if kind is MarkerKind.HEADER:
        name = get_str(obj, "name", where).lower()
        pattern = check_pattern(get_str(obj, "regex", where), where)
        return Marker(kind, note, pattern=pattern, name=name)
    if kind is MarkerKind.BODY:
        return Marker(kind, note, literal=get_str(obj, "contains", where))
    if kind is MarkerKind.COOKIE:
        prefix = obj.get("prefix", False) is True
        return Marker(kind, note, literal=get_str(obj, "name", where), prefix=prefix)
    if kind is MarkerKind.PATH:
        status = get_int(obj, "status", where)
        literal = get_str_or_none(obj, "contains", where)
        return Marker(kind, note, path=_path(obj, where), status=status, literal=literal)
    return Marker(kind, note, favicon=get_int(obj, "mmh3", where))


def _version(obj: JsonObject, where: str) -> VersionPlace:
    pattern = check_pattern(get_str(obj, "regex", where), where)
    if pattern.groups != 1:
        raise CatalogError(f"{where}: 'regex' must have exactly one group")
    anchor = get_str_or_none(obj, "after", where)
    header = get_str_or_none(obj, "header", where)
    if (anchor is None) == (header is None):
        raise CatalogError(f"{where}: give exactly one of 'after' (body) or 'header'")
    return VersionPlace(
        path=_path(obj, where),
        pattern=pattern,
        note=get_str(obj, "note", where),
        anchor=anchor,
        header=header.lower() if header else None,
    )


def _control(obj: JsonObject, where: str) -> UnauthenticatedControl:
    control = as_object(obj.get("unauthenticated_control"), f"{where} unauthenticated_control")
    possible = get_bool(control, "possible", f"{where} unauthenticated_control")
    how = get_str_or_none(control, "how", f"{where} unauthenticated_control")
    if possible and how is None:
        raise CatalogError(f"{where}: 'unauthenticated_control' possible but no 'how'")
    return UnauthenticatedControl(possible, how)
