"""Route tables: what each imitated web product answers, down to its headers and error pages.

A :class:`Site` is a product (DSM 4.3, DSM 6.2, nginx, a QNAP, ...): a :class:`Flavor` (the
server software: ``Server`` header, header order, error pages, keep-alive) plus routes from a
request target to a handler. A route key is either ``path?query`` (matched first, exactly) or a
bare ``path`` (any query). Unknown paths get the site's ``fallback`` or the flavor's 404.

Pages live as files under ``pages/`` (shipped as package data); ``{{hostname}}`` in them is
replaced by the lab host's name, which DSM shows in its title
(``<host>&nbsp;-&nbsp;Synology&nbsp;DiskStation``).

Facts behind the pages: docs/reference/dsm.md sections 1, 2 and 6; every site that is not
DSM belongs to the negative corpus (a correct DSM detector stays silent on it).
"""

from __future__ import annotations

import email.utils
import html
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from importlib import resources

__all__ = [
    "CONSOLE_PREFIX",
    "SITES",
    "Console",
    "Flavor",
    "Reply",
    "Request",
    "Site",
    "consoles",
    "page",
]


@dataclass(frozen=True)
class Request:
    """One parsed request as the lab server received it.

    ``head`` is the raw request line and header block, byte for byte, up to and including the
    blank line. ``target`` is the request-target as sent; ``path``/``query`` split it (an
    absolute-form target is reduced to its path). ``authority`` is the ``Host`` header, or the
    listening ``address:port`` when the client sent none. ``hostname`` is the lab host's name.
    """

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    head: bytes
    scheme: str
    authority: str
    hostname: str

    @property
    def path(self) -> str:
        target = self.target
        if "://" in target:
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        return target.partition("?")[0].partition("#")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2].partition("#")[0]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass(frozen=True)
class Reply:
    """What a handler answers: status, body, content type and any extra headers.

    The flavor adds ``Server``, ``Date``, ``Content-Length`` and ``Connection`` in the
    product's order; ``headers`` come after them. ``close`` ends the connection afterwards.
    ``bare`` sends the body alone, without status line or headers: an HTTP/0.9 answer, which
    is what Apache's mod_ssl gives plain HTTP on its TLS port.
    """

    status: int
    body: bytes = b""
    content_type: str | None = "text/html"
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    bare: bool = False


Handler = Callable[[Request], Reply]


def _http_date() -> str:
    return email.utils.formatdate(usegmt=True)


# Reason phrases that differ from the RFC's (nginx's own table in ngx_http_header_filter).
_REASONS: Mapping[str, Mapping[int, str]] = {
    "nginx": {302: "Moved Temporarily", 405: "Not Allowed", 414: "Request-URI Too Large"},
}


