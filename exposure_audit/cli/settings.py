"""The settings of ``scan`` and ``grade``, typed: flags over the config file over the defaults,
merged once by :func:`merge_settings`.

Each default is written once, here (``DEFAULT_*``, named after the layer that owns the value:
the run's :class:`~exposure_audit.run.audit.AuditSettings`, the HTTP probe's bounds), and used
both by the parser's help text and by the merge. What both commands check and decide is here
too: the bounds (:meth:`ScanSettings.check_bounds`), the run settings built from them
(:meth:`ScanSettings.audit_settings`) and the verdict (:meth:`Thresholds.failed_by`).

The merge reads no file and no environment: targets, accepted-risk files and inventories are
paths the command opens itself, in its own order, so its messages come in the order they
always did.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from ..diff import ReportDiff
from ..errors import UsageError
from ..findings import Severity
from ..history.apprise_notify import AppriseTarget, check_apprise_urls, split_urls
from ..history.notify import EmailTarget, WebhookTarget
from ..history.store import default_history_path
from ..ports import PortSet
from ..probes.http import HttpProbeSettings
from ..report import Report
from ..run.audit import AuditSettings
from ..run.cluster import DEFAULT_BLOCK_SIZE
from ..run.session import NotifyPlan
from ..targets import DEFAULT_MAX_HOSTS
from ..timing import DiscoveryPolicy, discovery_policy
from ..upnp import Inventory
from .config import AuditConfig, FailOn, NotifyConfig, webhook_url_problem

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_FAIL_ON",
    "DEFAULT_HOST_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_HOSTS",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SSDP_WAIT",
    "MAX_BODY_CAP",
    "MIN_BODY",
    "HistorySettings",
    "NotifySettings",
    "ScanSettings",
    "Settings",
    "Thresholds",
    "merge_settings",
    "parse_severity",
]

_T = TypeVar("_T")

DEFAULT_HOST_TIMEOUT: Final[float] = AuditSettings.host_timeout
"""Seconds for one host: discovery, HTTP/TLS and version detection together (60)."""
DEFAULT_REQUEST_TIMEOUT: Final[float] = HttpProbeSettings.request_timeout
"""Seconds for one HTTP/TLS request (10)."""
DEFAULT_MAX_BODY: Final[int] = HttpProbeSettings.max_body_bytes
"""Bytes read of one HTTP body, after decompression (1 MiB)."""
DEFAULT_SSDP_WAIT: Final[float] = AuditSettings.ssdp_wait
"""Seconds to wait for SSDP answers, all targets together (2)."""
DEFAULT_FAIL_ON: Final = Severity.HIGH
"""The ``--fail-on`` threshold when neither it nor ``--fail-on-new`` is set."""
MIN_BODY: Final = 1024
"""The smallest ``--max-body``: below it a login page would not fit (DSM's markers and titles
are in its first KiB)."""
MAX_BODY_CAP: Final = 256 << 20
"""The largest ``--max-body`` (256 MiB): beyond it one answer could hold the run's memory."""


def parse_severity(text: str, flag: str) -> Severity | None:
    """``high`` -> Severity.HIGH; ``never`` -> None; :class:`UsageError` naming ``flag``."""
    if text.strip().lower() in ("never", "none", "off"):
        return None
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


