"""HTTP and TLS fingerprinting of open TCP ports with httpx.

For each open port the probe speaks TLS and plain HTTP at once (two connections) and keeps
what answered, preferring TLS. It then reads ``/`` and, when that page shows a DSM marker, the
read-only DSM version endpoints; on any other page it asks the management catalog
(:mod:`exposure_audit.mgmt`) what the page looks like and reads ``/favicon.ico``, the few
catalog paths worth a look and, for a console that can be left open, the one path that shows
whether it acts without a login (see :data:`_CONTROL_CHECKS`). Given a :data:`WebNamer`
(the audit passes nmap's, :func:`exposure_audit.nmap.installed.match_http_response`), the raw
answer to the first ``/`` is matched against nmap's service probes, so the port carries the
product and version ``nmap -sV`` would name, and the catalog sees that name as its "nmap"
marker. Every request is a GET to a fixed path; nothing logs in or changes state. Redirects
are followed only within the same scheme, address and port; any other redirect is recorded,
never followed.

A hostile server cannot hang the probe or exhaust memory (``docs/hostile.md``): each request
ends within twice its timeout (a slow drip is cut there, keeping what it sent); a body is read
up to ``max_body_bytes``, counted after gzip/deflate inflation (a bomb inflates no further);
and the bodies and headers held at once, across every port the client serves, stay within
``memory_budget_bytes`` (past it, bodies are cut short and the attempt says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import re
import ssl
import weakref
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..dsm import (
    DSM_PROBE_PATHS,
    USER_AGENT,
    HttpResponse,
    fingerprint,
    is_srm,
    is_synology_default_certificate,
    markers_in,
    parse_synohdpack,
)
from ..mgmt import (
    Identification,
    ManagementMatch,
    PathAnswer,
    WebSighting,
    favicon_hash,
    identify,
    load_catalog,
    paths_worth_fetching,
)
from ..observations import (
    DsmFingerprint,
    HttpObservation,
    ManagementHint,
    ManagementObservation,
    ProbeAttempt,
    ProbeStatus,
    Redirect,
    TlsCertificate,
)
from ..text import printable
from .rawhttp import response_bytes

__all__ = [
    "HttpProbeSettings",
    "NmapName",
    "PortFingerprint",
    "WebNamer",
    "fingerprint_port",
    "make_client",
    "parse_certificate",
]

_LEGACY_LOGIN = "/webman/index.cgi"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TITLE_SCAN = 65536
# Response headers kept per page (DSM markers need a handful); the rest are dropped unread.
_MAX_HEADERS = 100
# What one header line costs in memory while httpx holds it (its tuples and bytes objects).
_HEADER_COST = 256
# A Location header is hidden from httpx (which would refuse a malformed one and lose the
# response) and kept here; the probe judges redirects itself.
_LOCATION = "exposure_audit.location"
# The header lines as received, kept when Location is hidden (nmap's patterns see them all).
_RAW_HEADERS = "exposure_audit.raw_headers"
# Certificate subjects and issuers longer than this are cut (a hostile one may be 60 KiB).
_MAX_NAME = 1024
# Characters of a login prompt's description kept (a challenge's scheme and realm come first).
_MAX_CHALLENGE = 160
# An <input> whose type is password, in the first _LOGIN_SCAN characters of a page; the
# attribute run is bounded, so a hostile page costs linear time.
_PASSWORD_FIELD = re.compile(r"""<input\b[^>]{0,256}?\btype\s*=\s*["']?password\b""", re.IGNORECASE)
_LOGIN_SCAN = 128 * 1024


@dataclass(frozen=True)
class HttpProbeSettings:
    """Bounds on every conversation (``docs/hostile.md``).

    ``identify_timeout`` bounds the first request on a port (a silent service costs this much,
    and a slow one that answers within it is still identified) and ``request_timeout`` later
    ones: each connect, read or write must progress
    within it and a whole request, body included, ends within twice it. ``max_body_bytes``
    caps what is read of one body, after inflation. ``memory_budget_bytes`` caps the bodies
    (counted at 4 bytes a character, the worst case of a Python string) and headers held at
    once by every probe sharing a client.
    """

    request_timeout: float = 10.0
    identify_timeout: float = 10.0
    max_body_bytes: int = 1 << 20
    max_redirects: int = 3
    memory_budget_bytes: int = 192 << 20


class NmapName(Protocol):
    """What nmap's service detection calls the server behind a response (the shape of
    :class:`exposure_audit.nmap.servicematch.ServiceMatch`, which the probes may not import):
    printable strings, None where nmap's line names nothing."""

    @property
    def product(self) -> str | None: ...

    @property
    def version(self) -> str | None: ...

    @property
    def info(self) -> str | None: ...

    @property
    def cpes(self) -> tuple[str, ...]: ...


# The raw response (status line, headers, blank line, body prefix) in, nmap's name out; None
# when nothing matched or nmap's probe file is not available. Called in a worker thread: it
# is CPU work (regex searches under their own time budget), and must never raise.
WebNamer = Callable[[bytes], NmapName | None]


@dataclass(frozen=True)
class PortFingerprint:
    """What the probe learned on one port; ``http`` is None when neither HTTP nor TLS spoke.

    ``silent`` is True when neither spoke because nothing came back at all: the port took the
    connection and both the TLS handshake and the plain request (which doubles as a wait for a
    first banner) got no byte within ``identify_timeout``. Such a port answers none of nmap's
    ``-sV`` probes either, so the audit does not send it through them. ``hung_up`` is True
    when neither spoke because the port closed the connection without a byte, both times.
    ``nmap`` is what the :data:`WebNamer` called the answer to ``/`` (None: no namer, no
    match, or no answer)."""

    http: HttpObservation | None
    tls: TlsCertificate | None
    attempt: ProbeAttempt
    silent: bool = False
    hung_up: bool = False
    nmap: NmapName | None = None


@dataclass(frozen=True)
class _Failed:
    """Why a GET got no response; ``silent`` when the peer sent nothing before the timeout
    (it neither answered nor hung up), ``hung_up`` when it closed or reset the connection
    without sending a byte."""

    reason: str
    silent: bool = False
    hung_up: bool = False

    def __str__(self) -> str:
        return self.reason


