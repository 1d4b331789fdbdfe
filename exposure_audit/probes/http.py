"""HTTP and TLS fingerprinting of open TCP ports with httpx.

For each open port the probe speaks TLS and plain HTTP at once (two connections) and keeps
what answered, preferring TLS. It then reads ``/`` and, when that page shows a DSM marker, the
read-only DSM version endpoints. Every request is a GET to a fixed path; nothing logs in or
changes state. Redirects are followed only within the same scheme, address and port; any
other redirect is recorded, never followed. Bodies are read raw and capped, and compressed
bodies are inflated with a cap too, so a hostile server cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import ssl
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
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
)
from ..observations import HttpObservation, ProbeAttempt, ProbeStatus, Redirect, TlsCertificate

__all__ = ["HttpProbeSettings", "PortFingerprint", "fingerprint_port", "make_client"]

_LEGACY_LOGIN = "/webman/index.cgi"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class HttpProbeSettings:
    """Bounds on every conversation. ``identify_timeout`` bounds the first request on a port
    (a silent non-HTTP service costs this much); ``request_timeout`` bounds later ones."""

    request_timeout: float = 10.0
    identify_timeout: float = 5.0
    max_body_bytes: int = 1 << 20
    max_redirects: int = 3


@dataclass(frozen=True)
class PortFingerprint:
    """What the probe learned on one port; ``http`` is None when neither HTTP nor TLS spoke."""

    http: HttpObservation | None
    tls: TlsCertificate | None
    attempt: ProbeAttempt


def make_client(settings: HttpProbeSettings, *, max_connections: int = 256) -> httpx.AsyncClient:
    """An httpx client fit for scanning: no certificate validation (we read certificates, we do
    not trust them), old TLS versions allowed, no redirects, no proxies from the environment."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    # Old DSM (4.x) speaks only old ciphers; a scanner must still be able to read its cert.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return httpx.AsyncClient(
        verify=context,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.request_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
        headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "gzip, deflate"},
    )


async def fingerprint_port(
    client: httpx.AsyncClient,
    address: str,
    port: int,
    *,
    hostname: str | None = None,
    settings: HttpProbeSettings | None = None,
) -> PortFingerprint:
    """Identify HTTP/TLS on ``address:port`` and look for DSM. Never raises for network trouble:
    failures are reported in the returned attempt."""
    settings = settings or HttpProbeSettings()
    session = _Session(client, address, port, hostname, settings)
    tls_try, plain_try = await session.identify()
    chosen = tls_try if isinstance(tls_try, _Fetched) else plain_try
    if not isinstance(chosen, _Fetched):
        reason = f"no HTTP or TLS answer (TLS: {tls_try}; HTTP: {plain_try})"
        return PortFingerprint(
            None, None, ProbeAttempt("http", ProbeStatus.COMPLETED, reason, port)
        )
    try:
        observation = await session.observe(chosen)
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        reason = f"{chosen.scheme} answered, then failed: {_describe(exc)}"
        status_only = HttpObservation(chosen.scheme, chosen.response.status)
        return PortFingerprint(
            status_only, chosen.certificate, ProbeAttempt("http", ProbeStatus.ERROR, reason, port)
        )
    return PortFingerprint(
        observation, chosen.certificate, ProbeAttempt("http", ProbeStatus.COMPLETED, "", port)
    )


@dataclass(frozen=True)
class _Fetched:
    scheme: str
    url: str
    response: HttpResponse
    location: str | None
    certificate: TlsCertificate | None


