"""The configuration file: the documented example parses to what it says, every key is
documented, every bad key or value is a ConfigError naming the file, the line and the key,
and no text at all makes the parser raise anything else."""

from __future__ import annotations

import contextlib
import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exposure_audit.cli.config import (
    AppriseConfig,
    AuditConfig,
    ClusterConfig,
    ConfigError,
    EmailConfig,
    HistoryConfig,
    NotifyConfig,
    NotifyWhen,
    WebhookConfig,
    WebhookFormat,
    parse_config,
)
from exposure_audit.errors import UsageError
from exposure_audit.findings import Severity
from exposure_audit.history.accept import AcceptedRisk

EXAMPLE = Path(__file__).parents[2] / "docs" / "audit.example.toml"

# Every key the file may hold, by table; the example must document each one.
KEYS = {
    "": (
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
        "accepted_files",
    ),
    "history": ("path", "enabled"),
    "cluster": ("scheduler", "vantages", "block_size"),
    "accept": ("id", "rule", "address", "port", "protocol", "reason", "owner", "expires"),
    "notify": ("when", "min_severity", "fail_run_on_error"),
    "notify.webhook": ("url", "url_env", "format", "retries"),
    "notify.apprise": ("urls", "urls_env", "timeout"),
    "metrics": ("path",),
    "notify.email": (
        "host",
        "port",
        "starttls",
        "sender",
        "to",
        "username_env",
        "password_env",
        "retries",
    ),
}


def parse(text: str) -> AuditConfig:
    return parse_config(text, "/etc/exposure-audit/audit.toml")


# --- the documented example --------------------------------------------------------------------


def test_the_example_parses_to_what_its_comments_say() -> None:
    config = parse_config(EXAMPLE.read_text(), "docs/audit.example.toml")
    assert config.targets == ("nas.example.net", "198.51.100.7", "2001:db8::7")
    assert config.target_files == ("targets.txt",)
    assert config.exclude == ("198.51.100.1",)
    assert (config.fail_on, config.fail_on_new) == ("never", Severity.HIGH)
    assert config.ports is None and config.allow_private is None  # not set: CLI defaults
    assert config.history == HistoryConfig("history/exposure-audit.sqlite3", enabled=True)
    assert config.accepted[1] == AcceptedRisk(
        rule="SVC002",
        address="198.51.100.7",
        port=22,
        reason="SSH with keys only, Auto Block on, reviewed with the ISP.",
        owner="bob",
        expires=date(2026, 12, 31),
        where="docs/audit.example.toml:118",
    )
    assert config.notify == NotifyConfig(
        when=NotifyWhen.NEW,
        min_severity=Severity.HIGH,
        fail_run_on_error=False,
        webhook=WebhookConfig(url="https://hooks.example.net/exposure-audit"),
        email=EmailConfig(
            host="smtp.example.net",
            sender="exposure-audit@example.net",
            to=("ops@example.net",),
            username_env="EXPOSURE_AUDIT_SMTP_USER",
            password_env="EXPOSURE_AUDIT_SMTP_PASSWORD",
        ),
        apprise=AppriseConfig(
            urls=("ntfy://ntfy.example.net/exposure-audit",),
            urls_env="EXPOSURE_AUDIT_APPRISE_URLS",
            timeout=10.0,
        ),
    )


def test_the_example_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    for table, keys in KEYS.items():
        for key in keys:
            assert re.search(rf"^(# )?{key} = ", text, re.MULTILINE), (table, key)


def test_the_examples_commented_values_are_valid_too() -> None:
    # Given the example with every commented-out "# key = value" line switched on (url_env
    # replaces url: they are alternatives)
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        if line.startswith("url = "):
            continue
        lines.append(re.sub(r"^# (\w+ = |\[cluster\]$|\[metrics\]$)", r"\1", line))
    # When it is parsed, then every documented value is accepted
    config = parse("\n".join(lines))
    assert config.ports == "21-23,80,443,445,873,5000-5001,U:161"
    assert config.host_timeout == 60.0 and config.upnp is True
    assert config.notify is not None and config.notify.webhook is not None
    assert config.notify.webhook.url_env == "EXPOSURE_AUDIT_WEBHOOK_URL"
    assert config.cluster == ClusterConfig("tcp://10.0.0.1:8786", ("eu", "us"), 64)
    assert config.metrics is not None and config.metrics.path.endswith("exposure-audit.prom")