# The plain answer recorded when TLS answered first (the plain request may still be running).
_PLAIN_PENDING = _Failed("not needed: the port answered TLS")


class _Budget:
    """Memory held by response bodies and headers at once, across the ports of one client.

    Single-threaded (the event loop's): ``take`` grants what is left, up to what is asked.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, wanted: int) -> int:
        granted = max(0, min(wanted, self.limit - self.held))
        self.held += granted
        return granted

    def give_back(self, amount: int) -> None:
        self.held = max(0, self.held - amount)


_BUDGETS: weakref.WeakKeyDictionary[httpx.AsyncClient, _Budget] = weakref.WeakKeyDictionary()


def _budget(client: httpx.AsyncClient, settings: HttpProbeSettings) -> _Budget:
    budget = _BUDGETS.get(client)
    if budget is None:
        budget = _BUDGETS[client] = _Budget(settings.memory_budget_bytes)
    return budget


async def _hide_location(response: httpx.Response) -> None:
    """httpx builds the next request of every redirect, and raises on a malformed Location
    even with redirects off: move the header out of its sight (see ``_Session.get``)."""
    if "location" in response.headers:
        response.extensions[_RAW_HEADERS] = list(response.headers.raw)
        response.extensions[_LOCATION] = response.headers["location"]
        del response.headers["location"]


# Connections to one origin at once: a port's probes use at most ~10 together (the DSM version
# endpoints, or the favicon and the catalog's paths, beside the page itself).
_PER_ORIGIN_CONNECTIONS = 16
# Connections of a client at once, every origin together: a bound on file descriptors (the
# callers bound the ports probed at once; this only bites when many ports fan out together).
_CONNECTIONS = 512
_Origin = tuple[bytes, bytes, int | None]


def make_client(
    settings: HttpProbeSettings, *, max_connections: int = _CONNECTIONS
) -> httpx.AsyncClient:
    """An httpx client fit for scanning: no certificate validation (we read certificates, we do
    not trust them), old TLS versions allowed, no redirects, no proxies from the environment.

    Its connections are pooled per origin (scheme, address, port), see :class:`_OriginPools`:
    at most ``max_connections`` at once in all, 16 to one origin. How many ports are probed
    at once is the caller's to bound (``run/host.py``)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    # Old DSM (4.x) speaks only old ciphers; a scanner must still be able to read its cert.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    client = httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.request_timeout),
        transport=_OriginPools(context, max_connections, _PER_ORIGIN_CONNECTIONS),
        headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "gzip, deflate"},
        event_hooks={"response": [_hide_location]},
    )
    _budget(client, settings)
    return client


class _OriginPools(httpx.AsyncBaseTransport):
    """A small connection pool per origin, made when a request to it starts and dropped when
    its last response is closed.

    httpx's own transport keeps one pool for every origin, and httpcore re-examines every
    queued request against every connection each time a request starts or ends: across the
    hundreds of ports of a crowded host that is quadratic, and a host answering on 1,000 ports
    spent its whole deadline (and starved the other hosts) inside the pool's bookkeeping
    (issue 15; ``docs/performance.md``). Here each pool only ever sees one port's few
    requests. Connections are never kept alive (a scan reads a handful of pages per port), so
    a pool whose requests are done holds no socket. ``total`` bounds the connections open at
    once across the pools (a request waits for one within its own timeout).
    """

    def __init__(self, context: ssl.SSLContext, total: int, per_origin: int) -> None:
        self._context = context
        self._limits = httpx.Limits(max_connections=per_origin, max_keepalive_connections=0)
        self._pools: dict[_Origin, _OriginPool] = {}
        self._connections = asyncio.Semaphore(total)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin: _Origin = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        await self._connections.acquire()
        pool = self._pools.get(origin)
        if pool is None:
            transport = httpx.AsyncHTTPTransport(
                verify=self._context, trust_env=False, limits=self._limits
            )
            pool = self._pools[origin] = _OriginPool(transport)
        pool.users += 1
        try:
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            self._release(origin, pool)
            raise
        response.stream = _ReleasingStream(response.stream, lambda: self._release(origin, pool))
        return response

    def _release(self, origin: _Origin, pool: _OriginPool) -> None:
        self._connections.release()
        pool.users -= 1
        if pool.users <= 0 and self._pools.get(origin) is pool:
            del self._pools[origin]

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.transport.aclose()


