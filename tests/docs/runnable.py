"""The command blocks of the documentation that a test runs (the marker is described in
DEVELOPERS.md, "Runnable documentation").

A block is a fenced ``sh`` block directly after an HTML comment ``<!-- runnable -->`` (runs as
written; every scan in it is a ``--dry-run``), ``<!-- runnable: lab -->`` (runs while the demo
lab serves 127.77.0.0/24; only loopback addresses) or ``<!-- runnable: workflow -->`` (the
weekly workflow of docs/scheduling.md, which its own test runs). One command per line; a line
whose comment says ``(exit N)`` must exit N, every other line 0.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "REPO",
    "Block",
    "Command",
    "blocks_of",
    "check_safe",
    "fresh_clone",
    "run_line",
]

REPO = Path(__file__).resolve().parents[2]

_MARKER = re.compile(r"<!--\s*runnable(?::\s*(\w+))?\s*-->")
_EXIT = re.compile(r"\(exit (\d+)\)")


@dataclass(frozen=True)
class Command:
    """One line of a block: the text as written, where it is, the exit status it must give."""

    text: str
    where: str
    exit_code: int


@dataclass(frozen=True)
class Block:
    kind: str  # "plain", "lab" or "workflow"
    where: str
    commands: tuple[Command, ...]


def blocks_of(path: Path) -> list[Block]:
    """Every marked block of the Markdown file ``path``. ``ValueError`` when a marker is not
    followed directly by a fenced ``sh`` block (a marker that silently marks nothing)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
    blocks: list[Block] = []
    for index, line in enumerate(lines):
        marker = _MARKER.fullmatch(line.strip())
        if marker is None:
            continue
        fence = index + 1
        if fence >= len(lines) or lines[fence].strip() != "```sh":
            raise ValueError(f"{name}:{index + 1}: a runnable marker must precede a ```sh block")
        commands: list[Command] = []
        end = fence + 1
        while end < len(lines) and lines[end].strip() != "```":
            text = lines[end].strip()
            if text and not text.startswith("#"):
                code = _EXIT.search(text.partition("#")[2])
                commands.append(
                    Command(text, f"{name}:{end + 1}", int(code.group(1)) if code else 0)
                )
            end += 1
        if end == len(lines):
            raise ValueError(f"{name}:{fence + 1}: the block never ends")
        blocks.append(Block(marker.group(1) or "plain", f"{name}:{fence + 1}", tuple(commands)))
    return blocks


def _addresses(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found = []
    for token in re.split(r"[\s,=]+", text.partition("#")[0]):
        try:
            found.append(ipaddress.ip_network(token.strip("[]"), strict=False))
        except ValueError:
            continue
    return found


def check_safe(kind: str, command: Command) -> None:
    """AssertionError unless ``command`` keeps to the network rule: in a plain block nothing
    that sends a packet runs without ``--dry-run``; in a lab block every address is loopback
    and no other command than ``scan`` reaches out."""
    code = command.text.partition("#")[0]
    outward = re.search(r"\b(scan|demo|upnp-inventory|grade)\b", code)
    if kind == "plain":
        assert outward is None or "--dry-run" in code.split(), (
            f"{command.where}: a runnable block may only --dry-run a scan: {command.text}"
        )
        return
    assert kind == "lab", kind
    addresses = _addresses(code)
    assert outward is None or outward.group(1) == "scan", command.where
    assert outward is None or addresses, f"{command.where}: a lab scan names its addresses"
    for network in addresses:
        assert network.is_loopback, f"{command.where}: {network} is not loopback"
    assert "--resolver" not in code, f"{command.where}: names are not resolved in lab blocks"


def fresh_clone(into: Path) -> Path:
    """What a fresh clone holds that the documented commands read (the example targets and
    config files, docs/), copied into ``into``; returns ``into``."""
    shutil.copy(REPO / "targets.example.txt", into / "targets.example.txt")
    shutil.copytree(REPO / "docs", into / "docs", ignore=shutil.ignore_patterns("img"))
    return into


def run_line(text: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``text`` through ``bash -c`` in ``cwd``, where ``exposure-audit`` is this checkout's CLI
    (``python3 -m exposure_audit``: the same thing) and the default history store is
    ``cwd/.xdg``."""
    shims = cwd / ".bin"
    shims.mkdir(exist_ok=True)
    shim = shims / "exposure-audit"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m exposure_audit "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    env["XDG_DATA_HOME"] = str(cwd / ".xdg")
    return subprocess.run(
        ["bash", "-c", text],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