@dataclass(frozen=True)
class Flavor:
    """The web server software a product runs: what it sends besides the page.

    ``style`` is ``nginx``, ``apache``, ``miniupnpd`` or ``embedded`` (a small router/NAS
    daemon). ``server`` is the exact ``Server`` value (no trailing space: nmap -sV matches
    banners exactly and walks every probe otherwise, docs/reference/performance.md section 4).
    ``keep_alive`` says whether it keeps HTTP/1.1 connections open. ``skip_blank_lines``: nginx
    and Apache ignore empty lines before a request line; miniupnpd answers them with 501.
    """

    style: str
    server: str
    keep_alive: bool = True
    skip_blank_lines: bool = True

    def reason(self, status: int) -> str:
        """The reason phrase this server software writes for ``status``."""
        special = _REASONS.get(self.style, {}).get(status)
        if special:
            return special
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return "Unknown"

    def status_line(self, request_version: str, status: int) -> bytes:
        """The first response line. miniupnpd echoes the request's version, even an empty one
        (nmap's MiniUPnP fingerprints start with ``" 501 Not Implemented"``)."""
        version = request_version if self.style == "miniupnpd" else "HTTP/1.1"
        return f"{version} {status} {self.reason(status)}\r\n".encode("latin-1")

    def header_block(self, reply: Reply, *, length: int, keep_alive: bool) -> list[tuple[str, str]]:
        """The response headers in the order this software writes them."""
        ctype = [("Content-Type", reply.content_type)] if reply.content_type else []
        conn = "keep-alive" if keep_alive else "close"
        if self.style == "nginx":
            # nginx writes Last-Modified (static files) before Connection, the rest after.
            early = [h for h in reply.headers if h[0] == "Last-Modified"]
            return [
                ("Server", self.server),
                ("Date", _http_date()),
                *ctype,
                ("Content-Length", str(length)),
                *early,
                ("Connection", conn),
                *(h for h in reply.headers if h[0] != "Last-Modified"),
            ]
        if self.style == "apache":
            alive = [("Keep-Alive", "timeout=5, max=100")] if keep_alive else []
            return [
                ("Date", _http_date()),
                ("Server", self.server),
                *reply.headers,
                ("Content-Length", str(length)),
                *alive,
                ("Connection", "Keep-Alive" if keep_alive else "close"),
                *ctype,
            ]
        if self.style == "miniupnpd":
            # miniupnpd's httpresphead: type, close, length, server, then an empty "Ext:".
            return [
                *ctype,
                ("Connection", "close"),
                ("Content-Length", str(length)),
                ("Server", self.server),
                ("Ext", ""),
                *reply.headers,
            ]
        server = [("Server", self.server)] if self.server else []  # Go's net/http sends none
        return [
            *server,
            ("Date", _http_date()),
            *ctype,
            ("Content-Length", str(length)),
            ("Connection", conn),
            *reply.headers,
        ]

    def error(self, status: int, request: Request | None = None, detail: str = "") -> Reply:
        """This software's stock error page for ``status`` (404, 400, 405, 413, 302 ...)."""
        reason = self.reason(status)
        path = html.escape(request.path if request else "/")
        if self.style == "nginx":
            extra = f"<center>{detail}</center>\r\n" if detail else ""
            body = (
                f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
                f"<center><h1>{status} {reason}</h1></center>\r\n{extra}"
                f"<hr><center>{self.server}</center>\r\n</body>\r\n</html>\r\n"
            )
            return Reply(status, body.encode(), "text/html", close=status >= 400)
        if self.style == "apache":
            text = {
                400: "Your browser sent a request that this server could not understand.<br />\n",
                404: f"The requested URL {path} was not found on this server.",
                405: f"The requested method {request.method if request else 'GET'} is not "
                f"allowed for the URL {path}.",
                413: "The requested resource does not allow request data, or the amount of "
                "data provided in the request exceeds the capacity limit.",
            }.get(status, reason)
            body = (
                '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
                f"<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n"
                f"<p>{text}{detail}</p>\n</body></html>\n"
            )
            return Reply(
                status, body.encode(), "text/html; charset=iso-8859-1", close=status >= 400
            )
        if self.style == "miniupnpd":
            text = {
                404: "The requested URL was not found on this server.",
                501: "The HTTP Method is not implemented by this server.",
                400: "The request is invalid for this HTTP version.",
            }.get(status, reason)
            body = (
                f"<HTML><HEAD><TITLE>{status} {reason}</TITLE></HEAD><BODY><H1>{reason}</H1>"
                f"{text}</BODY></HTML>\r\n"
            )
            return Reply(status, body.encode(), "text/html", close=True)
        body = (
            f"<HTML><HEAD><TITLE>{status} {reason}</TITLE></HEAD>\n"
            f'<BODY BGCOLOR="#cc9999"><H4>{status} {reason}</H4>\n'
            f"{'File not found.' if status == 404 else reason}\n</BODY></HTML>\n"
        )
        return Reply(status, body.encode(), "text/html", close=True)

    def bad_request(self, request_line: bytes) -> tuple[str, Reply]:
        """The answer to a request line that does not parse, and the version to echo.

        miniupnpd answers an empty or unknown method with 501 and echoes the (possibly empty)
        third token as its version; the others answer 400.
        """
        if self.style == "miniupnpd":
            parts = request_line.split(b" ")
            version = parts[2].decode("latin-1") if len(parts) >= 3 else ""
            return version, self.error(501)
        return "HTTP/1.1", self.error(400)

    def plain_on_tls(self, request: Request) -> Reply:
        """What the software answers to plain HTTP sent to its TLS port.

        nginx: its 497 page (status 400); nmap matches it as ``ssl/http nginx``. Apache: its
        "speaking plain HTTP to an SSL-enabled server port" 400 page as an HTTP/0.9 answer
        (mod_ssl rewrites the request to ``GET /``, so no status line and no headers), which
        nmap matches as ``ssl`` Apache httpd.
        """
        if self.style == "nginx":
            reply = self.error(400, request, "The plain HTTP request was sent to HTTPS port")
            body = reply.body.replace(
                b"<title>400 Bad Request</title>",
                b"<title>400 The plain HTTP request was sent to HTTPS port</title>",
            )
            return Reply(400, body, reply.content_type, close=True)
        if self.style == "apache":
            reply = self.error(
                400,
                request,
                "Reason: You're speaking plain HTTP to an SSL-enabled server port.<br />\n"
                " Instead use the HTTPS scheme to access this URL, please.<br />\n",
            )
            return Reply(400, reply.body, reply.content_type, close=True, bare=True)
        return self.error(400, request)


