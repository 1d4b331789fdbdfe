"""Progress on stderr: a rich bar on a terminal, plain lines when asked for on a pipe or file.

Both show hosts done / total and the current phase. Only the CLI creates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..observations import HostStatus
from ..report import HostReport
from ..text import printable

__all__ = ["LineProgress", "RichProgress", "make_progress"]


class RichProgress:
    """A live bar drawn by rich on a terminal; it removes itself when every host is done."""

    def __init__(self, stream: TextIO) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("hosts"),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self._task = self._progress.add_task("starting", total=None)
        self._total = 0
        self._done = 0

    def phase(self, text: str) -> None:
        self._progress.update(self._task, description=text)

    def start(self, total_hosts: int) -> None:
        self._total = total_hosts
        self._progress.start()
        self._progress.update(self._task, total=total_hosts)
        if total_hosts == 0:
            self._progress.stop()

    def advance(self, hosts: int = 1, done: Sequence[HostReport] = ()) -> None:
        self._done += hosts
        self._progress.advance(self._task, hosts)
        if self._done >= self._total:
            self._progress.stop()

    def stop(self) -> None:
        """Remove the bar and restore the cursor (idempotent). The CLI calls it before saying
        anything about the run: an interrupted run never finished its hosts, and a bar left
        running would keep drawing over the message."""
        self._progress.stop()


class LineProgress:
    """One line per phase change and per host finished: for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._total = 0
        self._done = 0
        self._phase = ""

    def _line(self, text: str) -> None:
        self._stream.write(f"[{self._done}/{self._total} hosts] {text}\n")
        self._stream.flush()

    def phase(self, text: str) -> None:
        if text != self._phase:
            self._phase = text
            self._line(text)

    def start(self, total_hosts: int) -> None:
        self._total = total_hosts
        self._line("starting")

    def advance(self, hosts: int = 1, done: Sequence[HostReport] = ()) -> None:
        """``[3/9 hosts] host done: 198.51.100.7 (nas.example.net), grade F``; a cluster
        block's hosts share one line (``3 hosts done: ...; ...``)."""
        self._done += hosts
        if not done:
            self._line("host done" if hosts == 1 else f"{hosts} hosts done")
            return
        said = "; ".join(_host_done(h) for h in done)
        self._line(f"host done: {said}" if len(done) == 1 else f"{len(done)} hosts done: {said}")

    def stop(self) -> None:
        """Nothing to tear down: lines are written as they come."""


def _host_done(host: HostReport) -> str:
    """A finished host for a progress line: its address, names, grade, and ``incomplete``."""
    obs = host.observation
    names = f" ({', '.join(obs.hostnames)})" if obs.hostnames else ""
    cut = ", incomplete" if obs.status is HostStatus.INCOMPLETE else ""
    # printable: host names come from DNS answers, which may carry terminal escapes
    return printable(f"{obs.address}{names}, grade {host.grade.value}{cut}", 300)


def make_progress(
    stream: TextIO, *, quiet: bool, forced: bool
) -> RichProgress | LineProgress | None:
    """The progress display for ``stream``: none when quiet or (not a terminal and not forced)."""
    if quiet:
        return None
    if stream.isatty():
        return RichProgress(stream)
    return LineProgress(stream) if forced else None