@dataclass(frozen=True)
class ScanSettings:
    """How hosts are scanned and probed. ``ports`` is the spec as written (None: the Synology
    set; empty is an error the command reports); ``timing``/``rate``/``retries`` None keep the
    preset's; ``upnp_inventory`` is a path the command opens. Values are as merged:
    :meth:`check_bounds` checks them."""

    ports: str | None = None
    resolver: str | None = None
    allow_private: bool = False
    max_hosts: int = DEFAULT_MAX_HOSTS
    host_timeout: float = DEFAULT_HOST_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_body: int = DEFAULT_MAX_BODY
    ssdp_wait: float = DEFAULT_SSDP_WAIT
    timing: str | None = None
    rate: int | None = None
    retries: int | None = None
    udp: bool = True  # False: never scan UDP; True: when possible (as root)
    version_detection: bool = True
    upnp: bool = True
    upnp_inventory: str | None = None

    def check_max_hosts(self) -> None:
        """:class:`UsageError` unless ``max_hosts`` is at least 1 (checked before the targets
        are planned with it)."""
        if self.max_hosts < 1:
            raise UsageError("--max-hosts must be at least 1")

    def check_bounds(self, timeout_flags: str) -> None:
        """:class:`UsageError` for a timeout that is not positive (the message names
        ``timeout_flags``, the command's own) or a ``max_body`` under :data:`MIN_BODY`."""
        waits = (self.host_timeout, self.request_timeout, self.ssdp_wait)
        if not all(math.isfinite(w) and w > 0 for w in waits):
            raise UsageError(f"{timeout_flags} must be positive")
        if self.max_body < MIN_BODY:
            raise UsageError(f"--max-body must be at least {MIN_BODY} bytes")
        if self.max_body > MAX_BODY_CAP:
            raise UsageError(f"--max-body must be at most {MAX_BODY_CAP} bytes")

    def discovery(self) -> DiscoveryPolicy:
        """The discovery pace; :class:`UsageError` for a bad preset, rate or retry count."""
        try:
            return discovery_policy(self.timing, rate=self.rate, retries=self.retries)
        except ValueError as exc:
            raise UsageError(f"discovery timing (--timing, --rate, --retries): {exc}") from None

    def audit_settings(self, ports: PortSet, inventory: Inventory | None) -> AuditSettings:
        """The run's settings, scanning ``ports``; raises as :meth:`discovery` does."""
        return AuditSettings(
            ports=ports,
            host_timeout=self.host_timeout,
            http=HttpProbeSettings(
                request_timeout=self.request_timeout,
                identify_timeout=min(HttpProbeSettings.identify_timeout, self.request_timeout),
                max_body_bytes=self.max_body,
            ),
            udp=None if self.udp else False,
            version_detection=self.version_detection,
            upnp=self.upnp,
            ssdp_wait=self.ssdp_wait,
            inventory=inventory,
            discovery=self.discovery(),
        )


@dataclass(frozen=True)
class Thresholds:
    """When a finished run exits 1. None turns a threshold off (``never``)."""

    fail_on: Severity | None = DEFAULT_FAIL_ON
    fail_on_new: Severity | None = None

    def failed_by(self, report: Report, diff: ReportDiff | None = None) -> bool:
        """True when a new or worsened finding (against ``diff``; without one, as on a first
        run, every finding is new) reaches ``fail_on_new``, or any finding reaches
        ``fail_on``. Accepted risks never count."""
        if self.fail_on_new is not None:
            if diff is not None:
                worse = [c.after for c in diff.worsened() if c.after is not None]
            else:
                worse = report.findings()
            if any(f.counts and f.severity >= self.fail_on_new for f in worse):
                return True
        worst = report.worst_severity()
        return self.fail_on is not None and worst is not None and worst >= self.fail_on


@dataclass(frozen=True)
class HistorySettings:
    """Whether and where runs are stored; ``path`` None is the platform's default store."""

    enabled: bool = True
    path: Path | None = None

    def store_path(self) -> Path | None:
        """The store to use, None when the history is off."""
        if not self.enabled:
            return None
        return self.path or default_history_path()


