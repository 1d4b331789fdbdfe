"""Bad arguments are clean errors (issue 14 item 6, issue 15 item 5): every one exits 2 with a
one-line reason and never a traceback; a subcommand's mistyped option shows that subcommand's
usage; targets written as URLs or HOST:PORT get a hint; contradicting flags are refused;
everything a notification needs is checked before anything is scanned; options and targets
may be intermixed; Ctrl-C at any moment of the start leaves no traceback.

Through the real CLI. The only servers are on 127.145.1.0/24 (this suite's block).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..servers import Server, read_request, serve
from .runner import run_cli, store_runs

HOST = "127.145.1.1"  # the listener the stored runs saw
QUIET = "127.145.1.9"  # nothing listens here: a scan of it finds nothing, quickly


def _error_line(stderr: str) -> str:
    """The one line that says what was wrong (argparse puts its usage above it)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, stderr
    return lines[0]


async def _http(reader, writer, server: Server) -> None:  # type: ignore[no-untyped-def]
    await read_request(reader, server)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()


@pytest.fixture(scope="module")
def listener() -> Iterator[Server]:
    with serve(_http, host=HOST) as server:
        yield server


@pytest.fixture(scope="module")
def two_runs(listener: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A history store holding two complete runs (ids 1 and 2)."""
    history = tmp_path_factory.mktemp("two-runs") / "history.sqlite3"
    return store_runs(history, listener.host, listener.port)


# -- issue 14 item 6: bad arguments ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["history", "--limit", "-3"], "argument --limit: must be at least 0, not -3"),
        (["history", "--limit", "-1"], "argument --limit: must be at least 0, not -1"),
        (["history", "--limit", "9" * 30], "argument --limit: must be a 64-bit integer"),
        (["history", "--limit", "x" * 5000], "argument --limit: invalid int value"),
        (["report", "foo"], "argument RUN: 'foo' is not a run"),
        (["report", "9" * 23], "argument RUN: no run has an id that large"),
        (["diff", "1", "bar"], "argument NEW: 'bar' is not a run"),
        (["upnp-inventory", "--wait", "nan"], "argument --wait: must be more than 0"),
        (["grade", "--nmap-xml", "x.xml", "--host-timeout", "inf"], "--host-timeout: must be"),
    ],
)
def test_a_bad_argument_is_exit_2_with_a_one_line_reason(argv: list[str], reason: str) -> None:
    done = run_cli(*argv, timeout=60)
    assert done.returncode == 2
    line = _error_line(done.stderr)
    assert reason in line
    assert len(line) < 300  # a 5,000-character value is not echoed whole


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "0", "-5", "86401"])
@pytest.mark.parametrize("flag", ["--host-timeout", "--request-timeout", "--ssdp-wait"])
def test_a_timeout_that_is_not_a_finite_positive_number_is_refused(flag: str, value: str) -> None:
    done = run_cli("scan", QUIET, "--allow-private", "--dry-run", f"{flag}={value}", timeout=60)
    assert done.returncode == 2
    assert f"argument {flag}: must be more than 0 and at most 86400 seconds" in _error_line(
        done.stderr
    )


@pytest.mark.parametrize(
    ("flag", "value", "reason"),
    [
        ("--max-hosts", "99999999999999999999999", "must be at most 4,294,967,296"),
        ("--max-hosts", "5000000000", "must be at most 4,294,967,296"),
        ("--max-hosts", "0", "must be at least 1"),
        ("--max-body", "9" * 40, "must be at most"),
        ("--max-body", str(1 << 40), "must be at most 268,435,456"),
        ("--rate", "9" * 25, "must be a 64-bit integer"),
        ("--retries", "1" * 19, "must be 0-10"),
        ("--block-size", "-1", "--block-size must be 1-4096 addresses"),
    ],
)
def test_huge_and_negative_integers_are_refused(flag: str, value: str, reason: str) -> None:
    argv = ["scan", QUIET, "--allow-private", "--dry-run", flag, value]
    done = run_cli(*argv, *(["--cluster", "tcp://127.0.0.1:1"] if "block" in flag else []))
    assert done.returncode == 2
    assert reason in _error_line(done.stderr)


def test_a_run_the_store_does_not_hold_is_exit_2(two_runs: Path) -> None:
    for ref in ("5", "99999"):
        done = run_cli("report", ref, "--history", str(two_runs))
        assert done.returncode == 2
        assert f"no run '{ref}' in history store" in _error_line(done.stderr)
    done = run_cli("diff", "1", "7", "--history", str(two_runs))
    assert done.returncode == 2 and "no run '7'" in _error_line(done.stderr)


def test_a_diff_of_a_run_against_itself_says_so(two_runs: Path) -> None:
    for argv in (["2", "2"], ["2"], ["latest", "2"], ["1", "1"]):
        done = run_cli("diff", *argv, "--history", str(two_runs))
        assert done.returncode == 2, argv
        assert "a run has no changes against itself" in _error_line(done.stderr)
    assert run_cli("diff", "1", "2", "--history", str(two_runs)).returncode == 0


@pytest.mark.parametrize(
    ("command", "typo"),
    [("history", "--limt"), ("report", "--fromat"), ("diff", "--histroy"), ("scan", "--dryrun")],
)
def test_a_mistyped_option_shows_that_subcommands_usage(command: str, typo: str) -> None:
    argv = [command, *(["latest"] if command == "report" else []), typo, "1"]
    done = run_cli(*argv)
    assert done.returncode == 2
    assert done.stderr.startswith(f"usage: exposure-audit {command} ")
    assert f"exposure-audit {command}: error: unrecognized arguments: {typo}" in done.stderr


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("https://nas.example.net/", None),
        ("http://127.145.1.9:5000/login", None),
        ("127.145.1.9:5001", "127.145.1.9"),
        ("nas.example.net:5000", "nas.example.net"),
        ("[2001:db8::7]:443", "2001:db8::7"),
    ],
)
def test_a_url_or_host_port_target_gets_a_hint(
    target: str, host: str | None, tmp_path: Path
) -> None:
    done = run_cli("scan", target, "--allow-private", "--dry-run")
    assert done.returncode == 2
    line = _error_line(done.stderr)
    assert "use -p for ports" in line
    if host is not None:
        assert f"give the host ({host}) alone" in line
    listed = tmp_path / "targets.txt"
    listed.write_text(f"# weekly\n{target}\n")
    done = run_cli("scan", "-i", str(listed), "--allow-private", "--dry-run")
    assert done.returncode == 2
    assert f"{listed}:2:" in done.stderr and "use -p for ports" in done.stderr


@pytest.mark.parametrize("flag", [["--compare"], ["--fail-on-new", "high"]])
def test_no_history_with_a_comparison_is_a_usage_error(flag: list[str]) -> None:
    done = run_cli("scan", QUIET, "--allow-private", "--no-history", *flag)
    assert done.returncode == 2
    assert f"--no-history with {flag[0]}" in _error_line(done.stderr)


# -- issue 15 item 5: everything checked before the scan ---------------------------------------


def _refused_before_scanning(tmp_path: Path, *argv: str) -> str:
    """Run a real (not dry) scan of a listener; it must stop before anything is opened or
    sent: exit 2, no history store created, no connection to the listener."""
    history = tmp_path / "h.sqlite3"
    with serve(_http, host="127.145.1.2") as server:
        done = run_cli(
            "scan", "127.145.1.2", "--allow-private", "-p", str(server.port), "--no-udp",
            "--no-upnp", "--history", str(history), *argv, timeout=60,
        )  # fmt: skip
        time.sleep(0.2)
        contacted = list(server.requests)
    assert done.returncode == 2, done.stderr
    assert not history.exists()
    assert not contacted
    return _error_line(done.stderr)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:99999/x", "Port out of range"),
        ("http://xn--/x", "its host: not a valid host name"),
        ("ftp://x/", "its scheme is 'ftp'"),
        ("", "not empty"),
        ("hooks.example.net/x", "must be an http:// or https:// URL"),
    ],
)
def test_a_bad_webhook_is_refused_before_scanning(url: str, reason: str, tmp_path: Path) -> None:
    line = _refused_before_scanning(tmp_path, "--webhook", url)
    assert line.startswith("exposure-audit: error: --webhook must be an http:// or https:// URL")
    assert reason in line
    if url:
        assert url not in line  # a webhook's path is its secret: never shown


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://127.0.0.1:99999/x", "Port out of range"), ("http://xn--/x", "not a valid host")],
)
def test_a_bad_webhook_in_the_config_is_refused_before_scanning(
    url: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "audit.toml"
    config.write_text(f'[notify]\nwhen = "always"\n[notify.webhook]\nurl = "{url}"\n')
    line = _refused_before_scanning(tmp_path, "-c", str(config))
    assert f"{config}:4: notify.webhook.url: must be an http:// or https:// URL" in line
    assert reason in line
    # The same URL from the environment variable url_env names
    config.write_text('[notify]\nwhen = "always"\n[notify.webhook]\nurl_env = "BD_HOOK"\n')
    monkeypatch.setenv("BD_HOOK", url)
    line = _refused_before_scanning(tmp_path, "-c", str(config))
    assert "notify.webhook.url_env: the URL in $BD_HOOK must be an http" in line
    assert reason in line


def test_an_unset_smtp_password_is_refused_before_scanning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BD_SMTP_USER", "audit")
    monkeypatch.delenv("BD_SMTP_PASSWORD", raising=False)
    config = tmp_path / "audit.toml"
    config.write_text(
        '[notify]\nwhen = "always"\n[notify.email]\nhost = "127.145.1.3"\n'
        'sender = "audit@example.net"\nto = ["ops@example.net"]\n'
        'username_env = "BD_SMTP_USER"\npassword_env = "BD_SMTP_PASSWORD"\n'
    )
    line = _refused_before_scanning(tmp_path, "-c", str(config))
    assert "notify.email.password_env names 'BD_SMTP_PASSWORD', which is not set" in line


def test_an_empty_port_list_is_an_error_not_the_default_set() -> None:
    done = run_cli("scan", QUIET, "--allow-private", "--dry-run", "-p", "")
    assert done.returncode == 2
    assert "empty port list" in _error_line(done.stderr)


def test_options_and_targets_may_be_intermixed() -> None:
    done = run_cli(
        "scan", "127.145.1.10", "-p", "5000", "127.145.1.11", "--allow-private", "127.145.1.12",
        "--dry-run", "--no-history",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = [line for line in done.stdout.splitlines() if line.startswith("address ")]
    assert listed == [f"address 127.145.1.1{i}" for i in range(3)]
    assert "ports: tcp 5000; udp -" in done.stdout


def test_a_bom_is_accepted_and_duplicates_are_removed_before_max_hosts_counts(
    tmp_path: Path,
) -> None:
    listed = tmp_path / "targets.txt"
    listed.write_bytes(
        b"\xef\xbb\xbf127.145.1.20\n127.145.1.20\n127.145.1.20/31\n127.145.1.21 # again\n"
    )
    done = run_cli("scan", "-i", str(listed), "--allow-private", "--max-hosts", "2", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "2 addresses" in done.stdout
    done = run_cli("scan", "-i", str(listed), "--allow-private", "--max-hosts", "1", "--dry-run")
    assert done.returncode == 2
    assert f"{listed}:3: '127.145.1.20/31': the targets expand past 1 addresses" in done.stderr


@pytest.mark.parametrize("delay", [0.1, 0.15, 0.2, 0.25, 0.3])
def test_ctrl_c_in_the_first_moments_leaves_no_traceback(delay: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "exposure_audit", "scan", QUIET, "--allow-private", "--no-history",
         "-p", "5000", "--no-upnp", "--no-udp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert child.returncode == 3, stderr
    assert "interrupted by SIGINT" in stderr