@dataclass(frozen=True)
class Site:
    """One imitated web product: its flavor, routes, TLS certificate profile and 404 handler.

    ``dsm`` is the DSM version-build the site leaks (``"6.2.4-25556"``), None for everything
    that is not DSM. ``certificate`` names a profile of :mod:`exposure_audit.lab.certificates`.
    ``methods`` are the request methods served from routes; others get the flavor's 405 (501
    for miniupnpd). ``login_paths`` are where a DSM login page is served (``/`` after the
    redirect on DSM 4.3: ``/webman/index.cgi``); empty for the negatives.
    """

    name: str
    description: str
    flavor: Flavor
    certificate: str
    routes: Mapping[str, Handler]
    dsm: str | None = None
    fallback: Handler | None = None
    methods: tuple[str, ...] = ("GET", "HEAD", "POST")
    login_paths: tuple[str, ...] = ()

    def respond(self, request: Request) -> Reply:
        """The reply to ``request``: exact ``path?query`` route, then ``path``, else 404."""
        if self.fallback is None and request.method not in self.methods:
            if self.flavor.style == "miniupnpd":
                return self.flavor.error(501, request)
            return self.flavor.error(405, request)
        handler = self.routes.get(request.target) or self.routes.get(request.path)
        if handler is not None:
            return handler(request)
        if self.fallback is not None:
            return self.fallback(request)
        return self.flavor.error(404, request)


@cache
def page(name: str) -> bytes:
    """The bytes of ``pages/<name>`` shipped with the package (``FileNotFoundError`` if none)."""
    return resources.files("exposure_audit.lab").joinpath("pages", name).read_bytes()


def _static(
    name: str,
    content_type: str,
    headers: tuple[tuple[str, str], ...] = (),
    status: int = 200,
) -> Handler:
    def handle(request: Request) -> Reply:
        body = page(name).replace(b"{{hostname}}", request.hostname.encode())
        return Reply(status, body, content_type, headers)

    return handle


def _text(body: str, content_type: str, headers: tuple[tuple[str, str], ...] = ()) -> Handler:
    def handle(request: Request) -> Reply:
        return Reply(200, body.encode(), content_type, headers)

    return handle


def _redirect(flavor: Flavor, path: str) -> Handler:
    """A 302 to ``path`` on the same scheme, host and port the client used."""

    def handle(request: Request) -> Reply:
        location = f"{request.scheme}://{request.authority}{path}"
        if flavor.style == "apache":
            body = (
                '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
                "<title>302 Found</title>\n</head><body>\n<h1>Found</h1>\n"
                f'<p>The document has moved <a href="{html.escape(location)}">here</a>.</p>\n'
                "</body></html>\n"
            )
            return Reply(
                302, body.encode(), "text/html; charset=iso-8859-1", (("Location", location),)
            )
        reply = flavor.error(302)
        return Reply(302, reply.body, reply.content_type, (("Location", location),))

    return handle


# DSM's webapi answers, json-encoded compactly as DSM does. Error codes from the DSM
# Web API guide: 101 missing api/method/version, 102 no such API, 103 no such method.
def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _api_error(code: int) -> bytes:
    return _json({"error": {"code": code}, "success": False})


def _api_info(name: str, headers: tuple[tuple[str, str], ...]) -> Handler:
    """``/webapi/query.cgi``: SYNO.API.Info's answer, filtered by its ``query`` parameter."""
    ctype = 'text/plain; charset="UTF-8"'

    def handle(request: Request) -> Reply:
        apis: dict[str, object] = json.loads(page(name))
        params = urllib.parse.parse_qs(request.query, keep_blank_values=True)
        api = params.get("api", [""])[0]
        method = params.get("method", [""])[0]
        if not api or not method or not params.get("version"):
            return Reply(200, _api_error(101), ctype, headers)
        if api != "SYNO.API.Info":
            return Reply(200, _api_error(102), ctype, headers)
        if method != "query":
            return Reply(200, _api_error(103), ctype, headers)
        wanted = params.get("query", ["ALL"])[0]
        if wanted != "ALL":
            names = [n.strip() for n in wanted.split(",")]
            apis = {n: apis[n] for n in names if n in apis}
        return Reply(200, _json({"data": apis, "success": True}), ctype, headers)

    return handle


