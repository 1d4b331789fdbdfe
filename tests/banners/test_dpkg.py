"""Debian version ordering: the rules of deb-version(7), and agreement with the real dpkg."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from exposure_audit.banners.dpkg import compare_versions, parse_version

# (a, b, expected sign of compare(a, b)), each one of deb-version(7)'s stated rules.
RULES = [
    ("1:0.1", "9.9", 1),  # the epoch decides first
    ("0:1.0", "1.0", 0),  # an absent epoch is 0
    ("1.0", "1.0-0", 0),  # an absent revision compares as "0"
    ("1.0~rc1", "1.0", -1),  # "~" sorts before the end of the string
    ("1.0~~", "1.0~", -1),  # ... and before itself followed by nothing
    ("1.0~", "1.0", -1),
    ("1.0", "1.0a", -1),  # the end of the string sorts before a letter
    ("1.0a", "1.0+deb12u1", -1),  # letters sort before non-letters
    ("1.2.10", "1.2.9", 1),  # digit runs compare as numbers
    ("1.002", "1.2", 0),  # leading zeros do not count
    ("1.0-1", "1.0-1ubuntu1", -1),
    ("1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3", -1),
    ("1:8.9p1-3ubuntu0.10", "1:8.9p1-3ubuntu0.9", 1),
    ("1:9.6p1-3ubuntu13.3", "1:9.6p1-3ubuntu13", 1),
    ("2.3-4-5", "2.3-4-4", 1),  # the revision is after the last hyphen
]


@pytest.mark.parametrize(("a", "b", "sign"), RULES)
def test_versions_order_as_deb_version_7_says(a: str, b: str, sign: int) -> None:
    assert compare_versions(a, b) == sign
    assert compare_versions(b, a) == -sign


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
@pytest.mark.parametrize(("a", "b", "sign"), RULES)
def test_the_real_dpkg_agrees(a: str, b: str, sign: int) -> None:
    relation = {-1: "lt", 0: "eq", 1: "gt"}[sign]
    dpkg = shutil.which("dpkg") or "dpkg"
    result = subprocess.run([dpkg, "--compare-versions", a, relation, b], check=False)
    assert result.returncode == 0


@pytest.mark.parametrize(
    "junk", ["", " 1.0", "a1.0", "1.0-", "x:1.0", "1.0-ü", "1" * 300, "1.0-1 2"]
)
def test_junk_is_refused_not_guessed(junk: str) -> None:
    with pytest.raises(ValueError):
        parse_version(junk)


def test_equal_versions_hash_alike() -> None:
    assert parse_version("0:1.0") == parse_version("1.0-0")
    assert hash(parse_version("0:1.0")) == hash(parse_version("1.0-0"))
