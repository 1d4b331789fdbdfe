"""Writing what a command produced: to stdout, or atomically to a file (falling back to stdout
with an error when the file cannot be written), the exit codes every command shares, and the
stderr line of a run that audited nothing."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from ...history.store import readable_by_others
from ...report import Report
from ...text import printable

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_RUN",
    "EXIT_USAGE",
    "emit",
    "say_nothing_audited",
    "warn_if_store_shared",
    "write_atomically",
]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_RUN = 0, 1, 2, 3


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: readers never see half."""
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


def emit(text: str, output: str | None, what: str = "report") -> int:
    """Write ``text`` to ``output`` (or stdout). When the file cannot be written the error
    says so and the text goes to stdout: returns EXIT_RUN then, EXIT_OK otherwise."""
    if not output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        write_atomically(Path(output), text)
    except OSError as exc:
        print(
            f"exposure-audit: cannot write {output}: {exc.strerror or exc}; "
            f"the {what} follows on stdout",
            file=sys.stderr,
        )
        sys.stdout.write(text)
        return EXIT_RUN
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
