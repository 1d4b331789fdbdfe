"""The banner advisories: the data says what each entry affects, and the matcher follows it."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from exposure_audit.banners import (
    Certainty,
    Status,
    VersionSource,
    advisories,
    assess,
    sighting_from_banner,
    sighting_from_nmap,
)
from exposure_audit.banners.advisories import in_range
from exposure_audit.banners.products import products

_DATA = json.loads(files("exposure_audit.data").joinpath("banner_advisories.json").read_text())
_NMAP_PRODUCT = {p.key: p.nmap_products[0] for p in products()}


def _cves(product: str, version: str, extrainfo: str = "") -> dict[str, Status]:
    sighting = sighting_from_nmap(product, version, extrainfo)
    assert sighting is not None
    return {v.advisory.cve: v.status for v in assess(sighting)}


def test_the_required_advisories_are_there_with_sources_and_kev_status() -> None:
    by_cve = {a.cve: a for a in advisories()}
    required = {
        "CVE-2024-6387",
        "CVE-2011-2523",
        "CVE-2015-3306",
        "CVE-2017-7494",
        "CVE-2018-1160",
        "CVE-2024-12084",
        "CVE-2021-21974",
    }
    assert required <= by_cve.keys()
    for advisory in by_cve.values():
        assert advisory.sources and advisory.remediation and advisory.description
        assert advisory.kev_listed == (advisory.kev_date_added is not None)
    assert by_cve["CVE-2017-7494"].kev_date_added == "2023-03-30"
    assert not by_cve["CVE-2024-6387"].kev_listed


@pytest.mark.parametrize("entry", _DATA["advisories"], ids=lambda e: e["cve"])
def test_each_entry_affects_its_range_and_not_its_fixed_versions(entry: dict[str, object]) -> None:
    advisory = next(a for a in advisories() if a.cve == entry["cve"])
    for version_range in advisory.affected:
        if version_range.start is not None:
            assert in_range(advisory, version_range.start)
        if version_range.end is not None:
            assert not in_range(advisory, version_range.end)
    for fixed in advisory.fixed:
        if fixed[0].isdigit():  # ESXi fixes are builds, not comparable versions
            assert not in_range(advisory, fixed.replace("rc", "~rc"))


@pytest.mark.parametrize(
    ("product", "version", "cve", "status"),
    [
        ("OpenSSH", "9.6p1", "CVE-2024-6387", Status.AFFECTED),
        ("OpenSSH", "8.5p1", "CVE-2024-6387", Status.AFFECTED),
        ("OpenSSH", "4.3p2", "CVE-2024-6387", Status.AFFECTED),
        ("Samba smbd", "4.5.9", "CVE-2017-7494", Status.AFFECTED),
        ("Samba smbd", "3.5.0", "CVE-2017-7494", Status.AFFECTED),
        ("ProFTPD", "1.3.5", "CVE-2015-3306", Status.AFFECTED),
        ("Netatalk", "3.1.11", "CVE-2018-1160", Status.AFFECTED),
        ("vsftpd", "2.3.4", "CVE-2011-2523", Status.POSSIBLY),  # the trojaned archive decides
    ],
)
def test_affected_versions_are_judged(product: str, version: str, cve: str, status: Status) -> None:
    assert _cves(product, version)[cve] is status


@pytest.mark.parametrize(
    ("product", "version"),
    [
        ("OpenSSH", "9.8p1"),
        ("OpenSSH", "8.4p1"),
        ("OpenSSH", "4.4p1"),
        ("Samba smbd", "4.6.4"),
        ("Samba smbd", "4.5.10"),
        ("Samba smbd", "3.4.17"),
        ("ProFTPD", "1.3.5a"),
        ("ProFTPD", "1.3.6rc1"),
        ("Netatalk", "3.1.12"),
        ("vsftpd", "2.3.5"),
    ],
)
def test_fixed_and_unaffected_versions_give_no_verdict(product: str, version: str) -> None:
    assert _cves(product, version) == {}


@pytest.mark.parametrize(
    ("version", "extrainfo", "status"),
    [
        ("9.2p1 Debian 2+deb12u2", "protocol 2.0", Status.AFFECTED),
        ("9.2p1 Debian 2+deb12u3", "protocol 2.0", None),
        ("9.2p1 Debian 2+deb12u4", "protocol 2.0", None),
        ("9.2p1 Debian 2", "protocol 2.0", Status.AFFECTED),
        ("9.7p1 Debian 7", "protocol 2.0", None),
        ("9.7p1 Debian 5", "protocol 2.0", Status.AFFECTED),
        ("8.9p1 Ubuntu 3ubuntu0.6", "Ubuntu Linux; protocol 2.0", Status.AFFECTED),
        ("8.9p1 Ubuntu 3ubuntu0.10", "Ubuntu Linux; protocol 2.0", None),
        ("9.6p1 Ubuntu 3ubuntu13.3", "Ubuntu Linux; protocol 2.0", None),
        ("9.6p1 Ubuntu 3ubuntu13", "Ubuntu Linux; protocol 2.0", Status.AFFECTED),
        # Debian release without a listed fix for this upstream: the backport is unknown.
        ("9.0p1 Debian 1", "protocol 2.0", Status.POSSIBLY),
        # Bare versions are OpenBSD's or vendor builds (Red Hat backports silently).
        ("8.7", "protocol 2.0", Status.POSSIBLY),
        ("9.3p2", "FreeBSD 20230719; protocol 2.0", Status.POSSIBLY),
        ("9.3p1 Raspbian 1", "protocol 2.0", Status.POSSIBLY),
    ],
)
def test_distribution_backports_are_judged_by_package_version(
    version: str, extrainfo: str, status: Status | None
) -> None:
    assert _cves("OpenSSH", version, extrainfo).get("CVE-2024-6387") is status


@pytest.mark.parametrize("version", ["3.X - 4.X", "4.6.2", "", "4.x", "unknown"])
def test_nmap_guesses_and_unknown_samba_versions_give_at_most_possibly(version: str) -> None:
    sighting = sighting_from_nmap("Samba smbd", version)
    assert sighting is not None and sighting.certainty is not Certainty.EXACT
    assert _cves("Samba smbd", version) == {"CVE-2017-7494": Status.POSSIBLY}


def test_a_guess_is_labelled_as_one_with_its_source() -> None:
    sighting = sighting_from_nmap("Samba smbd", "4.6.2")
    assert sighting is not None
    assert (sighting.source, sighting.certainty) == (VersionSource.NMAP, Certainty.GUESS)
    (verdict,) = assess(sighting)
    assert "generic nmap guess" in verdict.reason


def test_services_that_never_show_a_version_are_possibly_affected() -> None:
    rsync = sighting_from_nmap("", "", "protocol version 31", "rsync")
    slp = sighting_from_nmap("SLP Service Agent", "", "", "svrloc")
    assert rsync is not None and slp is not None
    assert {v.advisory.cve for v in assess(rsync)} == {"CVE-2024-12084", "CVE-2024-12085"}
    assert {v.status for v in assess(slp)} == {Status.POSSIBLY}
    assert "CVE-2021-21974" in {v.advisory.cve for v in assess(slp)}


def test_a_raw_ssh_banner_is_parsed_and_says_so() -> None:
    sighting = sighting_from_banner("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2\r\n")
    assert sighting is not None
    assert sighting.source is VersionSource.RAW_BANNER
    assert (sighting.upstream, sighting.distribution, sighting.package_revision) == (
        "9.2p1",
        "debian",
        "2+deb12u2",
    )
    assert [v.status for v in assess(sighting)] == [Status.AFFECTED]
    assert sighting_from_banner("SSH-2.0-dropbear_2022.83") is None


@pytest.mark.parametrize(
    "junk",
    [
        "9" * 10_000,
        "9.2p1 Debian " + "+" * 5000,
        "\x1b[31m9.2p1\x00",
        "9.2p1 Debian 2+deb12u2\r\nSSH-2.0-evil",
        "ⅨⅡp1",
    ],
)
def test_hostile_versions_neither_raise_nor_read_as_clean_or_certain(junk: str) -> None:
    sighting = sighting_from_nmap("OpenSSH", junk, junk)
    assert sighting is not None
    assert len(sighting.seen) <= 2 * 200 + 1
    for verdict in assess(sighting):
        assert verdict.status in (Status.AFFECTED, Status.POSSIBLY)


def test_unknown_products_are_not_judged() -> None:
    assert sighting_from_nmap("Apache httpd", "2.4.49") is None
