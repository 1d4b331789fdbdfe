"""Weekly runs: a crontab line or a systemd service and timer that run
``python -m exposure_audit scan -c CONFIG --compare``.

Pure: the functions build text from the values given and read nothing from the system (the
caller makes paths absolute, since neither cron nor systemd runs in the caller's directory).
Every value is quoted for where it lands: :func:`shlex.quote` for the shell cron hands the line
to, with ``%`` escaped because cron turns a bare ``%`` into a newline (crontab(5)); systemd's own
quoting, with ``%`` and ``$`` doubled, for ``ExecStart=`` (systemd.service(5), "Command lines").
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

__all__ = ["SERVICE_NAME", "TIMER_NAME", "cron_line", "scan_argv", "systemd_units"]

SERVICE_NAME = "exposure-audit.service"
TIMER_NAME = "exposure-audit.timer"

_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""systemd's day names by cron day number (0 and 7 are both Sunday)."""

_SYSTEMD_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:=@")


def scan_argv(config_path: Path, *, python: str = sys.executable) -> list[str]:
    """The command a scheduled run executes. Raises ``ValueError`` for a relative or
    unprintable path."""
    _check_path("config path", str(config_path))
    _check_path("python", python)
    return [python, "-m", "exposure_audit", "scan", "-c", str(config_path), "--compare"]


def cron_line(
    config_path: Path,
    *,
    weekday: int = 1,
    hour: int = 6,
    minute: int = 0,
    python: str = sys.executable,
    log: Path | None = None,
) -> str:
    """One crontab line running the scan weekly on ``weekday`` (0 or 7 Sunday, 1 Monday, ...) at
    ``hour``:``minute`` local time. With ``log``, stdout and stderr are appended to that file;
    without, cron mails them to the crontab's owner (``MAILTO``).

    Raises ``ValueError`` for an out-of-range time or a relative or unprintable path.
    """
    _check_time(weekday, hour, minute)
    argv = scan_argv(config_path, python=python)
    command = shlex.join(argv)
    if log is not None:
        _check_path("log path", str(log))
        command += f" >> {shlex.quote(str(log))} 2>&1"
    # crontab(5): an unescaped % ends the command and starts its stdin.
    command = command.replace("%", "\\%")
    return f"{minute} {hour} * * {weekday} {command}"


def systemd_units(
    config_path: Path,
    *,
    weekday: int = 1,
    hour: int = 6,
    minute: int = 0,
    python: str = sys.executable,
) -> tuple[str, str]:
    """The text of ``exposure-audit.service`` (a oneshot running the scan; output goes to the
    journal) and ``exposure-audit.timer`` (weekly on ``weekday`` at ``hour``:``minute``;
    ``Persistent=true`` so a run missed while the machine was off happens at the next boot).

    Raises ``ValueError`` as :func:`cron_line` does.
    """
    _check_time(weekday, hour, minute)
    argv = scan_argv(config_path, python=python)
    exec_start = " ".join(_systemd_quote(arg) for arg in argv)
    service = "\n".join(
        [
            "[Unit]",
            "Description=exposure-audit: weekly outside-in exposure scan",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart={exec_start}",
            "# SMTP credentials named by [notify.email] username_env/password_env, from a file",
            "# readable only by the service's user:",
            "# EnvironmentFile=/etc/exposure-audit/credentials.env",
            "",
        ]
    )
    timer = "\n".join(
        [
            "[Unit]",
            "Description=exposure-audit: weekly outside-in exposure scan",
            "",
            "[Timer]",
            f"OnCalendar={_DAYS[weekday]} *-*-* {hour:02d}:{minute:02d}:00",
            "Persistent=true",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )
    return service, timer


def _check_time(weekday: int, hour: int, minute: int) -> None:
    if not 0 <= weekday <= 7:
        raise ValueError(f"weekday must be 0-7 (0 and 7 are Sunday), not {weekday}")
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0-23, not {hour}")
    if not 0 <= minute <= 59:
        raise ValueError(f"minute must be 0-59, not {minute}")


def _check_path(what: str, path: str) -> None:
    if not path.startswith("/"):
        raise ValueError(
            f"{what} must be absolute ({path!r}): scheduled runs do not start in this directory"
        )
    if not path.isprintable():
        raise ValueError(f"{what} contains a line break or control character: {path!r}")


def _systemd_quote(arg: str) -> str:
    """One ``ExecStart=`` word: specifiers (``%``) and variables (``$``) doubled so they stay
    literal, and double quotes around a word with anything else than plain path characters."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and all(c in _SYSTEMD_SAFE for c in escaped.replace("%%", "").replace("$$", "")):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
