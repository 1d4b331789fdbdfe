"""The filtered-perimeter lab: 1,024 Internet addresses behind a firewall, scanned from one or
more vantage points, with every port's true state known in advance.

::

    ns <prefix>scan-eu                ns <prefix>router                   ns <prefix>perimeter
    wan0 203.0.113.10/24 --veth-- rv0 203.0.113.1/24
                                      rp0 198.51.100.1/24 --veth-- pr0 198.51.100.2/24
    ns <prefix>scan-us                                                 local 198.18.0.0/22 dev lo
    wan0 192.0.2.10/24   --veth-- rv1 192.0.2.1/24                     (AnyIP: all 1,024 addresses)
         ...                          nftables forward filter:         exposure_audit's own lab
    ctl0 10.250.0.2/30 ---+           allow (address . port) per       ``perimeter``: 64 hosts
    ctl0 10.250.0.6/30 ---+-- ns <prefix>ctl (optional)              with DSM, SSH, SMB, nginx
                              cs0 10.250.0.1/30, cs1 10.250.0.5/30,
                              lo 10.250.255.1/32 (control_address)

Addresses. There is no documentation range as large as a /22 (RFC 5737 gives three /24s), so
the perimeter is 198.18.0.0/22, inside 198.18.0.0/15, which RFC 2544 reserves for benchmarking
and which is never routed on the Internet. The perimeter namespace owns the whole /22 through
one AnyIP route (``ip route add local 198.18.0.0/22 dev lo``): the lab's servers bind their
specific addresses and every other address answers like a host with nothing listening (the
kernel's own RST). Vantage ``i`` sits on 203.0.113.0/24 (the first), 192.0.2.0/24 (the second)
and 198.19.<i-2>.0/24 (further ones, the other half of the RFC 2544 range); the router reaches
the perimeter over 198.51.100.0/24.

Safety: every veth end is created directly inside its namespace and nothing connects to the
root namespace. A scanner has one route, to the perimeter /22 via the router, and no default
route; the router has no default route; only the router forwards. No lab packet can leave the
lab's namespaces.

The firewall (the router's forward chain, one ``inet`` table):

1. replies from the perimeter go back to the scanners (stateless: a SYN scan and a connect
   scan see the same thing from a stateful firewall, and no conntrack table fills up);
2. a vantage's traffic is accepted when its (destination address . port) is in that vantage's
   allow-list (a concatenated set, one per vantage, matched on the scanner's source subnet and
   interface): the port is then *open* when a lab server listens there, else *closed* (the
   perimeter's kernel resets it);
3. (address . port) in :data:`REJECTED_NETWORK` x :data:`REJECTED_PORTS` is answered with a
   TCP reset by the firewall itself: *closed*;
4. everything else is dropped: *filtered*.

The allow-lists come from the same layout that starts the servers
(:func:`exposure_audit.lab.catalog.perimeter_lab`): every service is allowed from every vantage
except :attr:`PerimeterLab.only_from` (one DSM's 5001 and one SSH only from ``eu``, one SMB only
from ``us``) and :attr:`PerimeterLab.blocked` (an SMB that listens but the firewall drops), and
:attr:`PerimeterLab.dead_forwards` are allowed although nothing listens (closed by the host;
one of them, a 445, only from ``us``: closed there, filtered from ``eu``).
:meth:`PerimeterLab.expected` derives every port's state from those rules, not from a scan.

With ``control=True`` a control namespace ``ctl`` is linked to every scanner by its own /30
(10.250.0.0/30, 10.250.0.4/30, ...) and owns :attr:`PerimeterLab.control_address` on its
loopback, which every scanner routes to: a scheduler there reaches workers in the scanner
namespaces, and neither ctl nor its processes can reach the perimeter (no route, and scanners
do not forward).

``line_rate`` adds a token bucket on the scanners' lines: loss, the one thing a veth never has
(these kernels have no netem).

Lab up 0.16-0.2 s (the servers' Python start-up dominates; the network is built meanwhile), down
0.04-0.1 s on these 2-core machines; :attr:`PerimeterLab.up_seconds` and
:attr:`PerimeterLab.down_seconds` say what it took.

Importable as ``tests.perimeter.lab`` with the repository root on ``sys.path`` (the benchmark
``bench/timing_policy.py`` does so). Patterns shared with the UPnP lab
(``tests/netns/lab.py``): unique namespace prefix, stale-namespace sweep, daemons that die with
their parent, zombie-aware waits.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from xml.etree.ElementTree import ParseError

from defusedxml import ElementTree

from exposure_audit.lab.catalog import perimeter_lab
from exposure_audit.lab.model import LabHost
from exposure_audit.ports import default_ports
from tests import nslib
from tests.nslib import die_with_parent, in_netns, list_namespaces, which

__all__ = [
    "CONTROL_ADDRESS",
    "LINK_NETWORK",
    "NAMESPACE_PREFIX",
    "PERIMETER_NETWORK",
    "REJECTED_NETWORK",
    "REJECTED_PORTS",
    "REQUIRED_BINARIES",
    "STATES",
    "LabError",
    "NmapRun",
    "PerimeterLab",
    "compare",
    "missing_prerequisites",
    "parse_nmap_states",
    "sweep_stale_namespaces",
    "vantage_subnet",
]

#: Every lab namespace is called ``eapr-<pid of the creating process>-<random>-<role>``.
NAMESPACE_PREFIX = "eapr-"

#: ``ip`` (iproute2), ``nft`` (nftables) build the lab; ``nmap`` scans it. (``tc``, also from
#: iproute2, only for ``line_rate``.)
REQUIRED_BINARIES = ("ip", "nft", "nmap")

#: The perimeter: RFC 2544 benchmarking space (no documentation range is a /22).
PERIMETER_NETWORK = "198.18.0.0/22"
#: Router <-> perimeter link (TEST-NET-2): router .1, perimeter .2.
LINK_NETWORK = "198.51.100.0/24"
#: Where the firewall answers with a TCP reset instead of dropping (an upstream that rejects).
REJECTED_NETWORK = "198.18.0.0/24"
REJECTED_PORTS = (23, 139, 3306)
#: The control namespace's own address (on its loopback), routed from every scanner.
CONTROL_ADDRESS = "10.250.255.1"
#: What nmap's connect scan says about a port, and what :meth:`PerimeterLab.expected` predicts.
STATES = ("open", "closed", "filtered")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

_VANTAGE_NAME = re.compile(r"[a-z][a-z0-9]{0,7}")
_MAX_VANTAGES = 64  # one /30 each in 10.250.0.0/24

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 3.0

Key = tuple[str, int]


class LabError(RuntimeError):
    """The lab could not be built, queried or torn down; the message carries the failing
    command's output and the lab servers' log."""


def vantage_subnet(index: int) -> ipaddress.IPv4Network:
    """The documentation /24 of the ``index``-th vantage (0: 203.0.113.0/24, 1: 192.0.2.0/24,
    n >= 2: 198.19.<n-2>.0/24); router .1, scanner .10."""
    if index == 0:
        return ipaddress.IPv4Network("203.0.113.0/24")
    if index == 1:
        return ipaddress.IPv4Network("192.0.2.0/24")
    return ipaddress.IPv4Network(f"198.19.{index - 2}.0/24")


def sweep_stale_namespaces() -> list[str]:
    """Delete what a process that died without tearing its lab down left: namespaces named
    ``eapr-<pid>-...`` whose creating PID no longer exists and that hold no process, and that
    process's work directories. Its own children are already gone (they get SIGKILL when it
    dies). Returns the namespaces deleted; touches nothing else."""
    pattern = re.compile(re.escape(NAMESPACE_PREFIX) + r"(\d+)-[0-9a-f]+-([\w-]+)")

    def dead(match: re.Match[str]) -> bool:
        return not Path(f"/proc/{match.group(1)}").exists()

    for path in Path(tempfile.gettempdir()).glob(f"{NAMESPACE_PREFIX}*-lab-*"):
        match = pattern.match(path.name)
        if match is not None and dead(match):
            shutil.rmtree(path, ignore_errors=True)
    deleted: list[str] = []
    ip = which("ip")
    if ip is None:
        return deleted
    for name in list_namespaces():
        match = pattern.fullmatch(name)
        if match is None or not dead(match):
            continue
        pids = subprocess.run(
            [ip, "netns", "pids", name], capture_output=True, text=True, check=False
        )
        if pids.returncode == 0 and not pids.stdout.strip():
            subprocess.run([ip, "netns", "del", name], capture_output=True, check=False)
            deleted.append(name)
    return deleted


@dataclass(frozen=True)
class NmapRun:
    """One nmap run: its command line, wall time in seconds (``ip netns exec`` included), the
    CPU seconds (user + system) it used, exit status, the port states it reported
    (``parse_nmap_states``) and its standard error."""

    argv: tuple[str, ...]
    seconds: float
    cpu_seconds: float
    returncode: int
    states: dict[Key, str]
    stderr: str


class PerimeterLab:
    """One filtered-perimeter lab (see the module docstring); a context manager.

    ``vantages`` names the scanner namespaces (1-64 distinct names matching
    ``[a-z][a-z0-9]{0,7}``; default one, ``eu``); the first sits on 203.0.113.0/24, the second
    on 192.0.2.0/24. The vantage-only services are keyed by the names ``eu`` and ``us``: a lab
    without a vantage of that name reaches those services from nowhere. ``control`` adds the
    ``ctl`` namespace. ``prefix`` (default unique per call, ``eapr-<pid>-<random>-``) starts
    every namespace name, so parallel labs never collide; addresses are the same in every lab.
    ``ports`` are the TCP ports :meth:`expected` covers (default exposure-audit's default TCP
    set). ``line_rate`` (``tc`` syntax, e.g. ``"2mbit"``) puts a token bucket on every
    scanner's link to the router, its line to the Internet: probes beyond that rate queue for
    up to 20 ms and are then dropped, as on a congested or policed path (replies are not
    limited). The default, None, is a lossless veth. The ground truth does not change with
    it: a scan that loses probes is wrong. Raises ``ValueError`` for bad vantages or a bad
    rate.

    The layout, the firewall's rules and :meth:`expected` are plain values available before
    :meth:`start`. Entering (or :meth:`start`) builds the namespaces, loads the firewall,
    starts the perimeter's servers and returns once they all listen; leaving (or :meth:`stop`)
    ends every process in the lab's namespaces (its own children and whatever runs there,
    nothing found by name), deletes the namespaces and the work directory. A failed start
    raises :class:`LabError` and leaves nothing behind.
    """

    network = ipaddress.IPv4Network(PERIMETER_NETWORK)
    router_link_address = "198.51.100.1"
    perimeter_link_address = "198.51.100.2"

    def __init__(
        self,
        vantages: Sequence[str] = ("eu",),
        *,
        control: bool = False,
        prefix: str | None = None,
        ports: Iterable[int] | None = None,
        line_rate: str | None = None,
    ) -> None:
        if isinstance(vantages, str):
            raise ValueError("vantages is a sequence of names, not one string")
        self.vantages: tuple[str, ...] = tuple(vantages)
        if not 1 <= len(self.vantages) <= _MAX_VANTAGES:
            raise ValueError(f"a lab has 1-{_MAX_VANTAGES} vantages, not {len(self.vantages)}")
        if len(set(self.vantages)) != len(self.vantages):
            raise ValueError(f"a vantage is named twice in {self.vantages}")
        for name in self.vantages:
            if not _VANTAGE_NAME.fullmatch(name):
                raise ValueError(f"vantage name {name!r} is not [a-z][a-z0-9]{{0,7}}")
        self.control = control
        if line_rate is not None and not re.fullmatch(r"\d+[kmg]?bit", line_rate):
            raise ValueError(f"line_rate {line_rate!r} is not like 2mbit or 500kbit")
        self.line_rate = line_rate
        self.prefix = prefix or f"{NAMESPACE_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-"
        #: Namespace names.
        self.router = f"{self.prefix}router"
        self.perimeter = f"{self.prefix}perimeter"
        self.scanners: dict[str, str] = {v: f"{self.prefix}scan-{v}" for v in self.vantages}
        self.ctl: str | None = f"{self.prefix}ctl" if control else None
        #: Every address of the perimeter /22 in order, and the ports ground truth covers.
        self.addresses: tuple[str, ...] = tuple(str(a) for a in self.network)
        self.ports: tuple[int, ...] = tuple(sorted(set(ports or default_ports().tcp)))
        #: The lab servers (exposure_audit.lab.catalog.perimeter_lab).
        self.hosts: tuple[LabHost, ...] = perimeter_lab(PERIMETER_NETWORK).hosts
        #: (address, port) where a lab server listens.
        self.listening: frozenset[Key] = frozenset(
            (h.address, p) for h in self.hosts for p in h.ports
        )
        only_from, blocked, dead_forwards = _firewall_layout(self.hosts)
        #: (address, port) -> the one vantage the firewall lets reach it (named ``eu``/``us``).
        self.only_from: dict[Key, str] = only_from
        #: Lab services the firewall drops for every vantage: listening, yet filtered.
        self.blocked: frozenset[Key] = blocked
        #: Pairs the firewall lets through although nothing listens: closed by the host's RST.
        self.dead_forwards: frozenset[Key] = dead_forwards
        #: Seconds the last :meth:`start` and :meth:`stop` took.
        self.up_seconds: float | None = None
        self.down_seconds: float | None = None
        self.workdir: Path | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._popened: list[subprocess.Popen[bytes]] = []
        self._created: list[str] = []

    # -- names and addresses --------------------------------------------------------------

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of the lab: router, perimeter, scanners in vantage order, ctl."""
        return (
            self.router,
            self.perimeter,
            *self.scanners.values(),
            *((self.ctl,) if self.ctl else ()),
        )

    def scanner(self, vantage: str) -> str:
        """The namespace of ``vantage``; ``KeyError`` for an unknown one."""
        return self.scanners[vantage]

    def subnet(self, vantage: str) -> ipaddress.IPv4Network:
        """The documentation /24 linking ``vantage`` to the router."""
        return vantage_subnet(self._index(vantage))

    def scanner_address(self, vantage: str) -> str:
        """The scanner's address on its link to the router: the source of its probes."""
        return str(self.subnet(vantage)[10])

    def gateway_address(self, vantage: str) -> str:
        """The router's address on ``vantage``'s link."""
        return str(self.subnet(vantage)[1])

    @property
    def control_address(self) -> str:
        """The ctl namespace's address that every scanner routes to (a scheduler binds it).
        ``LabError`` when the lab has no control namespace."""
        if not self.control:
            raise LabError("this lab has no control namespace (control=False)")
        return CONTROL_ADDRESS

    def scanner_control_address(self, vantage: str) -> str:
        """``vantage``'s address on its /30 to ctl (a worker binds it); ``LabError`` without a
        control namespace."""
        return str(self._control_link(vantage)[2])

    def _control_side_address(self, vantage: str) -> str:
        return str(self._control_link(vantage)[1])

    def _control_link(self, vantage: str) -> ipaddress.IPv4Network:
        if not self.control:
            raise LabError("this lab has no control namespace (control=False)")
        return ipaddress.IPv4Network(f"10.250.0.{4 * self._index(vantage)}/30")

    def _index(self, vantage: str) -> int:
        try:
            return self.vantages.index(vantage)
        except ValueError:
            raise KeyError(vantage) from None

    # -- ground truth ---------------------------------------------------------------------

    def allowed(self, vantage: str) -> frozenset[Key]:
        """The (address, port) pairs the firewall accepts from ``vantage``: every lab service
        except :attr:`blocked` and those :attr:`only_from` another vantage, plus
        :attr:`dead_forwards`. ``KeyError`` for an unknown vantage."""
        self._index(vantage)
        services = {
            key
            for key in self.listening - self.blocked
            if self.only_from.get(key, vantage) == vantage
        }
        dead = {key for key in self.dead_forwards if self.only_from.get(key, vantage) == vantage}
        return frozenset(services | dead)

    def expected(
        self,
        vantage: str,
        *,
        addresses: Iterable[str] | None = None,
        ports: Iterable[int] | None = None,
    ) -> dict[Key, str]:
        """The state (one of :data:`STATES`) a correct scan from ``vantage`` reports for every
        (address, port) of ``addresses`` (default all 1,024) x ``ports`` (default
        :attr:`ports`), derived from the firewall's rules and the servers' layout."""
        allowed = self.allowed(vantage)
        rejected = ipaddress.IPv4Network(REJECTED_NETWORK)
        truth: dict[Key, str] = {}
        for address in self.addresses if addresses is None else addresses:
            in_rejected = ipaddress.IPv4Address(address) in rejected
            for port in self.ports if ports is None else ports:
                key = (address, port)
                if key in allowed:
                    truth[key] = "open" if key in self.listening else "closed"
                elif in_rejected and port in REJECTED_PORTS:
                    truth[key] = "closed"
                else:
                    truth[key] = "filtered"
        return truth

    def vantage_differences(self) -> dict[Key, dict[str, str]]:
        """(address, port) whose expected state is not the same from every vantage of this
        lab, with the state per vantage (empty for a one-vantage lab)."""
        keys = set(self.only_from)
        truths = {
            v: self.expected(v, addresses=sorted({a for a, _ in keys}), ports=self.ports)
            for v in self.vantages
        }
        differences: dict[Key, dict[str, str]] = {}
        for key in sorted(keys):
            if key[1] not in self.ports:
                continue
            states = {v: truths[v][key] for v in self.vantages}
            if len(set(states.values())) > 1:
                differences[key] = states
        return differences

    # -- running things -------------------------------------------------------------------

    def run(
        self,
        namespace: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        timeout: float = 120.0,
        check: bool = False,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``namespace`` (``ip netns exec``) and wait, capturing text
        output. ``check=True`` raises :class:`LabError` with the output on a non-zero exit;
        ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the child is killed)."""
        command = [_need("ip"), "netns", "exec", namespace, *(os.fspath(a) for a in argv)]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
        )
        if check and result.returncode != 0:
            raise LabError(
                f"{' '.join(command)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def popen(
        self,
        namespace: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = None,
        stderr: int | IO[bytes] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = REPO,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``namespace`` and return at once (the Popen's pid is the
        program's own: ``ip netns exec`` execs it). The process gets SIGKILL if this process
        dies; :meth:`stop` ends it (and anything it started in the lab's namespaces) if it is
        still running. ``cwd`` defaults to the repository root, so ``python -m
        exposure_audit...`` works uninstalled."""
        process = subprocess.Popen(
            [_need("ip"), "netns", "exec", namespace, *(os.fspath(a) for a in argv)],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            # preexec_fn is unsafe only with threads forking at the same time; the lab's
            # callers start processes from one thread.
            preexec_fn=die_with_parent,
        )
        self._popened.append(process)
        return process

    @contextlib.contextmanager
    def netns(self, namespace: str) -> Iterator[None]:
        """In-process: the calling *thread* enters ``namespace`` for the block; sockets made and
        subprocesses started inside live there. Never hand work to other threads, thread pools
        or asyncio executors inside the block."""
        with in_netns(namespace):
            yield

    def nmap(
        self,
        vantage: str,
        flags: Sequence[str] = ("-T4", "--min-rate", "5000"),
        *,
        targets: Sequence[str] | None = None,
        ports: Iterable[int] | None = None,
        timeout: float = 900.0,
    ) -> NmapRun:
        """``nmap -sT -Pn -n -oX - FLAGS -p PORTS -- TARGETS`` from ``vantage``'s namespace.
        ``targets`` default to the whole perimeter /22 (as one CIDR), ``ports`` to
        :attr:`ports`. ``-n`` is always passed: without it nmap loses ~13 s per run to reverse
        DNS against a resolver the namespace cannot reach. :class:`LabError` when nmap fails
        or its XML cannot be read; ``subprocess.TimeoutExpired`` after ``timeout``."""
        port_list = ",".join(str(p) for p in sorted(set(self.ports if ports is None else ports)))
        argv = (
            _need("nmap"), "-sT", "-Pn", "-n", "-oX", "-", *flags, "-p", port_list,
            "--", *(targets if targets is not None else (str(self.network),)),
        )  # fmt: skip
        # Children's rusage grows by what each reaped child used: nmap's (ip execs it), as
        # long as no other thread reaps children meanwhile.
        cpu_before = _children_cpu()
        began = time.perf_counter()
        result = self.run(self.scanner(vantage), argv, timeout=timeout)
        seconds = time.perf_counter() - began
        cpu_seconds = _children_cpu() - cpu_before
        if result.returncode != 0:
            raise LabError(f"nmap exited {result.returncode}: {result.stderr.strip()}")
        try:
            states = parse_nmap_states(result.stdout)
        except (ParseError, ValueError) as exc:
            raise LabError(f"nmap's XML could not be read: {exc}") from exc
        return NmapRun(argv, seconds, cpu_seconds, result.returncode, states, result.stderr)

    def log(self) -> str:
        """What the perimeter's lab servers logged on standard error."""
        if self.workdir is None:
            return ""
        path = self.workdir / "perimeter.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive_pids(self) -> list[int]:
        """PIDs of live processes in the lab's namespaces (its servers, whatever
        :meth:`popen` or :meth:`run` started there)."""
        pids: list[int] = []
        for namespace in self._created:
            pids += [p for p in _namespace_pids(namespace) if _alive(p)]
        return pids

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Build the lab; see the class. Raises :class:`LabError` (lab torn down)."""
        if self.workdir is not None:
            raise LabError("the lab is already running")
        problems = missing_prerequisites()
        if problems:
            raise LabError("the perimeter lab cannot run here: " + "; ".join(problems))
        began = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}lab-"))
        try:
            self._create_namespaces()
            # The servers' Python start-up is the slowest step: begin it as soon as their
            # namespace owns the /22, and wire up the rest meanwhile.
            self._configure(self.perimeter, self._perimeter_commands())
            self._start_servers()
            self._configure(self.router, self._router_commands())
            for vantage in self.vantages:
                self._configure(self.scanner(vantage), self._scanner_commands(vantage))
            if self.ctl is not None:
                self._configure(self.ctl, self._ctl_commands())
            with in_netns(self.router):
                Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
            self.run(self.router, ["nft", "-f", "-"], input=self.ruleset(), check=True, timeout=10)
            if self.line_rate is not None:
                # tbf, not netem: these kernels have no sch_netem (docs/reference/lab.md,
                # section 1), so loss comes from a queue that overflows, the way it does on a
                # real line. On the scanner's side, before the firewall: most probes never get
                # past it.
                tbf = ["qdisc", "add", "dev", "wan0", "root", "tbf", "rate", self.line_rate]
                tbf += ["burst", "16kb", "latency", "20ms"]
                for namespace in self.scanners.values():
                    self.run(namespace, [_need("tc"), *tbf], check=True, timeout=10)
            self._await_servers()
        except BaseException as exc:
            log = self.log()
            try:
                self.stop()
            except LabError as teardown:  # keep the first error; add the second to it
                log += f"\n{teardown}"
            if isinstance(exc, LabError | OSError | subprocess.SubprocessError):
                raise LabError(f"the perimeter lab did not start: {exc}\n{log}") from exc
            raise
        self.up_seconds = time.monotonic() - began

    def stop(self) -> None:
        """End every process in the lab's namespaces, delete them and the work directory.
        Idempotent; :class:`LabError` if a process or namespace could not be removed."""
        began = time.monotonic()
        problems: list[str] = []
        server = self._server
        if server is not None and server.stdin is not None:
            # The lab servers stop cleanly when their standard input closes.
            with contextlib.suppress(OSError):
                server.stdin.close()
        own = [p for p in (server, *self._popened) if p is not None]
        for process in own:
            if process.poll() is None and process is not server:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for process in own:
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                try:
                    process.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    problems.append(f"pid {process.pid} survived SIGKILL")
            if process.stdout is not None:
                with contextlib.suppress(OSError):
                    process.stdout.close()
        self._server, self._popened = None, []
        # What our children left behind in the namespaces (a daemon's forked workers): found
        # by namespace membership, which only the lab's own processes have.
        for namespace in self._created:
            problems += _end_processes_in(namespace)
        # Only after the processes are gone: a namespace still holding one would live on.
        ip = which("ip")
        for namespace in reversed(self._created):
            if ip is None:
                break
            gone = subprocess.run(
                [ip, "netns", "del", namespace], capture_output=True, text=True, check=False
            )
            if gone.returncode != 0 and namespace in list_namespaces():
                problems.append(f"ip netns del {namespace}: {gone.stderr.strip()}")
        self._created = []
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self.down_seconds = time.monotonic() - began
        if problems:
            raise LabError("the perimeter lab was not fully torn down: " + "; ".join(problems))

    # -- building -------------------------------------------------------------------------

    def ruleset(self) -> str:
        """The router's nftables ruleset (``nft -f`` syntax); see the module docstring."""
        sets: list[str] = []
        accepts: list[str] = []
        for index, vantage in enumerate(self.vantages):
            elements = ", ".join(f"{a} . {p}" for a, p in sorted(self.allowed(vantage)))
            sets.append(
                f"    set allow_{vantage} {{\n"
                "        type ipv4_addr . inet_service\n"
                + (f"        elements = {{ {elements} }}\n" if elements else "")
                + "    }"
            )
            accepts.append(
                f'        iifname "rv{index}" ip saddr {self.subnet(vantage)} '
                f"ip daddr . tcp dport @allow_{vantage} accept"
            )
        rejected = ", ".join(f"{REJECTED_NETWORK} . {p}" for p in REJECTED_PORTS)
        set_text = "\n".join(sets)
        accept_text = "\n".join(accepts)
        return f"""flush ruleset
table inet perimeter {{
{set_text}
    set rejected {{
        type ipv4_addr . inet_service
        flags interval
        elements = {{ {rejected} }}
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        # Replies from the perimeter. Stateless on purpose: a connect scan sees the same from a
        # stateful firewall, and 30,000 probes need no conntrack table.
        iifname "rp0" ip saddr {self.network} accept
{accept_text}
        ip daddr . tcp dport @rejected reject with tcp reset
        # policy drop: everything else is filtered
    }}
}}
"""

    def _ip(self, *args: str, batch: str | None = None) -> None:
        argv = [_need("ip"), *args]
        if batch is not None:
            argv += ["-batch", "-"]
        result = subprocess.run(
            argv, input=batch, capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode != 0:
            raise LabError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")

    def _create_namespaces(self) -> None:
        for namespace in self.namespaces:
            self._ip("netns", "add", namespace)
            self._created.append(namespace)
        # veth ends are born inside their namespaces: no name ever exists in the root one.
        links = [f"link add rp0 netns {self.router} type veth peer name pr0 netns {self.perimeter}"]
        for index, vantage in enumerate(self.vantages):
            scanner = self.scanner(vantage)
            links.append(
                f"link add wan0 netns {scanner} type veth peer name rv{index} netns {self.router}"
            )
            if self.ctl is not None:
                links.append(
                    f"link add ctl0 netns {scanner} type veth peer name cs{index} netns {self.ctl}"
                )
        self._ip(batch="\n".join(links) + "\n")

    def _configure(self, namespace: str, commands: list[str]) -> None:
        self._ip("-n", namespace, batch="\n".join(["link set lo up", *commands]) + "\n")

    def _perimeter_commands(self) -> list[str]:
        return [
            f"addr add {self.perimeter_link_address}/24 dev pr0",
            "link set pr0 up",
            # AnyIP: the whole /22 is local; servers bind specific addresses in it.
            f"route add local {self.network} dev lo",
            f"route add default via {self.router_link_address}",
        ]

    def _router_commands(self) -> list[str]:
        commands = [
            f"addr add {self.router_link_address}/24 dev rp0",
            "link set rp0 up",
            f"route add {self.network} via {self.perimeter_link_address}",
        ]
        for index, vantage in enumerate(self.vantages):
            prefix = self.subnet(vantage).prefixlen
            commands += [
                f"addr add {self.gateway_address(vantage)}/{prefix} dev rv{index}",
                f"link set rv{index} up",
            ]
        return commands  # no default route: nothing but the lab's nets is reachable

    def _scanner_commands(self, vantage: str) -> list[str]:
        commands = [
            f"addr add {self.scanner_address(vantage)}/{self.subnet(vantage).prefixlen} dev wan0",
            "link set wan0 up",
            # The perimeter only; no default route.
            f"route add {self.network} via {self.gateway_address(vantage)}",
        ]
        if self.control:
            commands += [
                f"addr add {self.scanner_control_address(vantage)}/30 dev ctl0",
                "link set ctl0 up",
                f"route add {CONTROL_ADDRESS}/32 via {self._control_side_address(vantage)}",
            ]
        return commands

    def _ctl_commands(self) -> list[str]:
        commands = [f"addr add {CONTROL_ADDRESS}/32 dev lo"]
        for index, vantage in enumerate(self.vantages):
            commands += [
                f"addr add {self._control_side_address(vantage)}/30 dev cs{index}",
                f"link set cs{index} up",
            ]
        return commands  # no route to the perimeter

    def _start_servers(self) -> None:
        assert self.workdir is not None
        argv = [_need("ip"), "netns", "exec", self.perimeter, sys.executable, "-m"]
        argv += ["exposure_audit.lab", "perimeter", "--network", str(self.network)]
        with (self.workdir / "perimeter.log").open("wb") as log:
            self._server = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                preexec_fn=die_with_parent,
                cwd=REPO,
            )

    def _await_servers(self) -> None:
        """Wait for the servers' description and ``ready``; check that every service the
        layout declares listens (the ground truth depends on it)."""
        assert self._server is not None
        lines = _read_until(self._server, "ready", time.monotonic() + _START_TIMEOUT)
        description = json.loads(lines[0])
        listening = {(h["address"], p) for h in description["hosts"] for p in h["ports"]}
        if description["skipped"] or listening != self.listening:
            raise LabError(
                "the perimeter's servers do not listen where the layout says: "
                f"missing {sorted(self.listening - listening)}, skipped {description['skipped']}"
            )


