"""Progress on stderr with rich: hosts done / total and the current phase."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["RichProgress"]


class RichProgress:
    """A :class:`~exposure_audit.audit.Progress` drawn by rich; it stops itself when done."""

    def __init__(self, stream: TextIO) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("hosts"),
            TimeElapsedColumn(),
            console=Console(file=stream, force_terminal=stream.isatty()),
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

    def advance(self, hosts: int = 1) -> None:
        self._done += hosts
        self._progress.advance(self._task, hosts)
        if self._done >= self._total:
            self._progress.stop()
