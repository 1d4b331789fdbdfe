"""The command line's own grammar: a parser whose subcommands take options and arguments in any
order and answer a mistyped option with their own usage, and the types of its numeric and
run arguments, each bounded so that no value can reach the run as NaN, infinity, a negative
count or an integer too large for SQLite (exit 2 with a one-line reason, never a traceback).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from typing import NoReturn

__all__ = [
    "MAX_SECONDS",
    "QUOTE_LIMIT",
    "CommandParser",
    "cut",
    "integer",
    "run_ref",
    "seconds",
]

MAX_SECONDS = 86_400.0
"""The longest timeout or wait a flag takes (a day), as the config's ``host_timeout``."""
QUOTE_LIMIT = 80
"""At most this many characters of user input are quoted in a message."""
_MAX_RUN_ID = (1 << 63) - 1  # SQLite's largest integer
_DIGITS = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only (int() takes any script's)
_MESSAGE_LIMIT = 400


def cut(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a decimal integer of at most 19 digits (larger ones are refused
    before Python builds them), within ``low..high`` when
    given (``None``: the command checks that end itself, with its own message)."""

    def parse(text: str) -> int:
        digits = text.strip()
        if not _DIGITS.match(digits):
            raise argparse.ArgumentTypeError(f"invalid int value: {cut(text)}")
        if len(digits.lstrip("+-")) > 19:
            limit = f"at most {high:,}" if high is not None else "a 64-bit integer"
            raise argparse.ArgumentTypeError(f"must be {limit}, not {cut(digits, 30)}")
        value = int(digits)
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:,}, not {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, not {value:,}")
        return value

    parse.__name__ = "int"
    return parse


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, more than 0 and at most a day (not
    ``nan``, ``inf`` or ``1e400``, which Python's ``float`` accepts)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {cut(text)}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_SECONDS:.0f} seconds, not {cut(text)}"
        )
    return value


def run_ref(text: str) -> str:
    """An argparse type: a run id (digits; SQLite's integers are 64-bit), ``latest`` or
    ``previous``; returned as written (stripped) for :meth:`HistoryStore.resolve_run`."""
    ref = text.strip()
    if ref.lower() in ("latest", "previous"):
        return ref.lower()
    if ref.isascii() and ref.isdigit():
        if len(ref) > 19 or int(ref) > _MAX_RUN_ID:
            raise argparse.ArgumentTypeError(f"no run has an id that large: {cut(ref)}")
        return str(int(ref))
    raise argparse.ArgumentTypeError(
        f"{cut(text)} is not a run: give a run id from 'exposure-audit history', "
        "'latest' or 'previous'"
    )


class CommandParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose subcommands (parsers without subcommands of
    their own) take options and arguments intermixed (``scan A -p 5000 B``), and reject an
    argument they do not know with their own usage, not the top-level one. Messages are cut
    to a few hundred characters: an argument can be megabytes long."""

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._subparsers is not None or self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            parsed, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False
        if extras:
            shown = " ".join(cut(e, 60) if len(e) > 60 else e for e in extras[:5])
            more = f" (and {len(extras) - 5} more)" if len(extras) > 5 else ""
            self.error(f"unrecognized arguments: {shown}{more}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 1] + "…"
        super().error(message)