@dataclass
class _OriginPool:
    transport: httpx.AsyncHTTPTransport
    users: int = 0


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives its pool back once, when it is closed."""

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, done: Callable[[], None]
    ) -> None:
        # httpx's async transport always answers with an async stream.
        assert isinstance(stream, httpx.AsyncByteStream)
        self._stream = stream
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        done, self._done = self._done, None
        try:
            await self._stream.aclose()
        finally:
            if done is not None:
                done()


async def fingerprint_port(
    client: httpx.AsyncClient,
    address: str,
    port: int,
    *,
    hostname: str | None = None,
    settings: HttpProbeSettings | None = None,
    namer: WebNamer | None = None,
) -> PortFingerprint:
    """Identify HTTP/TLS on ``address:port`` and look for DSM and the catalog's products; with
    ``namer``, name the server as nmap would (``PortFingerprint.nmap``). Never raises for
    network trouble or anything a server sends: failures are reported in the returned
    attempt."""
    settings = settings or HttpProbeSettings()
    session = _Session(client, address, port, hostname, settings, namer)
    try:
        return await session.run()
    finally:
        session.release()


@dataclass(frozen=True)
class _Fetched:
    """One answer: ``header_items`` every header in the order received (names as sent, values
    cut), ``raw`` the body bytes when they were asked for (``get(raw=True)``), else empty;
    ``wire`` the answer as raw HTTP bytes (status line, headers, body prefix) for nmap's
    patterns, kept for the first request on a port only (``get(identify=True)``)."""

    scheme: str
    url: str
    response: HttpResponse
    location: str | None
    certificate: TlsCertificate | None
    header_items: tuple[tuple[str, str], ...] = ()
    raw: bytes = b""
    wire: bytes = b""


class _Session:
    """One port's conversation: builds URLs, sets Host and SNI, reads bodies with a cap, and
    holds its share of the client's memory budget until :meth:`release`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        address: str,
        port: int,
        hostname: str | None,
        settings: HttpProbeSettings,
        namer: WebNamer | None = None,
    ) -> None:
        self.client = client
        self.namer = namer
        self.address = address
        self.port = port
        self.hostname = hostname
        self.settings = settings
        self.budget = _budget(client, settings)
        self.held = 0
        self.cut: str | None = None
        host = f"[{address}]" if ":" in address else address
        self.authority = f"{host}:{port}"

    def release(self) -> None:
        self.budget.give_back(self.held)
        self.held = 0

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://{self.authority}{path}"

    async def run(self) -> PortFingerprint:
        plain_task: asyncio.Task[_Fetched | _Failed] | None = None
        try:
            tls_try, plain_try, plain_task = await self.identify()
            return await self._conclude(tls_try, plain_try, plain_task)
        finally:
            if plain_task is not None:
                await _drop(plain_task)

    async def _conclude(
        self,
        tls_try: _Fetched | _Failed,
        plain_try: _Fetched | _Failed,
        plain_task: asyncio.Task[_Fetched | _Failed] | None,
    ) -> PortFingerprint:
        chosen = tls_try if isinstance(tls_try, _Fetched) else plain_try
        if not isinstance(chosen, _Fetched):
            silent = _silent(tls_try) and _silent(plain_try)
            wait = f"{self.settings.identify_timeout:g}"
            reason = (
                f"no answer within {wait} s: the port took the connection and sent nothing "
                "to TLS, to an HTTP request or as a first banner"
                if silent
                else f"no HTTP or TLS answer (TLS: {tls_try}; HTTP: {plain_try})"
            )
            attempt = ProbeAttempt("http", ProbeStatus.UNIDENTIFIED, reason, self.port)
            hung_up = _hung_up(tls_try) and _hung_up(plain_try)
            return PortFingerprint(None, None, attempt, silent=silent, hung_up=hung_up)
        nmap = await self.name(chosen)
        try:
            observation = await self.observe(chosen, nmap)
        except (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError, OSError, ValueError) as exc:
            reason = f"{chosen.scheme} answered, then failed: {_describe(exc)}"
            status_only = HttpObservation(chosen.scheme, chosen.response.status)
            return PortFingerprint(
                status_only,
                chosen.certificate,
                ProbeAttempt("http", ProbeStatus.ERROR, reason, self.port),
                nmap=nmap,
            )
        management = observation.management
        if (
            plain_task is not None
            and management is not None
            and await self._serves_plain(plain_task, management.product)
        ):
            observation = replace(observation, also_plain_http=True)
        note = f"bodies cut short: {self.cut}" if self.cut else ""
        return PortFingerprint(
            observation,
            chosen.certificate,
            ProbeAttempt("http", ProbeStatus.COMPLETED, note, self.port),
            nmap=nmap,
        )

    async def name(self, first: _Fetched) -> NmapName | None:
        """What nmap would call the server, from the answer to ``/`` (nmap's GetRequest asks
        for ``/`` too and matches the answer as it comes, without following redirects). The
        match runs in a worker thread: its regex searches (bounded by the matcher's budget)
        and the first load of nmap's file must not stall the other ports' conversations."""
        if self.namer is None or not first.wire:
            return None
        try:
            return await asyncio.to_thread(self.namer, first.wire)
        except Exception:  # a matcher bug must not lose what the port showed: no name, go on
            return None

    async def identify(
        self,
    ) -> tuple[_Fetched | _Failed, _Fetched | _Failed, asyncio.Task[_Fetched | _Failed] | None]:
        """Speak TLS and plain HTTP at once; return (TLS result, plain result, the plain
        request when TLS won (it may still be running), else None).

        The first conclusive answer settles it (a plain HTTP server may leave a TLS
        ClientHello hanging until the timeout, and the other way round): a TLS response wins at
        once; a plain response wins unless it is a 400, which is what TLS servers say to plain
        HTTP ("plain HTTP request was sent to HTTPS port"), or a redirect to ``https://`` on
        this same address and port, which is what servers that speak both on one port answer a
        remote plain request with (cockpit-ws on 9090): the page is behind TLS, so wait for it.
        When plain HTTP wins, the TLS attempt is dropped. When TLS wins, the plain request is
        left running and handed back: a port that speaks both (CUPS 2.4 on 631, Syncthing's
        GUI) may serve its console over plain HTTP as well, which :meth:`_serves_plain` asks
        once a console is identified; the caller drops it otherwise.
        """
        tls = asyncio.create_task(self.get("https", "/", identify=True))
        plain = asyncio.create_task(self.get("http", "/", identify=True))
        pending: set[asyncio.Task[_Fetched | _Failed]] = {tls, plain}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if tls in done and isinstance(tls.result(), _Fetched):
                    pending.discard(plain)
                    answer = plain.result() if plain.done() else _PLAIN_PENDING
                    return tls.result(), answer, plain
                if (
                    plain in done
                    and _conclusive_plain(plain.result())
                    and not self._upgrades_here(plain.result())
                ):
                    await _drop(tls)
                    pending.discard(tls)
                    return (
                        _Failed("not needed: the port answered plain HTTP"),
                        plain.result(),
                        None,
                    )
        finally:
            # Cancelled from outside (the host deadline): leave no request running.
            for task in pending:
                await _drop(task)
        return tls.result(), plain.result(), None

    async def _serves_plain(self, plain: asyncio.Task[_Fetched | _Failed], product: str) -> bool:
        """Whether the plain HTTP request sent beside TLS got the console ``product`` too.

        Waited for at most ``identify_timeout`` more. The answer counts when, after redirects
        that stay on plain HTTP on this endpoint, it is not a redirect (a redirect to
        ``https://`` is the server saying "use TLS"), not a 400 (what TLS ports say to plain
        HTTP), not a server error, and its page alone points at the same catalog product (an
        identification or a one-marker hint: the extra paths were read over TLS already).
        """
        if not plain.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(plain), self.settings.identify_timeout)
        if not plain.done() or plain.cancelled():
            return False
        first = plain.result()
        if not isinstance(first, _Fetched) or not _conclusive_plain(first):
            return False
        if self._upgrades_here(first):
            return False
        try:
            pages, _ = await self._follow(first)
        except (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError, OSError, ValueError):
            return False
        landing = pages[-1]
        status = landing.response.status
        if 300 <= status < 400 or status == 400 or status >= 500:
            return False
        seen = identify(_sighting(self.port, first, landing))
        named = {m.product_id for m in seen.matches} | {p.product_id for p in seen.possible}
        return product in named

    async def get(
        self,
        scheme: str,
        path: str,
        *,
        identify: bool = False,
        cap: int | None = None,
        raw: bool = False,
    ) -> _Fetched | _Failed:
        """GET one path; return what came back, or why nothing did.

        The status line and headers must arrive within twice the timeout; the body is read
        until the same deadline, the cap (``cap``, else ``max_body_bytes``) or the memory
        budget, whichever comes first, and what was read by then is kept (a server that lies
        about Content-Length, drips its body or sends a broken gzip stream still shows its
        status, headers and page so far). ``raw`` keeps the body as bytes (a favicon).
        """
        timeout = self.settings.identify_timeout if identify else self.settings.request_timeout
        headers = {"Host": f"{self.hostname}:{self.port}"} if self.hostname else {}
        extensions = {"sni_hostname": self.hostname} if self.hostname and scheme == "https" else {}
        url = self.url(scheme, path)
        deadline = asyncio.get_running_loop().time() + 2 * timeout
        try:
            async with asyncio.timeout_at(deadline):
                request = self.client.build_request(
                    "GET", url, headers=headers, extensions=extensions, timeout=timeout
                )
                response = await self.client.send(request, stream=True)
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            ssl.SSLError,
            OSError,
            TimeoutError,
            ValueError,
        ) as exc:
            return _Failed(_describe(exc), silent=_nothing_came(exc), hung_up=_closed(exc))
        header_cost = _HEADER_COST * len(response.headers.raw)
        granted = self.budget.take(header_cost)
        try:
            if granted < header_cost:
                self.cut = _BUDGET_SPENT
                return _Failed(f"{_BUDGET_SPENT}; response dropped")
            limit = (
                self.settings.max_body_bytes
                if cap is None
                else min(cap, self.settings.max_body_bytes)
            )
            data = await self._read_raw(response, deadline, limit) if raw else b""
            body, read = ("", b"") if raw else await self._read(response, deadline, limit)
            wire = _wire(response, read) if identify else b""
            certificate = _peer_certificate(response) if scheme == "https" else None
            parsed = HttpResponse(
                path=path, status=response.status_code, headers=_kept_headers(response), body=body
            )
            location = response.extensions.get(_LOCATION)
            items = _header_items(response)
        finally:
            self.budget.give_back(granted)
            with contextlib.suppress(httpx.HTTPError, OSError, TimeoutError):
                async with asyncio.timeout(timeout):
                    await response.aclose()
        return _Fetched(scheme, url, parsed, location, certificate, items, data, wire)

    async def _read_raw(self, response: httpx.Response, deadline: float, cap: int) -> bytes:
        """The body as bytes, held against the budget at one unit a byte."""
        read = await _read_body(response, cap, deadline=deadline, budget=self.budget)
        kept = min(read.held, len(read.data))
        self.budget.give_back(read.held - kept)
        self.held += kept
        if read.cut and read.cut != _CAP_REACHED and self.cut is None:
            self.cut = read.cut
        return read.data

    async def _read(self, response: httpx.Response, deadline: float, cap: int) -> tuple[str, bytes]:
        """The body as text, held against the budget (4 units a byte: the widest string), and
        the bytes it was decoded from."""
        read = await _read_body(response, cap, deadline=deadline, budget=self.budget)
        self.held += read.held
        if read.cut and read.cut != _CAP_REACHED and self.cut is None:
            self.cut = read.cut
        text = _decode(read.data, response)[: len(read.data)]
        size = 4 * len(text)
        if size < read.held:
            self.budget.give_back(read.held - size)
            self.held -= read.held - size
        return text, read.data

    async def observe(self, first: _Fetched, nmap: NmapName | None = None) -> HttpObservation:
        pages, redirects = await self._follow(first)
        landed = pages[-1]
        landing = landed.response
        responses = [p.response for p in pages]
        if not any(markers_in(r) for r in responses) and _LEGACY_LOGIN not in _paths(pages):
            # DSM 4.x may answer "/" with a script redirect that carries no marker; its login
            # page lives at /webman/index.cgi. One extra GET per web port covers it.
            legacy = await self.get(first.scheme, _LEGACY_LOGIN)
            if isinstance(legacy, _Fetched):
                pages.append(legacy)
                responses.append(legacy.response)
        if any(markers_in(r) for r in responses):
            extra = await asyncio.gather(
                *(self.get(first.scheme, p) for p in DSM_PROBE_PATHS if p not in _paths(pages))
            )
            responses += [f.response for f in extra if isinstance(f, _Fetched)]
        dsm = fingerprint(responses)
        srm = any(is_srm(r) for r in responses)
        hints: tuple[ManagementHint, ...] = ()
        if dsm is None and not srm:
            management, hints = await self._management(first, landed, nmap)
        else:
            # A DSM or SRM page has its own detection (and rules): the catalog's entry is
            # filled from it, never matched again.
            management = _synology_management(dsm, responses)
        return HttpObservation(
            scheme=first.scheme,
            status_code=first.response.status,
            server=first.response.headers.get("server"),
            title=_title(landing.body[:_TITLE_SCAN].encode("utf-8", "replace")),
            redirects=tuple(redirects),
            dsm=dsm,
            srm=srm,
            management=management,
            management_hints=hints,
            login_prompt=_login_prompt(landing),
        )

    async def _management(
        self, first: _Fetched, landing: _Fetched, nmap: NmapName | None = None
    ) -> tuple[ManagementObservation | None, tuple[ManagementHint, ...]]:
        """Ask the catalog what the landing page is, then fetch what can confirm it.

        After "/" alone: the candidates (identified or possible products). Then, read-only and
        at once: ``/favicon.ico`` and the catalog's paths for this port and those candidates,
        at most :data:`_MAX_EXTRA_PATHS`, bodies capped at :data:`_EXTRA_BODY_BYTES`, each
        within the request timeout; and identify again with their answers. A page nothing
        hints at and a port no product uses by default costs no extra request: a favicon
        alone could only ever make a "possible".
        """
        sighting = _sighting(self.port, first, landing, nmap)
        before = identify(sighting)
        candidates = [m.product_id for m in before.matches] + [
            p.product_id for p in before.possible
        ]
        # The candidates' own paths first, then the port's default products': the cap must
        # not cut the path that would confirm what "/" already hinted at.
        wanted = (*paths_worth_fetching(0, candidates), *paths_worth_fetching(self.port))
        paths = [p for p in dict.fromkeys(wanted) if p != landing.response.path]
        paths = paths[:_MAX_EXTRA_PATHS]
        if not candidates and not paths:
            return None, ()
        icon, *answers = await asyncio.gather(
            self.get(first.scheme, "/favicon.ico", cap=_FAVICON_BYTES, raw=True),
            *(self.get(first.scheme, p, cap=_EXTRA_BODY_BYTES) for p in paths),
        )
        extra = {
            path: PathAnswer(a.response.status, a.header_items, a.response.body)
            for path, a in zip(paths, answers, strict=True)
            if isinstance(a, _Fetched)
        }
        favicon = (
            favicon_hash(icon.raw)
            if isinstance(icon, _Fetched) and icon.response.status == 200 and icon.raw
            else None
        )
        after = _with_reference_products_dropped(
            identify(_replace_extras(sighting, extra, favicon))
        )
        best = after.matches[0] if after.matches else None
        hints = tuple(ManagementHint(p.product_id, p.name, p.marker) for p in after.possible)
        if best is None:
            return None, hints
        evidence = await self._acts_without_login(first.scheme, best, landing, extra)
        return _management_observation(best, evidence), hints

    async def _acts_without_login(
        self,
        scheme: str,
        match: ManagementMatch,
        landing: _Fetched,
        extra: dict[str, PathAnswer],
    ) -> str | None:
        """The evidence that ``match`` acts without a login, from one read-only GET (or an
        answer already in hand); None when not seen."""
        check = _CONTROL_CHECKS.get(match.product_id)
        if check is None or not match.unauthenticated_control:
            return None
        if check.path == "/":
            answer: PathAnswer | None = PathAnswer(
                landing.response.status, landing.header_items, landing.response.body
            )
        else:
            answer = extra.get(check.path)
            if answer is None:
                fetched = await self.get(scheme, check.path, cap=_EXTRA_BODY_BYTES)
                answer = (
                    PathAnswer(fetched.response.status, (), fetched.response.body)
                    if isinstance(fetched, _Fetched)
                    else None
                )
        return check.evidence if answer is not None and check.shown_by(answer) else None

    def _upgrades_here(self, result: _Fetched | _Failed) -> bool:
        """Whether ``result`` is a redirect to ``https://`` on this very address and port."""
        if not isinstance(result, _Fetched) or not result.location:
            return False
        if not 300 <= result.response.status < 400:
            return False
        try:
            parts = urlsplit(urljoin(result.url, result.location))
            port = parts.port or 443  # "https://host/" is port 443, not this port
        except ValueError:
            return False
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return parts.scheme == "https" and f"{host}:{port}" in self._netlocs()

    async def _follow(self, first: _Fetched) -> tuple[list[_Fetched], list[Redirect]]:
        """Follow redirects that stay on this scheme, address and port; record the rest (and
        any Location that does not parse as a URL)."""
        pages = [first]
        redirects: list[Redirect] = []
        current = first
        for _ in range(self.settings.max_redirects):
            if not (300 <= current.response.status < 400 and current.location):
                break
            try:
                parts = urlsplit(urljoin(current.url, current.location))
            except ValueError:
                parts = None
            same = (
                parts is not None
                and parts.scheme == current.scheme
                and parts.netloc.lower() in self._netlocs()
            )
            if parts is None or not same:
                redirects.append(Redirect(current.url, current.location, current.response.status))
                break
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            fetched = await self.get(current.scheme, path)
            if not isinstance(fetched, _Fetched):
                break
            pages.append(fetched)
            current = fetched
        return pages, redirects

    def _netlocs(self) -> set[str]:
        names = {self.authority.lower()}
        if self.hostname:
            names.add(f"{self.hostname}:{self.port}".lower())
            if self.port in (80, 443):
                names.add(self.hostname.lower())
        if self.port in (80, 443):
            names.add(self.authority.rsplit(":", 1)[0].lower())
        return names


