"""Typed settings: flags over the config file over the defaults, field by field; a flag a
command does not offer is never given; the thresholds' interplay; the bounds."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from exposure_audit.cli.config import parse_config
from exposure_audit.cli.settings import (
    DEFAULT_HOST_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    ScanSettings,
    Thresholds,
    merge_settings,
)
from exposure_audit.errors import UsageError
from exposure_audit.findings import Severity

CONFIG = parse_config(
    'host_timeout = 30\nports = "22"\nfail_on = "medium"\n[history]\npath = "h.sqlite3"\n',
    "/etc/ea/audit.toml",
)


def test_nothing_given_is_the_defaults() -> None:
    merged = merge_settings(argparse.Namespace(), None)
    assert merged.scan == ScanSettings()
    assert (merged.scan.host_timeout, merged.scan.request_timeout) == (60.0, 10.0)
    assert (DEFAULT_HOST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT) == (60.0, 10.0)
    assert merged.thresholds == Thresholds(Severity.HIGH, None)
    assert merged.notify.plan({}) is None


def test_a_flag_wins_over_the_config_and_the_config_over_the_default() -> None:
    merged = merge_settings(argparse.Namespace(host_timeout=5.0, request_timeout=None), CONFIG)
    assert merged.scan.host_timeout == 5.0
    assert merged.scan.request_timeout == DEFAULT_REQUEST_TIMEOUT
    assert merged.scan.ports == "22"
    assert merged.thresholds.fail_on is Severity.MEDIUM
    assert merged.history.path == Path("/etc/ea/h.sqlite3")
    flagged = merge_settings(argparse.Namespace(history="x.sqlite3", no_history=False), CONFIG)
    assert flagged.history.store_path() == Path("x.sqlite3")
    off = merge_settings(argparse.Namespace(no_history=True), CONFIG)
    assert off.history.store_path() is None


def test_fail_on_new_turns_the_default_fail_on_off_unless_fail_on_is_set() -> None:
    assert merge_settings(argparse.Namespace(fail_on_new="high"), None).thresholds == Thresholds(
        None, Severity.HIGH
    )
    both = merge_settings(argparse.Namespace(fail_on_new="high", fail_on="low"), None)
    assert both.thresholds == Thresholds(Severity.LOW, Severity.HIGH)
    with pytest.raises(UsageError, match=r"^--fail-on-new: "):
        merge_settings(argparse.Namespace(fail_on_new="loud"), None)


def test_the_bounds_name_the_commands_flags() -> None:
    with pytest.raises(UsageError, match=r"^--host-timeout and --request-timeout must be positive"):
        ScanSettings(request_timeout=0).check_bounds("--host-timeout and --request-timeout")
    with pytest.raises(UsageError, match=r"^--max-body must be at least 1024 bytes$"):
        ScanSettings(max_body=10).check_bounds("--host-timeout")
    with pytest.raises(UsageError, match=r"^--max-hosts must be at least 1$"):
        ScanSettings(max_hosts=0).check_max_hosts()


def test_a_webhook_flag_replaces_the_configured_url_and_keeps_its_format() -> None:
    config = parse_config(
        '[notify]\nwhen = "new"\n[notify.webhook]\nurl_env = "HOOK"\nformat = "slack"\n',
        "audit.toml",
    )
    merged = merge_settings(argparse.Namespace(webhook="https://chat.example/hook"), config)
    plan = merged.notify.plan({"HOOK": "https://old.example/"})
    assert plan is not None and plan.webhook is not None
    assert (plan.when, plan.webhook.url, plan.webhook.format) == (
        "new",
        "https://chat.example/hook",
        "slack",
    )
    with pytest.raises(UsageError, match="url_env names 'HOOK', which is not set"):
        merged.notify.plan({})