def _api_fixed(code: int, headers: tuple[tuple[str, str], ...]) -> Handler:
    def handle(request: Request) -> Reply:
        return Reply(200, _api_error(code), 'text/plain; charset="UTF-8"', headers)

    return handle


def _echo(request: Request) -> Reply:
    """200 for every path, echoing the raw request head: markers in it are the scanner's own."""
    return Reply(200, request.head, "text/html")


_NGINX_DSM = Flavor("nginx", "nginx")
_APACHE_DSM = Flavor("apache", "Apache")

# Headers DSM's nginx adds to pages and CGI output (docs/reference/dsm.md section 1.1, anchor
# A14; P3P was seen on DSM 6 webapi answers, not confirmed for DSM 7).
_DSM_PAGE_HEADERS = (
    ("Cache-control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-XSS-Protection", "1; mode=block"),
)
_P3P = ("P3P", 'CP="IDC DSP COR ADM DEVi TAIi PSA PSD IVAi IVDi CONi HIS OUR IND CNT"')
_DSM6_API_HEADERS = (
    _P3P,
    ("X-Content-Type-Options", "nosniff"),
    ("X-XSS-Protection", "1; mode=block"),
    ("Access-Control-Allow-Origin", "*"),
)
_DSM7_API_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-XSS-Protection", "1; mode=block"),
    ("Access-Control-Allow-Origin", "*"),
)
# /webman/pingpong.cgi: DSM's pre-auth liveness probe used by QuickConnect
# (docs/reference/dsm.md section 6.2).
_PINGPONG = (
    '{"boot_done":true,"disk_hibernation":false,'
    '"ezid":"9e5c5e2f2b1f1c0d7a4b3e8f6d2c1a07","success":true}'
)


def _dsm43() -> Site:
    flavor = _APACHE_DSM
    return Site(
        name="dsm43",
        description="DSM 4.3-3810 on a DS1512+ (Apache, as DSM 4 ran it: 'apache-sys')",
        flavor=flavor,
        certificate="dsm-legacy",
        dsm="4.3-3810",
        routes={
            "/": _redirect(flavor, "/webman/index.cgi"),
            "/webman/index.cgi": _static("dsm43_index.html", "text/html; charset=utf-8"),
            # MSF synology_dsm_sliceupload_exec_noauth check() reads this.
            "/webman/info.cgi": _text(
                "major=4&minor=3&build=3810&junior=0&unique=synology_cedarview_1512+",
                "text/plain; charset=utf-8",
            ),
            "/webapi/query.cgi": _api_info("dsm43_api.json", ()),
            "/webapi/auth.cgi": _api_fixed(101, ()),
        },
        login_paths=("/webman/index.cgi",),
    )


def _dsm62() -> Site:
    return Site(
        name="dsm62",
        description="DSM 6.2.4-25556 Update 7 (nginx)",
        flavor=_NGINX_DSM,
        certificate="dsm-default",
        dsm="6.2.4-25556",
        routes={
            "/": _static("dsm62_index.html", 'text/html; charset="UTF-8"', _DSM_PAGE_HEADERS),
            "/synohdpack/synohdpack.version": _static(
                "dsm62_synohdpack.version", "application/octet-stream"
            ),
            "/webapi/query.cgi": _api_info("dsm62_api.json", _DSM6_API_HEADERS),
            "/webapi/entry.cgi": _api_fixed(102, _DSM6_API_HEADERS),
            "/webapi/auth.cgi": _api_fixed(101, _DSM6_API_HEADERS),
            "/webman/pingpong.cgi": _text(_PINGPONG, "application/json", _DSM6_API_HEADERS),
        },
        login_paths=("/",),
    )


def _dsm72() -> Site:
    return Site(
        name="dsm72",
        description="DSM 7.2.2-72806 Update 3 (nginx)",
        flavor=_NGINX_DSM,
        certificate="dsm-default",
        dsm="7.2.2-72806",
        routes={
            "/": _static("dsm72_index.html", 'text/html; charset="UTF-8"', _DSM_PAGE_HEADERS),
            "/robots.txt": _text("User-agent: *\nDisallow: /\n", "text/plain"),
            "/synohdpack/synohdpack.version": _static(
                "dsm72_synohdpack.version", "application/octet-stream"
            ),
            "/webapi/query.cgi": _api_info("dsm72_api.json", _DSM7_API_HEADERS),
            "/webapi/entry.cgi": _api_fixed(102, _DSM7_API_HEADERS),
            "/webman/pingpong.cgi": _text(_PINGPONG, "application/json", _DSM7_API_HEADERS),
        },
        login_paths=("/",),
    )


