"""Turning HTTP responses into a DSM fingerprint: markers, endpoint parsers, version evidence.

Pure functions over :class:`HttpResponse` values; the HTTP probe fetches ``/`` (following
same-host redirects), and when any page shows a marker it also fetches :data:`DSM_PROBE_PATHS`.

A *marker* is one independent anchor that public scanners use for DSM (docs/reference/dsm.md
section 1.1, anchors A1-A15, each cited where it is matched). A fingerprint needs two distinct
markers. Markers come only from 2xx responses (a 404 page is not a login page, whatever it
says) and never from a response that echoes the scanner's own request (:data:`USER_AGENT`).
Endpoint markers (``synohdpack``, ``info-cgi``, ``api-info``) count only on their own path and
only when the body parses, so a catch-all page cannot fake them.

Every function here accepts arbitrary text and never raises on it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..observations import DsmFingerprint
from .versions import resolve_version, version_for_build, version_tuple

__all__ = [
    "DSM_PROBE_PATHS",
    "USER_AGENT",
    "HttpResponse",
    "InfoCgi",
    "fingerprint",
    "is_srm",
    "markers_in",
    "parse_api_info",
    "parse_fullversion",
    "parse_info_cgi",
    "parse_synodefs_build",
    "parse_synohdpack",
]

# The probe's User-Agent. The random-looking token lets us recognise a server that echoes the
# request back (httpbin-style echo services, some honeypots): such a body quotes our paths and
# query strings (SYNO.API.Auth ...) and must not count as DSM.
USER_AGENT = "exposure-audit/0.1 probe-7f3c9a"
_ECHO = re.compile(re.escape(USER_AGENT.rsplit(" ", 1)[-1]), re.IGNORECASE)

# Read-only GETs fetched after "/" when a page showed a marker; none logs in or changes state.
DSM_PROBE_PATHS: tuple[str, ...] = (
    # DSM <= 5 login page; carries synodefs.cgi?v=<build> (<= 4.2) or "fullversion" (4.3-5.x)
    # (WhatWeb synology-diskstation.rb; Greenbone gb_synology_dsm_http_detect.nasl).
    "/webman/index.cgi",
    # key="value" version file, DSM 5.0 onwards (Greenbone gb_synology_dsm_http_detect.nasl).
    "/synohdpack/synohdpack.version",
    # DSM 4.x: major=..&minor=..&build=..&unique=synology_<arch>_<model> (Metasploit check()).
    "/webman/info.cgi?host=",
    # Unauthenticated API map; SYNO.API.Auth maxVersion hints the generation (PYDSM fixtures).
    "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=SYNO.API.Auth",
)

_HDPACK_PATH = "/synohdpack/synohdpack.version"
_INFO_CGI_PATH = "/webman/info.cgi"
_QUERY_CGI_PATH = "/webapi/query.cgi"

# Only this much of a body is searched for HTML markers: DSM login pages are ~10 KiB, and the
# cap bounds the work a hostile multi-megabyte page can cause.
_SCAN_LIMIT = 512 * 1024
_ENDPOINT_LIMIT = 64 * 1024

# --- HTML anchors (docs/reference/dsm.md section 1.1) ----------------------------------

_TITLE_OPEN = re.compile(r"<title\b[^>]{0,256}>", re.IGNORECASE)
_TITLE_CLOSE = re.compile(r"</title", re.IGNORECASE)
# A1 "<host>&nbsp;-&nbsp;Synology&nbsp;DiskStation" (recog html_title.xml:452; DSM 4-6; RackStation
# models run the same DSM), A2 "<host> - Synology NAS" (DSM 7), A3 "Synology DiskStation - <host>"
# (WhatWeb, DSM 3.x). Matched on the first <title>, entities decoded, whitespace collapsed.
_DSM_TITLE = re.compile(
    r"(?:.{1,512} - )?Synology (?:DiskStation|RackStation|NAS)|Synology DiskStation - \S{1,512}",
    re.IGNORECASE | re.DOTALL,
)
# A4: Greenbone's DSM 6/7 condition; Wappalyzer uses the DiskStation form.
_META_DESCRIPTION = re.compile(
    r"""name\s{0,8}=\s{0,8}["']description["']\s{1,8}content\s{0,8}=\s{0,8}["']\s{0,8}"""
    r"(?:VirtualDSM|Synology NAS|DiskStation) provides a full-featured",
    re.IGNORECASE,
)
# A5: Wappalyzer html rule; nuclei tech-detect "synology-diskstation".
_NOSCRIPT = re.compile(r"""<noscript>\s{0,16}<div class=["']syno-no-script""", re.IGNORECASE)
# A6: Wappalyzer scriptSrc "webapi/entry.cgi?api=SYNO.(Core|Filestation).Desktop.".
_DESKTOP_API_SCRIPT = re.compile(
    r"""src\s{0,4}=\s{0,4}["'][^"'<>]{0,256}?webapi/entry\.cgi\?api=SYNO\.(?:Core|FileStation)"""
    r"\.Desktop\.",
    re.IGNORECASE,
)
# A7: inline "SYNO.SDS.Session = {" (WhatWeb; Greenbone), the DSM 3.x-5.x login page.
_SDS_SESSION = re.compile(r"SYNO\.SDS\.Session\s{0,8}=\s{0,8}\{")
# A8: synoSDSjslib/sds.js (<= 7.1) or synoSDSjslib/dist/sds.bundle.js (7.2) (Greenbone).
_SDS_JSLIB = re.compile(
    r"""(?:src|href)\s{0,4}=\s{0,4}["'][^"'<>]{0,256}?synoSDSjslib/""", re.IGNORECASE
)
# A9: the hidden login form container (WhatWeb; the DSM 6.2 capture).
_LOGIN_FORM = re.compile(r"""id\s{0,4}=\s{0,4}["']sds-login-dialog-form["']""")
# WhatWeb's version rule: <script type="text/javascript" src="synodefs.cgi?v=NNNN">. The value
# is the build only up to DSM 4.2 (Greenbone); the script tag itself marks DSM 3.x-5.x pages.
_SYNODEFS_SCRIPT = re.compile(
    r"""src\s{0,4}=\s{0,4}["'](?:/?webman/)?synodefs\.cgi\?v=([0-9]{1,12})["']""", re.ASCII
)
# Greenbone: 'eg. "fullversion" : "3810-s0"' in the SYNO.SDS.Session JSON (DSM 4.3-5.x). The
# "-sN" suffix may be the Update level (UNVERIFIED, reference section 2 caveat 3): not read.
# DSM 7 pages carry 10-digit timestamps in "fullversion"; six digits at most keeps them out.
_FULLVERSION = re.compile(r'"fullversion"\s{0,8}:\s{0,8}"([0-9]{1,6})(?:-s[0-9]{1,4})?"', re.ASCII)

