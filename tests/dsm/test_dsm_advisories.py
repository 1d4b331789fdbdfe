"""SynoLocker, end of life and pre-auth advisories judged against fingerprints."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

import pytest

from exposure_audit.dsm import (
    AdvisoryVerdict,
    assess,
    end_of_life,
    synolocker_exploitable,
    version_for_build,
)
from exposure_audit.observations import DsmFingerprint


def box(
    version: str | None,
    build: int | None,
    update: int | None = None,
    model: str | None = None,
) -> DsmFingerprint:
    return DsmFingerprint(
        markers=("title", "noscript"), version=version, build=build, update=update, model=model
    )


def by_key(verdicts: tuple[AdvisoryVerdict, ...]) -> dict[str, AdvisoryVerdict]:
    return {v.key: v for v in verdicts}


def advisories_file() -> dict[str, Any]:
    text = files("exposure_audit.data").joinpath("dsm_advisories.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# --- SynoLocker -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "build", "exploitable"),
    [
        ("4.3", 3810, True),
        ("4.3", 3827, False),
        ("4.1", 2851, True),
        ("4.1", None, True),  # the whole 4.1 branch
        ("4.0", 2257, True),
        ("4.0", 2259, False),
        ("4.2", 3236, True),
        ("4.2", 3243, False),
        (None, 3810, True),  # the build alone says 4.3
        ("5.0", 4458, False),
        ("5.0", None, False),
        ("3.2", 1922, False),  # DSM 3.x is not affected
        ("4.3", None, False),  # 4.3 without a build cannot be decided
        (None, None, False),
    ],
)
def test_synolocker_exploitability_follows_synologys_fixed_builds(
    version: str | None, build: int | None, exploitable: bool
) -> None:
    assert synolocker_exploitable(version, build) is exploitable


# --- end of life --------------------------------------------------------------------------


def test_end_of_life_names_the_branch_and_its_date_when_the_source_gives_one() -> None:
    reason = end_of_life("5.2", 5967)
    assert reason is not None
    assert "5.2" in reason and "2019-06-30" in reason


def test_end_of_life_says_so_without_a_date_for_branches_listed_without_one() -> None:
    reason = end_of_life(None, 2851)
    assert reason is not None
    assert "4.1" in reason and "no date" in reason


@pytest.mark.parametrize(("version", "build"), [("6.2.4", 25556), ("7.2.2", 72806), (None, None)])
def test_supported_or_unknown_branches_are_not_end_of_life(
    version: str | None, build: int | None
) -> None:
    assert end_of_life(version, build) is None


def test_every_branch_from_4_0_to_6_1_is_end_of_life() -> None:
    for branch in ("4.0", "4.1", "4.2", "4.3", "5.0", "5.1", "5.2", "6.0", "6.1"):
        assert end_of_life(branch, None) is not None, branch


# --- advisories -----------------------------------------------------------------------------


def test_6_2_4_update_7_is_certainly_vulnerable_to_sa_24_20() -> None:
    verdict = by_key(assess(box("6.2.4", 25556, update=7)))["SA-24:20"]
    assert verdict.certain is True
    assert verdict.fixed_in == "6.2.4-25556-8"
    assert verdict.cves == ("CVE-2024-10445",)
    assert verdict.sources


def test_6_2_4_with_an_unknown_update_is_possibly_vulnerable_to_sa_24_20() -> None:
    verdict = by_key(assess(box("6.2.4", 25556, update=None)))["SA-24:20"]
    assert verdict.certain is False
    assert "Update" in verdict.reason


def test_6_2_4_update_8_is_clear_of_the_update_level_advisories() -> None:
    keys = set(by_key(assess(box("6.2.4", 25556, update=8))))
    assert keys.isdisjoint({"SA-22:01", "SA-22:06", "SA-22:23", "SA-24:20"})
    # SA-21:24 and SA-22:18 list no fix for 6.2 at all.
    assert {"SA-21:24", "SA-22:18"} <= keys


def test_7_2_2_72806_update_3_has_no_advisory_in_the_sheet() -> None:
    assert assess(box("7.2.2", 72806, update=3)) == ()


def test_7_0_1_42218_has_certain_verdicts_because_7_0_has_no_sa_24_20_fix() -> None:
    verdicts = by_key(assess(box("7.0.1", 42218)))
    assert any(v.certain for v in verdicts.values())
    assert verdicts["SA-24:20"].certain is True
    assert verdicts["SA-24:20"].fixed_in is None
    assert verdicts["SA-22:23"].certain is False  # needs Update 6, which is invisible


def test_a_lower_build_on_the_branch_is_certain() -> None:
    verdicts = by_key(assess(box("6.2.2", 24922, update=4)))
    assert verdicts["SA-20:26"].certain is True
    assert "24922" in verdicts["SA-20:26"].reason


def test_the_pre_auth_rce_class_hits_6_2_below_25426() -> None:
    keys = set(by_key(assess(box("6.2.3", 25423))))
    assert {"SA-20:26", "SA-22:01", "SA-22:06"} <= keys


def test_7_2_builds_64561_to_64569_are_certainly_below_sa_24_20s_7_2_fix() -> None:
    verdict = by_key(assess(box(None, 64565)))["SA-24:20"]
    assert verdict.certain is True
    assert verdict.fixed_in == "7.2-64570-4"


def test_the_most_specific_branch_decides_for_7_2_1() -> None:
    verdict = by_key(assess(box("7.2", 69057, update=5)))["SA-24:20"]
    assert verdict.fixed_in == "7.2.1-69057-6"
    assert verdict.certain is True


def test_7_1_below_42661_gets_sa_22_06_and_sa_22_18() -> None:
    keys = set(by_key(assess(box("7.1", 42500))))
    assert {"SA-22:06", "SA-22:18"} <= keys


def test_a_model_limited_advisory_needs_the_model() -> None:
    assert "SA-22:17" not in by_key(assess(box("7.1.1", 42962)))
    assert "SA-22:17" not in by_key(assess(box("7.1.1", 42962, model="DS920+")))
    verdict = by_key(assess(box("7.1.1", 42962, model="DS3622xs+")))["SA-22:17"]
    assert verdict.certain is False  # fixed in 7.1.1-42962-2, update unknown


def test_without_a_build_a_three_part_version_is_compared_on_the_version() -> None:
    verdicts = by_key(assess(box("6.2.3", None)))
    assert verdicts["SA-24:20"].certain is True  # 6.2.3 < 6.2.4
    assert verdicts["SA-20:26"].certain is False  # 6.2.3 = 6.2.3: build unknown


def test_a_box_without_version_or_build_gets_no_verdicts() -> None:
    assert assess(box(None, None)) == ()


def test_a_release_newer_than_every_advisory_gets_none() -> None:
    assert assess(box("7.3.2", 86009, update=0)) == ()


def test_dsm_4_3_gets_no_advisory_verdict_because_synolocker_is_judged_separately() -> None:
    assert assess(box("4.3", 3810)) == ()


# --- the data file ------------------------------------------------------------------------

_RELEASE = re.compile(r"(\d+\.\d+(?:\.\d+)?)-(\d+)(?:-(\d+))?")


def test_every_advisory_is_pre_auth_and_carries_sources_and_cves() -> None:
    for advisory in advisories_file()["advisories"]:
        assert advisory["pre_auth"] is True, advisory["key"]
        assert advisory["sources"], advisory["key"]
        assert advisory["cves"], advisory["key"]
        assert advisory["affected"], advisory["key"]


def test_the_required_advisories_are_present() -> None:
    keys = {a["key"] for a in advisories_file()["advisories"]}
    assert {"SA-20:26", "SA-21:24", "SA-22:01", "SA-22:06", "SA-22:18", "SA-22:23"} <= keys
    assert "SA-24:20" in keys


def test_every_fixed_release_lies_on_its_branch_and_agrees_with_the_build_table() -> None:
    for advisory in advisories_file()["advisories"]:
        for entry in advisory["affected"]:
            if entry["fixed"] is None:
                continue
            match = _RELEASE.fullmatch(entry["fixed"])
            assert match, entry
            version, build = match.group(1), int(match.group(2))
            assert version == entry["branch"] or version.startswith(entry["branch"] + "."), entry
            table = version_for_build(build)
            assert table is not None and table.split(".")[:3] == version.split(".")[:3], entry


def test_synolocker_and_end_of_life_sections_cite_sources() -> None:
    data = advisories_file()
    assert data["synolocker"]["cves"] == ["CVE-2013-6955"]
    assert data["synolocker"]["sources"]
    assert all(row["source"] for row in data["end_of_life"]["branches"])
    source_ids = {s["id"] for s in data["sources"]}
    assert set(data["synolocker"]["sources"]) <= source_ids