def _nginx() -> Site:
    welcome = page("nginx_welcome.html")
    # nginx's ETag is "<mtime hex>-<length hex>"; the mtime is the Debian package's.
    static = (
        ("Last-Modified", "Mon, 17 Apr 2023 10:12:35 GMT"),
        ("ETag", f'"643d1b63-{len(welcome):x}"'),
        ("Accept-Ranges", "bytes"),
    )
    handler = _static("nginx_welcome.html", "text/html", static)
    return Site(
        name="nginx",
        description="nginx 1.22.1 default 'Welcome to nginx!' page",
        flavor=Flavor("nginx", "nginx/1.22.1"),
        certificate="example",
        routes={"/": handler, "/index.html": handler},
        methods=("GET", "HEAD"),
    )


def _upnp_desc() -> Site:
    flavor = Flavor("miniupnpd", "Linux/5.10 UPnP/1.1 MiniUPnPd/2.3.3", False, False)
    return Site(
        name="upnp_desc",
        description="miniupnpd 2.3.3 IGD description server (a router's UPnP HTTP port)",
        flavor=flavor,
        certificate="example",
        routes={"/rootDesc.xml": _static("upnp_rootDesc.xml", 'text/xml; charset="utf-8"')},
        methods=("GET", "POST", "SUBSCRIBE", "UNSUBSCRIBE"),
    )


def _qnap() -> Site:
    login = _static("qnap_login.html", "text/html")
    return Site(
        name="qnap",
        description="QNAP QTS 4.3 login page (negative: another NAS brand)",
        flavor=Flavor("embedded", "http server 1.0"),
        certificate="qnap",
        routes={
            "/": login,
            "/cgi-bin/": login,
            "/cgi-bin/login.html": login,
            "/cgi-bin/authLogin.cgi": _static("qnap_authLogin.xml", "text/xml"),
        },
    )


def _router() -> Site:
    login = _static("router_login.html", "text/html")
    return Site(
        name="router",
        description="home router login page, ASUS style (negative)",
        flavor=Flavor("embedded", "httpd/2.0", keep_alive=False),
        certificate="example",
        routes={"/": login, "/Main_Login.asp": login},
    )


def _webstation() -> Site:
    handler = _static("webstation_index.html", "text/html")
    return Site(
        name="webstation",
        description="Synology Web Station default page (negative: Synology, but not DSM's UI)",
        flavor=_NGINX_DSM,
        certificate="example",
        routes={"/": handler, "/index.html": handler},
        methods=("GET", "HEAD"),
    )


def _srm() -> Site:
    return Site(
        name="srm",
        description="Synology Router Manager 1.3.1-9346 login (negative: a router, not DSM)",
        flavor=_NGINX_DSM,
        certificate="dsm-default",
        routes={
            "/": _static("srm_index.html", 'text/html; charset="UTF-8"', _DSM_PAGE_HEADERS),
            "/synohdpack/synohdpack.version": _static(
                "srm_synohdpack.version", "application/octet-stream"
            ),
        },
    )


def _echo_site() -> Site:
    return Site(
        name="echo",
        description="catch-all echoing the raw request with 200 (negative: self-reflection)",
        flavor=_NGINX_DSM,
        certificate="example",
        routes={},
        fallback=_echo,
    )


def _notfound() -> Site:
    return Site(
        name="notfound",
        description="every path is a 404 whose body says 'Synology DiskStation' (negative)",
        flavor=_NGINX_DSM,
        certificate="example",
        routes={},
        fallback=_static("notfound_404.html", "text/html", status=404),
    )


# --- management interfaces of the catalog (docs/reference/management.md section 4) ---------
# Composed from the catalog's public markers (the positive samples in tests/data/mgmt), not
# copied from the products: just enough of each that two independent markers match.


def _proxmox() -> Site:
    page_ = _static("proxmox_index.html", "text/html; charset=utf-8")
    return Site(
        name="proxmox",
        description="Proxmox VE 8.1 login page on 8006 over TLS (management: hypervisor)",
        flavor=Flavor("embedded", "pve-api-daemon/3.0"),
        certificate="example",
        routes={"/": page_},
        methods=("GET", "HEAD"),
    )


