"""Fixtures for tests in the filtered-perimeter lab (:mod:`tests.perimeter.lab`).

``perimeter_lab`` is the session's one lab (vantages ``eu`` and ``us``, with the control
namespace; built on first use in well under a second, torn down at the end).
``perimeter_scans`` is one nmap connect scan of the whole /22 x the default TCP ports from
each vantage, run once per session and shared: tests read it, none changes the lab.

The lab needs root and ``ip``, ``nft``, ``nmap`` (``.ci/install``). Without them the tests
FAIL with the reason, as in tests/netns: CI runs as root, and a skipped test would pass for a
suite that proved nothing. Every test using a lab fixture is marked ``netns``
(``-m "not netns"`` leaves them out on a machine without root); the pure tests here run
everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from .lab import LabError, NmapRun, PerimeterLab, missing_prerequisites, sweep_stale_namespaces

LAB_FIXTURES = frozenset({"perimeter_lab", "perimeter_scans", "lab_prerequisites"})

#: The vantages of the session's lab.
VANTAGES = ("eu", "us")

#: The scan the tests check: fast on the lab (about 7 s for 31,744 probes) and still exact,
#: because one retry covers a probe answered late on a loaded CI machine.
SCAN_FLAGS = ("-T4", "--min-rate", "20000", "--max-retries", "1")


def require_lab_prerequisites() -> None:
    """Fail the calling test, saying why, when this machine cannot run the lab."""
    problems = missing_prerequisites()
    if problems:
        pytest.fail(
            "the perimeter network-namespace lab cannot run: " + "; ".join(problems),
            pytrace=False,
        )


@pytest.fixture
def lab_prerequisites() -> None:
    """For tests that build their own lab: fail at once when the machine cannot."""
    require_lab_prerequisites()
    sweep_stale_namespaces()


@pytest.fixture(scope="session")
def perimeter_lab() -> Iterator[PerimeterLab]:
    require_lab_prerequisites()
    sweep_stale_namespaces()
    lab = PerimeterLab(VANTAGES, control=True)
    try:
        lab.start()
    except LabError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="session")
def perimeter_scans(perimeter_lab: PerimeterLab) -> dict[str, NmapRun]:
    """vantage -> its nmap run over the whole /22. The vantages scan at the same time (one
    nmap each; nmap's connect scan keeps one core busy), which halves the wait."""
    with ThreadPoolExecutor(len(VANTAGES)) as pool:
        runs = pool.map(lambda v: perimeter_lab.nmap(v, SCAN_FLAGS, timeout=240), VANTAGES)
        return dict(zip(VANTAGES, runs, strict=True))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Collection hooks of a conftest see every item of the session: mark only lab users.
    for item in items:
        if LAB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.netns)
