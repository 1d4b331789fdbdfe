"""A TOML reader that knows where each key was written, for messages that point at it.

``tomllib`` reports no positions for values, so :class:`TomlDocument` finds each key's line
itself (:class:`_LineScanner`, lenient: it only walks text tomllib accepted), and every error it
raises names the file, the line and the dotted key: ``audit.toml:14: notify.email.port: must be
an integer, not a string``. The typed getters (:meth:`TomlDocument.text`, ``integer``,
``seconds``, ``day``, ...) return None for an absent key, so callers tell "not set" from a value.

Pure: it parses text it is given; reading files is the caller's job. Used by the accepted-risks
file (:mod:`exposure_audit.history.accept`) and the configuration file
(:mod:`exposure_audit.cli.config`).
"""

from __future__ import annotations

import contextlib
import difflib
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, NoReturn, TypeVar

from .errors import UsageError
from .text import printable

__all__ = ["KeyPath", "TomlDocument", "TomlFileError"]

_T = TypeVar("_T")

KeyPath = tuple[str | int, ...]
"""A value's place in a TOML document: table keys and array indices, ``("accept", 2, "owner")``."""


class TomlFileError(UsageError):
    """A TOML file that fails to parse or holds a bad key or value.

    ``line`` is 1-based (0 when unknown), ``key`` the dotted key (``accept[2].expires``; empty
    for a syntax error). The message is ``"{source}:{line}: {key}: {reason}"``.
    """

    def __init__(self, source: str, line: int, key: str, reason: str) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.reason = reason
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


def _kind(value: object) -> str:
    """The TOML name of a parsed value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    return type(value).__name__


def _show(text: str, limit: int = 80) -> str:
    """User text made safe for a message: quoted, control characters and lone surrogates
    escaped (they would break printing to stderr), and cut short."""
    safe = printable(text, limit).encode("utf-8", "backslashreplace").decode("utf-8")
    return f"'{safe}'"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _dotted(path: KeyPath) -> str:
    """``("accept", 2, "owner")`` as ``accept[2].owner``; odd keys quoted and escaped."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if _BARE_KEY.match(part) else _show(part).replace("'", '"')
        out += f".{name}" if out else name
    return out