def _jupyter_open() -> Site:
    """Jupyter Server 2.12 started with an empty token and password: /api/kernels answers."""
    json_type = "application/json"
    return Site(
        name="jupyter_open",
        description="JupyterLab without a token or password (management: notebook, open)",
        flavor=Flavor("embedded", "TornadoServer/6.4"),
        certificate="example",
        routes={
            "/": _redirect(Flavor("embedded", "TornadoServer/6.4"), "/lab"),
            "/lab": _static("jupyter_lab.html", "text/html"),
            "/api": _text('{"version": "2.12.5"}', json_type),
            "/api/kernels": _text("[]", json_type),
        },
        methods=("GET", "HEAD"),
    )


def _cockpit() -> Site:
    return Site(
        name="cockpit",
        description="Cockpit web service login on 9090 over TLS (management: server console)",
        flavor=Flavor("embedded", "cockpit-ws"),
        certificate="example",
        routes={
            "/": _static("cockpit_login.html", "text/html"),
            "/cockpit/login": _unauthorized('Basic realm="cockpit"'),
        },
        methods=("GET", "HEAD"),
    )


def _unauthorized(challenge: str) -> Handler:
    def handle(request: Request) -> Reply:
        return Reply(
            401, b"Authentication required\n", "text/plain", (("WWW-Authenticate", challenge),)
        )

    return handle


# --- the management lab: one imitated console per catalog product ----------------------------
# pages/management.json holds them as data (routes with status, type, headers, body), composed
# from the catalog's public markers (docs/reference/management.md section 4), two or more each.

#: The prefix of the console sites' names: ``console-<catalog product id>``.
CONSOLE_PREFIX = "console-"


@dataclass(frozen=True)
class Console:
    """One imitated console of ``pages/management.json``: the catalog ``product`` it imitates,
    on its default ``port`` and ``scheme``; what a correct auditor reads from it without a
    login (``version``, None when it discloses none) and whether it is left able to act without
    one (``acts_without_login``). Its site is ``SITES[CONSOLE_PREFIX + product]``."""

    product: str
    port: int
    scheme: str
    version: str | None
    acts_without_login: bool
    note: str


def _route(spec: Mapping[str, object]) -> Handler:
    status = int(str(spec["status"]))
    body = str(spec["body"]).encode()
    ctype = str(spec["type"])
    raw = spec["headers"]
    headers = tuple((str(h[0]), str(h[1])) for h in raw) if isinstance(raw, list) else ()

    def handle(request: Request) -> Reply:
        return Reply(status, body, ctype, headers)

    return handle


@cache
def _console_specs() -> tuple[Mapping[str, object], ...]:
    consoles = json.loads(page("management.json"))["consoles"]
    return tuple(consoles)


def consoles() -> tuple[Console, ...]:
    """The management lab's consoles, in file order (one per catalog product but DSM/SRM)."""
    return tuple(
        Console(
            product=str(spec["product"]),
            port=int(str(spec["port"])),
            scheme=str(spec["scheme"]),
            version=None if spec["expect_version"] is None else str(spec["expect_version"]),
            acts_without_login=bool(spec["acts_without_login"]),
            note=str(spec["note"]),
        )
        for spec in _console_specs()
    )


def _console_sites() -> tuple[Site, ...]:
    sites = []
    for spec in _console_specs():
        routes = spec["routes"]
        assert isinstance(routes, dict)
        sites.append(
            Site(
                name=f"{CONSOLE_PREFIX}{spec['product']}",
                description=f"{spec['product']} on {spec['port']}/{spec['scheme']}: {spec['note']}",
                flavor=Flavor("embedded", str(spec["server"] or "")),
                certificate=str(spec["certificate"] or "example"),
                routes={target: _route(route) for target, route in routes.items()},
                methods=("GET", "HEAD"),
            )
        )
    return tuple(sites)


#: Every site by name. DSM positives: dsm43, dsm62, dsm72; management interfaces of the catalog:
#: qnap, proxmox, jupyter_open, cockpit, and ``console-<product>`` for every catalog product of
#: the management lab. Everything but DSM is negative corpus for DSM.
SITES: Mapping[str, Site] = {
    site.name: site
    for site in (
        _dsm43(),
        _dsm62(),
        _dsm72(),
        _nginx(),
        _upnp_desc(),
        _qnap(),
        _router(),
        _webstation(),
        _srm(),
        _echo_site(),
        _notfound(),
        _proxmox(),
        _jupyter_open(),
        _cockpit(),
        *_console_sites(),
    )
}
