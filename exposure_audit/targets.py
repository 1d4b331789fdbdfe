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

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import idna

from .errors import TargetError

__all__ = [
    "DEFAULT_MAX_HOSTS",
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


def _looks_numeric(text: str) -> bool:
    return all(part.isdigit() for part in text.split(".") if part) and "." in text


def _parse_address(text: str, original: str, where: str) -> TargetSpec:
    if "%" in text:
        raise TargetError(where, original, "a zone index (%…) is not allowed")
    try:
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise TargetError(where, original, f"not a valid IP address ({exc})") from None
    return TargetSpec(TargetKind.ADDRESS, address.compressed, where)


def _parse_network(text: str, where: str) -> TargetSpec:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise TargetError(where, text, f"not a valid CIDR range ({exc})") from None
    if network.num_addresses == 1:
        return TargetSpec(TargetKind.ADDRESS, network.network_address.compressed, where)
    return TargetSpec(TargetKind.NETWORK, network.compressed, where)


def _parse_hostname(text: str, where: str) -> TargetSpec:
    name = text.rstrip(".")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise TargetError(where, text, f"not a valid host name ({exc})") from None
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


@dataclass(frozen=True)
class TargetPlan:
    """What a run will scan: addresses given directly (expanded) and names to resolve first.
    ``excluded`` names the targets (as given) that the exclusions removed entirely."""

    addresses: tuple[str, ...]
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
    """Apply the scan policy to parsed items and expand ranges.

    Raises :class:`TargetError` when an address or range is not global and ``allow_private`` is
    false (the message names the flag), or when ranges expand past ``max_hosts`` addresses.
    Excluded addresses and names are dropped; duplicates keep their first position.
    """
    excluded = Exclusions.from_specs(exclusions)
    total = 0
    for spec in targets:
        if spec.kind is TargetKind.HOSTNAME:
            continue
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
        total += spec.network.num_addresses
        if total > max_hosts:
            raise TargetError(
                spec.where,
                spec.value,
                f"the targets expand past {max_hosts:,} addresses; raise --max-hosts to scan them",
            )
    addresses = dict.fromkeys(_expand(targets, excluded))
    names = dict.fromkeys(
        s.value
        for s in targets
        if s.kind is TargetKind.HOSTNAME and not excluded.excludes_name(s.value)
    )
    gone = dict.fromkeys(s.value for s in targets if _wholly_excluded(s, excluded))
    return TargetPlan(tuple(addresses), tuple(names), excluded, allow_private, tuple(gone))


def _wholly_excluded(spec: TargetSpec, excluded: Exclusions) -> bool:
    if spec.kind is TargetKind.HOSTNAME:
        return excluded.excludes_name(spec.value)
    return all(excluded.excludes_address(a) for a in spec.network)


def _expand(targets: Sequence[TargetSpec], excluded: Exclusions) -> Iterator[str]:
    for spec in targets:
        if spec.kind is TargetKind.HOSTNAME:
            continue
        network = spec.network
        for address in network:
            if not excluded.excludes_address(address):
                yield address.compressed
