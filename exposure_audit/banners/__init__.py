"""Service version banners judged against known-exploited vulnerabilities (pure knowledge).

:mod:`.sighting` turns what nmap (or a raw banner) said into a :class:`Sighting` that records
where the version came from and how sure it is; :mod:`.advisories` judges it against
``data/banner_advisories.json``, and a version a management console disclosed against
``data/catalog_advisories.json`` (:func:`judge_disclosed`); :mod:`.dpkg` orders Debian package
versions for the distribution backports. Facts and sources: docs/reference/banners.md.
"""

from __future__ import annotations

from .advisories import (
    Advisory,
    BannerVerdict,
    Status,
    advisories,
    assess,
    catalog_advisories,
    judge_disclosed,
)
from .sighting import (
    Certainty,
    Sighting,
    VersionSource,
    comparable_version,
    sighting_from_banner,
    sighting_from_nmap,
)

__all__ = [
    "Advisory",
    "BannerVerdict",
    "Certainty",
    "Sighting",
    "Status",
    "VersionSource",
    "advisories",
    "assess",
    "catalog_advisories",
    "comparable_version",
    "judge_disclosed",
    "sighting_from_banner",
    "sighting_from_nmap",
]
