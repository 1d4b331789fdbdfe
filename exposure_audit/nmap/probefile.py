"""The web part of nmap's ``nmap-service-probes``, parsed (docs/reference/nmap-service-probes.md).

Pure text in, frozen values out: no file is opened here (``servicematch`` reads the installed
file) and no pattern is compiled (that is costly and done lazily by the matcher).

Which lines: those of the probes whose answer is a response to an HTTP GET or OPTIONS of a page
(:data:`WEB_PROBES`, in the order the matcher tries them), keeping each line that describes an
HTTP response: its service names HTTP (``http``, ``http-proxy``, ``ssl/http``, ``vnc-http``...)
or its pattern starts with an HTTP status line (``^HTTP/``: UPnP, IPP, WebDAV, SOAP... servers,
which nmap names by what they serve, not by the protocol they speak).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = [
    "WEB_PROBES",
    "MatchLine",
    "ParsedProbes",
    "parse_web_lines",
    "pcre_compatible",
    "required_literal",
]

# nmap tries a probe's own lines, then its fallbacks, then the NULL probe's (a service that
# greets first is recognised from any later answer). GetRequest is the request a web scanner
# sends; HTTPOptions and FourOhFourRequest are the web probes nmap sends next when GetRequest's
# answer only soft-matched, and both fall back to GetRequest.
WEB_PROBES = ("GetRequest", "NULL", "HTTPOptions", "FourOhFourRequest")

_VERSION_FIELDS = {"p": "product", "v": "version", "i": "info", "h": "hostname", "o": "os"}
_VERSION_FIELDS["d"] = "device_type"


@dataclass(frozen=True)
class MatchLine:
    """One ``match``/``softmatch`` line: its regex source and its version templates.

    ``pattern`` is the PCRE source as bytes (the file is read as Latin-1, so every byte of it
    survives); templates are kept as written (``$1``, ``$P(2)``...). ``cpes`` are complete
    ``cpe:/...`` templates. ``required`` is a byte string that every text the pattern matches
    contains (lower-cased when ``ignore_case``), or None when none could be proven.
    """

    line_number: int
    probe: str
    service: str
    soft: bool
    pattern: bytes
    ignore_case: bool
    dot_all: bool
    product: bytes | None = None
    version: bytes | None = None
    info: bytes | None = None
    hostname: bytes | None = None
    os: bytes | None = None
    device_type: bytes | None = None
    cpes: tuple[bytes, ...] = ()
    required: bytes | None = None


@dataclass(frozen=True)
class ParsedProbes:
    """The web lines in matching order, and the line numbers nmap's grammar could not parse."""

    lines: tuple[MatchLine, ...]
    malformed: tuple[int, ...]


class _Malformed(ValueError):
    """A line that does not follow the file's grammar (nmap itself would refuse to start)."""


def parse_web_lines(text: str, probes: tuple[str, ...] = WEB_PROBES) -> ParsedProbes:
    """The match lines of ``probes`` (TCP only) that describe an HTTP response, ordered first by
    the position of their probe in ``probes``, then by line number (nmap's order). ``text`` is
    the whole file, decoded as Latin-1. A malformed line is reported, never raised."""
    by_probe: dict[str, list[MatchLine]] = {name: [] for name in probes}
    malformed: list[int] = []
    current: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith("Probe "):
            parts = line.split(" ", 3)
            current = parts[2] if len(parts) > 2 and parts[1] == "TCP" else None
            continue
        if current not in by_probe or not line.startswith(("match ", "softmatch ")):
            continue
        try:
            parsed = _parse_match(line.rstrip("\r"), number, current)
        except _Malformed:
            malformed.append(number)
            continue
        if _describes_http(parsed):
            required = required_literal(parsed.pattern, parsed.ignore_case)
            by_probe[current].append(replace(parsed, required=required))
    ordered = tuple(line for name in probes for line in by_probe[name])
    return ParsedProbes(ordered, tuple(malformed))


