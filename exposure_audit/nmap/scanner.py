"""Port discovery and service versions with the real nmap, through python-nmap.

Only normalised IP addresses and port lists of digits, commas and ranges reach nmap's command
line: every host string is re-parsed with :mod:`ipaddress` here (defence in depth behind the
target grammar), so a "target" can never be read as an option (CVE-2022-30284 in
python-libnmap was exactly that).
"""

from __future__ import annotations

import abc
import asyncio
import ctypes
import ipaddress
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import defusedxml.ElementTree as SafeET
import nmap

from ..errors import ProbeFailed, ScannerUnavailable
from ..observations import ServiceObservation
from ..ports import PortSet, port_ranges
from ..text import printable
from ..timing import DiscoveryPolicy, discovery_policy
from .versiondb import quick_banner_versiondb

# python-nmap's XML parser is an instance method; one instance serves every parse (it keeps
# nothing between calls but the last result).
_PARSER = nmap.PortScanner.__new__(nmap.PortScanner)

__all__ = [
    "DiscoveryRequest",
    "DiscoveryResult",
    "NmapScanner",
    "Scanner",
    "VersionInfo",
    "udp_scan_possible",
]


@dataclass(frozen=True)
class DiscoveryResult:
    """Ports nmap reported for one address, and whether its host deadline cut it short."""

    address: str
    services: tuple[ServiceObservation, ...] = ()
    timed_out: bool = False


@dataclass(frozen=True)
class VersionInfo:
    """What ``-sV`` said about one port. ``identified`` is True when a probe's answer matched
    a service (nmap's confidence above its port-table guess, 3) and the match is a service,
    not ``tcpwrapped`` (the peer hung up at once: nothing was learned)."""

    service: str
    product: str = ""
    version: str = ""
    extrainfo: str = ""
    identified: bool = False
    cpes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiscoveryRequest:
    """One discovery question, as :meth:`Scanner.discover` was asked it."""

    addresses: tuple[str, ...]
    ports: PortSet
    udp: bool
    host_timeout: float
    concurrent: int = 1


class Scanner(abc.ABC):
    """What the audit asks of a port scanner: :class:`NmapScanner` runs nmap;
    ``run.grade_import.NmapReplay`` answers from an nmap run someone else made.

    The contracts live here, once; a scanner implements :meth:`_discover` (the question as one
    :class:`DiscoveryRequest`) and :meth:`versions`.
    """

    async def discover(
        self,
        addresses: Sequence[str],
        ports: PortSet,
        *,
        udp: bool,
        host_timeout: float,
        concurrent: int = 1,
    ) -> dict[str, DiscoveryResult]:
        """The open ports among ``ports`` on ``addresses`` (one family per call); UDP too when
        ``udp``.

        ``concurrent`` is how many discovery runs go at once: the pace's rates are the total,
        so this run takes its share. Returns a result for every address asked for. An address
        whose ``host_timeout`` cut it short has ``timed_out`` set and whatever ports were
        still reported.
        """
        request = DiscoveryRequest(tuple(addresses), ports, udp, host_timeout, concurrent)
        return await self._discover(request)

    @abc.abstractmethod
    async def _discover(self, request: DiscoveryRequest) -> dict[str, DiscoveryResult]:
        """Answer :meth:`discover` (whose contract this keeps)."""

    @abc.abstractmethod
    async def versions(
        self, targets: Mapping[str, Sequence[int]], *, host_timeout: float
    ) -> tuple[dict[tuple[str, int], VersionInfo], set[str]]:
        """Service versions (``-sV``) of the given TCP ports of each address
        (``{address: [ports]}``), within ``host_timeout`` seconds per host. Returns the version
        info per (address, port) and the addresses whose deadline cut ``-sV`` short."""