# A14: the P3P policy DSM 6 sends (home-assistant/core issue #43365 debug log).
_DSM_P3P = 'CP="IDC DSP COR ADM DEVi TAIi PSA PSD IVAi IVDi CONi HIS OUR IND CNT"'
# A15: "Synology/DSM/<LAN IP or host name>" (recog http_servers.xml:4331-4351).
_DSM_SERVER = re.compile(r"Synology/DSM/\S{1,253}")

# --- SRM (Synology Router Manager) -------------------------------------------------------
# Greenbone gb_synology_srm_http_detect.nasl: "SynologyRouter", content="Synology Router,
# meta description "Synology Router provides a full-featured"; recog html_title.xml:483 title
# "Synology&nbsp;Router&nbsp;-&nbsp;synology". SRM shares DSM's web framework (SYNO.SDS.Session,
# synoSDSjslib), so it shows DSM markers too and must be told apart.
_SRM_IDENTITY = re.compile(
    r"""SynologyRouter|content\s{0,4}=\s{0,4}["']\s{0,8}Synology Router""", re.IGNORECASE
)
_SRM_TITLE = re.compile(
    r"Synology Router(?: - .{0,512})?|.{1,512} - Synology Router", re.IGNORECASE
)

# --- endpoint formats --------------------------------------------------------------------
_HDPACK_LINE = re.compile(r'([A-Za-z_][A-Za-z0-9_]{0,63})\s{0,8}=\s{0,8}"([^"\r\n]{0,256})"')
_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)
# Metasploit DEVICE_INFO_PATTERN:
# major=(\d+)&minor=(\d+)&build=(\d+)&junior=\d+&unique=synology_\w+_(?<model>[^&]+)
_INFO_CGI = re.compile(
    r"major=([0-9]{1,2})&minor=([0-9]{1,2})&build=([0-9]{1,6})"
    r"(?:&junior=[0-9]{1,6})?(?:&unique=([A-Za-z0-9_+\-]{1,64}))?(?:&[A-Za-z0-9_=&+\-.%]{0,256})?",
    re.ASCII,
)
_MODEL = re.compile(r"([a-z]*)([A-Za-z0-9+\-]{1,32})", re.ASCII)

