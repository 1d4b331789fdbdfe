"""Judging a DSM fingerprint against SynoLocker, end-of-life branches and pre-auth advisories.

The thresholds live in ``exposure_audit/data/dsm_advisories.json`` (each with its sources); this
module only does the comparison. Outside a box, DSM's Update level is normally invisible
(docs/reference/dsm.md section 2, caveat 1). Like Greenbone's "reliable"/"unreliable" split,
a verdict is *certain* when the build (or an Update level the box leaked) decides it, and
*possibly* (``certain=False``) when the box runs exactly the fixed build and only the unknown
Update level leaves it open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ..observations import DsmFingerprint
from ._data import (
    DataError,
    JsonObject,
    as_object,
    get_bool,
    get_float_or_none,
    get_int_or_none,
    get_list,
    get_object,
    get_str,
    get_str_list,
    get_str_or_none,
    load_object,
)
from .versions import major_minor, resolve_version, version_tuple

__all__ = ["AdvisoryVerdict", "assess", "end_of_life", "synolocker_exploitable"]

_FILE = "dsm_advisories.json"

# A fixed release as advisories write it: "6.2.4-25556-8" = version 6.2.4, build 25556, Update 8.
_RELEASE = re.compile(
    r"([0-9]{1,2}\.[0-9]{1,2}(?:\.[0-9]{1,2})?)-([0-9]{1,6})(?:-([0-9]{1,3}))?", re.ASCII
)


@dataclass(frozen=True)
class AdvisoryVerdict:
    """One advisory that applies to a fingerprinted box.

    ``certain`` is True when the build, or an Update level the box leaked, decides it; False
    when only the unknown Update level leaves it open ("possibly vulnerable"). ``fixed_in`` is
    the first fixed release on the box's branch, or None when no fix is listed for that branch.
    ``reason`` says in one sentence why the verdict was reached. ``cvss`` is the CVSS base score
    recorded for the advisory (see the data file's notes), ``surface`` the exposed service.
    """

    key: str
    title: str
    cves: tuple[str, ...]
    certain: bool
    fixed_in: str | None
    reason: str
    sources: tuple[str, ...]
    cvss: float | None = None
    surface: str = ""


@dataclass(frozen=True)
class _Release:
    text: str
    version: tuple[int, ...]
    build: int
    update: int


@dataclass(frozen=True)
class _Affected:
    branch: str
    fixed: _Release | None


@dataclass(frozen=True)
class _Advisory:
    key: str
    title: str
    cves: tuple[str, ...]
    cvss: float | None
    surface: str
    models: frozenset[str] | None
    affected: tuple[_Affected, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class _SynoLockerBranch:
    branch: str
    below_build: int | None


@dataclass(frozen=True)
class _EndOfLife:
    branch: str
    date: str | None


def _parse_release(text: str, where: str) -> _Release:
    match = _RELEASE.fullmatch(text)
    version = version_tuple(match.group(1)) if match else None
    if match is None or version is None:
        raise DataError(f"{where}: fixed release {text!r} is not x.y[.z]-build[-update]")
    return _Release(text, version, int(match.group(2)), int(match.group(3) or 0))


@cache
def _advisories() -> tuple[_Advisory, ...]:
    data = load_object(_FILE)
    result: list[_Advisory] = []
    for item in get_list(data, "advisories", _FILE):
        row = as_object(item, _FILE)
        key = get_str(row, "key", _FILE)
        where = f"{_FILE} {key}"
        if not get_bool(row, "pre_auth", where):
            raise DataError(f"{where}: only pre-authentication advisories belong here")
        affected: list[_Affected] = []
        for entry in get_list(row, "affected", where):
            obj = as_object(entry, where)
            fixed = get_str_or_none(obj, "fixed", where)
            affected.append(
                _Affected(
                    branch=get_str(obj, "branch", where),
                    fixed=None if fixed is None else _parse_release(fixed, where),
                )
            )
        models = get_str_list(row, "models", where) if "models" in row else None
        result.append(
            _Advisory(
                key=key,
                title=get_str(row, "title", where),
                cves=get_str_list(row, "cves", where),
                cvss=get_float_or_none(row, "cvss", where),
                surface=get_str_or_none(row, "surface", where) or "",
                models=None if models is None else frozenset(m.casefold() for m in models),
                affected=tuple(affected),
                sources=get_str_list(row, "sources", where),
            )
        )
    return tuple(result)


@cache
def _synolocker() -> tuple[_SynoLockerBranch, ...]:
    section: JsonObject = get_object(load_object(_FILE), "synolocker", _FILE)
    where = f"{_FILE} synolocker"
    return tuple(
        _SynoLockerBranch(
            branch=get_str(obj, "branch", where),
            below_build=get_int_or_none(obj, "below_build", where),
        )
        for obj in (as_object(item, where) for item in get_list(section, "vulnerable", where))
    )


@cache
def _end_of_life() -> dict[str, _EndOfLife]:
    section = get_object(load_object(_FILE), "end_of_life", _FILE)
    where = f"{_FILE} end_of_life"
    rows = (as_object(item, where) for item in get_list(section, "branches", where))
    entries = (
        _EndOfLife(get_str(row, "branch", where), get_str_or_none(row, "date", where))
        for row in rows
    )
    return {entry.branch: entry for entry in entries}


def synolocker_exploitable(version: str | None, build: int | None) -> bool:
    """True when the box is in SynoLocker's vulnerable range (CVE-2013-6955).

    Vulnerable: 4.0 below 2259, every 4.1, 4.2 below 3243, 4.3 below 3827 (Synology's SynoLocker
    notice; the branch comes from the build when known, see
    :func:`~exposure_audit.dsm.versions.resolve_version`). False when the range cannot be
    decided (4.0/4.2/4.3 without a build) and for DSM 3.x and 5.0 onwards, which are not
    affected.
    """
    resolved = resolve_version(version, build)
    branch = major_minor(resolved) if resolved is not None else None
    for entry in _synolocker():
        if entry.branch == branch:
            if entry.below_build is None:
                return True
            return build is not None and build < entry.below_build
    return False


def end_of_life(version: str | None, build: int | None) -> str | None:
    """A sentence saying the box's DSM branch is end of life, or None when it is not (or unknown).

    Branches 2.0 to 6.1 are end of life per Synology's Security White Paper (dates via
    Greenbone's ``products_eol.inc``); 6.2 and later are not listed because no date was found.
    """
    resolved = resolve_version(version, build)
    branch = major_minor(resolved) if resolved is not None else None
    entry = _end_of_life().get(branch) if branch is not None else None
    if entry is None:
        return None
    if entry.date is not None:
        return (
            f"DSM {entry.branch} reached end of life on {entry.date}; "
            "Synology no longer ships security fixes for it"
        )
    return (
        f"DSM {entry.branch} is past end of life (Synology lists it so; "
        "the sources used give no date); it gets no security fixes"
    )


def assess(fp: DsmFingerprint) -> tuple[AdvisoryVerdict, ...]:
    """The pre-auth advisories that apply to ``fp``, in data-file order; () when none apply.

    The box's release comes from :func:`~exposure_audit.dsm.versions.resolve_version`. An
    advisory applies through the affected branch that equals the release or contains it (the
    longest such branch). Against that branch's fixed release ``x.y.z-build-update``:

    - no fixed release listed: certain;
    - a lower build: certain; a higher build: not affected;
    - the same build: certain when the leaked Update is below the fixing one, not affected when
      it is at or above, *possibly* (``certain=False``) when the Update is unknown (None);
    - no build known: compared on x.y.z when the box gave three parts, else possibly.

    Advisories limited to some models (SA-22:17) apply only when ``fp.model`` is one of them; an
    unknown model skips them. SynoLocker and end of life are separate
    (:func:`synolocker_exploitable`, :func:`end_of_life`).
    """
    release = resolve_version(fp.version, fp.build)
    if release is None:
        return ()
    verdicts: list[AdvisoryVerdict] = []
    for advisory in _advisories():
        if advisory.models is not None and (
            fp.model is None or fp.model.casefold() not in advisory.models
        ):
            continue
        affected = _matching_branch(advisory.affected, release)
        if affected is None:
            continue
        decided = _judge(affected, release, fp.build, fp.update)
        if decided is not None:
            certain, reason = decided
            verdicts.append(
                AdvisoryVerdict(
                    key=advisory.key,
                    title=advisory.title,
                    cves=advisory.cves,
                    certain=certain,
                    fixed_in=affected.fixed.text if affected.fixed else None,
                    reason=reason,
                    sources=advisory.sources,
                    cvss=advisory.cvss,
                    surface=advisory.surface,
                )
            )
    return tuple(verdicts)


def _matching_branch(affected: tuple[_Affected, ...], release: str) -> _Affected | None:
    matches = [a for a in affected if release == a.branch or release.startswith(a.branch + ".")]
    return max(matches, key=lambda a: len(a.branch), default=None)


def _judge(
    affected: _Affected, release: str, build: int | None, update: int | None
) -> tuple[bool, str] | None:
    """(certain, reason) when the box is (possibly) vulnerable, None when it is not."""
    fixed = affected.fixed
    if fixed is None:
        return True, f"no fixed release is listed for DSM {affected.branch}"
    if build is not None:
        if build < fixed.build:
            return True, f"build {build} is older than the fixed release {fixed.text}"
        if build > fixed.build or fixed.update == 0:
            return None
        if update is None:
            return False, (
                f"build {build} is the build the fix shipped for, but its Update level is not "
                f"visible remotely; Update {fixed.update} ({fixed.text}) or later fixes it"
            )
        if update < fixed.update:
            return True, f"Update {update} is below the fixing Update {fixed.update}"
        return None
    parts = version_tuple(release) or ()
    if len(parts) == 3:
        wanted = fixed.version + (0,) * (3 - len(fixed.version))
        if parts < wanted:
            return True, f"DSM {release} is older than the fixed release {fixed.text}"
        if parts > wanted:
            return None
    return False, (
        f"only DSM {release} is known, not its build or Update level; {fixed.text} fixes it"
    )