def test_relative_paths_are_kept_and_resolved_against_the_files_directory() -> None:
    config = parse('target_files = ["targets.txt", "/srv/more.txt"]\n')
    assert config.base_dir == "/etc/exposure-audit"
    assert config.target_files == ("targets.txt", "/srv/more.txt")
    assert [config.resolve(p) for p in config.target_files] == [
        "/etc/exposure-audit/targets.txt",
        "/srv/more.txt",
    ]
    assert parse_config("", "audit.toml").resolve("h.sqlite3") == "h.sqlite3"


def test_an_empty_file_sets_nothing() -> None:
    config = parse("")
    assert config == AuditConfig(source=config.source, base_dir="/etc/exposure-audit")
    assert config.notify is None and config.history == HistoryConfig()


def test_defaults_of_the_notification_tables() -> None:
    config = parse(
        '[notify.webhook]\nurl_env = "HOOK"\n'
        '[notify.email]\nhost = "localhost"\nport = 25\nstarttls = false\n'
        'sender = "a@example.net"\nto = ["b@example.net"]\n'
    )
    assert config.notify == NotifyConfig(
        webhook=WebhookConfig(url_env="HOOK", format=WebhookFormat.JSON, retries=3),
        email=EmailConfig(
            host="localhost",
            sender="a@example.net",
            to=("b@example.net",),
            port=25,
            starttls=False,
        ),
    )
    assert config.notify.when == "change" and config.notify.min_severity is Severity.INFO


# --- errors name the file, the line and the key ------------------------------------------------

_EMAIL = (
    '[notify.email]\nhost = "smtp.example.net"\nsender = "a@example.net"\nto = ["b@example.net"]\n'
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fail-on = 'high'\n", "audit.toml:1: fail-on: unknown key (did you mean fail_on?)"),
        (
            "targets = 'nas.example.net'\n",
            "audit.toml:1: targets: must be an array of strings, not a string",
        ),
        (
            'targets = [\n  "nas.example.net",\n  "-oN /tmp/x",\n]\n',
            "audit.toml:3: targets[1]: '-oN /tmp/x': looks like an option; a target never "
            "starts with '-'",
        ),
        ("exclude = [1]\n", "audit.toml:1: exclude[0]: must be a string, not an integer"),
        (
            "ports = '22,99999'\n",
            "audit.toml:1: ports: bad port range '99999' in '22,99999' (ports are 1-65535, "
            "low-high)",
        ),
        (
            "allow_private = 'yes'\n",
            "audit.toml:1: allow_private: must be true or false, not a string",
        ),
        ("max_hosts = 0\n", "audit.toml:1: max_hosts: must be between 1 and 4294967296, not 0"),
        (
            "host_timeout = -1\n",
            "audit.toml:1: host_timeout: must be more than 0 and at most 86400 seconds, not -1",
        ),
        (
            "request_timeout = true\n",
            "audit.toml:1: request_timeout: must be a number of seconds, not a boolean",
        ),
        (
            "fail_on_new = 'severe'\n",
            "audit.toml:1: fail_on_new: 'severe' is not one of info, low, medium, high, "
            "critical, never",
        ),
        ("history = '/var/lib/h'\n", "audit.toml:1: history: must be a table, not a string"),
        ("\n[history]\npath = 3\n", "audit.toml:3: history.path: must be a string, not an integer"),
        (
            "[history]\nfile = 'h'\n",
            "audit.toml:2: history.file: unknown key (known: path, enabled)",
        ),
        (
            "[notify]\nwhen = 'change'\n",
            "audit.toml:1: notify: no channel: add a [notify.webhook], [notify.email] or "
            "[notify.apprise] table",
        ),
        (
            "[notify]\nwhen = 'daily'\n",
            "audit.toml:2: notify.when: 'daily' is not one of always, change, new",
        ),
        (
            "[notify.webhook]\nurl = 'ftp://example.net/x'\n",
            "audit.toml:2: notify.webhook.url: must be an http:// or https:// URL"
            " (its scheme is 'ftp')",
        ),
        (
            "[notify.webhook]\nurl = 'https://example.net/x'\nurl_env = 'HOOK'\n",
            "audit.toml:2: notify.webhook.url: give exactly one of url and url_env",
        ),
        (
            "[notify.webhook]\nurl_env = 'https://hooks.slack.com/services/T0/B0/x'\n",
            "audit.toml:2: notify.webhook.url_env: must be the NAME of an environment variable "
            "(letters, digits, _), not its value",
        ),
        (
            "[notify.webhook]\nurl_env = 'HOOK'\nretries = 100\n",
            "audit.toml:3: notify.webhook.retries: must be between 0 and 10, not 100",
        ),
        (
            _EMAIL + "password = 'hunter2'\n",
            "audit.toml:5: notify.email.password: secrets never go in the file: set password_env "
            "to the NAME of the environment variable that holds the password",
        ),
        (
            _EMAIL + "username_env = 'SMTP_USER'\n",
            "audit.toml:1: notify.email.password_env: missing (username_env and password_env go "
            "together)",
        ),
        (
            _EMAIL + "username_env = 'U'\npassword_env = 'P'\nstarttls = false\n",
            "audit.toml:7: notify.email.starttls: refusing to send SMTP credentials without "
            "STARTTLS: set starttls = true or drop username_env/password_env",
        ),
        (
            _EMAIL.replace('["b@example.net"]', '["b@example.net\\r\\nBcc: x@evil.example"]'),
            "audit.toml:4: notify.email.to[0]: must be an e-mail address like ops@example.net",
        ),
        (
            _EMAIL.replace('to = ["b@example.net"]\n', ""),
            "audit.toml:1: notify.email.to: missing (a list of addresses)",
        ),
        (
            _EMAIL.replace("to = [", "cc = ["),
            "audit.toml:4: notify.email.cc: unknown key (known: host, port, starttls, sender, to, "
            "username_env, password_env, retries)",
        ),
        (
            "notify.email.port = 'submission'\n",
            "audit.toml:1: notify.email.port: must be an integer, not a string",
        ),
        (
            "[[accept]]\nid = 'DSM005-3f1c0e9a2b7d'\nreason = 'r'\nowner = 'o'\n",
            "audit.toml:1: accept[0].expires: missing (every entry needs reason, owner and "
            "expires)",
        ),
        ("targets = [\n", "audit.toml:2: not valid TOML: Invalid value"),
        ("a = 1\na = 2\n", "audit.toml:2: not valid TOML: Cannot overwrite a value"),
    ],
)
def test_a_bad_key_or_value_is_a_config_error_naming_file_line_and_key(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "audit.toml")
    assert str(caught.value) == message


