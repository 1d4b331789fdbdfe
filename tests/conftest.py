"""Shared test options: ``--update-golden`` regenerates renderer golden files."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/data/golden/* from the current renderers",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(autouse=True, scope="session")
def _history_in_a_temporary_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Scans store their runs in the user data dir by default: point it (for this process and
    every CLI subprocess) at a temporary directory, never the real home."""
    import os

    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
