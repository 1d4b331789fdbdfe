"""The UPnP lab: three network namespaces with real kernel NAT, Debian's miniupnpd and upnpc.

::

    ns <prefix>scanner            ns <prefix>router                       ns <prefix>nas
    ws0 203.0.113.10/24 --veth-- rwan0 203.0.113.1/24
    STUN responder :3478/udp      rlan0 192.168.50.1/24 --veth-- nas0 192.168.50.10/24 (gw .1)
    "the Internet"                nftables NAT + forward filter,   DSM 4.3-3810 (exposure_audit's
                                  miniupnpd (IGD http :2189,       own lab, ``nas``): http 5000,
                                  SSDP :1900, NAT-PMP/PCP :5351)   https 5001; 6690 not served

Safety: both veth pairs are created directly inside their namespaces, nothing connects to the
root namespace, the scanner has no default route and the router's default route points at the
scanner, which does not forward. No lab packet can reach a host interface. 203.0.113.0/24
(TEST-NET-3) is the "Internet", 192.168.50.0/24 the LAN, both only inside the namespaces.

At start the NAS maps, with the real ``upnpc``, external TCP 5000 and 5001 to its DSM
("DSM 5000", "DSM 5001") and 6690 to its port 6690 ("Drive"), which nothing serves and which
the upstream (a raw-priority nft table on the router's WAN side standing in for the ISP) drops:
a mapping that is "mapped but filtered upstream" from the outside.

Modes (:data:`MODES`):

``lan-only``
    miniupnpd listens on the LAN only (SSDP and IGD unreachable from the WAN).
``wan-exposed``
    miniupnpd also listens on the WAN, and the WAN firewall accepts 1900/udp, 5351/udp and
    2189/tcp: SSDP answers the scanner and the mapping table is readable from outside.
    ``secure_mode=yes`` and the permissions allow only LAN clients, so the WAN cannot add
    mappings.
``wan-insecure``
    like ``wan-exposed`` with ``secure_mode=no`` and "allow everything" permissions: the WAN
    could add mappings (a scanner must still never try).

Everything else arriving on the WAN is dropped (except ICMP echo and replies to the router's
own traffic); forwarding from the WAN happens only through miniupnpd's chains.

Facts and traps behind the recipe: docs/reference/lab.md (the STUN responder, the
``upnpc -u`` URL that skips upnpc's reserved-address check, Debian's broken nft_init.sh).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

from tests import nslib
from tests.nslib import die_with_parent, in_netns, list_namespaces, which

__all__ = [
    "MODES",
    "NAMESPACE_PREFIX",
    "REQUIRED_BINARIES",
    "LabError",
    "Mapping",
    "UpnpLab",
    "missing_prerequisites",
    "sweep_stale_namespaces",
]

#: The router modes, see the module docstring.
MODES = ("lan-only", "wan-exposed", "wan-insecure")

#: Every lab namespace is called ``eaup-<pid of the creating process>-<random>-<role>``.
NAMESPACE_PREFIX = "eaup-"

#: Executables the lab runs (``ip`` from iproute2, ``nft`` from nftables, ``miniupnpd`` from
#: miniupnpd + miniupnpd-nftables, ``upnpc`` from miniupnpc; ``.ci/install`` installs them).
REQUIRED_BINARIES = ("ip", "nft", "miniupnpd", "upnpc")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STUN_RESPONDER = HERE / "stun_responder.py"
PROBE = HERE / "probe.py"


_MULTICAST = "224.0.0.0/4"  # IPv4 multicast (RFC 5771), routed to the lab veth only
_START_TIMEOUT = 15.0  # miniupnpd gives up on STUN after 3 x 3 s: fail after it, not before
_STOP_TIMEOUT = 3.0

_MAPPING_LINE = re.compile(
    r"^\s*\d+\s+(?P<protocol>TCP|UDP)\s+(?P<external>\d+)->(?P<client>[0-9.]+):(?P<internal>\d+)"
    r"\s+'(?P<description>.*)'\s+'(?P<remote>[^']*)'\s+(?P<lease>\d+)\s*$"
)


class LabError(RuntimeError):
    """The lab could not be built or queried; the message carries the failing command's
    output and the daemons' logs."""


