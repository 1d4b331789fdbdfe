"""Delivering notifications: a webhook (JSON POST) and e-mail over SMTP.

Network code, at the probes layer. Neither sender raises for network or server trouble: each
returns a :class:`DeliveryResult` saying whether the message was delivered, after how many
attempts, and why not. A failed attempt is retried a bounded number of times (``retries``
more after the first) with a short exponential backoff, and logged (``logging`` at WARNING,
logger ``exposure_audit.history.notify``); a permanent failure (HTTP 4xx other than 408/429,
SMTP 5xx, refused credentials, a certificate that does not verify) is not retried.

Secrets never reach a result or a log line: a webhook URL is shown as its origin only (the path
of a Slack or Discord webhook *is* the credential), SMTP credentials are read from the
environment variables the target names (never from a file), and error texts are scrubbed of
the URL, user name and password. Do not raise the ``httpx`` logger to INFO around
:func:`send_webhook`: httpx logs every request URL at that level.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import smtplib
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal
from urllib.parse import urlsplit

import httpx

from .. import __version__
from ..text import printable
from .message import Message

__all__ = [
    "DeliveryResult",
    "EmailTarget",
    "WebhookTarget",
    "make_webhook_client",
    "redact_url",
    "send_email",
    "send_webhook",
]

_log = logging.getLogger(__name__)

USER_AGENT = f"exposure-audit/{__version__} (notification)"

_RETRY_STATUSES = frozenset({408, 429})
"""Client errors worth retrying (request timeout, rate limit); every other 4xx is final."""

_MAX_BACKOFF = 30.0
_ERROR_BODY_BYTES = 200
"""How much of a refusing receiver's body goes into the error (Slack answers
``invalid_payload``, ``no_service``...)."""


@dataclass(frozen=True)
class WebhookTarget:
    """Where and how to POST: ``format`` ``"json"`` sends :attr:`Message.payload`,
    ``"slack"`` sends :attr:`Message.slack`. At most ``1 + retries`` attempts, each bounded by
    ``timeout`` seconds; the n-th retry waits ``backoff * 2**(n-1)`` seconds (capped at 30)."""

    url: str
    format: Literal["json", "slack"] = "json"
    retries: int = 3
    timeout: float = 10.0
    backoff: float = 0.5


@dataclass(frozen=True, kw_only=True)
class EmailTarget:
    """An SMTP submission server and the envelope.

    ``starttls`` upgrades the connection before anything else is said and fails (never
    downgrades) when the server does not offer it. The certificate is verified against the
    system's CAs, or only against ``cafile`` when given (a private relay's CA; tests). Credentials
    come only from the environment variables named by ``username_env`` and ``password_env``;
    with neither named, no AUTH is attempted. Credentials are never sent without STARTTLS.
    Retries and backoff as for :class:`WebhookTarget`; ``timeout`` bounds each socket operation.
    """

    host: str
    port: int = 587
    starttls: bool = True
    sender: str
    to: tuple[str, ...]
    username_env: str | None = None
    password_env: str | None = None
    retries: int = 3
    timeout: float = 10.0
    backoff: float = 0.5
    cafile: str | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one delivery. ``channel`` is ``"webhook"`` or ``"email"``; ``target`` is
    safe to show (a URL's origin, or ``host:port``); ``attempts`` is 0 when the target's own
    settings stopped it before any connection; ``error`` is empty when all went well (for
    e-mail accepted for some recipients only, ``delivered`` is True and ``error`` names the
    refused ones)."""

    channel: str
    target: str
    delivered: bool
    attempts: int
    error: str = ""


def make_webhook_client(*, trust_env: bool = True) -> httpx.AsyncClient:
    """An httpx client for webhooks: certificates verified (never the scanning client of
    :mod:`exposure_audit.probes.http`, which reads certificates without trusting them), no
    redirects. ``trust_env`` keeps the environment's proxy and CA settings (``HTTPS_PROXY``,
    ``SSL_CERT_FILE``), which a notifying host behind a proxy needs."""
    return httpx.AsyncClient(
        verify=True,
        follow_redirects=False,
        trust_env=trust_env,
        headers={"User-Agent": USER_AGENT},
    )