# --- management interfaces ----------------------------------------------------------------

# Extra catalog paths fetched per port at most (port 443 is a default port of a dozen
# products), and what is read of each: their markers are short documents (an XML status, a
# JSON version, a login page's head).
_MAX_EXTRA_PATHS = 8
_EXTRA_BODY_BYTES = 64 * 1024
# Favicons are a few KiB; Shodan hashes the whole file, so a bigger one simply never matches.
_FAVICON_BYTES = 100 * 1024
# Header values and cookie names kept for the management catalog (it cuts to 512 anyway).
_MAX_VALUE = 512


@dataclass(frozen=True)
class _ControlCheck:
    """How to see that a console acts without a login: the answer to a read-only GET of
    ``path`` has ``status`` and (when set) contains ``contains``. Facts: docs/rules.md, MGMT
    "unauthenticated consoles"."""

    path: str
    status: int
    contains: str | None
    evidence: str

    def shown_by(self, answer: PathAnswer) -> bool:
        if answer.status != self.status:
            return False
        return self.contains is None or self.contains in answer.body[:_EXTRA_BODY_BYTES]


# Only GETs that read: a list, a status page, an "is there an administrator yet" check.
_CONTROL_CHECKS: dict[str, _ControlCheck] = {
    # Jupyter Server's REST API: /api/kernels lists the running kernels (a JSON array) and
    # answers 403 when a token or password is required.
    "jupyter": _ControlCheck(
        "/api/kernels",
        200,
        "[",
        "GET /api/kernels answered 200 without a token: any visitor can start a kernel and run "
        "code",
    ),
    # Supervisor's [inet_http_server] with a username answers 401 to every page; its status
    # page carries the start/stop/restart buttons.
    "supervisor": _ControlCheck(
        "/",
        200,
        "Supervisor Status",
        "the status page with its start, stop and restart controls answered 200 without "
        "credentials",
    ),
    # Transmission answers 409 (with X-Transmission-Session-Id) instead of 401 when
    # rpc-authentication-required is off.
    "transmission": _ControlCheck(
        "/transmission/rpc",
        409,
        None,
        "/transmission/rpc answered 409 with a session id instead of 401: no RPC password",
    ),
    # Syncthing's GUI checks its user/password before anything else (HTTP basic auth up to
    # 1.26, a session after): only a request that got past it meets the CSRF check of the REST
    # API, whose token "/" hands to every visitor in a CSRF-Token-<id> cookie.
    "syncthing": _ControlCheck(
        "/rest/system/version",
        403,
        "CSRF Error",
        'GET /rest/system/version answered 403 "CSRF Error" instead of 401: no GUI password, '
        "and the CSRF token that opens the REST API is handed to any visitor of /",
    ),
    # Portainer's GET /api/users/admin/check answers 204 once an administrator exists and 404
    # before: the first visitor of the setup page becomes the administrator.
    "portainer": _ControlCheck(
        "/api/users/admin/check",
        404,
        None,
        "GET /api/users/admin/check answered 404: no administrator yet, the first visitor "
        "creates one and drives the Docker host",
    ),
    # Home Assistant's onboarding view is public until the owner account exists.
    "home-assistant": _ControlCheck(
        "/api/onboarding",
        200,
        '"done":false',
        "GET /api/onboarding shows onboarding not done: the first visitor creates the owner "
        "account",
    ),
}


