"""Running the real CLI (``python3 -m exposure_audit``) in a subprocess, for the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["run_cli", "store_runs"]


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``exposure-audit ARGS``, its output captured as text; never raises for the exit code."""
    return subprocess.run(
        [sys.executable, "-m", "exposure_audit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def store_runs(history: Path, host: str, port: int, count: int = 2) -> Path:
    """``count`` complete runs of a quick real scan of ``host:port`` (no UDP, UPnP or -sV)
    stored in ``history`` (ids 1 ... count); returns ``history``."""
    for _ in range(count):
        done = run_cli(
            "scan", host, "--allow-private", "-p", str(port), "--no-udp", "--no-upnp",
            "--no-version-detection", "--history", str(history), "--format", "json", "-q",
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
    return history
