"""Judging a :class:`~.sighting.Sighting` (or a version a product's own page disclosed) against the
sourced advisories.

The advisories live in ``exposure_audit/data/banner_advisories.json`` (service banners; each
with its sources, docs/reference/banners.md) and, in the same format, in
``exposure_audit/data/catalog_advisories.json`` (the management catalog's products,
docs/reference/management.md section 6); this module only compares. A banner verdict is
:attr:`Status.AFFECTED` only when an exact upstream version lies in an affected range and
nothing hides the build's fixes; it is :attr:`Status.POSSIBLY` when the version is a guess, a
range, not visible, a vendor build, a distribution release the advisory gives no fixed package
for, or when the flaw is not decided by the version at all (``certain_from_version`` false). A
version outside every range, or a distribution package at or above the release's fixed one,
gives no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from ..datafile import JsonObject
from ._data import SHAPE
from .dpkg import DebianVersion, parse_version
from .products import FILE, products
from .sighting import Certainty, Sighting, comparable_version

__all__ = [
    "CATALOG_FILE",
    "Advisory",
    "BannerVerdict",
    "Status",
    "advisories",
    "assess",
    "catalog_advisories",
    "in_range",
    "judge_disclosed",
]

CATALOG_FILE = "catalog_advisories.json"


class Status(StrEnum):
    AFFECTED = "affected"
    POSSIBLY = "possibly affected"


@dataclass(frozen=True)
class VersionRange:
    """Upstream versions from ``start`` (inclusive; None = from the first) to ``end``
    (exclusive; None = every later one)."""

    start: str | None
    end: str | None


@dataclass(frozen=True)
class DistributionFix:
    """The first fixed package of one distribution release shipping ``upstream``."""

    distribution: str
    release: str
    upstream: str
    fixed: DebianVersion


@dataclass(frozen=True)
class Advisory:
    """One CVE as the data file states it (see the file's description)."""

    cve: str
    name: str
    product: str
    description: str
    affected: tuple[VersionRange, ...]
    fixed: tuple[str, ...]
    distributions: tuple[DistributionFix, ...]
    certain_from_version: bool
    kev_listed: bool
    kev_date_added: str | None
    remediation: str
    sources: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class BannerVerdict:
    """One advisory that applies (or may apply) to a sighting, and why in one sentence."""

    advisory: Advisory
    sighting: Sighting
    status: Status
    reason: str


@cache
def advisories() -> tuple[Advisory, ...]:
    """Every banner advisory, in file order; ``DataError`` on a malformed entry or one naming a
    product the file's ``products[]`` does not list."""
    return _load(FILE, frozenset(p.key for p in products()))


@cache
def catalog_advisories() -> tuple[Advisory, ...]:
    """Every advisory of ``catalog_advisories.json``, in file order. Their ``product`` is a
    management catalog id; this package may not import the catalog, so the data tests check
    the ids against it."""
    return _load(CATALOG_FILE, None)


def _load(file: str, known_products: frozenset[str] | None) -> tuple[Advisory, ...]:
    data = SHAPE.load(file)
    known_sources = {
        SHAPE.get_str(s, "id", file) for s in SHAPE.get_object_list(data, "sources", file)
    }
    result = []
    for index, row in enumerate(SHAPE.get_object_list(data, "advisories", file)):
        advisory = _advisory(row, file, f"{file}: advisories[{index}]")
        if known_products is not None and advisory.product not in known_products:
            raise SHAPE.error(f"{file} {advisory.cve}: unknown product {advisory.product!r}")
        unknown = set(advisory.sources) - known_sources
        if unknown:
            raise SHAPE.error(f"{file} {advisory.cve}: unknown sources {sorted(unknown)}")
        result.append(advisory)
    return tuple(result)


def _advisory(row: JsonObject, file: str, where: str) -> Advisory:
    cve = SHAPE.get_str(row, "cve", where)
    where = f"{file} {cve}"
    ranges = tuple(
        VersionRange(
            SHAPE.get_str_or_none(item, "from", where), SHAPE.get_str_or_none(item, "before", where)
        )
        for item in SHAPE.get_object_list(row, "affected", where)
    )
    for version_range in ranges:
        for bound in (version_range.start, version_range.end):
            if bound is not None:
                _parse(bound, where)
    fixes = tuple(
        DistributionFix(
            distribution=SHAPE.get_str(item, "distribution", where),
            release=SHAPE.get_str(item, "release", where),
            upstream=SHAPE.get_str(item, "upstream", where),
            fixed=_parse(SHAPE.get_str(item, "fixed", where), where),
        )
        for item in SHAPE.get_object_list(row, "distributions", where)
    )
    kev = SHAPE.get_object(row, "kev", where)
    listed = SHAPE.get_bool(kev, "listed", where)
    date_added = SHAPE.get_str_or_none(kev, "date_added", where)
    if listed != (date_added is not None):
        raise SHAPE.error(f"{where}: a KEV entry needs its dateAdded, and only a KEV entry")
    return Advisory(
        cve=cve,
        name=SHAPE.get_str(row, "name", where),
        product=SHAPE.get_str(row, "product", where),
        description=SHAPE.get_str(row, "description", where),
        affected=ranges,
        fixed=SHAPE.get_str_list(row, "fixed", where),
        distributions=fixes,
        certain_from_version=SHAPE.get_bool(row, "certain_from_version", where),
        kev_listed=listed,
        kev_date_added=date_added,
        remediation=SHAPE.get_str(row, "remediation", where),
        sources=SHAPE.get_str_list(row, "sources", where),
        note=SHAPE.get_str_or_none(row, "note", where) or "",
    )


def _parse(version: str, where: str) -> DebianVersion:
    try:
        return parse_version(version)
    except ValueError as exc:
        raise SHAPE.error(f"{where}: {exc}") from None


def in_range(advisory: Advisory, upstream: str) -> bool:
    """Whether the upstream version lies in one of the advisory's affected ranges (dpkg
    ordering; ``ValueError`` if ``upstream`` is not a version)."""
    version = parse_version(upstream)
    return any(
        (r.start is None or parse_version(r.start) <= version)
        and (r.end is None or version < parse_version(r.end))
        for r in advisory.affected
    )


def assess(sighting: Sighting) -> tuple[BannerVerdict, ...]:
    """The advisories of the sighting's product that apply or may apply, in data-file order."""
    verdicts = []
    for advisory in advisories():
        if advisory.product == sighting.product.key:
            decided = _judge(advisory, sighting)
            if decided is not None:
                verdicts.append(BannerVerdict(advisory, sighting, *decided))
    return tuple(verdicts)


def _judge(advisory: Advisory, sighting: Sighting) -> tuple[Status, str] | None:
    """(status, reason) when the advisory applies or may apply, None when it does not."""
    if sighting.certainty is not Certainty.EXACT or sighting.upstream is None:
        return Status.POSSIBLY, (
            f"the {sighting.product.name} version is not known ({sighting.certainty}); "
            f"{_fixed(advisory)} fixes it"
        )
    try:
        affected = in_range(advisory, sighting.upstream)
    except ValueError:
        return Status.POSSIBLY, f"version {sighting.upstream!r} could not be compared"
    if not affected:
        return None
    if not advisory.certain_from_version:
        return Status.POSSIBLY, (
            f"{sighting.upstream} is in the affected range, but the version alone does not "
            f"decide it: {advisory.note or 'see the advisory'}"
        )
    if sighting.vendor_build:
        return Status.POSSIBLY, (
            f"{sighting.upstream} is in the affected range, but {sighting.vendor}"
        )
    if sighting.distribution is not None:
        return _judge_package(advisory, sighting, sighting.upstream)
    return (
        Status.AFFECTED,
        f"{sighting.upstream} is in the affected range; {_fixed(advisory)} fixes it",
    )


def _judge_package(
    advisory: Advisory, sighting: Sighting, upstream: str
) -> tuple[Status, str] | None:
    distribution = sighting.distribution or ""
    label = distribution.capitalize()
    fixes = [
        f
        for f in advisory.distributions
        if f.distribution == distribution and f.upstream == upstream
    ]
    if not fixes or not sighting.package_revision:
        return Status.POSSIBLY, (
            f"{upstream} is in the affected range, but {label} backports fixes and no fixed "
            f"{label} package is listed for {upstream}"
        )
    fix = fixes[0]
    try:
        # Banners carry no epoch; the distribution's package of this upstream version has the
        # fixed package's epoch (OpenSSH in Debian and Ubuntu: 1).
        package = parse_version(f"{fix.fixed.epoch}:{upstream}-{sighting.package_revision}")
    except ValueError:
        return Status.POSSIBLY, f"{label} package revision could not be read"
    if package < fix.fixed:
        return Status.AFFECTED, (
            f"{label} package {package} is older than {fix.release}'s fixed {fix.fixed}"
        )
    return None


def judge_disclosed(advisory: Advisory, version: str | None) -> tuple[Status, str] | None:
    """(status, reason) for a version the product disclosed itself (a web console's page), or
    None when the version lies outside every affected range.

    :attr:`Status.AFFECTED` only when the version is comparable, at least as precise as the
    range bounds it meets, inside a range, decides the flaw, and a fixed release is known;
    :attr:`Status.POSSIBLY` otherwise: no version disclosed, a version too coarse to place
    (``4.5.2`` against a bound ``4.5.2.1566``), no verified fix, or a flaw the version does not
    decide.
    """
    if version is None:
        return Status.POSSIBLY, (
            f"the version is not disclosed, so {advisory.cve} cannot be ruled out; "
            f"{_fix_clause(advisory)}"
        )
    upstream = comparable_version(version)
    if upstream is None:
        return Status.POSSIBLY, f"version {version[:60]!r} could not be compared"
    if _coarser_than_a_bound(advisory, upstream):
        return Status.POSSIBLY, (
            f"{version} stops where a range bound goes on (it may be a shortened "
            f"version); {_fix_clause(advisory)}"
        )
    if not in_range(advisory, upstream):
        return None
    if not advisory.fixed:
        return Status.POSSIBLY, f"{version} is in the affected range; {_fix_clause(advisory)}"
    if not advisory.certain_from_version:
        return Status.POSSIBLY, (
            f"{version} is in the affected range, but the version alone does not decide it: "
            f"{advisory.note or 'see the advisory'}"
        )
    return Status.AFFECTED, f"{version} is below the fix; {_fix_clause(advisory)}"


def _coarser_than_a_bound(advisory: Advisory, upstream: str) -> bool:
    """Whether a bound extends ``upstream`` with more components (``4.5.2`` and
    ``4.5.2.1566``): a page may show a shortened version, which may lie on either side of
    that bound, so it is only ever "possibly"."""
    bounds = [b for r in advisory.affected for b in (r.start, r.end) if b is not None]
    return any(b.startswith(f"{upstream}.") for b in bounds)


def _fix_clause(advisory: Advisory) -> str:
    if not advisory.fixed:
        return "no fixed release was verified (see the advisory)"
    return f"{_fixed(advisory)} fixes it"


def _fixed(advisory: Advisory) -> str:
    return " / ".join(advisory.fixed) if advisory.fixed else "no listed release"