def _sighting(
    port: int, first: _Fetched, landing: _Fetched, nmap: NmapName | None = None
) -> WebSighting:
    """What the catalog matcher reads: the landing page after same-endpoint redirects (its
    status, headers in order, cookie names from every Set-Cookie seen on the way, body), the
    certificate of the first answer, and nmap's product and info for the first answer."""
    cookies: list[str] = []
    for page in (first, landing):
        cookies += _cookie_names(page.header_items)
    certificate = first.certificate
    return WebSighting(
        port=port,
        scheme=first.scheme,
        status=landing.response.status,
        headers=landing.header_items,
        cookie_names=tuple(dict.fromkeys(cookies)),
        body=landing.response.body,
        cert_subject=certificate.subject if certificate else None,
        cert_issuer=certificate.issuer if certificate else None,
        nmap_product=nmap.product if nmap else None,
        nmap_extrainfo=nmap.info if nmap else None,
    )


def _replace_extras(
    sighting: WebSighting, paths: dict[str, PathAnswer], favicon: int | None
) -> WebSighting:
    return WebSighting(
        port=sighting.port,
        scheme=sighting.scheme,
        status=sighting.status,
        headers=sighting.headers,
        cookie_names=sighting.cookie_names,
        title=sighting.title,
        body=sighting.body,
        cert_subject=sighting.cert_subject,
        cert_issuer=sighting.cert_issuer,
        nmap_product=sighting.nmap_product,
        nmap_extrainfo=sighting.nmap_extrainfo,
        favicon_mmh3=favicon,
        paths=paths,
    )


