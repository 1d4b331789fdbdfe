"""Bounded input (issue 15 item 6): whatever file is given as targets or config (a device that
never ends, random bytes, a 300 MB line, a file past the 16 MiB cap), the CLI stops with exit 2
within a deadline, a message naming the cap and ``file:line`` and quoting at most 80
characters, and a bounded peak memory; a /8 dry run is planned as ranges, not 16 million
strings. Bounds are asserted (peak RSS, a deadline), never speed.

The peak memory is the CLI child's own ``ru_maxrss``, read by a small parent process that runs
nothing else (RUSAGE_CHILDREN of the test process would include every earlier child).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MEMORY_BOUND_KB = 250 * 1024  # the CLI itself takes ~60 MB; before the caps, GBs
DEADLINE = 60  # seconds: a bound for hostile input, far above the usual second or two

_MEASURE = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + '\\n')\n"
    "sys.stdout.write(str(done.returncode) + '\\n' + done.stdout[-2000:] + '\\0' + done.stderr)\n"
)


def _bounded_cli(*args: str) -> tuple[int, int, str, str]:
    """Run ``exposure-audit ARGS``; returns (exit code, peak RSS in KiB, stdout tail, stderr),
    failing the test past :data:`DEADLINE`."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "exposure_audit", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    peak, code, rest = measured.stdout.split("\n", 2)
    stdout, stderr = rest.split("\0", 1)
    return int(code), int(peak), stdout, stderr


def _one_clean_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[:2000]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[:2000]
    assert len(lines[0]) < 400  # nothing of the input is echoed beyond a short quote
    return lines[0]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/dev/zero", "/dev/zero:1: a line longer than 4,096 bytes"),
        ("/dev/urandom", "/dev/urandom:"),
    ],
)
def test_an_endless_device_as_targets_is_refused_within_bounds(source: str, message: str) -> None:
    code, peak, _, stderr = _bounded_cli("scan", "-i", source, "--allow-private", "--dry-run")
    assert code == 2
    line = _one_clean_line(stderr)
    assert f"targets file {message}" in line
    if source == "/dev/urandom":  # random bytes: not UTF-8, or a line past the cap
        assert "not UTF-8 text" in line or "a line longer than 4,096 bytes" in line
    assert peak < MEMORY_BOUND_KB


def test_a_300_mb_one_line_file_is_refused_naming_the_cap(tmp_path: Path) -> None:
    huge = tmp_path / "targets.txt"
    with huge.open("wb") as handle:  # sparse: 300 MB of NUL bytes, one line, no disk used
        handle.truncate(300 * 1024 * 1024)
    code, peak, _, stderr = _bounded_cli("scan", "-i", str(huge), "--allow-private", "--dry-run")
    assert code == 2
    assert "larger than the 16 MiB input cap (314,572,800 bytes)" in _one_clean_line(stderr)
    assert peak < MEMORY_BOUND_KB
    config = tmp_path / "audit.toml"
    config.symlink_to(huge)
    code, peak, _, stderr = _bounded_cli("scan", "-c", str(config), "--dry-run")
    assert code == 2 and f"config file {config}: larger than the 16 MiB" in stderr
    assert peak < MEMORY_BOUND_KB


def test_a_long_line_is_refused_at_its_line_and_quoted_short(tmp_path: Path) -> None:
    listed = tmp_path / "targets.txt"
    listed.write_text("127.145.2.1\n# a comment\n" + "nas" * 1_000_000 + "\n")
    code, peak, _, stderr = _bounded_cli("scan", "-i", str(listed), "--allow-private", "--dry-run")
    assert code == 2
    line = _one_clean_line(stderr)
    assert f"targets file {listed}:3: a line longer than 4,096 bytes" in line
    assert "nasnas" not in line
    assert peak < MEMORY_BOUND_KB


def test_a_long_item_under_the_line_cap_is_quoted_cut_to_80_characters(tmp_path: Path) -> None:
    listed = tmp_path / "targets.txt"
    listed.write_text("x" * 4000 + "\n")
    code, _, _, stderr = _bounded_cli("scan", "-i", str(listed), "--allow-private", "--dry-run")
    assert code == 2
    line = _one_clean_line(stderr)
    assert f"{listed}:1: '{'x' * 79}…': too long" in line
    # an argument too: the kernel allows 128 KiB in one, and the message quotes 80 characters
    code, _, _, stderr = _bounded_cli("scan", "y" * 100_000, "--allow-private", "--dry-run")
    assert code == 2 and f"argument 1: '{'y' * 79}…'" in _one_clean_line(stderr)


def test_a_file_past_the_input_cap_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "targets.txt"
    line = b"127.145.2.1\n"
    listed.write_bytes(line * ((16 << 20) // len(line) + 1))
    code, peak, _, stderr = _bounded_cli("scan", "-i", str(listed), "--allow-private", "--dry-run")
    assert code == 2
    assert f"targets file {listed}: larger than the 16 MiB input cap" in _one_clean_line(stderr)
    assert peak < MEMORY_BOUND_KB


def test_max_hosts_is_capped_as_in_the_config() -> None:
    code, _, _, stderr = _bounded_cli(
        "scan", "10.0.0.0/8", "--allow-private", "--dry-run", "--max-hosts", "5000000000"
    )
    assert code == 2
    assert "argument --max-hosts: must be at most 4,294,967,296" in stderr


@pytest.mark.parametrize(
    ("targets", "count", "first_range"),
    [
        (["10.0.0.0/8"], 16_777_216, "range 10.0.0.0/8 (16,777,216 addresses)"),
        (["10.0.0.0/8", "10.1.0.0/16", "10.0.0.7"], 16_777_216, "range 10.0.0.0/8"),
        (["2001:db8::/96"], 4_294_967_296, "range 2001:db8::/96 (4,294,967,296 addresses)"),
    ],
)
def test_a_huge_range_is_planned_lazily_within_bounds(
    targets: list[str], count: int, first_range: str
) -> None:
    code, peak, stdout, stderr = _bounded_cli(
        "scan",
        *targets,
        "--allow-private",
        "--dry-run",
        "--no-history",
        "--max-hosts",
        str(1 << 32),
    )
    assert code == 0, stderr
    assert peak < MEMORY_BOUND_KB  # before: 1.7 GB for a /8
    assert f"{count:,} addresses".replace(",", "") in stdout.replace(",", "")
    assert first_range in stdout


def test_a_huge_range_minus_exclusions_lists_what_is_left() -> None:
    code, peak, stdout, stderr = _bounded_cli(
        "scan", "10.0.0.0/8", "--exclude", "10.0.0.0/9", "--exclude", "10.128.0.0/10",
        "--allow-private", "--dry-run", "--no-history", "--max-hosts", str(1 << 24),
    )  # fmt: skip
    assert code == 0, stderr
    assert peak < MEMORY_BOUND_KB
    assert "range 10.192.0.0/10 (4,194,304 addresses)" in stdout
