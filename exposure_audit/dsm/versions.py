"""DSM version arithmetic: build number -> release, and reconciling a leaked version with it.

A DSM build number (``25556``) says more than the version a box shows (``6.2``): from DSM 6.0 on
every micro release (x.y.**z**) has its own build range, so x.y.z follows from the build alone
(Greenbone ``synology_func.inc``, via docs/reference/dsm.md section 3). The table lives in
``exposure_audit/data/dsm_builds.json`` with a source for every entry. The Update level
("smallfix") is *not* derivable from the build.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache

from ._data import DataError, as_object, get_bool, get_int, get_list, get_str, load_object

__all__ = [
    "BuildEntry",
    "build_table",
    "major_minor",
    "resolve_version",
    "version_for_build",
    "version_tuple",
]

_FILE = "dsm_builds.json"

# "x.y" or "x.y.z" with small numeric parts; anything else is not a DSM version string.
_VERSION = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})(?:\.([0-9]{1,2}))?", re.ASCII)

# DSM builds are 3-5 digit numbers (318 ... 86009 in the table). Larger numbers seen where a
# build is expected are something else, e.g. the 10-digit timestamps DSM 7 puts in
# "fullversion" and "?v=" (docs/reference/dsm.md section 2, caveat 2), so they map to no
# release rather than to the newest one.
_MAX_BUILD = 999_999


@dataclass(frozen=True)
class BuildEntry:
    """One row of the build table: ``version`` starts at ``first_build``.

    ``verified`` is True when a source names a concrete build of that release; False when the
    release is known only as an interval boundary (or, for 7.3.x, from unattributed text).
    """

    version: str
    first_build: int
    verified: bool
    source: str


def version_tuple(version: str) -> tuple[int, ...] | None:
    """``"6.2.4"`` -> ``(6, 2, 4)``; ``"7.2"`` -> ``(7, 2)``; None for anything else."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def major_minor(version: str) -> str | None:
    """The ``x.y`` branch of an ``x.y[.z]`` version; None when ``version`` is not one."""
    parts = version_tuple(version)
    return None if parts is None else f"{parts[0]}.{parts[1]}"


@cache
def build_table() -> tuple[BuildEntry, ...]:
    """The build table, ascending by ``first_build`` (and so by version).

    Raises :class:`~exposure_audit.dsm._data.DataError` when the data file is malformed or
    unsorted (a packaging bug).
    """
    data = load_object(_FILE)
    entries: list[BuildEntry] = []
    for item in get_list(data, "builds", _FILE):
        row = as_object(item, _FILE)
        entry = BuildEntry(
            version=get_str(row, "version", _FILE),
            first_build=get_int(row, "first_build", _FILE),
            verified=get_bool(row, "verified", _FILE),
            source=get_str(row, "source", _FILE),
        )
        if version_tuple(entry.version) is None:
            raise DataError(f"{_FILE}: bad version {entry.version!r}")
        entries.append(entry)
    for before, after in itertools.pairwise(entries):
        if not (
            before.first_build < after.first_build
            and (version_tuple(before.version) or ()) < (version_tuple(after.version) or ())
        ):
            raise DataError(f"{_FILE}: {before.version} and {after.version} are out of order")
    return tuple(entries)


@cache
def _first_builds() -> tuple[int, ...]:
    return tuple(entry.first_build for entry in build_table())


def version_for_build(build: int) -> str | None:
    """The DSM release (``"4.3"``, ``"6.2.4"``) a build number belongs to, by intervals.

    A build belongs to the entry with the greatest ``first_build`` not above it (Greenbone's
    method). Returns None below the first entry (318, DSM 2.0) and above 999999 (not a build).
    Builds past the newest entry map to it, as in Greenbone's table: a newer release than the
    table knows reads as the newest known one.
    """
    if build < 0 or build > _MAX_BUILD:
        return None
    index = bisect_right(_first_builds(), build) - 1
    return build_table()[index].version if index >= 0 else None


def resolve_version(version: str | None, build: int | None) -> str | None:
    """The most precise release for a box that leaked ``version`` and/or ``build``.

    - only a build: the build table's release (None if the build maps to none);
    - only a version: that version when it is ``x.y``/``x.y.z``, else None;
    - both, and the table's release equals or refines the leaked one (``6.2`` + 25556 ->
      ``6.2.4``): the table's release;
    - both, disagreeing (a release newer than the table, say): the leaked version, because the
      box said it outright while the table only infers.
    """
    leaked = version if version is not None and version_tuple(version) is not None else None
    table = version_for_build(build) if build is not None else None
    if leaked is None or table is None:
        return leaked or table
    if table == leaked or table.startswith(leaked + "."):
        return table
    # "7.2.0" from a box and "7.2" from the table are the same release.
    if _padded(leaked) == _padded(table):
        return table
    return leaked


def _padded(version: str) -> tuple[int, ...]:
    parts = version_tuple(version) or ()
    return parts + (0,) * (3 - len(parts))