def _with_reference_products_dropped(found: Identification) -> Identification:
    """DSM and SRM (``reference_only``) have their own detection and rules: a one-marker hint
    for them is left out (their deep detection did not see them). A two-marker match is kept,
    after every other product's (an SRM page the deep detection did not confirm is still named
    in the report; the MGMT rules never judge these products)."""
    reference = {p.id for p in load_catalog() if p.reference_only}
    return Identification(
        tuple(m for m in found.matches if not m.reference_only)
        + tuple(m for m in found.matches if m.reference_only),
        tuple(p for p in found.possible if p.product_id not in reference),
    )


def _synology_management(
    dsm: DsmFingerprint | None, responses: Sequence[HttpResponse]
) -> ManagementObservation | None:
    """The catalog's DSM entry filled from the DSM fingerprint (its markers and version), or,
    without one, its SRM entry: the page's DSM-framework markers after ``srm-identity``, and
    the version from SRM's ``synohdpack.version`` when it was read."""
    wanted = "synology-dsm" if dsm is not None else "synology-srm"
    product = next((p for p in load_catalog() if p.id == wanted), None)
    if product is None:
        return None
    if dsm is not None:
        markers, version = dsm.markers, dsm.version
    else:
        seen: set[str] = set()
        for response in responses:
            seen |= markers_in(response)
        markers, version = ("srm-identity", *sorted(seen)), _srm_version(responses)
    return ManagementObservation(
        product=product.id,
        name=product.name,
        vendor=product.vendor,
        category=product.category,
        markers=tuple(markers),
        version=version,
    )


_SRM_VERSION = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,4}){1,3}", re.ASCII)


def _srm_version(responses: Sequence[HttpResponse]) -> str | None:
    """SRM's productversion (``1.3.1``) from ``/synohdpack/synohdpack.version``, if read."""
    for response in responses:
        if response.path.split("?", 1)[0] != "/synohdpack/synohdpack.version":
            continue
        if not 200 <= response.status < 300:
            continue
        fields = parse_synohdpack(response.body)
        version = (fields or {}).get("productversion", "")
        if _SRM_VERSION.fullmatch(version):
            return version
    return None


def _management_observation(match: ManagementMatch, evidence: str | None) -> ManagementObservation:
    return ManagementObservation(
        product=match.product_id,
        name=match.name,
        vendor=match.vendor,
        category=match.category,
        markers=match.markers,
        version=match.version,
        unauthenticated=evidence,
    )


def _wire(response: httpx.Response, body: bytes) -> bytes:
    """The answer as the raw bytes nmap's patterns read, Location back in its place."""
    headers = response.extensions.get(_RAW_HEADERS)
    return response_bytes(response, body, headers=headers if isinstance(headers, list) else None)


def _header_items(response: httpx.Response) -> tuple[tuple[str, str], ...]:
    """Every header in the order received, names as sent (at most ``_MAX_HEADERS``, values
    cut to ``_MAX_VALUE``)."""
    return tuple(
        (name.decode("latin-1")[:64], value.decode("latin-1")[:_MAX_VALUE])
        for name, value in response.headers.raw[:_MAX_HEADERS]
    )


def _cookie_names(items: tuple[tuple[str, str], ...]) -> list[str]:
    """The cookie names of the Set-Cookie headers among ``items``."""
    return [
        value.split("=", 1)[0].strip()[:128]
        for name, value in items
        if name.lower() == "set-cookie" and "=" in value
    ]