def redact_url(url: str) -> str:
    """``url`` cut to what is safe to show: scheme, host and port, with ``/…`` standing for
    any path or query (which may carry a token) and never the user or password."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        shown += "/…"
    return shown


async def send_webhook(
    client: httpx.AsyncClient, target: WebhookTarget, message: Message
) -> DeliveryResult:
    """POST ``message`` as JSON to ``target.url`` with ``client``; any 2xx is delivered.

    Retries network errors, timeouts, 5xx, 408 and 429; other answers are final. Never raises
    for network trouble or an unusable URL (those are in the result). Redirects are not followed
    (a 3xx is not delivered): the client should verify certificates (:func:`make_webhook_client`).
    """
    shown = redact_url(target.url)
    secrets = _url_secrets(target.url)
    body = message.slack if target.format == "slack" else message.payload
    if target.format not in ("json", "slack"):
        return DeliveryResult("webhook", shown, False, 0, f"unknown format {target.format!r}")
    content = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    total = 1 + max(0, target.retries)
    error = ""
    for attempt in range(1, total + 1):
        if attempt > 1:
            await asyncio.sleep(_delay(target.backoff, attempt))
        final = False
        try:
            # httpx's timeout bounds each phase; asyncio's bounds the whole attempt, so a
            # receiver dripping one byte at a time cannot hold the run.
            async with (
                asyncio.timeout(target.timeout),
                client.stream(
                    "POST",
                    target.url,
                    content=content,
                    headers=headers,
                    timeout=target.timeout,
                    follow_redirects=False,
                ) as response,
            ):
                status = response.status_code
                if 200 <= status < 300:
                    _log.info("webhook %s: delivered (attempt %d)", shown, attempt)
                    return DeliveryResult("webhook", shown, True, attempt)
                error = f"HTTP {status}" + await _some_body(response)
                final = status < 500 and status not in _RETRY_STATUSES
        except TimeoutError:
            error = f"no answer within {target.timeout:g} s"
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            error, final = f"unusable URL: {exc}", True
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        error = _scrub(error, secrets)
        _log.warning("webhook %s: attempt %d/%d failed: %s", shown, attempt, total, error)
        if final:
            return DeliveryResult("webhook", shown, False, attempt, error)
    return DeliveryResult("webhook", shown, False, total, error)


def send_email(
    target: EmailTarget, message: Message, env: Mapping[str, str] = os.environ
) -> DeliveryResult:
    """Send ``message`` (its subject and plain-text body) to ``target.to`` over SMTP.

    Blocking (smtplib): from async code call it through ``asyncio.to_thread``. Credentials are
    ``env[target.username_env]`` and ``env[target.password_env]``; naming a variable that is not
    set is an error reported before connecting (cron and systemd start with a bare
    environment, so this is the usual mistake). Never raises for network or server trouble.
    """
    shown = _host_port(target.host, target.port)

    def failed(attempts: int, error: str) -> DeliveryResult:
        return DeliveryResult("email", shown, False, attempts, error)

    credentials, problem = _credentials(target, env)
    if problem:
        return failed(0, problem)
    if credentials is not None and not target.starttls:
        return failed(0, "refusing to send SMTP credentials without STARTTLS (starttls = false)")
    if not target.to:
        return failed(0, "no recipients")
    try:
        mail = _mail(target, message)
        context = _tls_context(target.cafile) if target.starttls else None
    except (ValueError, OSError) as exc:  # a header with a line break; an unreadable cafile
        return failed(0, str(exc))
    # The password is scrubbed from error texts; the user name is not a secret.
    secrets = [credentials[1]] if credentials else []
    total = 1 + max(0, target.retries)
    error = ""
    for attempt in range(1, total + 1):
        if attempt > 1:
            time.sleep(_delay(target.backoff, attempt))
        final = False
        try:
            refused = _submit(target, mail, context, credentials)
        except smtplib.SMTPAuthenticationError as exc:
            who = f"${target.username_env}" if target.username_env else "the user"
            error = f"authentication refused for {who}: {_smtp_reply(exc)}"
            final = True
        except smtplib.SMTPNotSupportedError as exc:
            error, final = f"{exc} (not going on without it)", True
        except smtplib.SMTPRecipientsRefused as exc:
            error = "every recipient refused: " + _refusals(exc.recipients)
            final = all(500 <= code < 600 for code, _ in exc.recipients.values())
        except smtplib.SMTPResponseException as exc:
            error = f"server said {_smtp_reply(exc)}"
            final = 500 <= exc.smtp_code < 600
        except ssl.SSLCertVerificationError as exc:
            error, final = f"certificate not trusted: {exc.verify_message}", True
        except (smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        else:
            _log.info("email %s: delivered (attempt %d)", shown, attempt)
            if refused:
                return DeliveryResult(
                    "email", shown, True, attempt, "refused: " + _refusals(refused)
                )
            return DeliveryResult("email", shown, True, attempt)
        error = _scrub(error, secrets)
        _log.warning("email %s: attempt %d/%d failed: %s", shown, attempt, total, error)
        if final:
            return failed(attempt, error)
    return failed(total, error)


# --- webhook helpers ----------------------------------------------------------------------


def _url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that may be credentials, for scrubbing error texts."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [url, parts.password or "", parts.username or "", parts.query]
    if parts.path not in ("", "/"):
        found.append(parts.path)
    return [s for s in found if s]


async def _some_body(response: httpx.Response) -> str:
    """The first bytes of a refusing receiver's answer, printable, as `` (text)``."""
    data = b""
    try:
        async for chunk in response.aiter_raw():
            data += chunk
            if len(data) >= _ERROR_BODY_BYTES:
                break
    except httpx.HTTPError:
        pass
    text = data[:_ERROR_BODY_BYTES].decode("utf-8", "replace").strip()
    return f" ({_printable(text)})" if text else ""


