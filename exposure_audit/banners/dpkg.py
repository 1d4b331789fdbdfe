"""Debian package version ordering, as ``dpkg --compare-versions`` does it, in pure Python.

A version is ``[epoch:]upstream[-revision]`` (deb-version(7)). Ordering, as deb-version(7) and
Debian Policy section 5.6.12 state it (docs/reference/banners.md section 3):

- the epoch (an integer, 0 when absent) decides first;
- then the upstream version, then the revision (``0`` when absent), each compared by the same
  rule: alternately the longest leading run of non-digits, compared character by character
  where ``~`` sorts before everything (even the end of the string), the end of the string
  before any other character, letters before non-letters; then the longest leading run of
  digits, compared as integers (an empty run is 0).

So ``1.0~rc1 < 1.0 < 1.0a < 1.0+deb12u1`` (a letter sorts before ``+``) and ``1:0.1 > 9.9``.
The upstream version is what lies between the first ``:`` and the last ``-``; a version with
no ``-`` has no revision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

__all__ = ["DebianVersion", "compare_versions", "parse_version"]

# deb-version(7): upstream starts with a digit and holds alphanumerics and . + - ~ (and : only
# with an epoch); the revision holds alphanumerics and + . ~. Checked, so junk is refused.
_UPSTREAM = re.compile(r"[0-9][A-Za-z0-9.+~:-]*", re.ASCII)
_REVISION = re.compile(r"[A-Za-z0-9.+~]+", re.ASCII)
_MAX_LENGTH = 256


@total_ordering
@dataclass(frozen=True)
class DebianVersion:
    """A parsed package version; instances order as dpkg orders them."""

    epoch: int
    upstream: str
    revision: str

    def __str__(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        revision = f"-{self.revision}" if self.revision else ""
        return f"{epoch}{self.upstream}{revision}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, DebianVersion):
            return NotImplemented
        return _compare(self, other) < 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DebianVersion):
            return NotImplemented
        return _compare(self, other) == 0

    def __hash__(self) -> int:
        # Equal versions may be spelt differently ("1.0" and "0:1.0-0" are not the same text
        # but "1.0" == "0:1.0"); hash what equality looks at, normalised.
        return hash((self.epoch, _key(self.upstream), _key(self.revision or "0")))


def parse_version(text: str) -> DebianVersion:
    """``text`` as a Debian version; ``ValueError`` naming what is wrong when it is not one."""
    if not text or len(text) > _MAX_LENGTH or text != text.strip():
        raise ValueError(f"not a Debian version: {text[:60]!r}")
    epoch = 0
    rest = text
    if ":" in text:
        head, rest = text.split(":", 1)
        if not (head.isascii() and head.isdigit()):
            raise ValueError(f"epoch of {text[:60]!r} is not a number")
        epoch = int(head)
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    elif not _REVISION.fullmatch(revision):
        raise ValueError(f"revision of {text[:60]!r} is not a Debian revision")
    if not _UPSTREAM.fullmatch(upstream):
        raise ValueError(f"upstream part of {text[:60]!r} is not a Debian upstream version")
    return DebianVersion(epoch, upstream, revision)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, equal to or after ``b`` (``dpkg --compare-versions``);
    ``ValueError`` when either is not a Debian version."""
    return _compare(parse_version(a), parse_version(b))


def _compare(a: DebianVersion, b: DebianVersion) -> int:
    if a.epoch != b.epoch:
        return -1 if a.epoch < b.epoch else 1
    return _compare_part(a.upstream, b.upstream) or _compare_part(
        a.revision or "0", b.revision or "0"
    )


def _order(char: str) -> int:
    """dpkg's weight of one character in a non-digit run ("" = the end of the run)."""
    if char == "~":
        return -1
    if char == "":
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        # The non-digit runs, character by character (the end of a run weighs 0).
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ca = a[i] if i < len(a) and not a[i].isdigit() else ""
            cb = b[j] if j < len(b) and not b[j].isdigit() else ""
            if _order(ca) != _order(cb):
                return -1 if _order(ca) < _order(cb) else 1
            i += 1 if ca else 0
            j += 1 if cb else 0
        # The digit runs, as integers.
        start_a, start_b = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        na = int(a[start_a:i] or "0")
        nb = int(b[start_b:j] or "0")
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _key(part: str) -> tuple[tuple[tuple[int, ...], int], ...]:
    """A tuple that is equal exactly when two parts compare equal (for hashing)."""
    runs = re.findall(r"(\D*)(\d*)", part)
    key = [(tuple(_order(c) for c in text), int(digits or "0")) for text, digits in runs]
    while key and key[-1] == ((), 0):
        key.pop()
    return tuple(key)