def _conclusive_plain(result: _Fetched | _Failed) -> bool:
    return isinstance(result, _Fetched) and result.response.status != 400


def _silent(result: _Fetched | _Failed) -> bool:
    return isinstance(result, _Failed) and result.silent


def _hung_up(result: _Fetched | _Failed) -> bool:
    return isinstance(result, _Failed) and result.hung_up


def _closed(exc: BaseException) -> bool:
    """Whether a failed GET means the peer closed or reset the connection before sending a
    byte (h11's "Server disconnected without sending a response"; an EOF or a reset during
    the TLS handshake). Bytes that are not HTTP or TLS are not this."""
    if isinstance(exc, httpx.RemoteProtocolError):
        return "without sending a response" in str(exc)
    if isinstance(exc, httpx.ReadError):
        return True
    # A TLS handshake cut by EOF or a reset surfaces as a ConnectError wrapping the transport's
    # own exception (anyio's EndOfStream, ssl's SSLEOFError, a ConnectionResetError).
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if type(seen).__name__ in _HANG_UPS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_HANG_UPS = frozenset(
    {"EndOfStream", "BrokenResourceError", "SSLEOFError", "ConnectionResetError", "IncompleteRead"}
)


def _nothing_came(exc: BaseException) -> bool:
    """Whether a failed GET means the peer kept the connection and sent nothing: a read (or
    the TLS handshake, which httpx counts as connecting) timed out. A refused connection, a
    hang-up or bytes that are not HTTP/TLS all mean something answered."""
    # Only httpx's own timeouts say "no byte within the wait": the request's overall deadline
    # (a bare TimeoutError) also cuts servers that drip bytes, which did answer.
    return isinstance(exc, httpx.ReadTimeout | httpx.ConnectTimeout)