# Markers that only DSM's web framework produces; SRM pages show them too (see above).
_FRAMEWORK_MARKERS = frozenset(
    {"noscript", "desktop-api-script", "sds-session", "sds-jslib", "login-form"}
)


@dataclass(frozen=True)
class HttpResponse:
    """One HTTP response as the probe read it.

    ``path`` is the path and query that was requested (``/webman/info.cgi?host=``); ``headers``
    has lower-case names; ``body`` is the decoded (and capped) body text.
    """

    path: str
    status: int
    headers: Mapping[str, str]
    body: str


@dataclass(frozen=True)
class InfoCgi:
    """What DSM 4.x's ``/webman/info.cgi?host=`` says: ``major.minor``, build and model."""

    major: int
    minor: int
    build: int
    model: str | None

    @property
    def version(self) -> str:
        """``"4.3"``."""
        return f"{self.major}.{self.minor}"


def _usable(resp: HttpResponse) -> bool:
    """A 2xx response that does not echo the scanner's own request."""
    if not 200 <= resp.status < 300:
        return False
    if _ECHO.search(resp.body):
        return False
    return not any(_ECHO.search(value) for value in resp.headers.values())


def _path_only(path: str) -> str:
    return path.split("?", 1)[0].split("#", 1)[0]


def _title_text(text: str) -> str | None:
    """The first <title> element's text (up to 4 KiB), entities decoded, whitespace collapsed."""
    opening = _TITLE_OPEN.search(text)
    if opening is None:
        return None
    closing = _TITLE_CLOSE.search(text, opening.end(), opening.end() + 4096 + 8)
    if closing is None:
        return None
    return " ".join(html.unescape(text[opening.end() : closing.start()]).split())


def _html_markers(text: str) -> set[str]:
    found: set[str] = set()
    title = _title_text(text)
    if title is not None and _DSM_TITLE.fullmatch(title):
        found.add("title")
    checks = (
        ("meta-description", _META_DESCRIPTION),
        ("noscript", _NOSCRIPT),
        ("desktop-api-script", _DESKTOP_API_SCRIPT),
        ("sds-session", _SDS_SESSION),
        ("sds-jslib", _SDS_JSLIB),
        ("login-form", _LOGIN_FORM),
        ("synodefs-script", _SYNODEFS_SCRIPT),
    )
    found.update(name for name, pattern in checks if pattern.search(text))
    return found


