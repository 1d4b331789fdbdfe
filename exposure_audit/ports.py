"""Port sets: the grammar of ``-p/--ports`` and the default port set (a data file): Synology's
service ports, UPnP's description ports and the management consoles' default ports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .errors import PortSpecError

__all__ = [
    "PortSet",
    "default_ports",
    "is_management_port",
    "parse_ports",
    "port_ranges",
    "port_service_name",
]

_ITEM = re.compile(r"^(?:(?P<proto>[TtUu]):)?(?P<low>\d{1,5})(?:-(?P<high>\d{1,5}))?$")
_MAX_PORTS = 65_535


@dataclass(frozen=True)
class PortSet:
    """TCP and UDP ports, each sorted and unique."""

    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()

    def nmap_spec(self, *, udp: bool) -> str:
        """Return the value for nmap's ``-p``: digits, commas, ``-`` and ``T:``/``U:`` only.
        Runs of ports are ranges (``T:1-65535``): one argument stays short whatever the set
        (a comma list of every port would pass the kernel's limit on one argument)."""
        parts = [f"T:{port_ranges(self.tcp)}"] if self.tcp else []
        if udp and self.udp:
            parts.append(f"U:{port_ranges(self.udp)}")
        return ",".join(parts)

    def describe(self) -> str:
        """``tcp 21,22,23,80,8000-8010; udp -``: runs of four or more as ranges."""
        return f"tcp {port_ranges(self.tcp) or '-'}; udp {port_ranges(self.udp) or '-'}"


def port_ranges(ports: Iterable[int]) -> str:
    """Sorted unique ``ports`` as nmap's list syntax: a run of four or more consecutive
    ports as ``low-high``, the others one by one (``21,22,23,5000,5001,8000-8010``)."""
    items: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if len(run) >= 4:
            items.append(f"{run[0]}-{run[-1]}")
        else:
            items.extend(map(str, run))

    for port in sorted(set(ports)):
        if run and port != run[-1] + 1:
            flush()
            run = []
        run.append(port)
    flush()
    return ",".join(items)


def parse_ports(text: str) -> PortSet:
    """Parse ``22,80,5000-5001,U:161`` (items default to TCP; ``T:``/``U:`` choose).

    Raises :class:`PortSpecError` naming the bad item for anything else: ports outside
    1-65535, reversed ranges, empty items, stray characters.
    """
    if not text.strip():
        raise PortSpecError("empty port list (leave the ports out for the default set)")
    tcp: set[int] = set()
    udp: set[int] = set()
    for raw in text.split(","):
        match = _ITEM.match(raw.strip())
        item, spec = _cut(raw), _cut(text)
        if not match:
            raise PortSpecError(f"bad port item {item} in {spec} (expected N, N-M, T:N or U:N)")
        low = int(match["low"])
        high = int(match["high"] or low)
        if not 1 <= low <= high <= _MAX_PORTS:
            raise PortSpecError(f"bad port range {item} in {spec} (ports are 1-65535, low-high)")
        (udp if (match["proto"] or "t").lower() == "u" else tcp).update(range(low, high + 1))
    return PortSet(tuple(sorted(tcp)), tuple(sorted(udp)))


def _cut(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters (a spec may be huge)."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


@cache
def _port_table() -> dict[tuple[str, int], dict[str, object]]:
    text = resources.files("exposure_audit.data").joinpath("ports.json").read_text("utf-8")
    rows: list[dict[str, object]] = json.loads(text)["ports"]
    return {(str(r["protocol"]), int(str(r["port"]))): r for r in rows}


def default_ports() -> PortSet:
    """The default scan set: DSM management 5000/5001, the Synology service ports, the UPnP
    description ports and the default ports of the management catalog's consoles (class
    ``console``; a test keeps them in step with ``management_catalog.json``)."""
    rows = [r for r in _port_table().values() if r["default"]]
    return PortSet(
        tuple(sorted(int(str(r["port"])) for r in rows if r["protocol"] == "tcp")),
        tuple(sorted(int(str(r["port"])) for r in rows if r["protocol"] == "udp")),
    )


def port_service_name(protocol: str, port: int) -> str:
    """The usual Synology service on ``port``, or ``""`` when the data file does not know it."""
    row = _port_table().get((protocol, port))
    return str(row["service"]) if row else ""


# Port classes of the data file whose ports administer a device: DSM's own (5000/5001), remote
# administration (SSH, Telnet, SRM 8000/8001, SNMP, LDAP) and UPnP description and control.
_MANAGEMENT_CLASSES = frozenset({"management", "admin", "upnp"})


def is_management_port(protocol: str, port: int) -> bool:
    """Whether ``port`` is one DSM, SRM or UPnP use for management (the data file's
    ``management``, ``admin`` and ``upnp`` classes)."""
    row = _port_table().get((protocol, port))
    return row is not None and row["class"] in _MANAGEMENT_CLASSES
