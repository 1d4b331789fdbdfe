"""data/catalog_advisories.json: the management catalog's known-exploited advisories."""

from __future__ import annotations

import json
from importlib.resources import files

from exposure_audit.banners import Status, catalog_advisories, comparable_version, judge_disclosed
from exposure_audit.banners.dpkg import parse_version
from exposure_audit.mgmt import load_catalog


def test_every_advisory_names_a_catalog_product_and_is_kev_listed_with_its_date() -> None:
    catalog = {p.id for p in load_catalog()}
    assert catalog_advisories()
    for advisory in catalog_advisories():
        assert advisory.product in catalog, advisory.cve
        assert advisory.kev_listed and advisory.kev_date_added, advisory.cve
        assert "KEV" in advisory.sources, advisory.cve
        assert advisory.remediation and advisory.description, advisory.cve


def test_an_advisory_without_a_verified_fix_says_so_and_never_decides_from_the_version() -> None:
    for advisory in catalog_advisories():
        if not advisory.fixed:
            assert not advisory.certain_from_version, advisory.cve
            assert "not verified" in advisory.note, advisory.cve


def test_fixed_releases_lie_outside_every_affected_range() -> None:
    for advisory in catalog_advisories():
        for fixed in advisory.fixed:
            upstream = comparable_version(fixed)
            assert upstream is not None, (advisory.cve, fixed)
            if advisory.certain_from_version:
                assert judge_disclosed(advisory, fixed) is None, (advisory.cve, fixed)


def test_every_range_bound_is_a_debian_ordered_version() -> None:
    for advisory in catalog_advisories():
        for version_range in advisory.affected:
            for bound in (version_range.start, version_range.end):
                if bound is not None:
                    parse_version(bound)


def test_the_file_names_the_kev_snapshot_it_was_checked_against() -> None:
    text = files("exposure_audit.data").joinpath("catalog_advisories.json").read_text()
    snapshot = json.loads(text)["kev_snapshot"]
    assert "f6e140668216ef14804dfb44ab26e62b0924d95e" in snapshot["catalog"]


def test_unraid_before_6_8_1_is_certainly_affected_and_6_8_1_is_not() -> None:
    unraid = next(a for a in catalog_advisories() if a.cve == "CVE-2020-5847")
    verdict = judge_disclosed(unraid, "6.8.0")
    assert verdict is not None and verdict[0] is Status.AFFECTED
    assert judge_disclosed(unraid, "6.8.1") is None
    assert judge_disclosed(unraid, "6.12.15") is None
