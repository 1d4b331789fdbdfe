"""Targets: the grammar of what may be scanned, and the policy on what must not be.

Every item (from the command line, a targets file or an exclusion) is parsed here before
anything touches the network. An item is one of:

- an IPv4 or IPv6 address (``198.51.100.7``, ``2001:db8::7``, ``[2001:db8::7]``);
- a CIDR range of either family (``198.51.100.0/28``, ``2001:db8::/126``);
- a host name, internationalised names allowed (``nas.example.net``, ``bücher.example``).

Anything else is a :class:`~exposure_audit.errors.TargetError` naming where the item came from.
Only normalised addresses produced by :mod:`ipaddress` ever leave this module towards nmap, so
no item can be read as an nmap option (the CVE-2022-30284 class of bug: ``-oN x`` or
``--script=y`` as a "target").
"""

from __future__ import annotations

import bisect
import heapq
import ipaddress
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import overload

import idna

from .errors import TargetError

__all__ = [
    "DEFAULT_MAX_HOSTS",
    "MAX_HOSTS_CAP",
    "AddressRanges",
    "Exclusions",
    "IPAddress",
    "IPNetwork",
    "TargetKind",
    "TargetPlan",
    "TargetSpec",
    "non_global_reason",
    "parse_item",
    "parse_lines",
    "plan_targets",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_HOSTS = 65_536
MAX_HOSTS_CAP = 1 << 32
"""The largest ``--max-hosts`` (and config ``max_hosts``): a /0 of IPv4, a /96 of IPv6."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:/\[\]]+)):(?P<port>\d{1,5})$")
_MAX_ITEM = 300
"""No item is longer: a host name has at most 253 characters, a CIDR range far fewer."""

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

# Special-purpose ranges (IANA IPv4/IPv6 Special-Purpose Address Registries, RFC 6890 and
# successors), each with the reason a user is shown. Order matters: the first match names it.
_SPECIAL: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "'this network' (RFC 791), not routable"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT shared space (RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (RFC 3927)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
        ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (RFC 1112)"),
        ("::/128", "unspecified address"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
        ("100::/64", "discard-only (RFC 6666)"),
        ("2001:db8::/32", "documentation (RFC 3849)"),
        ("3fff::/20", "documentation (RFC 9637)"),
        ("fc00::/7", "unique-local, private (RFC 4193)"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    )
)


class TargetKind(StrEnum):
    ADDRESS = "address"
    NETWORK = "network"
    HOSTNAME = "hostname"


@dataclass(frozen=True)
class TargetSpec:
    """One parsed item. ``value`` is normalised (compressed address, network, ASCII name)."""

    kind: TargetKind
    value: str
    where: str

    @property
    def network(self) -> IPNetwork:
        """The item as a network (a /32 or /128 for an address). Not valid for host names."""
        if self.kind is TargetKind.HOSTNAME:
            raise TypeError("a host name has no network")
        return ipaddress.ip_network(self.value, strict=False)


def parse_item(text: str, where: str) -> TargetSpec:
    """Parse one target or exclusion item.

    Raises :class:`TargetError` (naming ``where``) for anything outside the grammar: empty
    items, items with whitespace, commas, shell or option characters, bad addresses or names.
    """
    item = text.strip()
    if not item:
        raise TargetError(where, text, "empty item")
    if _URL.match(item):
        raise TargetError(
            where,
            item,
            "a URL is not a target: give its host name or address alone (use -p for ports)",
        )
    host_port = _HOST_PORT.match(item)
    if host_port:
        host = host_port["v6"] or host_port["host"]
        raise TargetError(
            where,
            item,
            f"looks like HOST:PORT: give the host ({host[:60]}) alone and use -p for ports",
        )
    if len(item) > _MAX_ITEM:
        raise TargetError(
            where, item, f"too long for an address, range or host name ({len(item):,} characters)"
        )
    if item.startswith("-"):
        raise TargetError(where, item, "looks like an option; a target never starts with '-'")
    if any(c.isspace() or c in ",;|&$`'\"<>(){}*?!\\=" for c in item):
        raise TargetError(where, item, "holds a character no address or host name can contain")
    if "/" in item:
        return _parse_network(item, where)
    bare = item[1:-1] if item.startswith("[") and item.endswith("]") else item
    if ":" in bare or _looks_numeric(bare):
        return _parse_address(bare, item, where)
    return _parse_hostname(item, where)


def _detail(exc: Exception, limit: int = 120) -> str:
    """A parser's complaint, cut: it may quote the item again."""
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _looks_numeric(text: str) -> bool:
    return all(part.isdigit() for part in text.split(".") if part) and "." in text


def _parse_address(text: str, original: str, where: str) -> TargetSpec:
    if "%" in text:
        raise TargetError(where, original, "a zone index (%…) is not allowed")
    try:
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise TargetError(where, original, f"not a valid IP address ({_detail(exc)})") from None
    return TargetSpec(TargetKind.ADDRESS, address.compressed, where)


def _parse_network(text: str, where: str) -> TargetSpec:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise TargetError(where, text, f"not a valid CIDR range ({_detail(exc)})") from None
    if network.num_addresses == 1:
        return TargetSpec(TargetKind.ADDRESS, network.network_address.compressed, where)
    return TargetSpec(TargetKind.NETWORK, network.compressed, where)


def _parse_hostname(text: str, where: str) -> TargetSpec:
    name = text.rstrip(".")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise TargetError(where, text, f"not a valid host name ({_detail(exc)})") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise TargetError(where, text, "bad host name (labels of 1-63 letters, digits, '-')")
    if labels[-1].isdigit():
        raise TargetError(where, text, "not a valid host name (the last label is numeric)")
    return TargetSpec(TargetKind.HOSTNAME, ascii_name, where)


def parse_lines(lines: Iterable[str], source: str) -> list[TargetSpec]:
    """Parse a targets file's lines: one item per line, ``#`` starts a comment, blanks skipped.

    Errors name ``source`` and the 1-based line number (``targets.txt:12``).
    """
    specs: list[TargetSpec] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            specs.append(parse_item(line, f"{source}:{number}"))
    return specs


def non_global_reason(address: IPAddress) -> str | None:
    """Return why ``address`` is not a global unicast address, or None if it is global."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        inner = non_global_reason(address.ipv4_mapped)
        return f"IPv4-mapped {inner}" if inner else None
    for network, reason in _SPECIAL:
        if address.version == network.version and address in network:
            return reason
    return None if address.is_global else "reserved (not globally routable)"


def _network_reason(network: IPNetwork) -> str | None:
    for special, reason in _SPECIAL:
        if special.version == network.version and network.overlaps(special):
            return f"overlaps {special} ({reason})"
    first = network.network_address
    return None if first.is_global else non_global_reason(first)


@dataclass(frozen=True)
class Exclusions:
    """Addresses, ranges and names never to scan. Names match exactly (after normalisation)."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def from_specs(cls, specs: Sequence[TargetSpec]) -> Exclusions:
        return cls(
            networks=tuple(s.network for s in specs if s.kind is not TargetKind.HOSTNAME),
            names=frozenset(s.value for s in specs if s.kind is TargetKind.HOSTNAME),
        )

    def excludes_address(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)

    def excludes_name(self, name: str) -> bool:
        return name in self.names


class AddressRanges(Sequence[str]):
    """The addresses a plan scans, kept as ranges and spelt out only when asked: a /8 is three
    integers here, not 16 million strings. A sequence of compressed address strings, in plan
    order (each target's first-seen addresses, ascending), with ``len``, indexing and
    iteration; :meth:`networks` gives the same addresses as CIDR blocks."""

    def __init__(self, segments: Iterable[tuple[int, int, int]] = ()) -> None:
        # (IP version, first, last) with first <= last, as integers.
        self._segments = tuple(segments)
        ends: list[int] = []
        total = 0
        for _, first, last in self._segments:
            total += last - first + 1
            ends.append(total)
        self._ends = ends
        self._len = total

    @classmethod
    def of(cls, addresses: Iterable[str]) -> AddressRanges:
        """Addresses given one by one (in this order, duplicates kept)."""
        segments = []
        for text in addresses:
            address = ipaddress.ip_address(text)
            segments.append((address.version, int(address), int(address)))
        return cls(segments)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        for version, first, last in self._segments:
            make = _ADDRESS[version]
            for number in range(first, last + 1):
                yield make(number).compressed

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._len)))
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("address index out of range")
        k = bisect.bisect_right(self._ends, index)
        version, first, last = self._segments[k]
        before = self._ends[k] - (last - first + 1)
        return _ADDRESS[version](first + index - before).compressed

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        number = int(address)
        return any(
            v == address.version and first <= number <= last for v, first, last in self._segments
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AddressRanges):
            return self._len == other._len and all(a == b for a, b in zip(self, other, strict=True))
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self._len == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._segments)

    def __repr__(self) -> str:
        shown = ", ".join(str(n) for n in itertools.islice(self.networks(), 4))
        more = ", ..." if len(self._segments) > 4 else ""
        return f"AddressRanges({self._len} addresses: {shown}{more})"

    def networks(self) -> Iterator[IPNetwork]:
        """The addresses as CIDR blocks, in plan order (no address spelt out)."""
        for version, first, last in self._segments:
            make = _ADDRESS[version]
            yield from ipaddress.summarize_address_range(make(first), make(last))


