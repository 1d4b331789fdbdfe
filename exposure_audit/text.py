"""Making text from targets safe to show.

Banners, titles and headers come from machines we do not control. Before they reach a terminal,
a CSV cell or any report they pass through :func:`printable`, which keeps them readable and
inert: control characters (ANSI escapes, NULs, bidi overrides) become visible ``\\xNN`` /
``\\uNNNN`` escapes, and the length is capped.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["csv_cell", "md_text", "plural", "printable"]

_MAX = 512


def printable(text: str, limit: int = _MAX) -> str:
    """Return ``text`` with every control or format character escaped, cut to ``limit`` chars.

    Categories Cc (controls: ESC, NUL, DEL, C1) and Cf (format: bidi overrides, zero-width
    joiners) are escaped; everything else is kept. Never raises.
    """
    out: list[str] = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf") and char != " ":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    result = "".join(out)
    return result if len(result) <= limit else result[: limit - 1] + "…"


def csv_cell(text: str) -> str:
    """Return ``text`` made :func:`printable` and safe from spreadsheet formula injection.

    A cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab/CR, already escaped) is prefixed
    with ``'`` so spreadsheet programs show it as text (OWASP "CSV injection").
    """
    cell = printable(text)
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell


# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that can start
# inline markup (links, images, HTML, code spans, emphasis, strikethrough) or split a GFM table
# cell. "!" needs none ("![" is broken by escaping "["), nor does ">" (no "<" can open a tag);
# "&" only where it would start an entity. Line-start syntax (#, -, +, 1.) cannot occur: target
# text never starts a line.
_SPECIAL = re.compile(r"([\\`*_\[\]<|~]|&(?=#?[A-Za-z0-9]+;))")
# GFM's extended autolinks fire on "scheme://", "www." and "user@host" in plain text; escaping
# the trigger character (":" , "." or "@") keeps them text.
_AUTOLINK_SCHEME = re.compile(r"(?<=[A-Za-z0-9])://")
_AUTOLINK_WWW = re.compile(r"(?i)\b(www)\.")


def md_text(text: str | None, limit: int = 300) -> str:
    """``text`` made inert for Markdown: printable, cut to ``limit``, every Markdown-significant
    character backslash-escaped. A renderer shows the original characters, as text."""
    cell = printable(text or "", limit)
    cell = _SPECIAL.sub(r"\\\1", cell)
    cell = _AUTOLINK_SCHEME.sub(r"\\://", cell)
    cell = _AUTOLINK_WWW.sub(r"\1\\.", cell)
    return cell.replace("@", "\\@")


def plural(count: int, noun: str) -> str:
    """``1 host``, ``2 hosts``, ``0 hosts``: a count and its noun, which takes an ``s``
    (``address`` an ``es``) unless the count is one."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith(("s", "sh", "ch", "x")) else f"{count} {noun}s"
