"""The package's public surface, progress output, and the layering the house style asks for."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import exposure_audit
from exposure_audit.cli.progress import LineProgress, make_progress

PACKAGE = Path(exposure_audit.__file__).parent


def test_the_package_exports_only_its_version() -> None:
    assert exposure_audit.__all__ == ["__version__"]
    assert exposure_audit.__version__.count(".") == 2


def test_the_package_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exposure_audit", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and exposure_audit.__version__ in result.stdout


def test_no_shell_and_no_string_built_commands_anywhere() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "shell":
                raise AssertionError(f"{path}: shell= argument")
            if isinstance(node, ast.Attribute) and node.attr in ("system", "popen"):
                assert not (isinstance(node.value, ast.Name) and node.value.id == "os"), path


def test_progress_is_absent_on_a_pipe_unless_asked_and_silent_when_quiet() -> None:
    pipe = io.StringIO()
    assert make_progress(pipe, quiet=False, forced=False) is None
    assert make_progress(pipe, quiet=True, forced=True) is None
    progress = make_progress(pipe, quiet=False, forced=True)
    assert isinstance(progress, LineProgress)
    progress.start(2)
    progress.phase("discovering ports on 2 hosts")
    progress.advance()
    progress.advance()
    lines = pipe.getvalue().splitlines()
    assert "[0/2 hosts] discovering ports on 2 hosts" in lines
    assert lines[-1].startswith("[2/2 hosts]")


def test_a_forced_progress_shows_phases_on_stderr_during_a_scan() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "scan",
            "127.66.2.1",
            "-p",
            "9",
            "--allow-private",
            "--progress",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "discovering ports on 1 host\n" in result.stderr
    assert "[1/1 hosts] host done: 127.66.2.1, grade A" in result.stderr
    quiet = subprocess.run(
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "scan",
            "127.66.2.1",
            "-p",
            "9",
            "--allow-private",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert quiet.stderr == ""
