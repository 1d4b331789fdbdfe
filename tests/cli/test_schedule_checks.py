"""``schedule --print`` checks the config as the weekly ``scan -c FILE --compare`` will read
it, and prints nothing (exit 2, the reason on stderr) for one that would fail every week
(issue 14, item 4). Nothing is scanned or resolved: every target is a documentation address
or a name under example.net."""

from __future__ import annotations

from pathlib import Path

import pytest

from .runner import run_cli

GOOD = 'targets = ["198.51.100.7", "nas.example.net"]\nallow_private = true\n'


def _schedule(config: Path, kind: str = "cron") -> tuple[int, str, str]:
    done = run_cli("schedule", "--print", kind, "-c", str(config), timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("text", "files", "reason"),
    [
        ('targets = ["198.51.100.7"]\n', {}, "not a public address"),
        ("allow_private = true\n", {}, "no targets"),
        ('target_files = ["targets.txt"]\nallow_private = true\n', {}, "targets.txt: not found"),
        (
            'target_files = ["targets.txt"]\nallow_private = true\n',
            {"targets.txt": "198.51.100.7\nnot a target!\n"},
            "targets.txt:2",
        ),
        (
            'targets = ["198.51.100.7"]\nallow_private = true\nexclude_files = ["skip.txt"]\n',
            {},
            "skip.txt: not found",
        ),
        (GOOD + 'ports = "22,99999"\n', {}, "99999"),
        (GOOD + 'fail_on = "severe"\n', {}, "fail_on"),
        (GOOD + "host_timeout = -1\n", {}, "host_timeout"),
        (GOOD + 'accepted_files = ["accepted.toml"]\n', {}, "accepted.toml: not found"),
        (GOOD + 'upnp_inventory = "inventory.json"\n', {}, "inventory.json: not found"),
        (GOOD + "bogus_key = 1\n", {}, "bogus_key"),
        ("targets = [\n", {}, "audit.toml"),
    ],
)
def test_a_config_that_would_fail_every_week_is_not_scheduled(
    tmp_path: Path, text: str, files: dict[str, str], reason: str
) -> None:
    config = tmp_path / "audit.toml"
    config.write_text(text)
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    for kind in ("cron", "systemd"):
        code, stdout, stderr = _schedule(config, kind)
        assert code == 2, stderr
        assert stdout == ""
        assert "not scheduled: the weekly scan would fail" in stderr
        assert reason in stderr
        assert "Traceback" not in stderr


def test_a_missing_config_is_not_scheduled(tmp_path: Path) -> None:
    code, stdout, stderr = _schedule(tmp_path / "absent.toml")
    assert code == 2 and stdout == "" and "absent.toml: not found" in stderr


def test_files_named_by_the_config_are_read_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "targets.txt").write_text("# the NAS\n198.51.100.7\n")
    (tmp_path / "audit.toml").write_text(
        'target_files = ["targets.txt"]\nallow_private = true\n[history]\npath = "h.sqlite3"\n'
    )
    code, stdout, stderr = _schedule(tmp_path / "audit.toml")
    assert code == 0, stderr
    assert stdout.startswith("0 6 * * 1 ") and "--compare" in stdout
    assert not (tmp_path / "h.sqlite3").exists()  # checking creates no store


def test_a_notification_variable_unset_here_is_a_warning_not_an_error(tmp_path: Path) -> None:
    config = tmp_path / "audit.toml"
    config.write_text(GOOD + '[notify.webhook]\nurl_env = "EXPOSURE_AUDIT_TEST_UNSET_HOOK"\n')
    code, stdout, stderr = _schedule(config, "systemd")
    assert code == 0
    assert "[Timer]" in stdout
    assert "warning" in stderr and "EXPOSURE_AUDIT_TEST_UNSET_HOOK" in stderr
