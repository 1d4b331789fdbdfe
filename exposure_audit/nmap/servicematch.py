"""What ``nmap -sV`` would call a web server, from a response the scanner already holds.

``-sV`` learns a web port's product and version by sending its HTTP probes and matching the
answers against the ``match``/``softmatch`` lines of its ``nmap-service-probes``; most of its
time goes to waiting (docs/performance.md). This module matches the response an HTTP probe
already read (built by :func:`exposure_audit.probes.rawhttp.response_bytes`) against the same
lines of the installed nmap's file, so a web port gets the product and version ``-sV`` would
give it without ``-sV``'s waits. :mod:`exposure_audit.nmap.installed` reads that file at run
time; it is never shipped (it belongs to nmap and changes with it). Rules and limits:
docs/reference/nmap-service-probes.md.

Hostile input: the server chose every byte of the text. nmap's patterns are PCRE and some can
backtrack for long on a crafted body, so each search runs under a timeout and a whole match
under a budget (the ``regex`` package stops a search that overruns); the text is capped at
:data:`MAX_RESPONSE_BYTES`; every returned string is made printable (control characters such as
ANSI escapes come back as visible ``\\xNN``) and bounded by nmap's own field sizes.

A response that matches nothing gives None: unknown, never "nothing there".
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import regex

from exposure_audit.nmap.probefile import MatchLine, parse_web_lines, pcre_compatible
from exposure_audit.nmap.templates import Captures, expand, transform_cpe
from exposure_audit.text import printable

__all__ = [
    "LINE_TIMEOUT_S",
    "MATCH_BUDGET_S",
    "MAX_RESPONSE_BYTES",
    "MatcherStats",
    "ServiceMatch",
    "WebMatcher",
]

# nmap matches what has arrived when it looks, re-looking after each read until the probe's
# wait ends. The status line, the headers and the head of the page (where titles and framework
# markers sit) fit in 16 KiB; the cap also bounds the work a hostile body can cause, as every
# unanchored pattern scans the whole text.
MAX_RESPONSE_BYTES = 16 * 1024
# A sane pattern needs well under a millisecond on 16 KiB (docs/performance.md); a search still
# running after this is backtracking on crafted input and is given up (the line counts as not
# matching, and the stop is counted).
LINE_TIMEOUT_S = 0.05
# The searches of one response together: past this the match ends with what it has (a soft
# match or nothing), so a body that trips many patterns cannot hold the scanner. Compiling is
# not counted: its cost is ours, bounded by the number of lines, and paid once per process.
MATCH_BUDGET_S = 0.5

# nmap's buffers for each field (service_scan.cc, testMatch): longer results are dropped.
_FIELD_LIMITS = {
    "product": 80,
    "version": 80,
    "info": 256,
    "hostname": 80,
    "os": 32,
    "device_type": 32,
}
_CPE_LIMIT = 80
_CPE_PARTS = (b"a", b"h", b"o")


@dataclass(frozen=True)
class ServiceMatch:
    """What nmap's line ``line_number`` (of probe ``probe``) says about a response.

    Every string is printable (see :func:`exposure_audit.text.printable`); a field the line
    does not fill, or could not fill from this response, is None. ``soft`` means the line only
    names the service (nmap would keep probing for the product). ``cpes`` holds at most one
    name per CPE part, in the order application, hardware, OS, as ``-sV`` reports them.
    """

    service: str
    product: str | None
    version: str | None
    info: str | None
    hostname: str | None
    os: str | None
    device_type: str | None
    cpes: tuple[str, ...]
    soft: bool
    line_number: int
    probe: str


@dataclass(frozen=True)
class MatcherStats:
    """Counts a matcher has gathered so far: lines loaded, lines nmap's grammar rejects, lines
    compiled, lines whose PCRE the ``regex`` package could not compile (never matched, never
    fatal), and searches stopped by the timeout or the budget."""

    lines: int
    malformed: int
    compiled: int
    failed_to_compile: int
    timeouts: int


class WebMatcher:
    """nmap's web match lines, compiled on first need. Safe to share between threads.

    With ``prefilter`` (the default), a line whose pattern requires a literal the text lacks is
    skipped without compiling or running it (``probefile.required_literal``); that keeps
    loading cheap, as only the lines a response could match are ever compiled.
    """

    def __init__(
        self,
        lines: tuple[MatchLine, ...],
        malformed: tuple[int, ...] = (),
        *,
        prefilter: bool = True,
        line_timeout: float = LINE_TIMEOUT_S,
        budget: float = MATCH_BUDGET_S,
    ) -> None:
        self.lines = lines
        self.malformed = malformed
        self.prefilter = prefilter
        self.line_timeout = line_timeout
        self.budget = budget
        self._compiled: dict[int, regex.Pattern[bytes] | None] = {}
        self._timeouts = 0
        self._lock = threading.Lock()

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        prefilter: bool = True,
        line_timeout: float = LINE_TIMEOUT_S,
        budget: float = MATCH_BUDGET_S,
    ) -> WebMatcher:
        """A matcher over the web lines of ``text``, a whole ``nmap-service-probes`` file
        decoded as Latin-1."""
        parsed = parse_web_lines(text)
        return cls(
            parsed.lines,
            parsed.malformed,
            prefilter=prefilter,
            line_timeout=line_timeout,
            budget=budget,
        )

    def compile_all(self) -> MatcherStats:
        """Compile every line now (the benchmark's load cost; the test of what fails)."""
        for index in range(len(self.lines)):
            self._pattern(index)
        return self.stats()

    def stats(self) -> MatcherStats:
        with self._lock:
            compiled = dict(self._compiled)
            timeouts = self._timeouts
        failed = sum(1 for pattern in compiled.values() if pattern is None)
        return MatcherStats(
            len(self.lines), len(self.malformed), len(compiled) - failed, failed, timeouts
        )

    def match(self, response: bytes) -> ServiceMatch | None:
        """The first hard match in line order, else the first soft match, else None.

        ``response`` is the raw response (status line, headers, blank line, body); only its
        first :data:`MAX_RESPONSE_BYTES` are looked at. Never raises for what it contains.
        """
        text = response[:MAX_RESPONSE_BYTES]
        lowered = text.lower()
        searching = 0.0  # the budget counts searches only: compiling is our cost, paid once
        first_soft: tuple[MatchLine, Captures] | None = None
        for index, line in enumerate(self.lines):
            if line.soft and first_soft is not None:
                continue
            if self.prefilter and line.required is not None:
                haystack = lowered if line.ignore_case else text
                if line.required not in haystack:
                    continue
            if searching >= self.budget:
                self._count_timeout()
                break
            pattern = self._pattern(index)
            if pattern is None:
                continue
            started = time.monotonic()
            timeout = min(self.line_timeout, self.budget - searching)
            captures = self._search(pattern, text, timeout)
            searching += time.monotonic() - started
            if captures is None:
                continue
            if not line.soft:
                return _service_match(line, captures)
            first_soft = (line, captures)
        return _service_match(*first_soft) if first_soft else None

    def _search(
        self, pattern: regex.Pattern[bytes], text: bytes, timeout: float
    ) -> Captures | None:
        try:
            found = pattern.search(text, timeout=timeout)
        except TimeoutError:
            self._count_timeout()
            return None
        if found is None:
            return None
        return [found.group(0), *found.groups()]

    def _pattern(self, index: int) -> regex.Pattern[bytes] | None:
        if index in self._compiled:
            return self._compiled[index]
        line = self.lines[index]
        flags = (regex.IGNORECASE if line.ignore_case else 0) | (
            regex.DOTALL if line.dot_all else 0
        )
        try:
            pattern: regex.Pattern[bytes] | None = regex.compile(
                pcre_compatible(line.pattern), flags
            )
        except (regex.error, ValueError, OverflowError, RecursionError):
            pattern = None  # counted in stats(): this line can never match here
        with self._lock:
            self._compiled[index] = pattern
        return pattern

    def _count_timeout(self) -> None:
        with self._lock:
            self._timeouts += 1


def _service_match(line: MatchLine, captures: Captures) -> ServiceMatch:
    fields = {
        name: _shown(expand(template, captures, _FIELD_LIMITS[name]))
        for name in _FIELD_LIMITS
        if (template := getattr(line, name)) is not None
    }
    # nmap keeps one CPE per part (application, hardware, OS), a later template of the same
    # part overwriting an earlier one (service_scan.cc, ServiceProbeMatch::getVersionStr):
    # Python's http.server line names python:python then python:simplehttpserver, and -sV
    # reports the second only.
    by_part: dict[bytes, str] = {}
    for template in line.cpes:
        part = template[5:6]  # after b"cpe:/"
        if part in _CPE_PARTS and (
            shown := _shown(expand(template, captures, _CPE_LIMIT, transform_cpe))
        ):
            by_part[part] = shown
    cpes = tuple(by_part[part] for part in _CPE_PARTS if part in by_part)
    return ServiceMatch(
        service=printable(line.service),
        product=fields.get("product"),
        version=fields.get("version"),
        info=fields.get("info"),
        hostname=fields.get("hostname"),
        os=fields.get("os"),
        device_type=fields.get("device_type"),
        cpes=cpes,
        soft=line.soft,
        line_number=line.line_number,
        probe=line.probe,
    )


def _shown(value: bytes | None) -> str | None:
    """Bytes from the server as text safe to show: UTF-8 where it is, ``\\xNN`` for bytes that
    are not, and every control character escaped."""
    if value is None:
        return None
    return printable(value.decode("utf-8", errors="backslashreplace"))