def _describes_http(line: MatchLine) -> bool:
    status_line = line.pattern.lower() if line.ignore_case else line.pattern
    return "http" in line.service.lower() or status_line.startswith(b"^HTTP/")


def _parse_match(line: str, number: int, probe: str) -> MatchLine:
    """``match <service> m<d><regex><d><flags> [<field><d><template><d>]...`` (any delimiter
    ``<d>``; fields ``p v i h o d`` and ``cpe:``), as nmap's ``InitMatch`` reads it."""
    soft = line.startswith("softmatch ")
    rest = line.split(" ", 1)[1]
    service, sep, rest = rest.partition(" ")
    if not sep or not service:
        raise _Malformed(number)
    position, mode, regex_source, flags = _next_template(rest, 0)
    if mode != "m" or any(flag not in "is" for flag in flags):
        raise _Malformed(number)
    fields: dict[str, bytes] = {}
    cpes: list[bytes] = []
    while True:
        try:
            position, mode, template, _flags = _next_template(rest, position)
        except StopIteration:
            break
        encoded = template.encode("latin-1")
        if mode == "cpe:":
            cpes.append(b"cpe:/" + encoded)
        elif mode in _VERSION_FIELDS:
            fields[_VERSION_FIELDS[mode]] = encoded  # a repeated field replaces, as in nmap
        else:
            raise _Malformed(number)
    return MatchLine(
        line_number=number,
        probe=probe,
        service=service,
        soft=soft,
        pattern=regex_source.encode("latin-1"),
        ignore_case="i" in flags,
        dot_all="s" in flags,
        cpes=tuple(cpes),
        **fields,
    )


def _next_template(text: str, position: int) -> tuple[int, str, str, str]:
    """nmap's ``next_template``: skip blanks, read a mode (letters and ``:``), a delimiter, the
    body up to the same delimiter, then letter flags. StopIteration at the end of the line."""
    while position < len(text) and text[position].isspace():
        position += 1
    if position >= len(text):
        raise StopIteration
    start = position
    while position < len(text) and (text[position].isalpha() or text[position] == ":"):
        position += 1
    if position >= len(text) or text[position].isspace() or position == start:
        raise _Malformed(text[start:position])
    mode = text[start:position]
    delimiter = text[position]
    end = text.find(delimiter, position + 1)
    if end < 0:
        raise _Malformed(mode)
    body = text[position + 1 : end]
    position = end + 1
    flags_start = position
    while position < len(text) and text[position].isalpha():
        position += 1
    return position, mode, body, text[flags_start:position]


def _is_quantifier_brace(pattern: bytes, index: int) -> bool:
    """Whether the ``{`` at ``index`` opens ``{n}``, ``{n,}`` or ``{n,m}`` (PCRE's only brace
    quantifiers; anything else, ``{,n}`` included, is a literal brace)."""
    close = pattern.find(b"}", index)
    if close < 0:
        return False
    low, _, high = pattern[index + 1 : close].partition(b",")
    return low.isdigit() and (high == b"" or high.isdigit())


def pcre_compatible(pattern: bytes) -> bytes:
    """``pattern`` with every literal ``{`` escaped: PCRE reads a brace that does not open a
    quantifier as itself; the ``regex`` package rejects some (``{document.f}``) or reads
    ``{,n}`` as a quantifier."""
    out = bytearray()
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index : index + 1]
        if char == b"\\":
            out += pattern[index : index + 2]
            index += 2
            continue
        if in_class:
            in_class = char != b"]"
        elif char == b"[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal member, not the end of the class.
            skip = 1 + (pattern[index + 1 : index + 2] == b"^")
            if pattern[index + skip : index + skip + 1] == b"]":
                out += pattern[index : index + skip + 1]
                index += skip + 1
                continue
        elif char == b"{" and not _is_quantifier_brace(pattern, index):
            out += b"\\{"
            index += 1
            continue
        out += char
        index += 1
    return bytes(out)


