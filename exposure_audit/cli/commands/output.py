"""Writing what a command produced: to stdout, or atomically to a file (falling back to stdout
with an error when the file cannot be written), the exit codes every command shares, and the
stderr line of a run that audited nothing."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from ...errors import UsageError
from ...history.store import readable_by_others
from ...report import Report
from ...text import printable

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_RUN",
    "EXIT_USAGE",
    "STDOUT",
    "check_output",
    "check_terminal",
    "emit",
    "say_nothing_audited",
    "warn_if_store_shared",
    "write_atomically",
    "write_output",
]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_RUN = 0, 1, 2, 3


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: readers never see half.
    The file is created with mode 0600 (``mkstemp``): a report maps a perimeter's exposure."""
    directory = path.parent if str(path.parent) else Path()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


STDOUT = "-"
"""``-o -``: the conventional name for standard output."""


def _writes_through(path: Path) -> bool:
    """Whether ``path`` (links followed) is something other than a regular file: a device
    (``/dev/full``, ``/dev/stdout``), a FIFO, a socket. Those are written to, never replaced
    (renaming a file over ``/dev/null`` would destroy the device node)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def write_output(output: str, text: str) -> None:
    """Write ``text`` where ``-o`` points: stdout for ``-``; straight into a device, FIFO or
    socket; otherwise atomically onto the regular file or new path the name leads to (through
    symlinks: the link stays, its target gets the report)."""
    if output == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(output)
    if _writes_through(path):
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        return
    write_atomically(Path(os.path.realpath(path)), text)


def check_output(output: str | None, inputs: Iterable[tuple[Path, str]] = ()) -> None:
    """Refuse, before any work, an ``-o`` that would destroy one of the command's ``inputs``
    (``(path, what)`` pairs: the history store, the config, a targets or accepted-risk file)
    or that cannot be written (a missing or read-only directory, a directory). Raises
    :class:`UsageError` naming both."""
    if not output or output == STDOUT:
        return
    path = Path(output)
    for source, what in inputs:
        if _same_file(path, source):
            raise UsageError(f"-o {output} is the {what}: the report would replace it")
    if _writes_through(path):
        if not os.access(path, os.W_OK):
            raise UsageError(f"-o {output}: not writable")
        return
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise UsageError(f"-o {output} is a directory")
    directory = target.parent
    if not directory.is_dir():
        raise UsageError(f"-o {output}: no directory {directory}")
    if not os.access(directory, os.W_OK | os.X_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        raise UsageError(f"-o {output}: not writable here")


_MARKUP_FORMATS = ("html", "sarif")
"""Formats that are markup for a program, never for a terminal to show."""


def check_terminal(fmt: str | None, output: str | None, stdout: TextIO | None = None) -> None:
    """Refuse, before any work, ``--format html`` or ``sarif`` bound for a terminal (no ``-o``
    and ``stdout`` a TTY): pages of markup help nobody there. :class:`UsageError` with how to
    get the file; ``-o -`` or a pipe write it to stdout as asked."""
    if fmt not in _MARKUP_FORMATS or output:
        return
    stream = sys.stdout if stdout is None else stdout
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stdout
        terminal = False
    if terminal:
        suffix = "html" if fmt == "html" else "sarif"
        raise UsageError(
            f"--format {fmt} writes markup, not for a terminal: use -o FILE "
            f"(e.g. -o report.{suffix}), or pipe it (| less, > report.{suffix}); "
            "-o - writes it here anyway"
        )


def _same_file(a: Path, b: Path) -> bool:
    """Whether two names lead to one file (links followed; also for a store not yet created,
    by resolved name)."""
    try:
        return a.samefile(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def emit(text: str, output: str | None, what: str = "report", *, verdict: str | None = None) -> int:
    """Write ``text`` to ``output`` (or stdout), by :func:`write_output`. When the file cannot
    be written the error says so and the text goes to stdout: returns EXIT_RUN then, EXIT_OK
    otherwise. Once written to a file (not ``-``), stderr gets ``verdict`` (the run in one
    line, when given) and ``WHAT written to FILE``: the terminal still says how it went."""
    if not output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        write_output(output, text)
    except OSError as exc:
        print(
            f"exposure-audit: cannot write {output}: {exc.strerror or exc}; "
            f"the {what} follows on stdout",
            file=sys.stderr,
        )
        sys.stdout.write(text)
        return EXIT_RUN
    if output != STDOUT:
        if verdict:
            print(f"exposure-audit: {verdict}", file=sys.stderr)
        print(f"exposure-audit: {what} written to {printable(output, 1000)}", file=sys.stderr)
    return EXIT_OK


def say_nothing_audited(report: Report) -> bool:
    """When ``report`` audited no host: say so on stderr with each target's reason
    (``exposure-audit: nothing was audited: gone.example.net: NXDOMAIN: ...; 198.51.100.7:
    excluded``) and return True (the command exits EXIT_RUN: an empty report is no all-clear).
    False, and nothing printed, when a host was audited."""
    if not report.audited_nothing:
        return False
    reasons = "; ".join(f"{t.target}: {t.reason}" for t in report.not_audited)
    # printable: resolver errors and target text may carry terminal escapes
    text = printable("nothing was audited" + (f": {reasons}" if reasons else ""), 4000)
    print(f"exposure-audit: {text}", file=sys.stderr)
    return True


def warn_if_store_shared(path: Path | None) -> None:
    """Say on stderr when the history store at ``path`` can be read by other users (the tool
    creates it private; an older or copied store may not be). A warning, not an error: the run
    goes on."""
    warning = readable_by_others(path) if path is not None else None
    if warning:
        print(f"exposure-audit: warning: {printable(warning, 1000)}", file=sys.stderr)
