"""Scheduling: the crontab line and the systemd units, pinned, and their quoting checked the way
cron's shell and systemd read them back."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exposure_audit.history.schedule import (
    SERVICE_NAME,
    TIMER_NAME,
    cron_line,
    scan_argv,
    systemd_units,
)

CONFIG = Path("/etc/exposure-audit/audit.toml")
PYTHON = "/usr/bin/python3"
HOSTILE = '/home/me/my audits/100% $HOME it\'s "x".toml'

SERVICE = """\
[Unit]
Description=exposure-audit: weekly outside-in exposure scan
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 -m exposure_audit scan -c /etc/exposure-audit/audit.toml --compare
# SMTP credentials named by [notify.email] username_env/password_env, from a file
# readable only by the service's user:
# EnvironmentFile=/etc/exposure-audit/credentials.env
"""

TIMER = """\
[Unit]
Description=exposure-audit: weekly outside-in exposure scan

[Timer]
OnCalendar=Mon *-*-* 06:00:00
Persistent=true

[Install]
WantedBy=timers.target
"""


def test_the_default_cron_line_runs_the_compared_scan_on_monday_at_six() -> None:
    assert cron_line(CONFIG, python=PYTHON) == (
        "0 6 * * 1 /usr/bin/python3 -m exposure_audit scan"
        " -c /etc/exposure-audit/audit.toml --compare"
    )


def test_the_cron_line_appends_output_to_the_log_file() -> None:
    line = cron_line(
        CONFIG, python=PYTHON, log=Path("/var/log/exposure-audit.log"), weekday=0, hour=23, minute=5
    )
    assert line == (
        "5 23 * * 0 /usr/bin/python3 -m exposure_audit scan -c /etc/exposure-audit/audit.toml"
        " --compare >> /var/log/exposure-audit.log 2>&1"
    )


def test_the_cron_line_quotes_paths_for_the_shell_and_escapes_percent_for_cron() -> None:
    line = cron_line(Path(HOSTILE), python=PYTHON, log=Path("/var/log/a b.log"))
    assert line.startswith("0 6 * * 1 ")
    command = line.removeprefix("0 6 * * 1 ")
    assert "%" not in command.replace("\\%", "")
    # cron drops the backslash of \% and hands the rest to /bin/sh
    words = shlex.split(command.replace("\\%", "%"))
    assert words == [*scan_argv(Path(HOSTILE), python=PYTHON), ">>", "/var/log/a b.log", "2>&1"]


def test_the_systemd_units_are_a_oneshot_service_and_a_persistent_weekly_timer() -> None:
    assert systemd_units(CONFIG, python=PYTHON) == (SERVICE, TIMER)
    assert (SERVICE_NAME, TIMER_NAME) == ("exposure-audit.service", "exposure-audit.timer")


@pytest.mark.parametrize(("weekday", "day"), [(0, "Sun"), (3, "Wed"), (7, "Sun")])
def test_the_timer_names_the_day_and_time(weekday: int, day: str) -> None:
    _, timer = systemd_units(CONFIG, python=PYTHON, weekday=weekday, hour=7, minute=30)
    assert f"OnCalendar={day} *-*-* 07:30:00\n" in timer


def test_systemd_specifiers_variables_and_quotes_stay_literal() -> None:
    service, _ = systemd_units(Path(HOSTILE), python=PYTHON)
    (exec_start,) = [line for line in service.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == (
        "ExecStart=/usr/bin/python3 -m exposure_audit scan"
        ' -c "/home/me/my audits/100%% $$HOME it\'s \\"x\\".toml" --compare'
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    # Given units for a config path with a space, a specifier, a variable and quotes
    config = tmp_path / "my dir" / '100% $HOME it\'s "x".toml'
    service, timer = systemd_units(config, python=sys.executable)
    (tmp_path / SERVICE_NAME).write_text(service)
    (tmp_path / TIMER_NAME).write_text(timer)
    # When systemd reads them, Then it finds nothing wrong
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(tmp_path / SERVICE_NAME),
            str(tmp_path / TIMER_NAME),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weekday": 8}, "weekday must be 0-7"),
        ({"hour": 24}, "hour must be 0-23"),
        ({"minute": -1}, "minute must be 0-59"),
        ({"python": "python3"}, "python must be absolute"),
    ],
)
def test_out_of_range_times_and_relative_programs_are_refused(
    kwargs: dict[str, int | str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cron_line(CONFIG, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        systemd_units(CONFIG, **kwargs)  # type: ignore[arg-type]


def test_relative_or_multiline_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="config path must be absolute"):
        cron_line(Path("audit.toml"))
    with pytest.raises(ValueError, match="log path must be absolute"):
        cron_line(CONFIG, log=Path("scan.log"))
    with pytest.raises(ValueError, match="line break"):
        systemd_units(Path("/etc/a\nExecStartPre=/bin/true"))