_ADDRESS: dict[int, type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]] = {
    4: ipaddress.IPv4Address,
    6: ipaddress.IPv6Address,
}


@dataclass(frozen=True)
class TargetPlan:
    """What a run will scan: addresses given directly (expanded) and names to resolve first.
    ``excluded`` names the targets (as given) that the exclusions removed entirely.
    ``addresses`` is any sequence of address strings; :func:`plan_targets` gives an
    :class:`AddressRanges`, which spells addresses out only when they are read."""

    addresses: Sequence[str]
    hostnames: tuple[str, ...]
    exclusions: Exclusions
    allow_private: bool
    excluded: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.addresses) + len(self.hostnames)


def plan_targets(
    targets: Sequence[TargetSpec],
    exclusions: Sequence[TargetSpec] = (),
    *,
    allow_private: bool = False,
    max_hosts: int = DEFAULT_MAX_HOSTS,
) -> TargetPlan:
    """Apply the scan policy to parsed items and expand ranges (lazily: see
    :class:`AddressRanges`; time and memory grow with the number of items, not addresses).

    Raises :class:`TargetError` when an address or range is not global and ``allow_private`` is
    false (the message names the flag), or when ranges expand past ``max_hosts`` distinct
    addresses (a duplicate or an overlap counts once; exclusions are not subtracted).
    Excluded addresses and names are dropped; duplicates keep their first position.
    """
    excluded = Exclusions.from_specs(exclusions)
    ranged = [s for s in targets if s.kind is not TargetKind.HOSTNAME]
    for spec in ranged:
        if spec.kind is TargetKind.NETWORK:
            reason = _network_reason(spec.network)
        else:
            reason = non_global_reason(ipaddress.ip_address(spec.value))
        if reason and not allow_private:
            raise TargetError(
                spec.where,
                spec.value,
                f"not a public address: {reason}; pass --allow-private to scan it anyway",
            )
    owned = _first_owners([(s.network.version, *_span(s)) for s in ranged])
    total = 0
    for spec, parts in zip(ranged, owned, strict=True):
        total += sum(last - first + 1 for first, last in parts)
        if total > max_hosts:
            raise TargetError(
                spec.where,
                spec.value,
                f"the targets expand past {max_hosts:,} addresses; raise --max-hosts to scan them",
            )
    blocked = {v: _merged(_span(n) for n in excluded.networks if n.version == v) for v in (4, 6)}
    segments: list[tuple[int, int, int]] = []
    wholly: set[str] = set()
    for spec, parts in zip(ranged, owned, strict=True):
        version = spec.network.version
        if not _outside(blocked[version], *_span(spec)):
            wholly.add(spec.value)
        for part in parts:
            segments += [(version, a, b) for a, b in _outside(blocked[version], *part)]
    names = dict.fromkeys(
        s.value
        for s in targets
        if s.kind is TargetKind.HOSTNAME and not excluded.excludes_name(s.value)
    )
    gone = dict.fromkeys(
        s.value
        for s in targets
        if (excluded.excludes_name(s.value) if s.kind is TargetKind.HOSTNAME else s.value in wholly)
    )
    return TargetPlan(
        AddressRanges(_joined(segments)), tuple(names), excluded, allow_private, tuple(gone)
    )