def _header_markers(headers: Mapping[str, str]) -> set[str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    found: set[str] = set()
    if " ".join(lowered.get("p3p", "").split()) == _DSM_P3P:
        found.add("p3p-header")
    if _DSM_SERVER.fullmatch(lowered.get("server", "").strip()):
        found.add("server-header")
    return found


def markers_in(resp: HttpResponse) -> frozenset[str]:
    """The DSM markers one response shows; empty unless it is a 2xx that does not echo us.

    HTML anchors: ``title`` (A1-A3), ``meta-description`` (A4), ``noscript`` (A5),
    ``desktop-api-script`` (A6), ``sds-session`` (A7), ``sds-jslib`` (A8), ``login-form`` (A9),
    ``synodefs-script`` (WhatWeb's synodefs.cgi script tag). Headers: ``p3p-header`` (A14),
    ``server-header`` (A15). Endpoints, each only on its own path: ``synohdpack`` (key="value"
    lines with a numeric buildnumber, from a DSM rather than SRM/BeeStation), ``info-cgi``
    (``major=..&minor=..&build=..``), ``api-info`` (JSON with ``data["SYNO.API.Auth"]["path"]``).
    """
    if not _usable(resp):
        return frozenset()
    found = _html_markers(resp.body[:_SCAN_LIMIT]) | _header_markers(resp.headers)
    path = _path_only(resp.path)
    if path == _HDPACK_PATH:
        fields = parse_synohdpack(resp.body)
        if fields is not None and _hdpack_is_dsm(fields):
            found.add("synohdpack")
    elif path == _INFO_CGI_PATH and parse_info_cgi(resp.body) is not None:
        found.add("info-cgi")
    elif path == _QUERY_CGI_PATH and _api_auth_entry(resp.body) is not None:
        found.add("api-info")
    return frozenset(found)


def is_srm(resp: HttpResponse) -> bool:
    """True when the response is a Synology Router Manager (SRM) page, which is not DSM.

    Needs both an SRM identity string (``SynologyRouter``, ``content="Synology Router...``, or a
    "Synology Router" title; Greenbone SRM detection, recog) and one of DSM's web-framework
    markers, which SRM shares; a page merely mentioning Synology routers is not SRM.
    """
    if not _usable(resp):
        return False
    text = resp.body[:_SCAN_LIMIT]
    title = _title_text(text)
    identity = _SRM_IDENTITY.search(text) is not None or (
        title is not None and _SRM_TITLE.fullmatch(title) is not None
    )
    return identity and bool(_html_markers(text) & _FRAMEWORK_MARKERS)


def parse_synohdpack(body: str) -> dict[str, str] | None:
    """``/synohdpack/synohdpack.version`` as a dict, or None when the body is not that file.

    Every non-blank line must be ``key="value"`` and ``buildnumber`` must be numeric (DSM 5.0+
    and SRM serve this file; Greenbone's DSM and SRM HTTP detections).
    """
    if len(body) > _ENDPOINT_LIMIT:
        return None
    fields: dict[str, str] = {}
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    if not lines or len(lines) > 64:
        return None
    for line in lines:
        match = _HDPACK_LINE.fullmatch(line)
        if match is None:
            return None
        fields[match.group(1)] = match.group(2)
    if not _DIGITS.fullmatch(fields.get("buildnumber", "")):
        return None
    return fields


def _hdpack_is_dsm(fields: Mapping[str, str]) -> bool:
    """False for SRM and BeeStation version files, which share the format.

    SRM's file says productversion="1.3.1" with majorversion="5" (Greenbone SRM detection);
    BeeStation OS is 1.x too (CVE-2024-10445 text). DSM's productversion starts at 6 (5.0 has
    none), so a 1.x-3.x productversion, or an os_name other than DSM, is not DSM.
    """
    os_name = fields.get("os_name")
    if os_name is not None and os_name.strip().upper() != "DSM":
        return False
    product = version_tuple(fields.get("productversion", "").strip())
    return product is None or product[0] >= 4


def parse_info_cgi(body: str) -> InfoCgi | None:
    """DSM 4.x ``/webman/info.cgi?host=`` (``major=4&minor=3&build=3810&junior=..&unique=..``).

    The whole body must be that one query-string line (Metasploit's DEVICE_INFO_PATTERN, with
    junior/unique optional). The model comes from ``unique=synology_<arch>_<model>``: a leading
    lower-case series is upper-cased (``rs812`` -> ``RS812``) and a bare number gets ``DS``
    (``1813+`` -> ``DS1813+``), as Metasploit does. None when the body is anything else.
    """
    if len(body) > _ENDPOINT_LIMIT:
        return None
    match = _INFO_CGI.fullmatch(body.strip())
    if match is None:
        return None
    return InfoCgi(
        major=int(match.group(1)),
        minor=int(match.group(2)),
        build=int(match.group(3)),
        model=_model_from_unique(match.group(4)),
    )


def _model_from_unique(unique: str | None) -> str | None:
    if unique is None or not unique.startswith("synology_"):
        return None
    parts = unique[len("synology_") :].rsplit("_", 1)
    if len(parts) != 2:
        return None
    match = _MODEL.fullmatch(parts[1])
    if match is None:
        return None
    series, rest = match.groups()
    return series.upper() + rest if series else "DS" + rest


def _api_auth_entry(body: str) -> Mapping[str, object] | None:
    """``data["SYNO.API.Auth"]`` of a SYNO.API.Info reply when it has a string ``path``."""
    text = body.strip()
    if not text.startswith("{") or len(text) > _ENDPOINT_LIMIT:
        return None
    try:
        document: object = json.loads(text)
    except (ValueError, RecursionError):
        return None
    data = document.get("data") if isinstance(document, dict) else None
    auth = data.get("SYNO.API.Auth") if isinstance(data, dict) else None
    if not isinstance(auth, dict):
        return None
    path = auth.get("path")
    return auth if isinstance(path, str) and path else None


def parse_api_info(body: str) -> int | None:
    """SYNO.API.Auth ``maxVersion`` from a ``/webapi/query.cgi`` SYNO.API.Info reply.

    A generation hint, not a version: 3 = DSM 4.2, 4 = DSM 5, 6 = DSM 6, 7 = DSM 7 (python-synology
    issue #8; py-synologydsm-api fixtures). None when the body is not such a reply or the value
    is not a small integer.
    """
    auth = _api_auth_entry(body)
    value = auth.get("maxVersion") if auth is not None else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 99:
        return value
    return None


def parse_fullversion(body: str) -> int | None:
    """The build in a DSM 4.3-5.x login page's ``"fullversion" : "3810-s0"``, else None.

    Only the digits before ``-s`` are read; the ``-sN`` part is not taken as the Update level
    (unverified). Values over six digits (DSM 7 timestamps) are not builds and give None.
    """
    match = _FULLVERSION.search(body[:_SCAN_LIMIT])
    return int(match.group(1)) if match else None


def parse_synodefs_build(body: str) -> int | None:
    """The build in ``synodefs.cgi?v=<build>`` on a DSM 4.2-or-older login page, else None.

    From DSM 4.3 on the number is no longer the build (Greenbone), so a value that maps to 4.3
    or later (or to no release) gives None.
    """
    match = _SYNODEFS_SCRIPT.search(body[:_SCAN_LIMIT])
    if match is None or len(match.group(1)) > 6:
        return None
    build = int(match.group(1))
    release = version_for_build(build)
    parts = version_tuple(release) if release is not None else None
    return build if parts is not None and parts[:2] <= (4, 2) else None


@dataclass(frozen=True)
class _Evidence:
    version: str | None
    build: int | None
    update: int | None
    source: str


def _from_synohdpack(responses: Sequence[HttpResponse]) -> _Evidence | None:
    # Greenbone: productversion (6.x onward), else majorversion.minorversion (5.0), then
    # buildnumber and smallfixnumber (the Update level).
    for resp in responses:
        if _path_only(resp.path) != _HDPACK_PATH:
            continue
        fields = parse_synohdpack(resp.body)
        if fields is None or not _hdpack_is_dsm(fields):
            continue
        version = fields.get("productversion", "").strip()
        if version_tuple(version) is None:
            version = f"{fields.get('majorversion', '')}.{fields.get('minorversion', '')}"
        smallfix = fields.get("smallfixnumber", "").strip()
        return _Evidence(
            version=version if version_tuple(version) is not None else None,
            build=int(fields["buildnumber"]),
            update=int(smallfix) if _DIGITS.fullmatch(smallfix) else None,
            source="synohdpack.version",
        )
    return None


def _from_info_cgi(responses: Sequence[HttpResponse]) -> tuple[_Evidence | None, str | None]:
    for resp in responses:
        if _path_only(resp.path) == _INFO_CGI_PATH:
            info = parse_info_cgi(resp.body)
            if info is not None:
                return _Evidence(info.version, info.build, None, "info.cgi"), info.model
    return None, None


def _from_login_page(responses: Sequence[HttpResponse]) -> _Evidence | None:
    # Greenbone's order: "fullversion" (4.3 onward) before synodefs.cgi?v= (4.2 and older).
    for resp in responses:
        build = parse_fullversion(resp.body)
        if build is not None and version_for_build(build) is not None:
            return _Evidence(None, build, None, "login page fullversion")
    for resp in responses:
        build = parse_synodefs_build(resp.body)
        if build is not None:
            return _Evidence(None, build, None, "login page synodefs.cgi")
    return None


def fingerprint(responses: Sequence[HttpResponse]) -> DsmFingerprint | None:
    """A DSM fingerprint from one port's responses, or None when it is not (shown to be) DSM.

    None unless the responses show at least two distinct markers (:func:`markers_in`), and None
    when any response is an SRM page or an SRM/BeeStation version file. The version comes from
    the first source that has one: ``synohdpack.version`` (productversion, or
    majorversion.minorversion; buildnumber; smallfixnumber as the Update), then ``info.cgi``
    (major.minor, build, model), then the login page's ``fullversion`` or ``synodefs.cgi`` build
    mapped with the build table. The version is refined to x.y.z from the build when they agree
    (6.2 + 25556 -> 6.2.4). ``version_source`` names the source; the model comes from info.cgi.
    """
    usable = [resp for resp in responses if _usable(resp)]
    for resp in usable:
        fields = parse_synohdpack(resp.body) if _path_only(resp.path) == _HDPACK_PATH else None
        if is_srm(resp) or (fields is not None and not _hdpack_is_dsm(fields)):
            return None
    markers: set[str] = set()
    for resp in usable:
        markers |= markers_in(resp)
    if len(markers) < 2:
        return None
    info_evidence, model = _from_info_cgi(usable)
    evidence = _from_synohdpack(usable) or info_evidence or _from_login_page(usable)
    if evidence is None:
        return DsmFingerprint(markers=tuple(sorted(markers)), model=model)
    return DsmFingerprint(
        markers=tuple(sorted(markers)),
        version=resolve_version(evidence.version, evidence.build),
        build=evidence.build,
        update=evidence.update,
        model=model,
        version_source=evidence.source,
    )
