"""Fixtures of the fault tests (see ``support.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Running


@pytest.fixture
def running() -> Iterator[list[Running]]:
    """Processes a test started; any still alive at its end is killed with its group."""
    started: list[Running] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.kill()
