"""Running the real CLI (``python3 -m exposure_audit``) in a subprocess, for the CLI tests."""

from __future__ import annotations

import subprocess
import sys

__all__ = ["run_cli"]


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``exposure-audit ARGS``, its output captured as text; never raises for the exit code."""
    return subprocess.run(
        [sys.executable, "-m", "exposure_audit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