class _Session:
    """One port's conversation: builds URLs, sets Host and SNI, reads bodies with a cap."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        address: str,
        port: int,
        hostname: str | None,
        settings: HttpProbeSettings,
    ) -> None:
        self.client = client
        self.address = address
        self.port = port
        self.hostname = hostname
        self.settings = settings
        host = f"[{address}]" if ":" in address else address
        self.authority = f"{host}:{port}"

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://{self.authority}{path}"

    async def identify(self) -> tuple[_Fetched | str, _Fetched | str]:
        """Speak TLS and plain HTTP at once; return (TLS result, plain result).

        The first conclusive answer settles it and the other attempt is dropped (a plain HTTP
        server may leave a TLS ClientHello hanging until the timeout, and the other way round):
        a TLS response wins at once; a plain response wins unless it is a 400, which is what
        TLS servers say to plain HTTP ("plain HTTP request was sent to HTTPS port").
        """
        tls = asyncio.create_task(self.get("https", "/", identify=True))
        plain = asyncio.create_task(self.get("http", "/", identify=True))
        pending: set[asyncio.Task[_Fetched | str]] = {tls, plain}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if tls in done and isinstance(tls.result(), _Fetched):
                await _drop(plain)
                return tls.result(), "not needed: the port answered TLS"
            if plain in done and _conclusive_plain(plain.result()):
                await _drop(tls)
                return "not needed: the port answered plain HTTP", plain.result()
        return tls.result(), plain.result()

    async def get(self, scheme: str, path: str, *, identify: bool = False) -> _Fetched | str:
        """GET one path; return what came back, or a short reason why nothing did."""
        timeout = self.settings.identify_timeout if identify else self.settings.request_timeout
        headers = {"Host": f"{self.hostname}:{self.port}"} if self.hostname else {}
        extensions = {"sni_hostname": self.hostname} if self.hostname and scheme == "https" else {}
        url = self.url(scheme, path)
        try:
            async with asyncio.timeout(timeout * 2):
                request = self.client.build_request(
                    "GET", url, headers=headers, extensions=extensions, timeout=timeout
                )
                response = await self.client.send(request, stream=True)
                try:
                    body = await _read_capped(response, self.settings.max_body_bytes)
                    certificate = _peer_certificate(response) if scheme == "https" else None
                finally:
                    await response.aclose()
        except (httpx.HTTPError, ssl.SSLError, OSError, TimeoutError, ValueError) as exc:
            return _describe(exc)
        parsed = HttpResponse(
            path=path,
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body.decode(response.encoding or "utf-8", errors="replace"),
        )
        return _Fetched(scheme, url, parsed, response.headers.get("location"), certificate)

    async def observe(self, first: _Fetched) -> HttpObservation:
        pages, redirects = await self._follow(first)
        landing = pages[-1].response
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
        return HttpObservation(
            scheme=first.scheme,
            status_code=first.response.status,
            server=first.response.headers.get("server"),
            title=_title(landing.body.encode("utf-8", "replace")),
            redirects=tuple(redirects),
            dsm=fingerprint(responses),
            srm=any(is_srm(r) for r in responses),
        )

    async def _follow(self, first: _Fetched) -> tuple[list[_Fetched], list[Redirect]]:
        """Follow redirects that stay on this scheme, address and port; record the rest."""
        pages = [first]
        redirects: list[Redirect] = []
        current = first
        for _ in range(self.settings.max_redirects):
            if not (300 <= current.response.status < 400 and current.location):
                break
            target = urljoin(current.url, current.location)
            parts = urlsplit(target)
            same = parts.scheme == current.scheme and parts.netloc.lower() in self._netlocs()
            if not same:
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


def _conclusive_plain(result: _Fetched | str) -> bool:
    return isinstance(result, _Fetched) and result.response.status != 400


async def _drop(task: asyncio.Task[_Fetched | str]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _paths(pages: Sequence[_Fetched]) -> set[str]:
    return {p.response.path for p in pages}


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """Read at most ``cap`` bytes of body, inflating gzip/deflate with the same cap."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    inflater = None
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        data = inflater.decompress(raw, cap - size + 1) if inflater else raw
        chunks.append(data)
        size += len(data)
        if size > cap:
            break
    return b"".join(chunks)[:cap]


def _peer_certificate(response: httpx.Response) -> TlsCertificate | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return parse_certificate(der) if der else None


def parse_certificate(der: bytes) -> TlsCertificate | None:
    """Read a DER certificate's fields; None when it does not parse."""
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = cert.subject.rfc4514_string()
        issuer = cert.issuer.rfc4514_string()
        try:
            san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = tuple(str(n) for n in san_ext.value.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = ()
        return TlsCertificate(
            subject=subject,
            issuer=issuer,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            self_signed=cert.subject == cert.issuer,
            synology_default=is_synology_default_certificate(subject, issuer),
            subject_alt_names=names,
            sha256=cert.fingerprint(hashes.SHA256()).hex(),
        )
    except ValueError:
        return None


def _title(body: bytes) -> str | None:
    match = _TITLE.search(body[:65536])
    if not match:
        return None
    text = html.unescape(match.group(1).decode("utf-8", "replace"))
    return " ".join(text.split())[:300] or None


def _describe(exc: BaseException) -> str:
    kind = type(exc).__name__
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{kind}: {text}" if text else kind