def test_a_config_error_is_a_usage_error_with_its_parts() -> None:
    with pytest.raises(UsageError) as caught:
        parse_config(_EMAIL + "port = 'x'\n", "audit.toml")
    error = caught.value
    assert isinstance(error, ConfigError)
    assert (error.source, error.line, error.key) == ("audit.toml", 5, "notify.email.port")


def test_an_odd_key_is_quoted_and_escaped_in_the_message() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('"\\u001b[2J" = 1\n', "audit.toml")
    assert str(caught.value).startswith('audit.toml:1: "\\x1b[2J": unknown key')
    assert "\x1b" not in str(caught.value)


# --- nothing but ConfigError, whatever the text ------------------------------------------------

_FRAGMENTS = [
    *EXAMPLE.read_text().splitlines(),
    "[notify]",
    "[notify.webhook]",
    "[[accept]]",
    "[history]",
    "targets = [1, [2], {a = 3}]",
    "ports = 'U:0'",
    'expires = "2026-02-30"',
    "port = -1",
    "to = []",
    'url = "http://[::1"',
    "when = 'NEW'",
    "max_hosts = 1e9",
    "x = '''a'''",
    'key."dotted key" = """multi',
    'line"""',
    "[[accept.sub]]",
    "accept = [{id = 'x'}, 3]",
    "\x00",
    "\ud800 = 1",
]


@settings(max_examples=300)
@given(st.text())
def test_arbitrary_text_raises_only_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse(text)


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=40))
def test_shuffled_config_lines_raise_only_config_error(lines: list[str]) -> None:
    try:
        parse("\n".join(lines))
    except ConfigError as exc:
        assert exc.line >= 0 and str(exc).startswith("/etc/exposure-audit/audit.toml")


def test_a_cluster_table_needs_its_scheduler_and_checks_its_values() -> None:
    config = parse('[cluster]\nscheduler = "tcp://10.0.0.1:8786"\nvantages = ["eu"]\n')
    assert config.cluster == ClusterConfig("tcp://10.0.0.1:8786", ("eu",), None)
    with pytest.raises(ConfigError, match=r"audit\.toml:1: cluster\.scheduler: missing"):
        parse("[cluster]\nblock_size = 8\n")
    with pytest.raises(ConfigError, match=r"audit\.toml:3: cluster\.block_size"):
        parse('[cluster]\nscheduler = "tcp://10.0.0.1:8786"\nblock_size = 0\n')
    with pytest.raises(ConfigError, match=r"cluster\.workers"):
        parse('[cluster]\nscheduler = "tcp://10.0.0.1:8786"\nworkers = 3\n')