# --- e-mail helpers -----------------------------------------------------------------------


def _credentials(target: EmailTarget, env: Mapping[str, str]) -> tuple[tuple[str, str] | None, str]:
    """(user, password) or None, and a problem to report instead of connecting."""
    if target.username_env is None and target.password_env is None:
        return None, ""
    if target.username_env is None or target.password_env is None:
        return None, "set both username_env and password_env, or neither"
    missing = [name for name in (target.username_env, target.password_env) if not env.get(name)]
    if missing:
        names = " and ".join(f"${name}" for name in missing)
        return None, f"SMTP credentials: environment variable {names} not set"
    return (env[target.username_env], env[target.password_env]), ""


def _mail(target: EmailTarget, message: Message) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = target.sender
    mail["To"] = ", ".join(target.to)
    mail["Date"] = formatdate(localtime=True)
    # A domain is given so that make_msgid does not ask DNS for this host's name.
    mail["Message-ID"] = make_msgid(domain=_sender_domain(target.sender))
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    mail.set_content(message.text)
    return mail


def _sender_domain(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return domain if domain and all(c.isalnum() or c in ".-" for c in domain) else "localhost"


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    """Hostname-checking, certificate-verifying TLS; only ``cafile``'s CAs when given."""
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _submit(
    target: EmailTarget,
    mail: EmailMessage,
    context: ssl.SSLContext | None,
    credentials: tuple[str, str] | None,
) -> dict[str, tuple[int, bytes]]:
    """One SMTP conversation; returns the refused recipients (smtplib raises when all are)."""
    # local_hostname is given so that smtplib does not ask DNS for this host's name (getfqdn).
    with smtplib.SMTP(
        target.host,
        target.port,
        local_hostname=_sender_domain(target.sender),
        timeout=target.timeout,
    ) as smtp:
        if context is not None:
            smtp.starttls(context=context)
        if credentials is not None:
            smtp.login(*credentials)
        return smtp.send_message(mail, from_addr=target.sender, to_addrs=list(target.to))


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
    return f"{exc.smtp_code} {_printable(text)}".strip()


def _refusals(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return ", ".join(
        f"{_printable(who)} ({code} {_printable(reply.decode('utf-8', 'replace'))})"
        for who, (code, reply) in recipients.items()
    )


# --- shared -------------------------------------------------------------------------------


def _delay(backoff: float, attempt: int) -> float:
    """The wait before ``attempt`` (2, 3, ...): ``backoff``, then doubling, capped."""
    return float(min(_MAX_BACKOFF, max(0.0, backoff) * 2 ** (attempt - 2)))


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``, longest first (a URL before its path)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _printable(text)


def _printable(text: str) -> str:
    return printable(text, limit=300)