def parse_nmap_states(xml_text: str) -> dict[Key, str]:
    """Every (address, TCP port) state in nmap's ``-oX`` output, including ports nmap folds
    into ``<extraports>`` (read from ``<extrareasons ports=...>``; a lone fold without that
    attribute takes the scanned ports not listed otherwise). Hosts nmap did not report (a
    ``--host-timeout`` expired) are absent. ``ValueError`` when a fold cannot be resolved."""
    root = ElementTree.fromstring(xml_text)
    scanned = _expand_ports(
        ",".join(s.get("services", "") for s in root.iter("scaninfo") if s.get("protocol") == "tcp")
    )
    states: dict[Key, str] = {}
    for host in root.iter("host"):
        address = next(
            (a.get("addr", "") for a in host.iter("address") if a.get("addrtype") == "ipv4"), ""
        )
        if not address:
            continue
        listed: set[int] = set()
        for port in host.iter("port"):
            if port.get("protocol") != "tcp":
                continue
            state = port.find("state")
            number = int(port.get("portid", "0"))
            listed.add(number)
            states[(address, number)] = state.get("state", "") if state is not None else ""
        unresolved: list[str] = []
        for extra in host.iter("extraports"):
            folded = extra.get("state", "")
            reasons = [r for r in extra.iter("extrareasons") if r.get("proto", "tcp") == "tcp"]
            if reasons and all(r.get("ports") for r in reasons):
                for reason in reasons:
                    for number in _expand_ports(reason.get("ports", "")):
                        listed.add(number)
                        states[(address, number)] = folded
            else:
                unresolved.append(folded)
        if len(unresolved) > 1:
            raise ValueError(f"{address}: cannot tell which ports are {' or '.join(unresolved)}")
        if unresolved:
            for number in scanned - listed:
                states[(address, number)] = unresolved[0]
    return states


