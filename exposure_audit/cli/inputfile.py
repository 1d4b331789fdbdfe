"""Reading the files a command is given (targets, exclusions, the config, accepted risks, a UPnP
inventory) within fixed bounds: whatever the file is (``/dev/zero``, ``/dev/urandom``, a FIFO,
a 300 MB line), reading it costs at most :data:`INPUT_CAP` bytes of memory and stops at the
first line past the line cap, with an error naming the cap and ``file:line`` (exit 2).
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import Final

from ..errors import UsageError

__all__ = ["INPUT_CAP", "LINE_CAP", "read_input"]

INPUT_CAP: Final = 16 << 20
"""The largest input file read (16 MiB): a targets file of a /12 written out one address a
line fits, and no file can hold the process's memory."""
LINE_CAP: Final = 4096
"""The longest line of a line-based file (targets, exclusions), in bytes: an item is at most
253 characters, so a longer line is not a list of targets (a binary file, a paste gone wrong)."""
_CHUNK = 1 << 16
_BOM = "\ufeff"


def read_input(path: Path, what: str, *, line_cap: int | None = None) -> str:
    """The text of ``path`` (UTF-8, a byte-order mark at its start dropped), ``what`` naming
    it in messages (``targets file``).

    Raises :class:`UsageError` naming the file (and the line, where one applies) when it is
    missing or unreadable, larger than :data:`INPUT_CAP`, holds a line longer than
    ``line_cap`` bytes (None: no line cap), or is not UTF-8. Reads at most one chunk past a
    cap, whatever the file is (a device, a FIFO): the bound holds before the size is known.
    """
    name = f"{what} {path}"
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise UsageError(f"{name}: not found") from None
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror or exc}") from None
    with handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > INPUT_CAP:
            raise UsageError(_too_big(name, info.st_size, hint=line_cap is not None))
        decoder = codecs.getincrementaldecoder("utf-8")()
        parts: list[str] = []
        total = 0
        line = 1  # the line the next byte belongs to
        line_bytes = 0  # bytes of that line read so far
        while True:
            try:
                chunk = handle.read(_CHUNK)
            except OSError as exc:
                raise UsageError(f"{name}: {exc.strerror or exc}") from None
            if not chunk:
                break
            total += len(chunk)
            if total > INPUT_CAP:
                raise UsageError(_too_big(name, None, line, hint=line_cap is not None))
            pieces = chunk.split(b"\n")
            if line_cap is not None:
                for offset, piece in enumerate(pieces):
                    length = len(piece) + (line_bytes if offset == 0 else 0)
                    if length > line_cap:
                        raise UsageError(
                            f"{name}:{line + offset}: a line longer than {line_cap:,} bytes "
                            f"(the cap on one line; an address, range or host name is at most "
                            f"253 characters)"
                        )
            try:
                parts.append(decoder.decode(chunk))
            except UnicodeDecodeError as exc:
                where = line + chunk.count(b"\n", 0, exc.start)
                raise UsageError(f"{name}:{where}: not UTF-8 text ({exc.reason})") from None
            line += len(pieces) - 1
            line_bytes = len(pieces[-1]) + (line_bytes if len(pieces) == 1 else 0)
        try:
            parts.append(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            raise UsageError(f"{name}:{line}: not UTF-8 text ({exc.reason} at its end)") from None
    text = "".join(parts)
    return text[1:] if text.startswith(_BOM) else text


def _too_big(name: str, size: int | None, line: int | None = None, *, hint: bool = False) -> str:
    where = f"{name}:{line}" if line is not None else name
    shown = f" ({size:,} bytes)" if size is not None else ""
    more = "; split it, or write ranges instead of single addresses" if hint else ""
    return f"{where}: larger than the {INPUT_CAP >> 20} MiB input cap{shown}{more}"