@dataclass
class NmapScanner(Scanner):
    """Runs nmap. ``path`` defaults to ``nmap`` on PATH; a missing binary raises at once.

    ``policy`` paces discovery (``-T``, rates, retries: :mod:`exposure_audit.timing`); its
    ``-T`` serves ``-sV`` too. ``version_intensity``, ``version_parallelism`` and
    ``quick_banners`` (a 2 s wait for a first banner instead of nmap's 6 s:
    :mod:`.nmap_versiondb`) were chosen by measurement (docs/performance.md).
    """

    path: str | None = None
    policy: DiscoveryPolicy = field(default_factory=discovery_policy)
    version_intensity: int = 2
    version_parallelism: int = 64
    quick_banners: bool = True
    _binary: str = field(init=False, default="")

    def __post_init__(self) -> None:
        found = shutil.which(self.path or "nmap")
        if found is None:
            raise ScannerUnavailable(
                f"nmap not found ({self.path or 'nmap'} is not on PATH); install it, "
                "e.g. apt-get install nmap"
            )
        self._binary = found

    async def _discover(self, request: DiscoveryRequest) -> dict[str, DiscoveryResult]:
        """Connect-scan (``-sT``, and ``-sU`` for UDP), paced by the policy's share for
        ``request.concurrent`` runs; nmap's ``--host-timeout`` is the host deadline."""
        hosts = _checked_hosts(request.addresses)
        spec = request.ports.nmap_spec(udp=request.udp)
        if not spec or not hosts:
            return {a: DiscoveryResult(a) for a in hosts}
        flags = ["-sT", "-sU"] if request.udp and request.ports.udp else ["-sT"]
        flags += ["-Pn", "-n", *self.policy.shared(request.concurrent).nmap_flags()]
        flags += ["--host-timeout", _seconds(request.host_timeout)]
        raw, timed_out = await self._run(hosts, spec, flags)
        return {a: DiscoveryResult(a, _services(raw.get(a, {})), a in timed_out) for a in hosts}

    async def versions(
        self, targets: Mapping[str, Sequence[int]], *, host_timeout: float
    ) -> tuple[dict[tuple[str, int], VersionInfo], set[str]]:
        """``-sV`` as :meth:`Scanner.versions` says: addresses sharing a port list share one
        nmap run; the runs go concurrently."""
        groups: dict[tuple[int, ...], list[str]] = {}
        for address, port_list in targets.items():
            if port_list:
                groups.setdefault(tuple(sorted(set(port_list))), []).append(address)
        flags = ["-sT", "-sV", "-Pn", "-n", f"-T{int(self.policy.timing)}"]
        flags += ["--version-intensity", str(int(self.version_intensity))]
        flags += ["--max-parallelism", str(int(self.version_parallelism))]
        versiondb = quick_banner_versiondb(self._binary) if self.quick_banners else None
        flags += ["--versiondb", versiondb] if versiondb else []
        flags += ["--host-timeout", _seconds(host_timeout)]
        runs = await asyncio.gather(
            *(
                self._run(_checked_hosts(hosts), port_ranges(port_list), flags)
                for port_list, hosts in groups.items()
            )
        )
        found: dict[tuple[str, int], VersionInfo] = {}
        cut: set[str] = set()
        for (port_list, _hosts), (raw, timed_out) in zip(groups.items(), runs, strict=True):
            cut |= timed_out
            for address, row in raw.items():
                table = row.get("tcp", {})
                for port, info in table.items() if isinstance(table, Mapping) else ():
                    if info.get("state") == "open" and int(port) in port_list:
                        found[(address, int(port))] = _version_info(info)
        return found, cut

    async def _run(
        self, hosts: Sequence[str], ports: str, flags: Sequence[str]
    ) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Run one nmap; the process is killed if the caller is cancelled (Ctrl-C, deadline)."""
        if not hosts:
            return {}, set()
        family = ["-6"] if any(":" in h for h in hosts) else []
        # "--" ends nmap's options: even a host string starting with "-" could not be one.
        argv = [self._binary, "-oX", "-", *family, *flags, "-p", ports, "--", *hosts]
        try:
            # An argv list, no shell: nothing in it is ever parsed by a shell.
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=_die_with(os.getpid()),
            )
        except OSError as exc:  # removed or made unrunnable since it was found
            raise ProbeFailed(f"nmap could not be started ({self._binary}): {exc}") from exc
        try:
            stdout, stderr = await process.communicate()
        except BaseException:
            if process.returncode is None:
                process.kill()
                await asyncio.shield(process.wait())
            raise
        err = stderr.decode("utf-8", "replace")
        if process.returncode != 0:
            detail = err.strip()[:500]
            raise ProbeFailed(_exit_status(process.returncode) + (f": {detail}" if detail else ""))
        try:
            result = nmap.PortScanner.analyse_nmap_xml_scan(
                _PARSER, nmap_xml_output=stdout.decode("utf-8", "replace"), nmap_err=err
            )
            if not isinstance(result, dict) or not isinstance(result.get("scan"), dict):
                raise ProbeFailed("nmap printed no usable XML")
            rows = {_normalise(h): dict(v) for h, v in result["scan"].items()}
            extras = _read_extras(stdout)
            for (address, port), cpes in extras.cpes.items():
                table = rows.get(address, {}).get("tcp")
                if isinstance(table, dict) and isinstance(table.get(port), dict):
                    table[port]["cpes"] = cpes
            return rows, extras.timed_out
        except nmap.PortScannerError as exc:
            raise ProbeFailed(f"nmap printed no usable XML: {str(exc).strip()[:300]}") from exc
        except (AttributeError, KeyError, LookupError, TypeError, ValueError) as exc:
            # python-nmap's parser trips over XML nmap did not finish (no <runstats>: nmap cut
            # short), an unknown encoding declaration or a port that is not a number.
            what = f"{type(exc).__name__}: {str(exc).strip()[:200]}".rstrip(": ")
            raise ProbeFailed(f"nmap printed no usable XML ({what})") from exc


# prctl(2) option: the signal the kernel sends this process when the thread that created it dies.
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` tying nmap's life to the audit's: when the audit dies without tearing
    down (``kill -9`` by cron's or systemd's timeout, a crash), the kernel kills nmap at once, so
    no orphaned scanner keeps sending probes. The ``except`` paths of :meth:`NmapScanner._run`
    cover every exit the audit lives through; this covers the ones it does not.

    The signal follows the *thread* that forked (the event loop's, which lives as long as the
    run). If the parent died between fork and prctl the child is already orphaned: it exits.
    Linux only; elsewhere (no ``prctl``) it does nothing and the ``except`` paths remain.
    """

    def in_child() -> None:
        prctl = getattr(_LIBC, "prctl", None)
        if prctl is None:
            return
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return in_child