@dataclass(frozen=True)
class NotifySettings:
    """``--webhook``, ``--notify`` and the config file's ``[notify]`` (``source`` names that
    file)."""

    webhook: str | None = None
    configured: NotifyConfig | None = None
    source: str = ""
    apprise: tuple[str, ...] = ()

    def plan(self, environ: Mapping[str, str] = os.environ) -> NotifyPlan | None:
        """Where and when to notify, None for nowhere. ``--webhook`` replaces the configured
        URL and keeps its format (its retries go back to the default); a ``url_env`` is read
        from ``environ``. Everything a notification needs is checked here, before the scan
        (:class:`UsageError`, never quoting a URL): each URL's syntax (the flag's, the file's,
        the one ``url_env`` names; an empty ``--webhook`` too), and that the variables an
        e-mail's ``username_env``/``password_env`` name are set (even with ``--webhook``)."""
        notify = self.configured
        webhook = None
        email = None
        if notify is not None and notify.webhook is not None:
            hook = notify.webhook
            url = hook.url or environ.get(hook.url_env or "", "")
            if not url:
                raise UsageError(
                    f"{self.source}: notify.webhook.url_env names {hook.url_env!r}, "
                    "which is not set"
                )
            problem = webhook_url_problem(url)
            if problem is not None and hook.url_env:
                raise UsageError(
                    f"{self.source}: notify.webhook.url_env: the URL in ${hook.url_env} {problem}"
                )
            webhook = WebhookTarget(url, hook.format.value, retries=hook.retries)
        if self.webhook is not None:
            problem = webhook_url_problem(self.webhook)
            if problem is not None:
                raise UsageError(f"--webhook {problem}")
            webhook = WebhookTarget(self.webhook, webhook.format if webhook else "json")
        if notify is not None and notify.email is not None:
            mail = notify.email
            for key, name in (
                ("username_env", mail.username_env),
                ("password_env", mail.password_env),
            ):
                if name is not None and not environ.get(name):
                    state = "is empty" if name in environ else "is not set"
                    raise UsageError(
                        f"{self.source}: notify.email.{key} names {name!r}, which {state}"
                        " (the mail could not be sent after the scan)"
                    )
            email = EmailTarget(
                host=mail.host,
                port=mail.port,
                starttls=mail.starttls,
                sender=mail.sender,
                to=mail.to,
                username_env=mail.username_env,
                password_env=mail.password_env,
                retries=mail.retries,
            )
        apprise = self._apprise(environ)
        if webhook is None and email is None and apprise is None:
            return None
        if notify is None:
            return NotifyPlan(webhook=webhook, apprise=apprise)
        return NotifyPlan(
            when=notify.when.value,
            min_severity=notify.min_severity,
            webhook=webhook,
            email=email,
            fail_run_on_error=notify.fail_run_on_error,
            apprise=apprise,
        )

    def _apprise(self, environ: Mapping[str, str]) -> AppriseTarget | None:
        """``--notify`` URLs (they replace the config's), else ``[notify.apprise]``'s ``urls``
        and those in ``$urls_env``; each checked by Apprise (:class:`UsageError` naming it by
        number, never quoting it)."""
        configured = self.configured.apprise if self.configured is not None else None
        timeout = configured.timeout if configured is not None else AppriseTarget.timeout
        if self.apprise:
            check_apprise_urls(self.apprise, "--notify")
            return AppriseTarget(self.apprise, timeout)
        if configured is None:
            return None
        urls = list(configured.urls)
        if configured.urls_env is not None:
            found = split_urls(environ.get(configured.urls_env, ""))
            if not found:
                raise UsageError(
                    f"{self.source}: notify.apprise.urls_env names {configured.urls_env!r}, "
                    "which is not set"
                )
            urls += found
        check_apprise_urls(urls, f"{self.source}: notify.apprise")
        return AppriseTarget(tuple(urls), timeout)


@dataclass(frozen=True)
class Settings:
    """Everything ``scan`` and ``grade`` take from flags, config and defaults, but the targets,
    the accepted risks and the cluster (lists and files the command reads itself)."""

    scan: ScanSettings
    thresholds: Thresholds
    history: HistorySettings
    notify: NotifySettings


