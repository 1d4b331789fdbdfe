"""Known-vulnerable UPnP stacks, recognised from a ``SERVER`` banner.

UDA makes every SSDP answer say ``OS/version UPnP/1.x product/version``; the product token
names the UPnP stack (``MiniUPnPd/1.0``, ``Portable SDK for UPnP devices/1.6.6``). Rapid7's
2013 study found most of the Internet's SSDP responders on two stacks with remote flaws, and
Metasploit's ``ssdp_msearch`` maps the banner to them. The table, with its sources and where
they disagree, is ``exposure_audit/data/upnp_stacks.json``; this module only compares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ._data import JsonObject, get_list, get_str, get_str_list, get_str_or_none, load
from .errors import UpnpDataError

__all__ = ["StackVerdict", "stack_table", "vulnerable_stack"]

_FILE = "upnp_stacks.json"
_MAX_HEADER = 1024
_VERSION = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9}){0,3}", re.ASCII)
_CVE = re.compile(r"CVE-[0-9]{4}-[0-9]{4,7}", re.ASCII)


@dataclass(frozen=True)
class StackVerdict:
    """One known flaw of the UPnP stack a banner names.

    ``product`` is the stack as the table spells it, ``version`` the version the banner showed
    ("" when it showed none). ``fixed_in`` is the first fixed release (or what to do instead).
    ``banner_reliable`` is False where distributions backported the fix without changing the
    version (the verdict is then "possibly"). ``source`` names the sources (``Metasploit
    ssdp_msearch; NVD CVE-2013-0229``); ``references`` holds their URLs; ``note`` says where the
    sources disagree and which way the table went.
    """

    key: str
    title: str
    product: str
    version: str
    cves: tuple[str, ...]
    fixed_in: str
    impact: str
    banner_reliable: bool
    source: str
    references: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class _Stack:
    key: str
    title: str
    product: str
    pattern: re.Pattern[str]
    below: tuple[int, ...] | None
    at_most: tuple[int, ...] | None
    fixed_in: str
    cves: tuple[str, ...]
    impact: str
    banner_reliable: bool
    source: str
    references: tuple[str, ...]
    note: str

    def verdict(self, server: str) -> StackVerdict | None:
        match = self.pattern.search(server)
        if match is None:
            return None
        seen = match.group(1) or ""
        if self.below is not None or self.at_most is not None:
            if not seen:
                return None  # no version shown: nothing to compare
            version = _version_tuple(seen)
            if self.below is not None and not _less(version, self.below):
                return None
            if self.at_most is not None and _less(self.at_most, version):
                return None
        return StackVerdict(
            key=self.key,
            title=self.title,
            product=self.product,
            version=seen,
            cves=self.cves,
            fixed_in=self.fixed_in,
            impact=self.impact,
            banner_reliable=self.banner_reliable,
            source=self.source,
            references=self.references,
            note=self.note,
        )


def vulnerable_stack(server_header: str) -> tuple[StackVerdict, ...]:
    """Every known flaw of the UPnP stack ``server_header`` names, in table order.

    ``server_header`` is a ``SERVER`` (SSDP) or ``Server`` (HTTP) value; only its first 1024
    characters are read. The product token is matched without regard to case as
    ``product/version``; a banner without a version matches only entries that apply to every
    version. Returns () when nothing matches; never raises for any banner.
    """
    text = server_header[:_MAX_HEADER]
    verdicts = (stack.verdict(text) for stack in _stacks())
    return tuple(v for v in verdicts if v is not None)


def stack_table() -> tuple[str, ...]:
    """The keys of the stack table, in order (for tests and documentation).

    Raises :class:`~.errors.UpnpDataError` when ``upnp_stacks.json`` is malformed.
    """
    return tuple(stack.key for stack in _stacks())


@cache
def _stacks() -> tuple[_Stack, ...]:
    data = load(_FILE)
    sources: dict[str, tuple[str, str | None]] = {}
    for item in get_list(data, "sources", _FILE):
        where = f"{_FILE}: sources"
        sources[get_str(item, "id", where)] = (
            get_str(item, "name", where),
            get_str_or_none(item, "url", where),
        )
    stacks = [_stack(item, sources) for item in get_list(data, "stacks", _FILE)]
    if len({s.key for s in stacks}) != len(stacks):
        raise UpnpDataError(f"{_FILE}: duplicate stack keys")
    return tuple(stacks)


def _stack(item: JsonObject, sources: dict[str, tuple[str, str | None]]) -> _Stack:
    key = get_str(item, "key", f"{_FILE}: stacks")
    where = f"{_FILE}: {key}"
    product = get_str(item, "product", where)
    ids = get_str_list(item, "sources", where)
    unknown = [i for i in ids if i not in sources]
    if not ids or unknown:
        raise UpnpDataError(f"{where}: needs known source ids, not {unknown or 'none'}")
    cves = get_str_list(item, "cves", where)
    if not cves or not all(_CVE.fullmatch(c) for c in cves):
        raise UpnpDataError(f"{where}: 'cves' must list CVE-YYYY-NNNN ids")
    reliable = item.get("banner_reliable")
    if not isinstance(reliable, bool):
        raise UpnpDataError(f"{where}: 'banner_reliable' must be a boolean")
    # The product token, then an optional "/version": "MiniUPnPd/2.3.1", "miniupnpd/1.0".
    pattern = re.compile(
        r"(?<![A-Za-z0-9])"
        + re.escape(product)
        + r"(?:[ \t]*/[ \t]*v?("
        + _VERSION.pattern
        + "))?",
        re.IGNORECASE | re.ASCII,
    )
    return _Stack(
        key=key,
        title=get_str(item, "title", where),
        product=product,
        pattern=pattern,
        below=_bound(item, "below", where),
        at_most=_bound(item, "at_most", where),
        fixed_in=get_str(item, "fixed_in", where),
        cves=cves,
        impact=get_str(item, "impact", where),
        banner_reliable=reliable,
        source="; ".join(sources[i][0] for i in ids),
        references=tuple(url for i in ids if (url := sources[i][1])),
        note=str(item.get("note") or ""),
    )


def _bound(item: JsonObject, key: str, where: str) -> tuple[int, ...] | None:
    text = get_str_or_none(item, key, where)
    if text is None:
        return None
    if not _VERSION.fullmatch(text):
        raise UpnpDataError(f"{where}: {key!r} must be a dotted version, not {text!r}")
    return _version_tuple(text)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _less(left: tuple[int, ...], right: tuple[int, ...]) -> bool:
    width = max(len(left), len(right))
    return left + (0,) * (width - len(left)) < right + (0,) * (width - len(right))