def compare(expected: Mapping[Key, str], observed: Mapping[Key, str]) -> dict[Key, tuple[str, str]]:
    """Where ``observed`` differs from ``expected``: (expected state, observed state), with
    ``"missing"`` for a pair the scan did not report. Pairs only in ``observed`` count too
    (expected ``"unexpected"``)."""
    differences = {
        key: (state, observed.get(key, "missing"))
        for key, state in expected.items()
        if observed.get(key) != state
    }
    for key in observed.keys() - expected.keys():
        differences[key] = ("unexpected", observed[key])
    return differences


# -- the firewall's layout ------------------------------------------------------------------


def _firewall_layout(
    hosts: Sequence[LabHost],
) -> tuple[dict[Key, str], frozenset[Key], frozenset[Key]]:
    """(only_from, blocked, dead_forwards) chosen from the servers' layout, deterministically:

    - only_from: the first ``dsm72`` host's 5001 and the first ``ssh`` host's 22 are allowed
      from ``eu`` only, the first ``smb`` host's 445 from ``us`` only, and a forward to an
      empty address's 445 (closed there) from ``us`` only;
    - blocked: the second ``smb`` host's 445 listens but the firewall drops it everywhere;
    - dead_forwards: 8080 of every ``web`` host, 5000 and 5001 of the first empty address from
      index 512 on, 22 of the first from 768 on, and that 445 above: allowed, nothing listens.
    """

    def first(kind: str, nth: int = 0) -> LabHost:
        return [h for h in hosts if h.name.split("-", 1)[1] == kind][nth]

    busy = {h.address for h in hosts}
    network = list(ipaddress.IPv4Network(PERIMETER_NETWORK))

    def empty_from(index: int) -> str:
        return next(str(a) for a in network[index:] if str(a) not in busy)

    us_dead = (empty_from(256), 445)
    only_from = {
        (first("dsm72").address, 5001): "eu",
        (first("ssh").address, 22): "eu",
        (first("smb").address, 445): "us",
        us_dead: "us",
    }
    blocked = frozenset({(first("smb", 1).address, 445)})
    dead = {(h.address, 8080) for h in hosts if h.name.endswith("-web")}
    dead |= {(empty_from(512), 5000), (empty_from(512), 5001), (empty_from(768), 22), us_dead}
    return only_from, blocked, frozenset(dead)