_LIBC = ctypes.CDLL(None, use_errno=True)


# nmap's confidence for a service name taken from its port table (nmap-services), not from
# an answer: "conf 3" with method "table" (nmap's XML output reference).
_TABLE_CONFIDENCE = 3


def _version_info(info: Mapping[str, Any]) -> VersionInfo:
    service = str(info.get("name") or "")
    try:
        confidence = int(info.get("conf") or 0)
    except (TypeError, ValueError):
        confidence = 0
    return VersionInfo(
        service=service,
        product=str(info.get("product") or ""),
        version=str(info.get("version") or ""),
        extrainfo=str(info.get("extrainfo") or ""),
        identified=confidence > _TABLE_CONFIDENCE and service not in ("", "tcpwrapped"),
        cpes=_cpes(info.get("cpes") or [info.get("cpe")]),
    )


# nmap escapes what a banner puts in a CPE, but it is still text from the target: each is
# made printable and cut, only CPE URIs are kept, and at most a few per port.
_CPE_LIMIT = 256
_MAX_CPES = 8


def _cpes(values: Iterable[object]) -> tuple[str, ...]:
    kept = [
        printable(v.strip(), _CPE_LIMIT)
        for v in values
        if isinstance(v, str) and v.strip().startswith("cpe:/")
    ]
    return tuple(dict.fromkeys(kept))[:_MAX_CPES]


def udp_scan_possible() -> tuple[bool, str]:
    """Whether nmap can run a UDP scan here (it needs raw sockets: root), and why not."""
    if os.geteuid() == 0:
        return True, ""
    return False, "UDP scanning needs root (raw sockets); run as root to scan UDP ports"


def _exit_status(code: int | None) -> str:
    """``nmap exited with 1`` or, for a negative code, ``nmap was killed by SIGKILL``."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"nmap was killed by {name} mid-scan"
    return f"nmap exited with {code}"


def _checked_hosts(addresses: Iterable[str]) -> list[str]:
    hosts: list[str] = []
    for address in addresses:
        # Raises ValueError for anything that is not an address: nothing else may reach argv.
        hosts.append(ipaddress.ip_address(address).compressed)
    return hosts


def _normalise(host: str) -> str:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def _seconds(value: float) -> str:
    return f"{max(1, int(value + 0.999))}s"


def _services(row: Mapping[str, object]) -> tuple[ServiceObservation, ...]:
    services: list[ServiceObservation] = []
    for protocol in ("tcp", "udp"):
        table = row.get(protocol)
        if not isinstance(table, Mapping):
            continue
        for port, info in sorted(table.items()):
            services.append(
                ServiceObservation(
                    port=int(port),
                    protocol=protocol,
                    state=str(info.get("state", "")),
                    service=str(info.get("name") or ""),
                )
            )
    return tuple(services)


@dataclass(frozen=True)
class _XmlExtras:
    """What python-nmap drops from nmap's XML: the hosts nmap marked ``timedout="true"``, and
    every ``<cpe>`` of a TCP port's service (python-nmap keeps only the last one, which for
    ``OpenSSH ... Debian`` is the kernel's, not OpenSSH's)."""

    timed_out: set[str]
    cpes: dict[tuple[str, int], tuple[str, ...]]


def _read_extras(xml: bytes | str) -> _XmlExtras:
    if not xml:
        return _XmlExtras(set(), {})
    try:
        root = SafeET.fromstring(xml)
    except SafeET.ParseError as exc:
        raise ProbeFailed(f"nmap printed unreadable XML: {exc}") from exc
    cut: set[str] = set()
    cpes: dict[tuple[str, int], tuple[str, ...]] = {}
    for host in root.iter("host"):
        addresses = [
            _normalise(a.get("addr", ""))
            for a in host.iter("address")
            if a.get("addrtype") in ("ipv4", "ipv6")
        ]
        if host.get("timedout") == "true":
            cut.update(addresses)
        for port in host.iter("port"):
            found = _cpes(c.text for c in port.iterfind("service/cpe"))
            if port.get("protocol") == "tcp" and found and (port.get("portid") or "").isdigit():
                for address in addresses:
                    cpes[(address, int(port.get("portid", "0")))] = found
    return _XmlExtras(cut, cpes)
