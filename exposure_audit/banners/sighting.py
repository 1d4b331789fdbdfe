"""What a scan saw of a service's version, and how far it can be trusted.

A :class:`Sighting` records the product, the version text as seen, where it came from
(:class:`VersionSource`) and how sure it is (:class:`Certainty`). Only an ``EXACT`` version is
ever compared against an advisory's ranges: nmap prints fixed strings for some products
(Samba's ``3.X - 4.X`` and ``4.6.2``) that were never read from the service, and those only
ever give "possibly" (docs/reference/banners.md section 4).

OpenSSH banners carry the distribution's package revision after the version
(``OpenSSH_9.2p1 Debian-2+deb12u3``; nmap prints ``9.2p1 Debian 2+deb12u3``). Debian and Ubuntu
suffixes are parsed (``distribution``, ``package_revision``) so their backports can be judged;
any other suffix, a bare version without the portable ``pN`` (OpenBSD's own sshd, Red Hat
builds) or an OS named in nmap's extra info marks a ``vendor_build`` whose fixes the version
does not show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .products import Product, product_for

__all__ = [
    "Certainty",
    "Sighting",
    "VersionSource",
    "comparable_version",
    "sighting_from_banner",
    "sighting_from_nmap",
]

# Banners are attacker-controlled: nothing longer than this is parsed or kept.
MAX_TEXT = 200

SUPPORTED_DISTRIBUTIONS = ("debian", "ubuntu")


class VersionSource(StrEnum):
    """Where a version came from."""

    RAW_BANNER = "raw banner"
    NMAP = "nmap -sV product/version"


class Certainty(StrEnum):
    """How sure a version is. Only ``EXACT`` versions are compared with advisory ranges."""

    EXACT = "exact"
    RANGE = "range guessed by nmap"
    GUESS = "generic nmap guess"
    NOT_VISIBLE = "version not visible"


@dataclass(frozen=True)
class Sighting:
    """One service's product and version as seen.

    ``seen`` is the product and version text as received (cut to :data:`MAX_TEXT`, unescaped:
    renderers make it printable). ``upstream`` is the comparable upstream version when
    ``certainty`` is ``EXACT``, else None. ``distribution`` (``debian``/``ubuntu``) and
    ``package_revision`` come from a distribution suffix; ``vendor_build`` says the version does
    not show which fixes the build carries (``vendor`` names why).
    """

    product: Product
    seen: str
    source: VersionSource
    certainty: Certainty
    upstream: str | None = None
    distribution: str | None = None
    package_revision: str | None = None
    vendor_build: bool = False
    vendor: str = ""


# "9.2p1", "9.2p1 Debian 2+deb12u3" (nmap), "9.2p1 Debian-2+deb12u3" (banner), "8.7",
# "9.3 FreeBSD-20230719".
_OPENSSH = re.compile(
    r"(?P<upstream>[0-9]{1,2}\.[0-9]{1,2}(?:\.[0-9]{1,2})?(?:p[0-9]{1,2})?)"
    r"(?:[ _-]+(?P<vendor>[A-Za-z][A-Za-z0-9]{0,30})(?:[ _-]+(?P<revision>[A-Za-z0-9.+~]{1,60}))?)?"
    r"(?P<rest>.*)",
    re.ASCII | re.DOTALL,
)
# A plain dotted version with an optional letter or pre-release tail: 2.3.4, 1.3.5a, 1.3.5rc4.
_PLAIN = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6}){0,4}(?:[a-z]{1,5}[0-9]{0,4})?", re.ASCII)
_PRERELEASE = re.compile(r"(?<=[0-9])(rc|beta|alpha|pre)", re.ASCII)
_RANGE = re.compile(r"\bX\b| - ", re.ASCII)
# What nmap's OpenSSH lines put in extra info besides an OS: "protocol 2.0", "Ubuntu Linux".
_EXTRAINFO_PLAIN = re.compile(r"protocol [0-9.]+|Ubuntu Linux|[;, ]", re.ASCII)


def sighting_from_nmap(
    product: str, version: str, extrainfo: str = "", service: str = ""
) -> Sighting | None:
    """The sighting behind nmap's ``product``/``version``/``extrainfo`` (and service name, for
    products nmap names without a product string, counted only with extra info nmap read from
    the service), or None when the product is not one the advisories know. Never raises."""
    # A service name alone may be nmap's port-table guess; it names a product only with
    # extra info nmap read from the service (rsync's "protocol version 31").
    known = product_for(product[:MAX_TEXT], service[:MAX_TEXT] if extrainfo else "")
    if known is None:
        return None
    version = version[:MAX_TEXT]
    seen = " ".join(p for p in (product[:MAX_TEXT], version) if p) or service[:MAX_TEXT]
    if not known.version_visible:
        return Sighting(known, seen, VersionSource.NMAP, Certainty.NOT_VISIBLE)
    if not version:
        return Sighting(known, seen, VersionSource.NMAP, Certainty.NOT_VISIBLE)
    if _RANGE.search(version):
        return Sighting(known, seen, VersionSource.NMAP, Certainty.RANGE)
    if version in known.nmap_guess_versions:
        return Sighting(known, seen, VersionSource.NMAP, Certainty.GUESS)
    if known.scheme == "openssh":
        return _openssh(known, seen, version, VersionSource.NMAP, extrainfo[:MAX_TEXT])
    return _plain(known, seen, version, VersionSource.NMAP)


def sighting_from_banner(banner: str) -> Sighting | None:
    """The sighting in a raw SSH identification line (``SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3``),
    or None when it is not an OpenSSH one. Never raises on junk."""
    line = banner[:MAX_TEXT].split("\n", 1)[0].rstrip("\r")
    match = re.fullmatch(r"SSH-[0-9.]{1,5}-OpenSSH_(?P<version>.+)", line, re.ASCII | re.DOTALL)
    known = product_for("OpenSSH", "")
    if match is None or known is None:
        return None
    return _openssh(known, line, match.group("version"), VersionSource.RAW_BANNER, "")


def comparable_version(text: str) -> str | None:
    """``text`` as an upstream version dpkg ordering compares (``1.3.6rc1`` becomes
    ``1.3.6~rc1``), or None when it is not a plain dotted version with an optional letter or
    pre-release tail."""
    if len(text) > MAX_TEXT or not _PLAIN.fullmatch(text):
        return None
    # "1.3.6rc1" sorts before "1.3.6": dpkg ordering needs the "~" Debian writes there.
    return _PRERELEASE.sub(r"~\1", text)


def _plain(product: Product, seen: str, version: str, source: VersionSource) -> Sighting:
    upstream = comparable_version(version)
    if upstream is None:
        return Sighting(product, seen, source, Certainty.NOT_VISIBLE)
    return Sighting(product, seen, source, Certainty.EXACT, upstream=upstream)


def _openssh(
    product: Product, seen: str, version: str, source: VersionSource, extrainfo: str
) -> Sighting:
    match = _OPENSSH.fullmatch(version)
    if match is None:
        return Sighting(product, seen, source, Certainty.NOT_VISIBLE)
    upstream = match.group("upstream")
    vendor_name = match.group("vendor") or ""
    revision = match.group("revision")
    distribution = vendor_name.casefold() if vendor_name else None
    if distribution == "debian" and revision and "ubuntu" in revision:
        distribution = "ubuntu"  # old Ubuntu banners said "Debian-5ubuntu1"
    why = ""
    if "p" not in upstream:
        why = (
            "no portable 'pN' suffix: OpenBSD's own sshd or a vendor build (Red Hat and its "
            "rebuilds report a bare version and backport fixes)"
        )
    elif distribution is not None and (
        distribution not in SUPPORTED_DISTRIBUTIONS or not revision or match.group("rest")
    ):
        why = f"built by {vendor_name}, whose backported fixes the version does not show"
    elif distribution is None and (match.group("rest") or _EXTRAINFO_PLAIN.sub("", extrainfo)):
        why = "a vendor suffix or OS the advisories do not track; its backports are unknown"
    if why:
        return Sighting(
            product, seen, source, Certainty.EXACT, upstream, vendor_build=True, vendor=why
        )
    return Sighting(
        product,
        seen,
        source,
        Certainty.EXACT,
        upstream,
        distribution=distribution,
        package_revision=revision if distribution else None,
    )
