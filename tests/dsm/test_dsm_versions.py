"""Build number -> release, and the build table data file."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from exposure_audit.dsm import resolve_version, version_for_build
from exposure_audit.dsm.versions import build_table, major_minor, version_tuple


@pytest.mark.parametrize(
    ("build", "release"),
    [
        (318, "2.0"),
        (2197, "4.0"),
        (2257, "4.0"),
        (2259, "4.0"),
        (2851, "4.1"),
        (3243, "4.2"),
        (3776, "4.3"),
        (3810, "4.3"),
        (3827, "4.3"),
        (4244, "4.3"),  # Greenbone: boxes with 4.3-4244 exist beyond the last release note
        (4458, "5.0"),
        (5022, "5.1"),
        (5967, "5.2"),
        (8754, "6.0.3"),
        (15152, "6.1.3"),
        (15284, "6.1.7"),
        (23739, "6.2"),
        (24922, "6.2.2"),
        (25426, "6.2.3"),
        (25556, "6.2.4"),
        (41890, "7.0"),
        (42218, "7.0.1"),
        (42661, "7.1"),
        (42962, "7.1.1"),
        (64570, "7.2"),
        (69057, "7.2.1"),
        (72806, "7.2.2"),
    ],
)
def test_a_build_maps_to_the_release_whose_interval_holds_it(build: int, release: str) -> None:
    assert version_for_build(build) == release


@pytest.mark.parametrize("build", [64561, 64565, 64569])
def test_builds_64561_to_64569_are_7_2_not_7_1_1_as_in_greenbones_table(build: int) -> None:
    # SA-24:01 is fixed in 7.2-64561; Greenbone's intervals start 7.2 at 64570.
    assert version_for_build(build) == "7.2"


def test_7_2_2_starts_at_the_verified_build_72806() -> None:
    assert version_for_build(72805) == "7.2.1"
    assert version_for_build(72806) == "7.2.2"


def test_7_3_releases_are_in_the_table_but_marked_unverified() -> None:
    rows = {row.version: row for row in build_table()}
    assert version_for_build(81180) == "7.3"
    assert version_for_build(86009) == "7.3.2"
    assert [rows[v].verified for v in ("7.3", "7.3.1", "7.3.2")] == [False, False, False]


@pytest.mark.parametrize("build", [-1, 0, 317, 1_000_000, 1_781_661_654])
def test_numbers_outside_the_build_range_map_to_no_release(build: int) -> None:
    assert version_for_build(build) is None


def test_a_build_past_the_newest_entry_reads_as_the_newest_known_release() -> None:
    assert version_for_build(99_999) == build_table()[-1].version


@pytest.mark.parametrize(
    ("version", "build", "expected"),
    [
        ("6.2", 25556, "6.2.4"),  # the build refines the leaked x.y
        ("6.2.4", 25556, "6.2.4"),
        ("7.2", 69057, "7.2.1"),  # UPnP modelNumber "FS3400 7.2-69057"
        ("7.2.0", 64570, "7.2"),
        (None, 3810, "4.3"),
        ("4.3", None, "4.3"),
        ("7.4", 90075, "7.4"),  # newer than the table: the box's own word wins
        ("not-a-version", 25556, "6.2.4"),
        ("not-a-version", None, None),
        (None, None, None),
    ],
)
def test_resolve_version_prefers_the_build_when_it_agrees_with_the_leaked_version(
    version: str | None, build: int | None, expected: str | None
) -> None:
    assert resolve_version(version, build) == expected


def test_version_helpers_accept_only_x_y_and_x_y_z() -> None:
    assert version_tuple("6.2.4") == (6, 2, 4)
    assert version_tuple("7.2") == (7, 2)
    assert version_tuple("7") is None
    assert version_tuple("7.2.1.1") is None
    assert major_minor("7.2.1") == "7.2"
    assert major_minor("DSM") is None


def test_the_build_table_is_sorted_and_every_row_names_a_source() -> None:
    rows = build_table()
    assert [r.first_build for r in rows] == sorted(r.first_build for r in rows)
    assert all(r.source.strip() for r in rows)


def test_the_build_table_file_lists_its_sources_at_the_top() -> None:
    data = json.loads(
        files("exposure_audit.data").joinpath("dsm_builds.json").read_text(encoding="utf-8")
    )
    ids = {source["id"] for source in data["sources"]}
    assert {"GBN", "SYN-SL", "MSF"} <= ids
    assert all(source.get("title") for source in data["sources"])
