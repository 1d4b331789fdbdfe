"""Fitting terminal text into a width: wrapped paragraphs, tables whose widest columns wrap,
and a last pass that cuts whatever still does not fit.

Pure. Widths are counted in terminal cells (:func:`cells`: East Asian wide characters take
two, combining marks none), so a line never runs past the terminal's edge. The CLI decides the
width (the terminal's, or 80 columns when the output is not a terminal: docs/usage.md);
renderers only take it.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Collection, Sequence

from tabulate import tabulate

__all__ = ["DEFAULT_WIDTH", "MIN_WIDTH", "cells", "clip", "fit_table", "wrap"]

DEFAULT_WIDTH = 80
"""The width of a table written anywhere but a terminal (a pipe, a file, a mail)."""

MIN_WIDTH = 20
"""The narrowest width honoured: below it, text is laid out for 20 columns."""

_GAP = 2  # tabulate's "simple" format puts two spaces between columns
_MIN_COLUMN = 16  # narrower than this a column is unreadable: rows become records


def cells(text: str) -> int:
    """The terminal cells ``text`` takes (one line)."""
    total = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


def wrap(text: str, width: int, indent: str = "", subsequent: str | None = None) -> list[str]:
    """``text`` as lines of at most ``width`` cells, the first starting with ``indent``, the
    others with ``subsequent`` (default: as many spaces). Long words are broken."""
    width = max(width, MIN_WIDTH)
    rest = " " * len(indent) if subsequent is None else subsequent
    half = width // 2  # an indent leaves at least half the line for the text
    indent, rest = indent[:half], rest[:half]
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=rest,
        break_long_words=True,
        break_on_hyphens=False,
    )
    return clip(lines or [indent.rstrip()], width)


def clip(lines: Sequence[str], width: int) -> list[str]:
    """Every line of ``lines`` (which may hold newlines) cut into pieces of at most ``width``
    cells: the guarantee behind every other helper (wide characters, odd tabulate output)."""
    width = max(width, MIN_WIDTH)
    out: list[str] = []
    for block in lines:
        for line in block.split("\n"):
            while cells(line) > width:
                cut, used = 0, 0
                for i, char in enumerate(line):
                    used += cells(char)
                    if used > width:
                        break
                    cut = i + 1
                cut = max(cut, 1)
                out.append(line[:cut].rstrip())
                line = line[cut:]
            out.append(line.rstrip())
    return out


def _header(text: str) -> int:
    """A header's width in the table: tabulate pads headers by two cells (MIN_PADDING)."""
    return cells(text) + 2


def _natural(headers: Sequence[str], rows: Sequence[Sequence[str]], column: int) -> int:
    widths = [_header(headers[column])]
    widths += [cells(line) for row in rows for line in row[column].split("\n")]
    return max(widths)


def fit_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    flexible: Collection[int],
    caps: Sequence[int | None] | None = None,
    indent: str = "",
) -> list[str]:
    """A "simple" table of ``rows`` (strings) in at most ``width`` cells per line.

    Columns keep their natural width (at most ``caps[i]`` when given: wrapped beyond it) while
    the table fits; when it does not, the ``flexible`` columns (indices) share the room left by
    the others and wrap. When even that cannot fit (a very narrow terminal), every row becomes
    a short list of ``header: value`` lines instead. ``indent`` starts every line.
    """
    width = max(width, MIN_WIDTH)
    n = len(headers)
    limits = [_natural(headers, rows, i) for i in range(n)]
    for i, cap in enumerate(caps or ()):
        if cap is not None:
            limits[i] = max(min(limits[i], cap), _header(headers[i]))
    room = width - len(indent) - _GAP * (n - 1)
    if sum(limits) > room:
        fixed = sum(limits[i] for i in range(n) if i not in flexible)
        floors = {i: max(_MIN_COLUMN, _header(headers[i])) for i in flexible}
        left = room - fixed
        if left < sum(min(floors[i], limits[i]) for i in flexible):
            return _as_records(headers, rows, width, indent)
        # Water-filling: the narrowest columns keep their width, the rest share what is left.
        pending = sorted(flexible, key=lambda i: limits[i])
        while pending:
            share = left // len(pending)
            i = pending[0]
            if limits[i] <= share:
                left -= limits[i]
                pending.pop(0)
                continue
            for j in pending:
                limits[j] = max(min(floors[j], limits[j]), share)
            break
    text = tabulate(
        [list(r) for r in rows],
        headers=list(headers),
        tablefmt="simple",
        maxcolwidths=list(limits),
        disable_numparse=True,
    )
    lines = [indent + line if line else line for line in text.split("\n")]
    if any(cells(line) > width for line in lines):
        return _as_records(headers, rows, width, indent)
    return lines


def _as_records(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, indent: str
) -> list[str]:
    """Each row as ``- header: value; header: value`` wrapped: for terminals too narrow for
    the table."""
    lines: list[str] = []
    for row in rows:
        parts = [f"{h}: {' '.join(v.split())}" for h, v in zip(headers, row, strict=True) if v]
        lines += wrap("; ".join(parts), width, f"{indent}- ", f"{indent}  ")
    return lines
