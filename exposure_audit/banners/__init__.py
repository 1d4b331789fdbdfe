"""Service version banners judged against known-exploited vulnerabilities (pure knowledge).

:mod:`.sighting` turns what nmap (or a raw banner) said into a :class:`Sighting` that records
where the version came from and how sure it is; :mod:`.advisories` judges it against
``data/banner_advisories.json``; :mod:`.dpkg` orders Debian package versions for the
distribution backports. Facts and sources: docs/reference/banners.md.
"""

from __future__ import annotations

from .advisories import Advisory, BannerVerdict, Status, advisories, assess
from .sighting import Certainty, Sighting, VersionSource, sighting_from_banner, sighting_from_nmap

__all__ = [
    "Advisory",
    "BannerVerdict",
    "Certainty",
    "Sighting",
    "Status",
    "VersionSource",
    "advisories",
    "assess",
    "sighting_from_banner",
    "sighting_from_nmap",
]