# -- helpers ----------------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _expand_ports(text: str) -> set[int]:
    ports: set[int] = set()
    for item in filter(None, text.split(",")):
        low, _, high = item.partition("-")
        ports.update(range(int(low), int(high or low) + 1))
    return ports


def missing_prerequisites() -> list[str]:
    """Why this machine cannot run the lab (empty when it can): not root, or a binary from
    :data:`REQUIRED_BINARIES` missing."""
    return nslib.missing_prerequisites(REQUIRED_BINARIES)


def _need(binary: str) -> str:
    path = which(binary)
    if path is None:
        raise LabError(f"{binary} is not installed (run .ci/install)")
    return path


def _namespace_pids(namespace: str) -> list[int]:
    ip = which("ip")
    if ip is None:
        return []
    listing = subprocess.run(
        [ip, "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    return [int(p) for p in listing.stdout.split() if p.isdigit()]


def _alive(pid: int) -> bool:
    # A zombie counts as dead: it holds nothing, and on these machines PID 1 reaps orphans
    # only every 1.5-2 s (docs/reference/lab.md, section 1), which a plain existence check
    # would wait out.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    match = re.search(r"^State:\s+(\w)", status, re.MULTILINE)
    return match is not None and match.group(1) != "Z"


def _end_processes_in(namespace: str) -> list[str]:
    """SIGTERM, then SIGKILL, every process living in ``namespace``; the ones that survive."""
    pids = [p for p in _namespace_pids(namespace) if _alive(p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + _STOP_TIMEOUT
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            if pids:
                time.sleep(0.01)
        if not pids:
            return []
    return [f"pid {p} in {namespace} survived SIGKILL" for p in pids]


def _read_until(process: subprocess.Popen[bytes], wanted: str, deadline: float) -> list[str]:
    """The lines ``process`` writes to stdout before a line equal to ``wanted``;
    :class:`LabError` if it exits or ``deadline`` (time.monotonic) passes first."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError("the perimeter's servers were not ready in time")
            if not selector.select(left):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise LabError(f"the perimeter's servers exited with {process.wait(1)}")
            buffer += chunk
            lines = buffer.decode(errors="replace").splitlines()
            if wanted in lines:
                return lines[: lines.index(wanted)]
