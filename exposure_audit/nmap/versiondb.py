"""nmap's own version probes with a shorter wait for a first banner.

``-sV`` starts on every port by listening: its NULL probe waits 6 s for a service that speaks
first (SSH, FTP, SMTP) before sending anything. Services that wait to be asked (SMB, RDP,
rpcbind) pay those 6 s in full, and on a perimeter scan that wait is the tail of the whole run.
Measured on the demo lab's SMB and Telnet ports: 6.4 s with nmap's file, 2.3 s with a 2 s wait,
the same products and versions found (docs/performance.md). A service slower than that to greet
is still recognised: nmap matches every later probe's answer against the NULL probe's patterns
too.

The file is derived at run time from the nmap installation's ``nmap-service-probes`` (it is not
shipped: it belongs to nmap and changes with it); only the NULL probe's two waits change. When
the file cannot be found or does not look as expected, nmap runs with its own.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import tempfile
from pathlib import Path

__all__ = ["NULL_PROBE_WAIT_MS", "installed_probe_file", "quick_banner_versiondb"]

NULL_PROBE_WAIT_MS = 2000

_NULL_PROBE = re.compile(
    r"^Probe TCP NULL q\|\|\n(?:#[^\n]*\n)*totalwaitms (\d+)\n(?:#[^\n]*\n)*tcpwrappedms (\d+)\n",
    re.MULTILINE,
)
_cache: dict[tuple[str, int], str | None] = {}


def quick_banner_versiondb(nmap_binary: str, wait_ms: int = NULL_PROBE_WAIT_MS) -> str | None:
    """The path of a private copy of nmap's probe file whose NULL probe waits ``wait_ms``, or
    None (use nmap's own file). Made once per process, removed at exit; readable only by us."""
    key = (nmap_binary, wait_ms)
    if key not in _cache:
        _cache[key] = _derive(nmap_binary, wait_ms)
    return _cache[key]


def _derive(nmap_binary: str, wait_ms: int) -> str | None:
    source = installed_probe_file(nmap_binary)
    if source is None:
        return None
    try:
        text = source.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    match = _NULL_PROBE.search(text)
    if match is None or int(match.group(1)) <= wait_ms:
        return None
    # nmap calls a connection closed before tcpwrappedms "tcpwrapped"; it stays below the wait.
    wrapped = min(int(match.group(2)), wait_ms * 3 // 4)
    null_probe = f"Probe TCP NULL q||\ntotalwaitms {wait_ms}\ntcpwrappedms {wrapped}\n"
    derived = text[: match.start()] + null_probe + text[match.end() :]
    # mkstemp: a new file, mode 0600, created exclusively: nobody can swap in their own probes.
    fd, path = tempfile.mkstemp(prefix="exposure-audit-", suffix=".nmap-service-probes")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(derived)
    except OSError:
        with contextlib.suppress(OSError):
            Path(path).unlink()
        return None
    atexit.register(_remove, path)
    return path


def installed_probe_file(nmap_binary: str) -> Path | None:
    """nmap's ``nmap-service-probes``: where ``$NMAPDIR`` says, next to the binary's prefix
    (``bin/../share/nmap``), or the usual system places."""
    binary = Path(os.path.realpath(nmap_binary))
    places = [os.environ.get("NMAPDIR", ""), str(binary.parent.parent / "share" / "nmap")]
    places += ["/usr/share/nmap", "/usr/local/share/nmap"]
    for place in places:
        if place and (candidate := Path(place) / "nmap-service-probes").is_file():
            return candidate
    return None


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        Path(path).unlink()