def _span(item: TargetSpec | IPNetwork) -> tuple[int, int]:
    """An item's (or network's) first and last address as integers."""
    network = item.network if isinstance(item, TargetSpec) else item
    return int(network.network_address), int(network.broadcast_address)


def _first_owners(spans: Sequence[tuple[int, int, int]]) -> list[list[tuple[int, int]]]:
    """For each (version, first, last) span, in order, the parts of it that no earlier span
    covers, ascending. One sweep per family over the spans' ends, the earliest span still open
    owning each stretch: O(n log n) in the number of spans, whatever their sizes."""
    owned: list[list[tuple[int, int]]] = [[] for _ in spans]
    for version in (4, 6):
        indexes = [i for i, span in enumerate(spans) if span[0] == version]
        if indexes:
            _sweep({i: (spans[i][1], spans[i][2]) for i in indexes}, owned)
    return owned


def _sweep(spans: dict[int, tuple[int, int]], owned: list[list[tuple[int, int]]]) -> None:
    starts = sorted(spans, key=lambda i: spans[i][0])
    points = sorted({p for first, last in spans.values() for p in (first, last + 1)})
    open_spans: list[tuple[int, int]] = []  # a heap of (index, last): the earliest item first
    next_start = 0
    for k, point in enumerate(points[:-1]):
        while next_start < len(starts) and spans[starts[next_start]][0] == point:
            index = starts[next_start]
            heapq.heappush(open_spans, (index, spans[index][1]))
            next_start += 1
        while open_spans and open_spans[0][1] < point:
            heapq.heappop(open_spans)
        if open_spans:
            parts = owned[open_spans[0][0]]
            stretch_end = points[k + 1] - 1
            if parts and parts[-1][1] + 1 == point:
                parts[-1] = (parts[-1][0], stretch_end)
            else:
                parts.append((point, stretch_end))


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans sorted and merged (overlapping and adjacent ones joined)."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def _outside(blocked: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """The parts of ``first..last`` that no span of ``blocked`` (merged, sorted) covers."""
    out: list[tuple[int, int]] = []
    k = bisect.bisect_left(blocked, (first, first))
    if k and blocked[k - 1][1] >= first:
        k -= 1
    cursor = first
    while k < len(blocked) and blocked[k][0] <= last:
        low, high = blocked[k]
        if low > cursor:
            out.append((cursor, low - 1))
        cursor = max(cursor, high + 1)
        k += 1
    if cursor <= last:
        out.append((cursor, last))
    return out


def _joined(segments: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Consecutive segments that continue each other joined into one."""
    out: list[tuple[int, int, int]] = []
    for version, first, last in segments:
        if out and out[-1][0] == version and out[-1][2] + 1 == first:
            out[-1] = (version, out[-1][1], last)
        else:
            out.append((version, first, last))
    return out