@dataclass(frozen=True)
class TomlDocument:
    """A parsed TOML text that knows the line of each key, for messages that point at it.

    ``data`` is what :func:`tomllib.loads` returned; ``lines`` maps each key path (tables,
    array elements, keys of inline tables) to the 1-based line it starts on. ``error`` is the
    exception type raised by :meth:`fail` (a caller may pass its own subclass, as
    :mod:`exposure_audit.cli.config` passes its ``ConfigError``).
    """

    source: str
    data: dict[str, Any]
    lines: Mapping[KeyPath, int]
    error: type[TomlFileError] = TomlFileError

    @classmethod
    def parse(
        cls, text: str, source: str, error: type[TomlFileError] = TomlFileError
    ) -> TomlDocument:
        """Parse ``text``; raise ``error`` (line and reason from tomllib) for a syntax error."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            found = _TOML_POSITION.search(message)
            line = 0
            if found:
                # "at end of document": the last line.
                line = int(found.group(1)) if found.group(1) else text.count("\n") + 1
            reason = _TOML_POSITION.sub("", message).strip()
            raise error(source, line, "", f"not valid TOML: {reason}") from None
        except RecursionError:
            raise error(source, 0, "", "not valid TOML: nested too deeply") from None
        return cls(source, data, _key_lines(text), error)

    @staticmethod
    def quote(text: str) -> str:
        """User text for a message: quoted, escaped (controls, lone surrogates), cut short."""
        return _show(text)

    @staticmethod
    def kind(value: object) -> str:
        """The TOML name of a parsed value's type for a message: ``a string``, ``a table``."""
        return _kind(value)

    def value(self, path: KeyPath) -> object:
        """The value at ``path``, or None when a part of it is absent."""
        node: object = self.data
        for part in path:
            if isinstance(node, dict) and isinstance(part, str):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return None
        return node

    def line(self, path: KeyPath) -> int:
        """The line of ``path``, else of its nearest parent that has one; 0 when none has."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return 0

    def where(self, path: KeyPath) -> str:
        """``file:line`` of ``path``."""
        line = self.line(path)
        return f"{self.source}:{line}" if line else self.source

    def fail(self, path: KeyPath, reason: str) -> NoReturn:
        """Raise :attr:`error` naming the file, the line of ``path`` and its dotted key."""
        raise self.error(self.source, self.line(path), _dotted(path), reason)

    def require(self, path: KeyPath, value: _T | None, why: str = "") -> _T:
        """``value``, or fail on ``path`` (the missing key) as required."""
        if value is None:
            self.fail(path, f"missing{f' ({why})' if why else ''}")
        return value

    def table(self, path: KeyPath, parent: Mapping[str, object], key: str) -> dict[str, Any] | None:
        value = parent.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.fail((*path, key), f"must be a table, not {_kind(value)}")

    def check_keys(
        self,
        path: KeyPath,
        table: Mapping[str, object],
        allowed: Collection[str],
        hints: Mapping[str, str] | None = None,
    ) -> None:
        """Fail on the first key of ``table`` not in ``allowed``: with the reason ``hints``
        gives for it, else as an unknown key with a close match or the known keys."""
        for key in table:
            if key in allowed:
                continue
            reason = (hints or {}).get(key)
            if reason is None:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                known = f"did you mean {close[0]}?" if close else f"known: {', '.join(allowed)}"
                reason = f"unknown key ({known})"
            self.fail((*path, key), reason)

    def text(self, path: KeyPath, table: Mapping[str, object], key: str) -> str | None:
        """A non-empty string (stripped), or None when absent."""
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail((*path, key), f"must be a string, not {_kind(value)}")
        if not value.strip():
            self.fail((*path, key), "must not be empty")
        return value.strip()

    def texts(self, path: KeyPath, table: Mapping[str, object], key: str) -> tuple[str, ...] | None:
        """An array of non-empty strings (stripped), or None when absent."""
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail((*path, key), f"must be an array of strings, not {_kind(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail((*path, key, i), f"must be a string, not {_kind(item)}")
            if not item.strip():
                self.fail((*path, key, i), "must not be empty")
            out.append(item.strip())
        return tuple(out)

    def boolean(self, path: KeyPath, table: Mapping[str, object], key: str) -> bool | None:
        value = table.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.fail((*path, key), f"must be true or false, not {_kind(value)}")

    def integer(
        self, path: KeyPath, table: Mapping[str, object], key: str, low: int, high: int
    ) -> int | None:
        """An integer in ``low..high``, or None when absent."""
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail((*path, key), f"must be an integer, not {_kind(value)}")
        if not low <= value <= high:
            self.fail((*path, key), f"must be between {low} and {high}, not {value}")
        return value

    def seconds(self, path: KeyPath, table: Mapping[str, object], key: str) -> float | None:
        """A positive number of seconds (integer or float, at most a day), or None."""
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail((*path, key), f"must be a number of seconds, not {_kind(value)}")
        if not 0 < value <= 86_400:
            self.fail((*path, key), f"must be more than 0 and at most 86400 seconds, not {value}")
        return float(value)

    def choice(
        self, path: KeyPath, table: Mapping[str, object], key: str, choices: Sequence[str]
    ) -> str | None:
        """One of ``choices`` (any case, returned lower-case), or None when absent."""
        value = self.text(path, table, key)
        if value is None:
            return None
        if value.lower() not in choices:
            self.fail((*path, key), f"{_show(value)} is not one of {', '.join(choices)}")
        return value.lower()

    def day(self, path: KeyPath, table: Mapping[str, object], key: str) -> date | None:
        """A date: a TOML date (``2026-12-31``) or the same as a string; None when absent."""
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                self.fail((*path, key), f"{_show(value)} is not a date like 2026-12-31")
        if isinstance(value, datetime) or not isinstance(value, date):
            self.fail((*path, key), f"must be a date like 2026-12-31, not {_kind(value)}")
        return value


# tomllib ends its messages with "(at line 3, column 7)" or "(at end of document)".
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)|\s*\(at end of document\)")


def _key_lines(text: str) -> dict[KeyPath, int]:
    scanner = _LineScanner(text)
    # Deeper than we care to point into: the parents' lines are recorded already.
    with contextlib.suppress(RecursionError):
        scanner.run()
    return scanner.lines


_BASIC_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}
_SCALAR_END = frozenset(",]}#\n")
_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _LineScanner:
    """Walks a text that tomllib accepted and records the line each key and element starts on.

    Only positions are read (values are tomllib's); the text is known to be valid TOML, so
    the scanner is lenient, but it never reads past the end and every loop advances.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self._table: KeyPath = ()
        self._arrays: dict[KeyPath, int] = {}  # array-of-tables path -> current index

    def _peek(self, size: int = 1) -> str:
        return self.text[self.pos : self.pos + size]

    def _advance(self, to: int) -> None:
        to = min(to, len(self.text))
        if to > self.pos:
            self.line += self.text.count("\n", self.pos, to)
            self.pos = to

    def _blanks(self, *, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self._advance(self.pos + 1)
            elif newlines and char == "#":
                end = self.text.find("\n", self.pos)
                self._advance(end if end >= 0 else len(self.text))
            else:
                return

    def run(self) -> None:
        while True:
            self._blanks(newlines=True)
            if self.pos >= len(self.text):
                return
            start = self.pos
            if self._peek() == "[":
                self._header()
            else:
                self._key_value(self._table)
            if self.pos == start:
                self._advance(self.pos + 1)

    def _header(self) -> None:
        line = self.line
        array = self._peek(2) == "[["
        self._advance(self.pos + (2 if array else 1))
        keys = self._key()
        self._blanks(newlines=False)
        self._advance(self.pos + (2 if array else 1))
        path: KeyPath = ()
        for i, key in enumerate(keys):
            path = (*path, key)
            last = i == len(keys) - 1
            if array and last:
                index = self._arrays.get(path, -1) + 1
                self._arrays[path] = index
                self.lines.setdefault(path, line)
                path = (*path, index)
            elif path in self._arrays:
                path = (*path, self._arrays[path])
            self.lines.setdefault(path, line)
        self._table = path

    def _key_value(self, base: KeyPath) -> None:
        line = self.line
        keys = self._key()
        path = base
        for key in keys:
            path = (*path, key)
            self.lines.setdefault(path, line)
        self._blanks(newlines=False)
        if self._peek() == "=":
            self._advance(self.pos + 1)
        self._blanks(newlines=False)
        self._value(path)

    def _key(self) -> list[str]:
        keys: list[str] = []
        while self.pos < len(self.text):
            self._blanks(newlines=False)
            char = self._peek()
            if char == '"':
                keys.append(self._basic_string())
            elif char == "'":
                end = self.text.find("'", self.pos + 1)
                end = end if end >= 0 else len(self.text)
                keys.append(self.text[self.pos + 1 : end])
                self._advance(end + 1)
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in _BARE_KEY_CHARS:
                    self.pos += 1
                if self.pos == start:
                    return keys
                keys.append(self.text[start : self.pos])
            self._blanks(newlines=False)
            if self._peek() != ".":
                return keys
            self._advance(self.pos + 1)
        return keys

    def _basic_string(self) -> str:
        """Read a one-line basic string at ``pos`` (on its opening quote) and decode it."""
        out: list[str] = []
        i = self.pos + 1
        while i < len(self.text) and self.text[i] not in '"\n':
            if self.text[i] == "\\":
                i += 1
                char = self.text[i : i + 1]
                size = {"u": 4, "U": 8}.get(char, 0)
                if size:
                    with contextlib.suppress(ValueError):
                        out.append(chr(int(self.text[i + 1 : i + 1 + size], 16)))
                    i += size
                else:
                    out.append(_BASIC_ESCAPES.get(char, char))
            else:
                out.append(self.text[i])
            i += 1
        self._advance(i + 1)
        return "".join(out)

    def _value(self, path: KeyPath) -> None:
        char = self._peek()
        if self._peek(3) in ('"""', "'''"):
            self._multiline_string(self._peek(3))
        elif char == '"':
            self._basic_string()
        elif char == "'":
            end = self.text.find("'", self.pos + 1)
            self._advance(end + 1 if end >= 0 else len(self.text))
        elif char == "[":
            self._array(path)
        elif char == "{":
            self._inline_table(path)
        else:
            end = self.pos
            while end < len(self.text) and self.text[end] not in _SCALAR_END:
                end += 1
            self._advance(end)

    def _multiline_string(self, quotes: str) -> None:
        i = self.pos + 3
        while i < len(self.text):
            if quotes == '"""' and self.text[i] == "\\":
                i += 2
                continue
            if self.text.startswith(quotes, i):
                # Up to two quote characters may end the content right before the delimiter.
                extra = 0
                while extra < 2 and self.text[i + 3 + extra : i + 4 + extra] == quotes[0]:
                    extra += 1
                i += 3 + extra
                break
            i += 1
        self._advance(i)

    def _array(self, path: KeyPath) -> None:
        self._advance(self.pos + 1)
        index = 0
        while self.pos < len(self.text):
            self._blanks(newlines=True)
            if self._peek() in ("]", ""):
                self._advance(self.pos + 1)
                return
            self.lines.setdefault((*path, index), self.line)
            start = self.pos
            self._value((*path, index))
            self._blanks(newlines=True)
            if self._peek() == ",":
                self._advance(self.pos + 1)
                index += 1
            elif self.pos == start:
                self._advance(self.pos + 1)

    def _inline_table(self, path: KeyPath) -> None:
        self._advance(self.pos + 1)
        while self.pos < len(self.text):
            self._blanks(newlines=True)
            if self._peek() in ("}", ""):
                self._advance(self.pos + 1)
                return
            start = self.pos
            self._key_value(path)
            self._blanks(newlines=True)
            if self._peek() == "," or self.pos == start:
                self._advance(self.pos + 1)