_PLAIN_ESCAPES = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"f": b"\f", b"e": b"\x1b"}
# (?i) (?s-i) (?x: ...: a flag set inside the pattern changes how its literals match.
_INLINE_FLAGS = re.compile(rb"\(\?[-a-zA-Z^]")
# One token of a PCRE pattern, for the literal search: a run of plain characters (one token,
# which keeps the scan fast), an escape (those that take more characters, \x{..} \12 \cX
# \p{..} \g<..>, in one piece), a whole class, a group bracket, an alternation bar, a
# quantifier (with its lazy or possessive mark), or any other single character (., ^, $, {).
_TOKEN = re.compile(
    rb"""(?P<run>[^.^$*+?()\[\]{}|\\]+)
    |\\x(?P<hex>[0-9A-Fa-f]{2})
    |\\(?P<special>x\{[^}]*\}|x[0-9A-Fa-f]?|[0-9]+|c[\x00-\xff]|[pPNgko]\{[^}]*\}|[gk]<[^>]*>|g-?[0-9]+)
    |\\(?P<escape>[\x00-\xff])
    |(?P<klass>\[\^?\]?(?:\\[\x00-\xff]|[^\]\\])*\])
    |(?P<open>\()|(?P<close>\))|(?P<bar>\|)
    |(?P<quantifier>(?:[?*+]|\{(?P<low>\d+)(?:,\d*)?\})[?+]?)
    |(?P<other>[\x00-\xff])""",
    re.VERBOSE,
)


def required_literal(pattern: bytes, ignore_case: bool) -> bytes | None:
    """The longest byte string that every match of ``pattern`` must contain, or None.

    Conservative by construction: only top-level literal runs count (nothing inside a group or
    a class, nothing in a pattern with a top-level ``|``, with ``\\Q`` quoting or an inline
    flag), and an atom made optional by ``?``, ``*`` or ``{0`` is dropped. Lower-cased when
    the pattern ignores case, so the caller compares it with the lower-cased text.
    """
    if b"\\Q" in pattern or _INLINE_FLAGS.search(pattern):
        return None
    tokens = list(_TOKEN.finditer(pattern))
    runs: list[bytes] = []
    run = bytearray()
    depth = 0
    for index, token in enumerate(tokens):
        kind = token.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(0, depth - 1)
        if depth > 0 or kind in ("open", "close", "quantifier"):
            _end(runs, run)
            continue
        if kind == "bar":
            return None
        atom = _literal(token)
        if atom is None:
            _end(runs, run)
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if following is None or following.lastgroup != "quantifier":
            run += atom
            continue
        # The quantifier applies to the last character only.
        run += atom[:-1]
        low = following.group("low")
        optional = following.group("quantifier")[:1] in (b"?", b"*") or (
            low is not None and int(low) == 0
        )
        if not optional:
            run += atom[-1:]
        _end(runs, run)
    _end(runs, run)
    if not runs:
        return None
    longest = max(runs, key=len)
    return longest.lower() if ignore_case else longest


def _literal(token: re.Match[bytes]) -> bytes | None:
    """The bytes a token stands for when it is a fixed literal, else None."""
    kind = token.lastgroup
    if kind == "run":
        return token.group("run")
    if kind == "hex":
        return bytes([int(token.group("hex"), 16)])
    if kind == "escape":
        escaped = token.group("escape")
        if escaped in _PLAIN_ESCAPES:
            return _PLAIN_ESCAPES[escaped]
        # \. \/ \- ...: the character itself; \d \w \0 \1 \b ...: not one fixed byte.
        return escaped if not escaped.isalnum() and escaped < b"\x80" else None
    return None


def _end(runs: list[bytes], run: bytearray) -> None:
    if run:
        runs.append(bytes(run))
        run.clear()
