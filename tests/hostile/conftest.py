"""The hostile corpus, started once for the whole directory (all of it runs in one background
thread; starting it takes a fraction of a second)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .corpus import Corpus


@pytest.fixture(scope="session")
def corpus() -> Iterator[Corpus]:
    with Corpus() as running:
        yield running
