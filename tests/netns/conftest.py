"""Fixtures for tests that run in the UPnP network-namespace lab (:mod:`tests.netns.lab`).

``upnp_lab_lan_only``, ``upnp_lab_wan_exposed`` and ``upnp_lab_wan_insecure`` give the one
lab of their mode for the whole session (built on first use, about half a second each, torn
down at the end); ``upnp_lab`` is the same labs as one fixture parametrized over the modes.
Tests must leave a lab's mapping table as they found it; one that needs to change it builds
its own :class:`~tests.netns.lab.UpnpLab`.

The lab needs root and ``ip``, ``nft``, ``miniupnpd``, ``upnpc`` (``.ci/install``). Without
them the tests FAIL with the reason: CI runs as root, and a skipped test would pass for a
suite that proved nothing. Every test using a lab fixture is marked ``netns``
(``-m "not netns"`` leaves them out on a machine without root).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .lab import MODES, LabError, UpnpLab, missing_prerequisites, sweep_stale_namespaces

LAB_FIXTURES = frozenset(
    {"upnp_lab", "upnp_lab_lan_only", "upnp_lab_wan_exposed", "upnp_lab_wan_insecure"}
)


def require_lab_prerequisites() -> None:
    """Fail the calling test, saying why, when this machine cannot run the lab."""
    problems = missing_prerequisites()
    if problems:
        pytest.fail(
            "the UPnP network-namespace lab cannot run: " + "; ".join(problems),
            pytrace=False,
        )


class LabPool:
    """One :class:`UpnpLab` per mode, built on first request; a failed build is remembered
    so that every test asking for that mode fails at once with the same reason."""

    def __init__(self) -> None:
        self._labs: dict[str, UpnpLab] = {}
        self._failures: dict[str, str] = {}

    def get(self, mode: str) -> UpnpLab:
        if mode in self._failures:
            pytest.fail(self._failures[mode], pytrace=False)
        if mode not in self._labs:
            lab = UpnpLab(mode)
            try:
                lab.start()
            except LabError as exc:
                self._failures[mode] = str(exc)
                pytest.fail(str(exc), pytrace=False)
            self._labs[mode] = lab
        return self._labs[mode]

    def close(self) -> None:
        errors = []
        for lab in self._labs.values():
            try:
                lab.stop()
            except LabError as exc:
                errors.append(str(exc))
        self._labs.clear()
        if errors:
            raise LabError("; ".join(errors))


@pytest.fixture(scope="session")
def upnp_lab_pool() -> Iterator[LabPool]:
    require_lab_prerequisites()
    sweep_stale_namespaces()
    pool = LabPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def upnp_lab_lan_only(upnp_lab_pool: LabPool) -> UpnpLab:
    """The session's ``lan-only`` lab: UPnP answers on the LAN only."""
    return upnp_lab_pool.get("lan-only")


@pytest.fixture(scope="session")
def upnp_lab_wan_exposed(upnp_lab_pool: LabPool) -> UpnpLab:
    """The session's ``wan-exposed`` lab: SSDP and the IGD (read-only) answer on the WAN."""
    return upnp_lab_pool.get("wan-exposed")


@pytest.fixture(scope="session")
def upnp_lab_wan_insecure(upnp_lab_pool: LabPool) -> UpnpLab:
    """The session's ``wan-insecure`` lab: the WAN could even add mappings."""
    return upnp_lab_pool.get("wan-insecure")


@pytest.fixture(scope="session", params=MODES)
def upnp_lab(request: pytest.FixtureRequest, upnp_lab_pool: LabPool) -> UpnpLab:
    """The session's lab of each mode in turn (``lab.mode`` says which)."""
    mode: str = request.param
    return upnp_lab_pool.get(mode)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Collection hooks of a conftest see every item of the session: mark only lab users.
    for item in items:
        if LAB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.netns)