class Mapping(NamedTuple):
    """One row of the router's port-mapping table, as ``upnpc -l`` lists it (the lease time,
    which counts down, and the always-empty remote host are left out so two readings compare
    equal when nothing changed)."""

    external_port: int
    protocol: str
    internal_client: str
    internal_port: int
    description: str


def sweep_stale_namespaces() -> list[str]:
    """Delete what a test process that died without tearing down left: lab namespaces (names
    starting with :data:`NAMESPACE_PREFIX`) whose creating PID no longer exists and that hold
    no process, and such a process's lab work directories. Its daemons are already gone: they
    get SIGKILL when their parent dies. Returns the namespaces deleted; touches nothing else."""
    pattern = re.compile(re.escape(NAMESPACE_PREFIX) + r"(\d+)-[0-9a-f]+-(\w+)")

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
    listing = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        name = line.split(" ", 1)[0]
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


class UpnpLab:
    """One UPnP lab in ``mode`` (see :data:`MODES`); a context manager.

    Entering (or :meth:`start`) builds the namespaces, loads the router's nftables ruleset,
    starts the STUN responder, the NAS's DSM site and miniupnpd, and makes the NAS's three
    mappings with ``upnpc``; it returns once all of that answers (about half a second).
    Leaving (or :meth:`stop`) kills the lab's own processes (its :class:`subprocess.Popen`
    objects, nothing found by name), deletes the namespaces and the work directory. A failed
    start raises :class:`LabError` with the logs and leaves nothing behind.

    ``prefix`` (default: unique per call, ``eaup-<pid>-<random>-``) starts every namespace
    name, so parallel labs (pytest-xdist) never collide; the addresses are the same in every
    lab. ``upstream_blocked`` are TCP ports the "ISP" drops before they reach the router.
    """

    scanner_address = "203.0.113.10"
    wan_address = "203.0.113.1"
    lan_address = "192.168.50.1"
    nas_address = "192.168.50.10"
    igd_port = 2189
    stun_port = 3478
    #: What the NAS asks the router for: (external port, protocol, internal port, description).
    nas_mappings: tuple[tuple[int, str, int, str], ...] = (
        (5000, "TCP", 5000, "DSM 5000"),
        (5001, "TCP", 5001, "DSM 5001"),
        (6690, "TCP", 6690, "Drive"),
    )

    def __init__(
        self,
        mode: str = "lan-only",
        *,
        prefix: str | None = None,
        upstream_blocked: Sequence[int] = (6690,),
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.mode = mode
        self.prefix = prefix or f"{NAMESPACE_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-"
        self.scanner = f"{self.prefix}scanner"
        self.router = f"{self.prefix}router"
        self.nas = f"{self.prefix}nas"
        self.upstream_blocked = tuple(upstream_blocked)
        #: Seconds the last :meth:`start` and :meth:`stop` took.
        self.up_seconds: float | None = None
        self.down_seconds: float | None = None
        self.workdir: Path | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._created: list[str] = []
        self._log_files: dict[str, Path] = {}

    # -- addresses ---------------------------------------------------------------------

    @property
    def namespaces(self) -> tuple[str, str, str]:
        """(scanner, router, nas) namespace names."""
        return (self.scanner, self.router, self.nas)

    @property
    def igd_url(self) -> str:
        """The IGD description URL on the LAN (what the NAS and ``upnp-inventory`` use)."""
        return f"http://{self.lan_address}:{self.igd_port}/rootDesc.xml"

    @property
    def wan_igd_url(self) -> str:
        """The same description on the WAN address: answers only in the ``wan-*`` modes."""
        return f"http://{self.wan_address}:{self.igd_port}/rootDesc.xml"

    @property
    def upnp_on_wan(self) -> bool:
        return self.mode != "lan-only"

    # -- running things ----------------------------------------------------------------

    def run(
        self,
        namespace: str,
        *argv: str | os.PathLike[str],
        timeout: float = 60.0,
        check: bool = False,
        input: str | None = None,
        env: dict[str, str] | None = None,
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
            env=env,
            cwd=cwd,
            check=False,
        )
        if check and result.returncode != 0:
            raise LabError(
                f"{' '.join(command)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    @contextlib.contextmanager
    def netns(self, namespace: str) -> Iterator[None]:
        """In-process: the calling *thread* enters ``namespace`` for the block; sockets made
        and subprocesses started inside live there. Never hand work to other threads, thread
        pools or asyncio executors inside the block."""
        with in_netns(namespace):
            yield

    def upnpc(self, *args: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
        """``upnpc -u <LAN IGD URL> ARGS`` in the NAS namespace (``-u`` skips discovery and
        upnpc 2.2.4's "reserved external address" verdict, docs/reference/lab.md gotcha 2)."""
        return self.run(self.nas, "upnpc", "-u", self.igd_url, *args, timeout=timeout)

    def mappings(self) -> tuple[Mapping, ...]:
        """The router's port-mapping table as the NAS reads it (``upnpc -l``), sorted by
        (protocol, external port). :class:`LabError` if the IGD does not answer."""
        result = self.upnpc("-l")
        if result.returncode != 0 or "GetGenericPortMappingEntry" not in result.stdout:
            raise LabError(f"upnpc -l exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return parse_upnpc_list(result.stdout)

    def log(self, name: str) -> str:
        """What the lab process ``name`` (``stun``, ``nas``, ``miniupnpd``) has logged."""
        path = self._log_files.get(name)
        if path is None or not path.exists():
            return ""
        return path.read_text(errors="replace")

    def alive_pids(self) -> list[int]:
        """PIDs of the lab's own processes that are still running."""
        return [p.pid for p in self.processes.values() if p.poll() is None]

    # -- life cycle --------------------------------------------------------------------

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
            raise LabError("the UPnP lab cannot run here: " + "; ".join(problems))
        began = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}lab-"))
        try:
            self._build_network()
            self._load_ruleset()
            self._start_services()
            self._start_miniupnpd()
            self._map_nas_ports()
        except BaseException as exc:
            logs = self._all_logs()
            try:
                self.stop()
            except LabError as teardown:  # keep the first error; add the second to it
                logs += f"\n{teardown}"
            if isinstance(exc, LabError | OSError | subprocess.SubprocessError):
                raise LabError(f"the {self.mode} UPnP lab did not start: {exc}\n{logs}") from exc
            raise
        self.up_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Kill the lab's processes, delete its namespaces and work directory. Idempotent;
        :class:`LabError` if a process or namespace could not be removed."""
        began = time.monotonic()
        problems: list[str] = []
        # The NAS lab stops by itself when its standard input closes; the others on SIGTERM.
        for process in self.processes.values():
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                try:
                    process.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    problems.append(f"{name} (pid {process.pid}) survived SIGKILL")
            if process.stdout is not None:
                process.stdout.close()
        self.processes = {}
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
        self._log_files = {}
        self.down_seconds = time.monotonic() - began
        if problems:
            raise LabError("the UPnP lab was not fully torn down: " + "; ".join(problems))

    # -- building ----------------------------------------------------------------------

    def _ip(self, *args: str) -> None:
        _check([_need("ip"), *args])

    def _build_network(self) -> None:
        for namespace in self.namespaces:
            self._ip("netns", "add", namespace)
            self._created.append(namespace)
            self._ip("-n", namespace, "link", "set", "lo", "up")
        # veth ends are born inside their namespaces: no name ever exists in the root one.
        self._ip(
            "link", "add", "ws0", "netns", self.scanner,
            "type", "veth", "peer", "name", "rwan0", "netns", self.router,
        )  # fmt: skip
        self._ip(
            "link", "add", "rlan0", "netns", self.router,
            "type", "veth", "peer", "name", "nas0", "netns", self.nas,
        )  # fmt: skip
        for namespace, device, address in (
            (self.scanner, "ws0", self.scanner_address),
            (self.router, "rwan0", self.wan_address),
            (self.router, "rlan0", self.lan_address),
            (self.nas, "nas0", self.nas_address),
        ):
            self._ip("-n", namespace, "addr", "add", f"{address}/24", "dev", device)
            self._ip("-n", namespace, "link", "set", device, "up")
        self._ip("-n", self.nas, "route", "add", "default", "via", self.lan_address)
        # The router's "ISP" is the scanner, which does not forward: a dead end.
        self._ip("-n", self.router, "route", "add", "default", "via", self.scanner_address)
        # A plain socket's multicast send needs a route (docs/reference/lab.md gotcha 14). The
        # multicast block (SSDP's group is in it) goes to the namespace's own veth: datagrams
        # to it never leave the lab.
        self._ip("-n", self.scanner, "route", "add", _MULTICAST, "dev", "ws0")
        with in_netns(self.router):
            Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")

    def _load_ruleset(self) -> None:
        wan_upnp = (
            f'iifname "rwan0" udp dport {{ 1900, 5351 }} accept\n'
            f'        iifname "rwan0" tcp dport {self.igd_port} accept'
            if self.upnp_on_wan
            else "# lan-only: UPnP is not reachable from the WAN"
        )
        blocked = ", ".join(str(p) for p in self.upstream_blocked)
        upstream = (
            f"""
# The upstream (ISP) filter: drops these ports before the router sees them, so a mapping of
# them is "mapped but filtered upstream" from the outside.
table inet upstream {{
    chain prerouting {{
        type filter hook prerouting priority raw; policy accept;
        iifname "rwan0" tcp dport {{ {blocked} }} drop
    }}
}}"""
            if self.upstream_blocked
            else ""
        )
        # The chain names are miniupnpd 2.3.1's nftables defaults; Debian's nft_init.sh that
        # would create them is broken (docs/reference/lab.md gotcha 3), so the lab loads its own.
        ruleset = f"""flush ruleset
table inet filter {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iifname "rwan0" ct state established,related accept
        iifname "rwan0" icmp type echo-request accept
        {wan_upnp}
        iifname "rwan0" drop
    }}
    chain forward {{
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "rlan0" oifname "rwan0" accept
        jump miniupnpd
    }}
    chain miniupnpd {{
    }}
    chain prerouting {{
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }}
    chain postrouting {{
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "rwan0" masquerade
    }}
    chain prerouting_miniupnpd {{
    }}
    chain postrouting_miniupnpd {{
    }}
}}{upstream}
"""
        self.run(self.router, "nft", "-f", "-", input=ruleset, check=True, timeout=10)

    def _spawn(
        self, name: str, namespace: str, argv: Sequence[str], *, pipes: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``namespace`` as lab process ``name``; stderr (and stdout unless
        ``pipes``) go to ``<workdir>/<name>.log``. ``ip netns exec`` execs the command, so the
        Popen's pid is the daemon's own."""
        assert self.workdir is not None
        log_path = self.workdir / f"{name}.log"
        self._log_files[name] = log_path
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [_need("ip"), "netns", "exec", namespace, *argv],
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log,
                stderr=log,
                # preexec_fn is unsafe only with threads forking at the same time; none do.
                preexec_fn=die_with_parent,
                # The repository root: ``python -m exposure_audit...`` works even uninstalled.
                cwd=REPO,
            )
        self.processes[name] = process
        return process

    def _start_services(self) -> None:
        stun = self._spawn(
            "stun",
            self.scanner,
            [sys.executable, "-u", str(STUN_RESPONDER), self.scanner_address, str(self.stun_port)],
            pipes=True,
        )
        nas = self._spawn(
            "nas",
            self.nas,
            [sys.executable, "-m", "exposure_audit.lab", "nas", "--address", self.nas_address],
            pipes=True,
        )
        # Both start in parallel (Python start-up dominates); the STUN responder must be up
        # before miniupnpd starts, or miniupnpd exits after 9 s of retries.
        deadline = time.monotonic() + _START_TIMEOUT
        _await_line(stun, "ready", deadline, "the STUN responder")
        _await_line(nas, "ready", deadline, "the NAS's DSM site")

    def _miniupnpd_conf(self) -> str:
        assert self.workdir is not None
        listening = ["listening_ip=rlan0"]
        secure = "yes"
        permissions = [
            f"allow 1024-65535 {self.nas_address.rsplit('.', 1)[0]}.0/24 1024-65535",
            "deny 0-65535 0.0.0.0/0 0-65535",
        ]
        if self.upnp_on_wan:
            # Works only because miniupnpd sees 203.0.113.1 as "reserved"; on a public address
            # stock miniupnpd refuses to listen on the WAN (docs/reference/lab.md section 5.5,
            # realism caveat).
            listening.append("listening_ip=rwan0")
        if self.mode == "wan-insecure":
            secure = "no"
            permissions = ["allow 0-65535 0.0.0.0/0 0-65535"]
        lines = [
            "ext_ifname=rwan0",
            # 203.0.113.1 is "reserved" to miniupnpd: only a STUN answer re-enables forwarding.
            "ext_perform_stun=yes",
            f"ext_stun_host={self.scanner_address}",
            f"ext_stun_port={self.stun_port}",
            *listening,
            # Pinned: OpenWrt's default 5000 is DSM's port.
            f"http_port={self.igd_port}",
            "enable_natpmp=yes",
            "enable_upnp=yes",
            "ipv6_disable=yes",
            f"secure_mode={secure}",
            "system_uptime=no",
            "notify_interval=30",
            f"uuid={uuid.uuid4()}",
            "friendly_name=Lab IGD router",
            f"lease_file={self.workdir / 'upnp.leases'}",
            *permissions,
        ]
        return "\n".join(lines) + "\n"

    def _start_miniupnpd(self) -> None:
        assert self.workdir is not None
        conf = self.workdir / "miniupnpd.conf"
        conf.write_text(self._miniupnpd_conf())
        # -d: foreground, log to stderr (there is no syslog); -P: the lab's own pidfile.
        process = self._spawn(
            "miniupnpd",
            self.router,
            [_need("miniupnpd"), "-d", "-f", str(conf), "-P", str(self.workdir / "miniupnpd.pid")],
        )
        deadline = time.monotonic() + _START_TIMEOUT
        ready = "Listening for NAT-PMP/PCP traffic"
        while True:
            log = self.log("miniupnpd")
            if "Port forwarding is now enabled" in log and ready in log:
                return
            if process.poll() is not None:
                raise LabError(f"miniupnpd exited with {process.returncode}")
            if "Port forwarding is impossible" in log and "STUN" not in log:
                raise LabError("miniupnpd disabled port forwarding")
            if time.monotonic() > deadline:
                raise LabError(f"miniupnpd was not ready within {_START_TIMEOUT:.0f} s")
            time.sleep(0.01)

    def _map_nas_ports(self) -> None:
        # One after another: the table's order then never depends on timing.
        for external, protocol, internal, description in self.nas_mappings:
            result = self.upnpc(
                "-e", description, "-a", self.nas_address, str(internal), str(external), protocol
            )
            if result.returncode != 0 or "is redirected to internal" not in result.stdout:
                raise LabError(
                    f"upnpc could not map {external}/{protocol}:\n{result.stdout}{result.stderr}"
                )

    def _all_logs(self) -> str:
        parts = []
        for name in self._log_files:
            parts.append(f"--- {name}.log ---\n{self.log(name)}")
        return "\n".join(parts)