def merge_settings(flags: argparse.Namespace, config: AuditConfig | None) -> Settings:
    """Flags over ``config`` over the defaults, field by field.

    ``flags`` are the parser's: None (False for a switch) is "not given", and a flag the
    command does not offer is never given. Reads no file and no environment; raises
    :class:`UsageError` only for a bad ``--fail-on``/``--fail-on-new`` severity.
    """
    file = config if config is not None else AuditConfig(source="", base_dir="")
    base = Path(file.base_dir)
    scan = ScanSettings(
        ports=_either(_flag(flags, "ports", str), file.ports),
        resolver=_either(_flag(flags, "resolver", str), file.resolver),
        allow_private=_switch(flags, "allow_private") or bool(file.allow_private),
        max_hosts=_pick(_flag(flags, "max_hosts", int), file.max_hosts, DEFAULT_MAX_HOSTS),
        host_timeout=_pick(
            _flag(flags, "host_timeout", float), file.host_timeout, DEFAULT_HOST_TIMEOUT
        ),
        request_timeout=_pick(
            _flag(flags, "request_timeout", float), file.request_timeout, DEFAULT_REQUEST_TIMEOUT
        ),
        # Flags only: the config file has no max_body or ssdp_wait.
        max_body=_pick(_flag(flags, "max_body", int), None, DEFAULT_MAX_BODY),
        ssdp_wait=_pick(_flag(flags, "ssdp_wait", float), None, DEFAULT_SSDP_WAIT),
        timing=_either(_flag(flags, "timing", str), file.timing),
        rate=_either(_flag(flags, "rate", int), file.rate),
        retries=_either(_flag(flags, "retries", int), file.retries),
        udp=not _switch(flags, "no_udp"),
        version_detection=not _switch(flags, "no_version_detection"),
        upnp=not _switch(flags, "no_upnp") and file.upnp is not False,
        # An empty --upnp-inventory (or --history) counts as not given, as it always has.
        upnp_inventory=_flag(flags, "upnp_inventory", str)
        or (str(base / file.upnp_inventory) if file.upnp_inventory else None),
    )
    history_flag = _flag(flags, "history", str)
    configured_store = base / file.history.path if file.history.path else None
    history = HistorySettings(
        enabled=not _switch(flags, "no_history") and file.history.enabled,
        path=Path(history_flag) if history_flag else configured_store,
    )
    notify = NotifySettings(
        _flag(flags, "webhook", str),
        file.notify,
        file.source,
        tuple(getattr(flags, "notify", None) or ()),
    )
    return Settings(scan, _thresholds(flags, file), history, notify)


def _thresholds(flags: argparse.Namespace, file: AuditConfig) -> Thresholds:
    """``--fail-on-new`` set (flag or config): ``--fail-on`` applies only if set too."""
    new_text = _flag(flags, "fail_on_new", str)
    if new_text is not None:
        fail_on_new = parse_severity(new_text, "--fail-on-new")
    else:
        fail_on_new = _severity(file.fail_on_new)
    text = _flag(flags, "fail_on", str)
    if text is not None:
        fail_on = parse_severity(text, "--fail-on")
    elif file.fail_on is not None:
        fail_on = _severity(file.fail_on)
    else:
        fail_on = None if fail_on_new is not None else DEFAULT_FAIL_ON
    return Thresholds(fail_on, fail_on_new)


def _severity(configured: FailOn | None) -> Severity | None:
    """A config threshold: ``never`` (and unset) is None."""
    return configured if isinstance(configured, Severity) else None


def _pick(flag: _T | None, configured: _T | None, default: _T) -> _T:
    """The flag's value if given, else the config's if set, else ``default``."""
    return flag if flag is not None else configured if configured is not None else default


def _either(flag: _T | None, configured: _T | None) -> _T | None:
    """The flag's value if given, else the config's (None: neither sets it)."""
    return flag if flag is not None else configured


def _flag(flags: argparse.Namespace, name: str, kind: type[_T]) -> _T | None:
    """The value of flag ``name`` as the parser typed it; None when not given or not offered."""
    value = getattr(flags, name, None)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise TypeError(f"flag {name}: the parser gave {type(value).__name__}, not {kind}")
    return value


def _switch(flags: argparse.Namespace, name: str) -> bool:
    """A ``store_true`` flag; False when the command does not offer it."""
    return bool(getattr(flags, name, False))
