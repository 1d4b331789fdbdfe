"""The audit configuration file (TOML): targets, policy, thresholds, history, accepted risks and
notifications, for the ``exposure-audit scan -c audit.toml`` a cron job runs every week.

Pure: :func:`parse_config` takes the text and the file's name (the CLI reads the file, resolves
the relative paths against :attr:`AuditConfig.base_dir` and lets its flags override the file).
Every key is documented in ``docs/audit.example.toml``. A value left out of the file is None
(or empty) here, so the CLI can tell "not set" from a value and apply its own default.

Any problem is a :class:`ConfigError` naming the file, the line and the dotted key
(``audit.toml:14: notify.email.port: must be an integer, not a string``): unknown keys
(with a "did you mean" hint), wrong types, values outside their grammar (targets, ports,
severities, URLs, e-mail addresses), and secrets written in the file: SMTP credentials are
named by environment variable (``password_env``), never given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePath
from typing import Any, Literal
from urllib.parse import urlsplit

from ..errors import PortSpecError, TargetError
from ..findings import Severity
from ..history.accept import AcceptedRisk, accepted_from
from ..ports import parse_ports
from ..targets import MAX_HOSTS_CAP, parse_item
from ..timing import MAX_RATE, PRESETS
from ..tomlfile import KeyPath, TomlDocument, TomlFileError

__all__ = [
    "AppriseConfig",
    "AuditConfig",
    "ConfigError",
    "EmailConfig",
    "FailOn",
    "HistoryConfig",
    "MetricsConfig",
    "NotifyConfig",
    "NotifyWhen",
    "WebhookConfig",
    "WebhookFormat",
    "parse_config",
    "webhook_url_problem",
]


class ConfigError(TomlFileError):
    """A configuration file that is not valid TOML or holds a bad key or value.

    A :class:`~exposure_audit.errors.UsageError` (exit 2); ``source``, ``line`` and ``key``
    (dotted, ``accept[1].expires``) say where, ``reason`` what.
    """


FailOn = Severity | Literal["never"]
"""A ``fail_on``/``fail_on_new`` threshold: a severity, or ``"never"`` (the check is off)."""


class NotifyWhen(StrEnum):
    """When a run sends its notifications."""

    ALWAYS = "always"  # after every run
    CHANGE = "change"  # when the diff against the previous complete run has changes
    NEW = "new"  # when a new or worsened finding reaches ``min_severity``


class WebhookFormat(StrEnum):
    JSON = "json"  # the diff's JSON document (render_diff "json")
    SLACK = "slack"  # {"text": ...}, Slack-compatible (and Mattermost, Rocket.Chat, ...)


@dataclass(frozen=True)
class HistoryConfig:
    """``[history]``: where runs are stored (None: the platform's user data dir)."""

    path: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class ClusterConfig:
    """``[cluster]``: run on a Dask scheduler (docs/cluster.md). Kept as written: the scan
    command checks the address and the vantage names as it does the flags'."""

    scheduler: str
    vantages: tuple[str, ...] = ()
    block_size: int | None = None


@dataclass(frozen=True)
class WebhookConfig:
    """``[notify.webhook]``: a JSON POST. Exactly one of ``url`` and ``url_env`` (the name of
    an environment variable holding the URL: chat webhook URLs are secrets) is set."""

    url: str | None = None
    url_env: str | None = None
    format: WebhookFormat = WebhookFormat.JSON
    retries: int = 3


@dataclass(frozen=True)
class EmailConfig:
    """``[notify.email]``: SMTP. Credentials come from the environment variables named by
    ``username_env`` and ``password_env`` (both or neither), never from the file."""

    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None
    retries: int = 3


@dataclass(frozen=True)
class AppriseConfig:
    """``[notify.apprise]``: notifications through Apprise (``slack://``, ``discord://``,
    ``ntfy://``, ``tgram://``, ``json://``...). ``urls`` as written in the file and/or
    ``urls_env``, the name of an environment variable holding more of them (separated by
    spaces, commas or line breaks: the tokens in these URLs are secrets). ``timeout`` bounds
    all the deliveries together. The URLs are checked by Apprise itself when the scan starts
    (here only their shape, ``scheme://...``)."""

    urls: tuple[str, ...] = ()
    urls_env: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class NotifyConfig:
    """``[notify]``: when to send, and the channels (at least one of them is set)."""

    when: NotifyWhen = NotifyWhen.CHANGE
    min_severity: Severity = Severity.INFO
    fail_run_on_error: bool = False
    webhook: WebhookConfig | None = None
    email: EmailConfig | None = None
    apprise: AppriseConfig | None = None


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: the Prometheus text file each run writes (relative to the config's
    directory), for node_exporter's textfile collector."""

    path: str


@dataclass(frozen=True)
class AuditConfig:
    """A parsed configuration file. Paths (``target_files``, ``exclude_files``,
    ``accepted_files``, ``upnp_inventory``, ``history.path``) are kept as written; relative
    ones are relative to ``base_dir``, the file's directory (see :meth:`resolve`). Targets and
    exclusions are kept as written too, after checking them against the target grammar."""

    source: str
    base_dir: str
    targets: tuple[str, ...] = ()
    target_files: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_files: tuple[str, ...] = ()
    ports: str | None = None
    resolver: str | None = None
    allow_private: bool | None = None
    max_hosts: int | None = None
    host_timeout: float | None = None
    request_timeout: float | None = None
    timing: str | None = None
    rate: int | None = None
    retries: int | None = None
    upnp: bool | None = None
    upnp_inventory: str | None = None
    fail_on: FailOn | None = None
    fail_on_new: FailOn | None = None
    history: HistoryConfig = field(default_factory=HistoryConfig)
    accepted: tuple[AcceptedRisk, ...] = ()
    accepted_files: tuple[str, ...] = ()
    notify: NotifyConfig | None = None
    cluster: ClusterConfig | None = None
    metrics: MetricsConfig | None = None

    def resolve(self, path: str) -> str:
        """``path`` as the file meant it: absolute paths as they are, others under
        ``base_dir`` (``~`` is not expanded: that is the shell's job, and cron has none)."""
        return str(PurePath(self.base_dir, path))


_TOP_KEYS = (
    "targets",
    "target_files",
    "exclude",
    "exclude_files",
    "ports",
    "resolver",
    "allow_private",
    "max_hosts",
    "host_timeout",
    "request_timeout",
    "timing",
    "rate",
    "retries",
    "upnp",
    "upnp_inventory",
    "fail_on",
    "fail_on_new",
    "history",
    "accept",
    "accepted_files",
    "notify",
    "cluster",
    "metrics",
)
_TOP_HINTS = {
    "webhook": "unknown key (webhooks go in a [notify.webhook] table)",
    "email": "unknown key (mail goes in a [notify.email] table)",
    "history_path": "unknown key (write [history] then path = ...)",
    "input_file": "unknown key (the key is target_files)",
    "input_files": "unknown key (the key is target_files)",
    "accepted": "unknown key (accepted risks are [[accept]] tables, or files in accepted_files)",
    "apprise": "unknown key (Apprise URLs go in a [notify.apprise] table: urls = [...])",
    "metrics_path": "unknown key (write [metrics] then path = ...)",
}
_HISTORY_KEYS = ("path", "enabled")
_CLUSTER_KEYS = ("scheduler", "vantages", "block_size")
_MAX_BLOCK = 4096
_NOTIFY_KEYS = ("when", "min_severity", "fail_run_on_error", "webhook", "email", "apprise")
_NOTIFY_HINTS = {
    "notify": "unknown key (Apprise URLs go in a [notify.apprise] table: urls = [...])",
    "urls": "unknown key (Apprise URLs go in a [notify.apprise] table: urls = [...])",
}
_APPRISE_KEYS = ("urls", "urls_env", "timeout")
_MAX_NOTIFY_TIMEOUT = 300.0
_APPRISE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S")
_METRICS_KEYS = ("path",)
_WEBHOOK_KEYS = ("url", "url_env", "format", "retries")
_EMAIL_KEYS = (
    "host",
    "port",
    "starttls",
    "sender",
    "to",
    "username_env",
    "password_env",
    "retries",
)
_NO_SECRETS = "secrets never go in the file"
_EMAIL_HINTS = {
    "password": f"{_NO_SECRETS}: set password_env to the NAME of the environment variable "
    "that holds the password",
    "username": "set username_env to the NAME of the environment variable that holds the user",
    "from": "unknown key (the key is sender)",
    "recipients": "unknown key (the key is to)",
}
_WEBHOOK_HINTS = {
    "token": f"{_NO_SECRETS}: put the whole URL in an environment variable named by url_env",
    "password": f"{_NO_SECRETS}: put the whole URL in an environment variable named by url_env",
}
_MAX_RETRIES = 10
_MAX_HOSTS = MAX_HOSTS_CAP
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Deliberately simple: one @, no spaces, no control characters (no header injection).
_MAILBOX = re.compile(r"^[^@\s\x00-\x1f\x7f<>,;]+@[^@\s\x00-\x1f\x7f<>,;]+$")


def parse_config(text: str, source: str) -> AuditConfig:
    """Parse a configuration file's ``text``; ``source`` is its path as given.

    Returns the :class:`AuditConfig` (``base_dir`` is ``source``'s directory). Raises
    :class:`ConfigError` naming ``source``, the line and the dotted key for bad TOML, an unknown
    key, a wrong type or a bad value; nothing else, whatever the text.
    """
    doc = TomlDocument.parse(text, source, ConfigError)
    top = doc.data
    doc.check_keys((), top, _TOP_KEYS, _TOP_HINTS)
    here: KeyPath = ()
    return AuditConfig(
        source=source,
        base_dir=str(PurePath(source).parent),
        targets=_items(doc, top, "targets"),
        target_files=doc.texts(here, top, "target_files") or (),
        exclude=_items(doc, top, "exclude"),
        exclude_files=doc.texts(here, top, "exclude_files") or (),
        ports=_ports(doc, top),
        resolver=_resolver(doc, top),
        allow_private=doc.boolean(here, top, "allow_private"),
        max_hosts=doc.integer(here, top, "max_hosts", 1, _MAX_HOSTS),
        host_timeout=doc.seconds(here, top, "host_timeout"),
        request_timeout=doc.seconds(here, top, "request_timeout"),
        timing=_timing(doc, top),
        rate=doc.integer(here, top, "rate", 1, MAX_RATE),
        retries=doc.integer(here, top, "retries", 0, 10),
        upnp=doc.boolean(here, top, "upnp"),
        upnp_inventory=doc.text(here, top, "upnp_inventory"),
        fail_on=_fail_on(doc, top, "fail_on"),
        fail_on_new=_fail_on(doc, top, "fail_on_new"),
        history=_history(doc, top),
        accepted=tuple(accepted_from(doc, ("accept",))),
        accepted_files=doc.texts(here, top, "accepted_files") or (),
        notify=_notify(doc, top),
        cluster=_cluster(doc, top),
        metrics=_metrics(doc, top),
    )


def _items(doc: TomlDocument, top: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Targets or exclusions: each checked against the target grammar, kept as written."""
    items = doc.texts((), top, key) or ()
    for i, item in enumerate(items):
        try:
            parse_item(item, doc.where((key, i)))
        except TargetError as exc:
            doc.fail((key, i), f"{doc.quote(item)}: {exc.reason}")
    return items


def _timing(doc: TomlDocument, top: Mapping[str, Any]) -> str | None:
    preset = doc.text((), top, "timing")
    if preset is not None and preset not in PRESETS:
        doc.fail(("timing",), f"{doc.quote(preset)}: choose one of {', '.join(PRESETS)}")
    return preset


def _ports(doc: TomlDocument, top: Mapping[str, Any]) -> str | None:
    spec = doc.text((), top, "ports")
    if spec is not None:
        try:
            parse_ports(spec)
        except PortSpecError as exc:
            doc.fail(("ports",), str(exc))
    return spec


def _resolver(doc: TomlDocument, top: Mapping[str, Any]) -> str | None:
    resolver = doc.text((), top, "resolver")
    if resolver is not None and any(c.isspace() or c in ",;" for c in resolver):
        doc.fail(("resolver",), "must be one HOST or HOST:PORT")
    return resolver


def _fail_on(doc: TomlDocument, top: Mapping[str, Any], key: str) -> FailOn | None:
    value = doc.text((), top, key)
    if value is None:
        return None
    if value.lower() in ("never", "none", "off"):
        return "never"
    try:
        return Severity.parse(value)
    except ValueError:
        choices = ", ".join([*(s.label for s in Severity), "never"])
        doc.fail((key,), f"{doc.quote(value)} is not one of {choices}")


def _history(doc: TomlDocument, top: Mapping[str, Any]) -> HistoryConfig:
    table = doc.table((), top, "history")
    if table is None:
        return HistoryConfig()
    path: KeyPath = ("history",)
    doc.check_keys(path, table, _HISTORY_KEYS)
    enabled = doc.boolean(path, table, "enabled")
    return HistoryConfig(
        path=doc.text(path, table, "path"), enabled=True if enabled is None else enabled
    )


def _cluster(doc: TomlDocument, top: Mapping[str, Any]) -> ClusterConfig | None:
    table = doc.table((), top, "cluster")
    if table is None:
        return None
    path: KeyPath = ("cluster",)
    doc.check_keys(path, table, _CLUSTER_KEYS)
    vantages = doc.texts(path, table, "vantages") or ()
    block_size = doc.integer(path, table, "block_size", 1, _MAX_BLOCK)
    scheduler = doc.text(path, table, "scheduler")
    if scheduler is None:
        doc.fail((*path, "scheduler"), "missing (the Dask scheduler, e.g. tcp://10.0.0.1:8786)")
    return ClusterConfig(scheduler, vantages, block_size)


def _notify(doc: TomlDocument, top: Mapping[str, Any]) -> NotifyConfig | None:
    table = doc.table((), top, "notify")
    if table is None:
        return None
    path: KeyPath = ("notify",)
    doc.check_keys(path, table, _NOTIFY_KEYS, _NOTIFY_HINTS)
    when = doc.choice(path, table, "when", [w.value for w in NotifyWhen])
    severity = doc.choice(path, table, "min_severity", [s.label for s in Severity])
    webhook = _webhook(doc, table)
    email = _email(doc, table)
    apprise = _apprise(doc, table)
    if webhook is None and email is None and apprise is None:
        doc.fail(
            path, "no channel: add a [notify.webhook], [notify.email] or [notify.apprise] table"
        )
    return NotifyConfig(
        when=NotifyWhen(when) if when else NotifyWhen.CHANGE,
        min_severity=Severity.parse(severity) if severity else Severity.INFO,
        fail_run_on_error=bool(doc.boolean(path, table, "fail_run_on_error")),
        webhook=webhook,
        email=email,
        apprise=apprise,
    )


def _apprise(doc: TomlDocument, notify: Mapping[str, Any]) -> AppriseConfig | None:
    table = doc.table(("notify",), notify, "apprise")
    if table is None:
        return None
    path: KeyPath = ("notify", "apprise")
    doc.check_keys(path, table, _APPRISE_KEYS)
    urls = doc.texts(path, table, "urls") or ()
    for i, url in enumerate(urls):
        if not url.isprintable() or not _APPRISE_URL.match(url):
            # The value is never quoted back: it holds the service's token.
            doc.fail((*path, "urls", i), "must be an Apprise URL like ntfy://host/topic")
    urls_env = _env_name(doc, path, table, "urls_env")
    if not urls and urls_env is None:
        doc.fail(path, "no URL: give urls = [...] or urls_env = NAME")
    timeout = doc.seconds(path, table, "timeout")
    if timeout is not None and timeout > _MAX_NOTIFY_TIMEOUT:
        doc.fail((*path, "timeout"), f"at most {_MAX_NOTIFY_TIMEOUT:g} seconds")
    return AppriseConfig(urls=urls, urls_env=urls_env, timeout=timeout or 10.0)


def _metrics(doc: TomlDocument, top: Mapping[str, Any]) -> MetricsConfig | None:
    table = doc.table((), top, "metrics")
    if table is None:
        return None
    path: KeyPath = ("metrics",)
    doc.check_keys(path, table, _METRICS_KEYS)
    where = doc.require((*path, "path"), doc.text(path, table, "path"), "the .prom file to write")
    return MetricsConfig(where)


def _webhook(doc: TomlDocument, notify: Mapping[str, Any]) -> WebhookConfig | None:
    table = doc.table(("notify",), notify, "webhook")
    if table is None:
        return None
    path: KeyPath = ("notify", "webhook")
    doc.check_keys(path, table, _WEBHOOK_KEYS, _WEBHOOK_HINTS)
    url = doc.text(path, table, "url")
    url_env = _env_name(doc, path, table, "url_env")
    if (url is None) == (url_env is None):
        doc.fail((*path, "url"), "give exactly one of url and url_env")
    problem = webhook_url_problem(url) if url is not None else None
    if problem is not None:
        doc.fail((*path, "url"), problem)
    fmt = doc.choice(path, table, "format", [f.value for f in WebhookFormat])
    retries = doc.integer(path, table, "retries", 0, _MAX_RETRIES)
    return WebhookConfig(
        url=url,
        url_env=url_env,
        format=WebhookFormat(fmt) if fmt else WebhookFormat.JSON,
        retries=3 if retries is None else retries,
    )


def _email(doc: TomlDocument, notify: Mapping[str, Any]) -> EmailConfig | None:
    table = doc.table(("notify",), notify, "email")
    if table is None:
        return None
    path: KeyPath = ("notify", "email")
    doc.check_keys(path, table, _EMAIL_KEYS, _EMAIL_HINTS)
    # Every value present is checked first, then what is missing.
    host = doc.text(path, table, "host")
    if host is not None and (any(c.isspace() for c in host) or not host.isprintable()):
        doc.fail((*path, "host"), "must be a host name or address")
    port = doc.integer(path, table, "port", 1, 65_535)
    starttls = doc.boolean(path, table, "starttls")
    sender = _mailbox(doc, path, table, "sender")
    recipients = doc.texts(path, table, "to")
    for i, address in enumerate(recipients or ()):
        if not _MAILBOX.match(address):
            doc.fail((*path, "to", i), "must be an e-mail address like ops@example.net")
    username_env = _env_name(doc, path, table, "username_env")
    password_env = _env_name(doc, path, table, "password_env")
    retries = doc.integer(path, table, "retries", 0, _MAX_RETRIES)
    host = doc.require((*path, "host"), host, "the SMTP server")
    sender = doc.require((*path, "sender"), sender, "the From address")
    recipients = doc.require((*path, "to"), recipients, "a list of addresses")
    if not recipients:
        doc.fail((*path, "to"), "must list at least one address")
    if (username_env is None) != (password_env is None):
        missing = "password_env" if password_env is None else "username_env"
        doc.fail((*path, missing), "missing (username_env and password_env go together)")
    if starttls is False and password_env is not None:
        doc.fail(
            (*path, "starttls"),
            "refusing to send SMTP credentials without STARTTLS: set starttls = true "
            "or drop username_env/password_env",
        )
    return EmailConfig(
        host=host,
        sender=sender,
        to=recipients,
        port=587 if port is None else port,
        starttls=True if starttls is None else starttls,
        username_env=username_env,
        password_env=password_env,
        retries=3 if retries is None else retries,
    )


def webhook_url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as a webhook, or None when it can be POSTed to: an
    ``http://`` or ``https://`` URL with a host that is an address or a valid host name (IDNA,
    not ``xn--``), a port in 1-65535 if one is given, no spaces or control characters. The
    answer never quotes the URL (its path may be a secret)."""
    shape = "must be an http:// or https:// URL"
    if not url:
        return f"{shape}, not empty"
    if not url.isprintable() or any(c.isspace() for c in url):
        return f"{shape} (it holds a space or a control character)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad [IPv6] part, a port that is not 0-65535
        return f"{shape} ({str(exc)[:80]})"
    if parts.scheme not in ("http", "https"):
        return f"{shape} (its scheme is {parts.scheme[:20]!r})" if parts.scheme else shape
    if not parts.hostname:
        return f"{shape} with a host"
    if port is not None and not 1 <= port <= 65_535:
        return f"{shape} (port {port} is not 1-65535)"
    try:
        parse_item(parts.hostname, "webhook")
    except TargetError as exc:
        return f"{shape} (its host: {exc.reason[:120]})"
    return None


def _mailbox(doc: TomlDocument, path: KeyPath, table: Mapping[str, Any], key: str) -> str | None:
    value = doc.text(path, table, key)
    if value is not None and not _MAILBOX.match(value):
        doc.fail((*path, key), "must be an e-mail address like audit@example.net")
    return value


def _env_name(doc: TomlDocument, path: KeyPath, table: Mapping[str, Any], key: str) -> str | None:
    value = doc.text(path, table, key)
    if value is not None and not _ENV_NAME.match(value):
        doc.fail(
            (*path, key),
            "must be the NAME of an environment variable (letters, digits, _), not its value",
        )
    return value