async def _drop(task: asyncio.Task[_Fetched | _Failed]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _paths(pages: Sequence[_Fetched]) -> set[str]:
    return {p.response.path for p in pages}


def _login_prompt(response: HttpResponse) -> str | None:
    """What on the landing page asks for a password, printable and cut: a 401's challenge
    (``WWW-Authenticate: Basic realm="..."``) or a password field in a 2xx page (``a password
    field in the page at /login``); None when neither is there."""
    challenge = response.headers.get("www-authenticate")
    if response.status == 401 and challenge is not None and challenge.strip():
        return printable(f"WWW-Authenticate: {challenge.strip()}", _MAX_CHALLENGE)
    if 200 <= response.status < 300 and _PASSWORD_FIELD.search(response.body, 0, _LOGIN_SCAN):
        return printable(f"a password field in the page at {response.path}", _MAX_CHALLENGE)
    return None


def _kept_headers(response: httpx.Response) -> dict[str, str]:
    """The first headers of each name, lower-cased, at most ``_MAX_HEADERS`` of them, and the
    Location that was hidden from httpx."""
    kept: dict[str, str] = {}
    for name, value in response.headers.items():
        if len(kept) >= _MAX_HEADERS:
            break
        kept.setdefault(name.lower(), value)
    location = response.extensions.get(_LOCATION)
    if isinstance(location, str):
        kept["location"] = location
    return kept


def _decode(data: bytes, response: httpx.Response) -> str:
    """Decode with the declared charset when it is a text encoding, else UTF-8; never raises
    (``charset=base64`` names a codec that is not a text encoding)."""
    try:
        return data.decode(response.encoding or "utf-8", errors="replace")
    except (LookupError, ValueError):
        return data.decode("utf-8", errors="replace")


_CAP_REACHED = "the cap was reached"
_BUDGET_SPENT = "the memory budget for bodies and headers was spent"


@dataclass(frozen=True)
class _Body:
    """What :func:`_read_body` read: the bytes, the budget units it holds, why it stopped
    early (None: the body ended)."""

    data: bytes
    held: int = 0
    cut: str | None = None


def _inflater(response: httpx.Response) -> Callable[[bytes, int], bytes] | None:
    """A bounded inflater for gzip or deflate (zlib-wrapped or raw, as servers send either);
    None for an identity body (other encodings are kept as they are)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        gzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return gzip.decompress
    if encoding != "deflate":
        return None
    state: list[zlib._Decompress] = []

    def inflate(data: bytes, limit: int) -> bytes:
        if not state:
            # RFC 9110 deflate is zlib-wrapped; many servers send raw deflate: look and see.
            wrapped = (
                len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] << 8 | data[1]) % 31 == 0
            )
            state.append(zlib.decompressobj() if wrapped else zlib.decompressobj(-zlib.MAX_WBITS))
        return state[0].decompress(data, limit)

    return inflate


async def _read_body(
    response: httpx.Response,
    cap: int,
    *,
    deadline: float | None = None,
    budget: _Budget | None = None,
) -> _Body:
    """Read at most ``cap`` bytes of body, inflating gzip/deflate with the same cap (so a
    compression bomb inflates no further than ``cap``). Never raises for what the server
    does: a broken stream, a connection lost mid-body or the ``deadline`` end the read with
    what was read so far and the reason. With a ``budget``, each byte takes 4 units of it
    (the widest Python string); when the budget runs out the read stops there."""
    inflate = _inflater(response)
    data = bytearray()
    held = 0
    cut: str | None = None
    try:
        async with asyncio.timeout_at(deadline):
            async for raw in response.aiter_raw():
                room = cap - len(data)
                chunk = inflate(raw, room + 1) if inflate else raw[: room + 1]
                if budget is not None:
                    wanted = min(len(chunk), room)
                    units = budget.take(4 * wanted)
                    budget.give_back(units % 4)
                    held += units - units % 4
                    if units // 4 < wanted:
                        data += chunk[: units // 4]
                        cut = _BUDGET_SPENT
                        break
                data += chunk[:room]
                if len(chunk) > room:
                    cut = _CAP_REACHED
                    break
    except TimeoutError:
        cut = "the request deadline passed"
    except zlib.error as exc:
        cut = f"the compressed body is broken ({exc})"
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        cut = f"the body broke off ({_describe(exc)})"
    except BaseException:
        if budget is not None:
            budget.give_back(held)  # cancelled (the host deadline): nothing is kept
        raise
    return _Body(bytes(data), held, cut)


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """Read at most ``cap`` bytes of body, inflating gzip/deflate with the same cap; raises
    ``zlib.error`` for a broken compressed stream and httpx's errors for a broken connection
    (the UPnP probe reports those)."""
    inflate = _inflater(response)
    data = bytearray()
    async for raw in response.aiter_raw():
        room = cap - len(data)
        chunk = inflate(raw, room + 1) if inflate else raw
        data += chunk[:room]
        if len(chunk) > room:
            break
    return bytes(data)


def _peer_certificate(response: httpx.Response) -> TlsCertificate | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return parse_certificate(der) if der else None


_T = TypeVar("_T")


def _or(read: Callable[[], _T], fallback: _T) -> _T:
    """``read()``, or ``fallback`` when the certificate field does not decode (``cryptography``
    raises ValueError, and KeyError for a string type it does not know)."""
    try:
        return read()
    except Exception:
        return fallback


def parse_certificate(der: bytes) -> TlsCertificate | None:
    """Read a DER certificate's fields; None only when even its validity cannot be read.

    A field that does not decode (a CN that is not UTF-8, a SAN that is not ASCII) does not
    lose the others: names fall back to a lenient reading of the DER (undecodable bytes shown
    as U+FFFD), a broken SAN extension to no names, and a certificate ``cryptography`` refuses
    outright (a PrintableString holding an escape) to a lenient reading of its names and
    dates. Names are cut to 1,024 characters.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        not_before: datetime = cert.not_valid_before_utc
        not_after: datetime = cert.not_valid_after_utc
    except Exception:
        return _or(lambda: _lenient_certificate(der), None)
    raw_issuer, raw_subject = _or(lambda: _raw_names(cert.tbs_certificate_bytes), (b"", b""))
    subject = _cut(_or(lambda: cert.subject.rfc4514_string(), _lenient_name(raw_subject)))
    issuer = _cut(_or(lambda: cert.issuer.rfc4514_string(), _lenient_name(raw_issuer)))
    return TlsCertificate(
        subject=subject,
        issuer=issuer,
        not_before=not_before,
        not_after=not_after,
        self_signed=_or(lambda: cert.subject == cert.issuer, raw_subject == raw_issuer),
        synology_default=is_synology_default_certificate(subject, issuer),
        subject_alt_names=_or(lambda: _dns_names(cert), ()),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def _lenient_certificate(der: bytes) -> TlsCertificate | None:
    """Names and dates read straight from the DER, for a certificate the library refuses."""
    outer = next(_der(der), None)
    tbs = next(_der(outer[1]), None) if outer else None
    fields = _tbs_fields(tbs[1]) if tbs else []
    if len(fields) < 5:
        return None
    times = list(_der(fields[3][1]))
    dates = [_der_time(tag, content) for tag, content in times[:2]]
    not_before, not_after = [*dates, None, None][:2]
    if not_before is None or not_after is None:
        return None
    subject = _cut(_lenient_name(fields[4][1]))
    issuer = _cut(_lenient_name(fields[2][1]))
    return TlsCertificate(
        subject=subject,
        issuer=issuer,
        not_before=not_before,
        not_after=not_after,
        self_signed=fields[2][1] == fields[4][1],
        synology_default=is_synology_default_certificate(subject, issuer),
        sha256=hashlib.sha256(der).hexdigest(),
    )


def _der_time(tag: int, content: bytes) -> datetime | None:
    """A UTCTime (0x17; years 50-99 are 19xx) or GeneralizedTime (0x18) ending in Z."""
    try:
        text = content.decode("ascii")
        if tag == 0x17:
            year = int(text[:2])
            text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
        elif tag != 0x18:
            return None
        return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(_cut(str(n)) for n in san.value.get_values_for_type(x509.DNSName)[:100])


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_NAME else text[: _MAX_NAME - 1] + "…"


def _der(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(tag, content) of each DER element in ``data``; stops at the first malformed one."""
    i = 0
    while i + 2 <= len(data):
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            width = length & 0x7F
            if not 0 < width <= 4 or i + width > len(data):
                return
            length = int.from_bytes(data[i : i + width], "big")
            i += width
        if i + length > len(data):
            return
        yield tag, data[i : i + length]
        i += length


def _tbs_fields(tbs: bytes) -> list[tuple[int, bytes]]:
    """The fields of a TBSCertificate's content from the serial number on: serial, signature
    algorithm, issuer, validity, subject, ... (the optional [0] version is skipped)."""
    fields = list(_der(tbs))
    return fields[1:] if fields[:1] and fields[0][0] == 0xA0 else fields


def _raw_names(tbs_certificate: bytes) -> tuple[bytes, bytes]:
    """The DER content of the issuer and subject Names of a TBSCertificate."""
    outer = next(_der(tbs_certificate), None)
    fields = _tbs_fields(outer[1]) if outer else []
    return (fields[2][1], fields[4][1]) if len(fields) >= 5 else (b"", b"")


_NAME_OIDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "1.2.840.113549.1.9.1": "emailAddress",
}


def _lenient_name(name: bytes) -> str:
    """An RFC 4514-like rendering of a Name's DER that never fails: values decode as UTF-8
    (UTF-16 for BMPString) with U+FFFD for what does not."""
    parts: list[str] = []
    for _, rdn in _der(name):
        values: list[str] = []
        for _, pair in _der(rdn):
            items = list(_der(pair))
            if len(items) != 2:
                continue
            (_, oid), (tag, value) = items
            codec = "utf-16-be" if tag == 0x1E else "utf-8"
            text = value.decode(codec, errors="replace")
            values.append(f"{_NAME_OIDS.get(_oid(oid), _oid(oid))}={text}")
        parts.append("+".join(values))
    return ",".join(reversed(parts))


def _oid(data: bytes) -> str:
    if not data:
        return ""
    numbers = [data[0] // 40, data[0] % 40]
    value = 0
    for byte in data[1:]:
        value = value << 7 | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(value)
            value = 0
    return ".".join(map(str, numbers))


def _title(body: bytes) -> str | None:
    match = _TITLE.search(body[:_TITLE_SCAN])
    if not match:
        return None
    text = html.unescape(match.group(1).decode("utf-8", "replace"))
    return " ".join(text.split())[:300] or None


def _describe(exc: BaseException) -> str:
    kind = type(exc).__name__
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{kind}: {text}" if text else kind
