"""The installed nmap's web match lines, loaded once per process.

Found through the same lookup as :mod:`exposure_audit.nmap.versiondb` (``$NMAPDIR``, next to
the binary, the usual system places), read at run time, never shipped: the file belongs to nmap
and changes with it. Loading parses the web lines (tens of milliseconds); patterns are compiled
later, as responses need them (docs/performance.md, "Web identification").
"""

from __future__ import annotations

import shutil
import threading
from functools import cache

from .servicematch import ServiceMatch, WebMatcher
from .versiondb import installed_probe_file

__all__ = ["default_matcher", "match_http_response"]

# The audit matches from several worker threads at once: the first load must happen once.
_LOADING = threading.Lock()


def default_matcher() -> WebMatcher | None:
    """The matcher over the installed nmap's probe file (the ``nmap`` on PATH), loaded on first
    use and kept for the process; None when no nmap or no readable probe file is found (then
    web ports get no nmap names: unknown, never clean). Safe to call from several threads."""
    with _LOADING:
        return _load()


@cache
def _load() -> WebMatcher | None:
    binary = shutil.which("nmap")
    path = installed_probe_file(binary) if binary else None
    if path is None:
        return None
    try:
        # Latin-1: every byte of the file survives (patterns hold raw bytes such as \xd5).
        return WebMatcher.from_text(path.read_text(encoding="latin-1"))
    except OSError:
        return None


def match_http_response(response: bytes) -> ServiceMatch | None:
    """:meth:`WebMatcher.match` against the installed nmap's lines; None also when nmap's
    probe file is not available."""
    matcher = default_matcher()
    return matcher.match(response) if matcher else None