def parse_upnpc_list(output: str) -> tuple[Mapping, ...]:
    """The mappings in ``upnpc -l`` output, sorted by (protocol, external port)::

    i protocol exPort->inAddr:inPort description remoteHost leaseTime
    0 TCP  5000->192.168.50.10:5000  'DSM 5000' '' 604800
    """
    rows = []
    for line in output.splitlines():
        match = _MAPPING_LINE.match(line)
        if match:
            rows.append(
                Mapping(
                    int(match["external"]),
                    match["protocol"],
                    match["client"],
                    int(match["internal"]),
                    match["description"],
                )
            )
    return tuple(sorted(rows, key=lambda m: (m.protocol, m.external_port)))


# -- helpers -----------------------------------------------------------------------------


def missing_prerequisites() -> list[str]:
    """Why this machine cannot run the lab (empty when it can): not root, or a binary from
    :data:`REQUIRED_BINARIES` missing."""
    return nslib.missing_prerequisites(REQUIRED_BINARIES)


def _need(binary: str) -> str:
    path = which(binary)
    if path is None:
        raise LabError(f"{binary} is not installed (run .ci/install)")
    return path


def _check(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")


def _await_line(process: subprocess.Popen[bytes], wanted: str, deadline: float, what: str) -> None:
    """Read ``process``'s stdout until a line equal to ``wanted``; LabError if it exits or
    ``deadline`` (time.monotonic) passes first."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"{what} was not ready in time")
            if not selector.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise LabError(f"{what} exited with {process.wait(1)} before it was ready")
            buffer += chunk
            if wanted.encode() in buffer.splitlines():
                return
