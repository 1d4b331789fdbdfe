"""Delivering notifications through Apprise (``slack://``, ``discord://``, ``msteams://``,
``tgram://``, ``ntfy://``, ``matrix://``, ``mailto://``, ``json://``...): the optional extra
``exposure-audit[notify]``.

Network code, at the probes layer. The message is :attr:`Message.markdown` titled
:attr:`Message.subject`, sent as Markdown: Apprise turns it into what each service takes (kept
as Markdown for Slack, Discord, ntfy, Telegram, Matrix; HTML or plain text for the others).

Bounded: every URL is delivered in a worker thread of its own, all at once, and the deadline
(``timeout``) holds for all of them together; a service that has not answered by then is given
up (its daemon thread is left to die with the process) and reported as such. Nothing here
raises for a service's trouble: each URL gets a :class:`~.notify.DeliveryResult`.

Secrets: the token of most services is part of the URL (its user, host, path or query). A URL
is shown as ``#N scheme://…`` (with host and port only for the plain HTTP schemes ``json``,
``form`` and ``xml``, whose host is a host); Apprise's own log lines are captured (never passed
on to the process's logging) and scrubbed of every part of the URL before they become an error
text. Apprise keeps nothing on disk (its persistent store runs in memory).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import UsageError
from .message import Message
from .notify import DeliveryResult, redact_url

__all__ = [
    "APPRISE_EXTRA",
    "AppriseTarget",
    "check_apprise_urls",
    "send_apprise",
    "shown_url",
    "split_urls",
]

APPRISE_EXTRA = "exposure-audit[notify]"

_HTTP_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
"""Schemes whose host part is a host (shown); for the others it is often the token."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SPLIT = re.compile(r"\s+|,(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")
_MAX_ERROR = 300


@dataclass(frozen=True)
class AppriseTarget:
    """Apprise URLs, and the seconds all their deliveries together may take."""

    urls: tuple[str, ...]
    timeout: float = 10.0


def split_urls(text: str) -> list[str]:
    """URLs from an environment variable: separated by white space, or by commas before the
    next ``scheme://`` (a comma inside a URL, as in ``mailto://...?to=a,b``, stays)."""
    return [u for u in _SPLIT.split(text.strip()) if u]


def shown_url(url: str, index: int) -> str:
    """``#index scheme://…``, safe to print: host and port only for json/form/xml."""
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else "?"
    if scheme in _HTTP_SCHEMES:
        return f"#{index} {redact_url(url)}"
    return f"#{index} {scheme}://…"


def _apprise() -> Any:
    try:
        import apprise
    except ImportError:
        raise UsageError(
            f"Apprise notifications need the apprise package: pip install '{APPRISE_EXTRA}'"
        ) from None
    return apprise


def _asset(apprise: Any) -> Any:
    # Memory only: Apprise's persistent store would otherwise cache per-URL state on disk.
    return apprise.AppriseAsset(storage_mode="memory")


def check_apprise_urls(urls: Sequence[str], where: str = "--notify") -> None:
    """Raise :class:`UsageError` (naming ``where`` and the URL as :func:`shown_url` shows it,
    never the URL) when Apprise is missing or cannot use one of ``urls`` (unknown scheme,
    missing token). Parsing only: nothing is sent."""
    apprise = _apprise()
    asset = _asset(apprise)
    for index, url in enumerate(urls, 1):
        with _quiet(apprise):
            plugin = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            raise UsageError(
                f"{where}: Apprise cannot use URL {shown_url(url, index)} (unknown scheme, "
                "or a part the service needs is missing; see "
                "https://github.com/caronc/apprise/wiki)"
            )


def send_apprise(target: AppriseTarget, message: Message) -> list[DeliveryResult]:
    """Send ``message`` to every URL of ``target`` at once; one result per URL, in order.

    Blocking for at most ``target.timeout`` seconds (and a little to start the threads): call
    it where a signal may cut it. Never raises for a service's trouble."""
    apprise = _apprise()
    asset = _asset(apprise)
    capture = _Capture()
    workers: list[_Worker] = []
    logger = logging.getLogger(apprise.LOGGER_NAME)
    saved = logger.propagate
    logger.addHandler(capture)
    logger.propagate = False  # Apprise's lines go to the capture only, never to stderr
    try:
        for index, url in enumerate(target.urls, 1):
            worker = _Worker(apprise, asset, url, index, message, target.timeout, capture)
            worker.start()
            workers.append(worker)
        deadline = time.monotonic() + target.timeout
        results = []
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            results.append(worker.result(target.timeout))
        return results
    finally:
        logger.removeHandler(capture)
        logger.propagate = saved


class _Capture(logging.Handler):
    """Apprise's warnings and errors, by the thread that logged them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: dict[int, list[str]] = {}
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread is None:
            return
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        with self._lock2:
            self.lines.setdefault(record.thread, []).append(text)


class _Worker(threading.Thread):
    def __init__(
        self,
        apprise: Any,
        asset: Any,
        url: str,
        index: int,
        message: Message,
        timeout: float,
        capture: _Capture,
    ) -> None:
        super().__init__(name=f"apprise-{index}", daemon=True)
        self._apprise = apprise
        self._asset = asset
        self._url = url
        self._message = message
        self._timeout = timeout
        self._capture = capture
        self.shown = shown_url(url, index)
        self.delivered: bool | None = None
        self.crash = ""

    def run(self) -> None:
        try:
            plugin = self._apprise.Apprise.instantiate(self._url, asset=self._asset)
            if plugin is None:
                self.delivered, self.crash = False, "Apprise cannot use this URL"
                return
            # The service's own socket timeouts end the thread soon after the deadline (a
            # second later, so that the deadline, not a race with it, says what happened).
            plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, self._timeout)
            plugin.socket_read_timeout = self._timeout + 1
            self.delivered = bool(
                plugin.notify(
                    body=self._message.markdown or self._message.text,
                    title=self._message.subject,
                    notify_type=_notify_type(self._apprise, self._message),
                    body_format=self._apprise.NotifyFormat.MARKDOWN,
                )
            )
        except Exception as exc:  # a plugin's bug must not end the run
            self.delivered, self.crash = False, f"{type(exc).__name__}: {exc}"

    def result(self, timeout: float) -> DeliveryResult:
        if self.delivered is None:
            return DeliveryResult(
                "apprise", self.shown, False, 1, f"no answer within {timeout:g} s"
            )
        if self.delivered:
            return DeliveryResult("apprise", self.shown, True, 1)
        lines = self._capture.lines.get(self.ident or -1, [])
        error = self.crash or "; ".join(dict.fromkeys(lines)) or "the service refused it"
        return DeliveryResult("apprise", self.shown, False, 1, _scrub(error, self._url))


def _notify_type(apprise: Any, message: Message) -> Any:
    """Failure for a run that covered nothing, warning for new or worsened findings."""
    payload = message.payload
    coverage = payload.get("coverage")
    if isinstance(coverage, dict) and coverage.get("covered") == "nothing":
        return apprise.NotifyType.FAILURE
    if payload.get("new") or payload.get("changed"):
        return apprise.NotifyType.WARNING
    return apprise.NotifyType.INFO


def _secrets(url: str) -> list[str]:
    """Every part of ``url`` that may be a credential, longest first (raw and decoded)."""
    found = {url}
    match = _SCHEME.match(url)
    rest = url[match.end() :] if match else url
    found.update(p for p in re.split(r"[/?#&=:@;,]+", rest) if len(p) >= 3)
    try:
        parts = urlsplit(url)
        found.update(p for p in (parts.username, parts.password, parts.hostname) if p)
    except ValueError:
        pass
    found.update(unquote(s) for s in list(found))
    return sorted((s for s in found if s), key=len, reverse=True)


def _scrub(text: str, url: str) -> str:
    """``text`` without any part of ``url`` (but the scheme), one line, bounded."""
    for secret in _secrets(url):
        text = text.replace(secret, "…")
    return " ".join(text.split())[:_MAX_ERROR]


class _quiet:  # noqa: N801 - a context manager used like a function
    """Apprise's log lines while a URL is parsed go nowhere (they may quote the URL)."""

    def __init__(self, apprise: Any) -> None:
        self._logger = logging.getLogger(apprise.LOGGER_NAME)
        self._saved = (self._logger.propagate, self._logger.disabled)

    def __enter__(self) -> None:
        self._logger.propagate, self._logger.disabled = False, True

    def __exit__(self, *exc: object) -> None:
        self._logger.propagate, self._logger.disabled = self._saved
