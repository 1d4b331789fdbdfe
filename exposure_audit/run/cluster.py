"""Scale-out on a Dask cluster: one run's targets in blocks, each block audited on a worker.

:class:`ClusterAudit` is the client side of ``exposure-audit scan --cluster ADDRESS``. It
resolves the names once, here, splits the addresses into blocks of ``block_size`` (one address
family each, in plan order) and submits every block to the Dask scheduler as one task:
:func:`audit_block`, a plain function a worker runs with its own real nmap (the same
:class:`~exposure_audit.run.audit.Auditor` a single machine runs, over already-resolved targets).
Each block comes back as a :class:`~exposure_audit.report.Report`; the client reports its hosts
as it arrives (``on_host``, progress) and puts the run together in plan order, so the findings
equal those of a single-machine run of the same targets.

Faults (``docs/cluster.md``):

- Every task has a deterministic key (the run's id, the block, the vantage): when the worker
  running a block dies, the scheduler runs the same task again elsewhere (up to its
  ``distributed.scheduler.allowed-failures``) and the client gets one result for it, never
  two. A block that fails for good (``KilledWorker``, an exception in the worker, the scheduler
  lost) becomes a run error, and its hosts are reported incomplete with the reason: never a
  crash, never a silent gap.
- Before anything is submitted (or resolved) the scheduler must answer within
  ``connect_timeout`` and have workers, and for every vantage a worker with its resource:
  Dask would otherwise wait for one forever. If during the run no worker can take a pending
  block for ``orphan_timeout`` seconds (all gone), those blocks fail as above.
- Interrupted (Ctrl-C, SIGTERM): the futures are cancelled, so queued blocks never start; the
  hosts of finished blocks stay in the report. Dask cannot stop a task that is running: such a
  block finishes on its worker (within its host deadlines) and its result is dropped.

Vantages (``--vantages eu,us``): every block is submitted once per vantage, constrained to
workers with the Dask resource ``vantage-<name>`` (``dask worker ... --resources
vantage-eu=1``); when every vantage of a block is in, the block's reports are merged with
:func:`~exposure_audit.run.vantage.merge_vantages` (rule VAN001 judges what differs).

``distributed`` is optional (``pip install 'exposure-audit[cluster]'``) and imported only when
a cluster run starts. Dask pickles what it sends: a scheduler port reachable by others lets
them run code on the workers; keep it reachable only by the scanning hosts, or use TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import dns.asyncresolver

from .. import __version__
from ..errors import RunError, UsageError
from ..nmap.scanner import NmapScanner, udp_scan_possible
from ..report import HostReport, Report, unaudited_targets
from ..targets import Exclusions, TargetPlan
from .audit import (
    Auditor,
    AuditSettings,
    Progress,
    ResolvedTargets,
    RunBookkeeping,
    inventory_scope,
    resolve_targets,
    utc_now,
)
from .host import unaudited_host
from .vantage import merge_vantages

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_BLOCK_SIZE",
    "INSTALL_HINT",
    "ClusterAudit",
    "ClusterBlock",
    "ClusterOptions",
    "audit_block",
    "check_cluster",
    "parse_block_size",
    "parse_cluster_address",
    "parse_vantages",
    "require_distributed",
    "vantage_resource",
]

# Addresses per block. One block is one nmap discovery run on its worker (below the audit's
# 128-address batch), whose start-up (~0.1 s) is small against the seconds of fingerprinting
# and -sV that follow; and a /24 still spreads over 4 workers. A block is reported when its
# slowest host is done, and a worker lost mid-block costs the whole block again: smaller blocks
# report sooner and lose less, larger ones start nmap less often (docs/cluster.md).
DEFAULT_BLOCK_SIZE = 64
MAX_BLOCK_SIZE = 4096
# Seconds to wait for the scheduler to answer the first connection.
CONNECT_TIMEOUT = 10.0
# Seconds pending blocks may wait with no worker able to take them before they fail.
ORPHAN_TIMEOUT = 60.0
INSTALL_HINT = "pip install 'exposure-audit[cluster]'"

# An exception inside audit_block (a bug, a worker without nmap) is tried once more, maybe on
# another worker; a worker dying is counted by the scheduler (allowed-failures), not here.
_RETRIES = 1
# How often the client asks the scheduler which workers it has (progress, orphaned blocks).
_WATCH_INTERVAL = 1.0
# Bounds on the client's last words to the scheduler (cancel, close): an interrupted run must
# not hang on a scheduler that went away.
_GOODBYE_TIMEOUT = 5.0
_VANTAGE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
_LIVE_WORKER = ("running", "paused")  # a paused worker (memory) takes tasks again later


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how a run is spread: the scheduler's ``address`` (``tcp://HOST:PORT`` or
    ``tls://HOST:PORT``), addresses per block, the vantages (empty: one view, any worker),
    and the bounds on waiting for the scheduler and for workers."""

    address: str
    block_size: int = DEFAULT_BLOCK_SIZE
    vantages: tuple[str, ...] = ()
    connect_timeout: float = CONNECT_TIMEOUT
    orphan_timeout: float = ORPHAN_TIMEOUT


@dataclass(frozen=True)
class ClusterBlock:
    """One block of a run: its position among the run's blocks, its addresses with their
    names (and those names' resolutions), and which of them the UPnP inventory describes
    (decided over the whole run)."""

    index: int
    targets: ResolvedTargets
    inventory_scope: frozenset[str] = frozenset()

    @property
    def addresses(self) -> list[str]:
        return self.targets.addresses

    def describe(self, total: int) -> str:
        """``block 3/16 (64 hosts, 203.0.113.128-203.0.113.191)``"""
        first, last = self.addresses[0], self.addresses[-1]
        span = first if first == last else f"{first}-{last}"
        count = len(self.addresses)
        return f"block {self.index + 1}/{total} ({count} host{'s' * (count != 1)}, {span})"


def audit_block(block: ClusterBlock, settings: AuditSettings) -> Report:
    """Audit one block, on a Dask worker: the worker's own nmap (paced by
    ``settings.discovery``), no name resolution (the client resolved), no progress.

    Returns the block's report: its hosts in block order, the block's run errors (a crashed
    nmap) and notes. Raises :class:`~exposure_audit.errors.ScannerUnavailable` when the
    worker has no nmap (the client makes it a failed block).
    """
    auditor = Auditor(
        TargetPlan(tuple(block.addresses), (), Exclusions(), allow_private=True),
        settings,
        scanner=NmapScanner(policy=settings.discovery),
        resolver=dns.asyncresolver.Resolver(configure=False),  # never asked: no names here
        udp_possible=udp_scan_possible(),
    )
    return asyncio.run(auditor.audit(block.targets, inventory_scope=block.inventory_scope))


def require_distributed() -> ModuleType:
    """The ``distributed`` package; :class:`UsageError` naming the extra when it is missing."""
    try:
        # Imported here, not at the top: most runs never need Dask (nor its second of import).
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise UsageError(
            f"--cluster needs Dask's client, the 'distributed' package ({exc}): {INSTALL_HINT}"
        ) from None


def parse_cluster_address(text: str) -> str:
    """``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (HOST an address, ``[v6]`` or a name), as
    given; :class:`UsageError` for anything else."""
    hint = "give the Dask scheduler as tcp://HOST:PORT or tls://HOST:PORT"
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise UsageError(f"--cluster {text!r}: {hint}") from None
    if (
        parts.scheme not in ("tcp", "tls")
        or not parts.hostname
        or port is None
        or not 1 <= port <= 65535
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise UsageError(f"--cluster {text!r}: {hint}")
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(parts.hostname)
        except ValueError:
            raise UsageError(f"--cluster {text!r}: {hint}") from None
    return text.strip()


def parse_vantages(text: str) -> tuple[str, ...]:
    """``eu,us`` -> ("eu", "us"); :class:`UsageError` for an empty list, a repeated name or a
    name that is not lower-case letters, digits and inner hyphens (at most 32)."""
    names = [n.strip() for n in text.split(",")]
    for name in names:
        if not _VANTAGE.fullmatch(name):
            raise UsageError(
                f"--vantages {text!r}: {name!r} is not a vantage name (a-z, 0-9 and inner "
                "'-', at most 32 characters)"
            )
    if len(set(names)) != len(names):
        raise UsageError(f"--vantages {text!r}: a vantage is named twice")
    return tuple(names)


def parse_block_size(value: int) -> int:
    """``value`` when it is 1-4096 addresses; :class:`UsageError` otherwise."""
    if not 1 <= value <= MAX_BLOCK_SIZE:
        raise UsageError(f"--block-size must be 1-{MAX_BLOCK_SIZE} addresses, not {value}")
    return value


def vantage_resource(vantage: str) -> str:
    """The Dask worker resource of a vantage: ``eu`` -> ``vantage-eu``."""
    return f"vantage-{vantage}"


def check_cluster(options: ClusterOptions) -> int:
    """Connect to the scheduler and check that it has workers, and for every vantage a worker
    with its resource; returns how many workers it has. For the CLI, before a run starts (so
    nothing is stored or resolved when the cluster cannot take it).

    Raises :class:`RunError` saying what is missing (no answer within the connect timeout, no
    workers, a vantage nobody offers) and :class:`UsageError` without ``distributed``.
    """
    distributed = require_distributed()

    async def check() -> int:
        client = await _connect(distributed, options)
        try:
            return len(await _ready_workers(client, options))
        finally:
            await _close(client)

    try:
        return asyncio.run(check())
    except KeyboardInterrupt:
        raise RunError(f"interrupted while asking {options.address}; nothing was scanned") from None


# One task's outcome: the block's report, or why it failed for good.
_Outcome = Report | str


@dataclass
class _Task:
    block: ClusterBlock
    vantage: str  # "" without vantages
    future: Any
    outcome: _Outcome | None = None


class ClusterAudit(RunBookkeeping):
    """One audit spread over a Dask cluster (see the module docstring). An
    :class:`~exposure_audit.run.audit.AuditRun`: :func:`~exposure_audit.run.session.run_session`
    drives it as it drives an :class:`~exposure_audit.run.audit.Auditor`.

    ``resolver`` resolves the plan's names here, on the client; ``progress`` shows hosts done
    and "blocks 5/16 done on 2 workers"; ``on_host`` gets each host when its block (from every
    vantage) is in. ``settings`` travel to the workers as they are.
    """

    def __init__(
        self,
        plan: TargetPlan,
        settings: AuditSettings,
        options: ClusterOptions,
        *,
        resolver: dns.asyncresolver.Resolver,
        progress: Progress | None = None,
        clock: Callable[[], datetime] = utc_now,
        on_host: Callable[[HostReport], None] | None = None,
    ) -> None:
        super().__init__(
            plan, settings, resolver=resolver, progress=progress, clock=clock, on_host=on_host
        )
        self.options = options
        self.blocks: list[ClusterBlock] = []
        self.workers = 0
        self._run_id = uuid.uuid4().hex[:16]
        self._resolved = ResolvedTargets({})
        self._hosts: dict[int, tuple[HostReport, ...]] = {}  # block index -> its hosts
        self._outcomes: dict[int, dict[str, _Outcome]] = {}  # block index -> per vantage
        self._tasks_done = 0
        # Per vantage ("" without vantages): the run errors and notes its blocks reported.
        self._block_errors: dict[str, list[str]] = {}
        self._block_notes: dict[str, list[str]] = {}
        self._given_up: dict[str, str] = {}  # vantage -> why its pending blocks were failed

    @property
    def vantages(self) -> tuple[str, ...]:
        return self.options.vantages

    def report(self, *, complete: bool) -> Report:
        """What is known now: the hosts of every block done (from every vantage), in plan
        order; complete only when every block is in and nothing failed."""
        order = {a: i for i, a in enumerate(self._resolved.hosts)}
        hosts = sorted(
            (h for hosts in self._hosts.values() for h in hosts),
            key=lambda h: order.get(h.address, len(order)),
        )
        errors, notes = self._errors_and_notes()
        everything = len(self._hosts) == len(self.blocks)
        return Report(
            tool_version=__version__,
            started_at=self.started_at,
            finished_at=self.clock(),
            ports=self.settings.ports,
            hosts=tuple(hosts),
            names=self._resolved.names,
            skipped=self._resolved.skipped,
            errors=tuple(errors),
            complete=complete and everything and not errors,
            notes=tuple(notes),
            vantages=tuple(sorted(self.vantages)),
            not_audited=unaudited_targets(
                self._resolved.names,
                self._resolved.skipped,
                self.plan.excluded,
                {h.address for h in hosts},
            ),
        )

    async def run(self) -> Report:
        """Check the cluster, resolve the names, submit every block and gather them; returns
        the report (failed blocks are run errors in it). Raises :class:`RunError` when the
        scheduler does not answer or lacks workers (nothing was submitted then)."""
        self.started_at = self.clock()
        distributed = require_distributed()
        client = await _connect(distributed, self.options)
        try:
            self.workers = len(await _ready_workers(client, self.options))
            self._resolved = await resolve_targets(self.plan, self.resolver, self.progress)
            scope, note = inventory_scope(self.settings.inventory, self._resolved.addresses)
            self.notes += [note] if note else []
            self.blocks = _split(self._resolved, self.options.block_size, frozenset(scope))
            self.progress.start(len(self._resolved.hosts))
            if self.blocks:
                await self._gather(client)
        finally:
            await _close(client)
        return self.report(complete=True)

    # -- the run ---------------------------------------------------------------------------

    async def _gather(self, client: Any) -> None:
        tasks = [
            _Task(block, vantage, self._submit(client, block, vantage))
            for block in self.blocks
            for vantage in self.vantages or ("",)
        ]
        self._phase(len(tasks))
        waiting = {asyncio.ensure_future(_outcome(t.future)): t for t in tasks}
        watch = asyncio.create_task(self._watch(client, tasks))
        try:
            while waiting:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for waiter in done:
                    task = waiting.pop(waiter)
                    outcome = waiter.result()
                    if (
                        isinstance(outcome, str)
                        and outcome.startswith("FutureCancelledError")
                        and task.vantage in self._given_up
                    ):
                        outcome = self._given_up[task.vantage]  # cancelled by _watch: say why
                    task.outcome = outcome
                    self._arrived(task, len(tasks))
        finally:
            watch.cancel()
            for waiter in waiting:
                waiter.cancel()
            await asyncio.gather(watch, *waiting, return_exceptions=True)
            unfinished = [t.future for t in tasks if t.outcome is None]
            if unfinished:
                # Queued blocks never start; running ones finish on their workers, unheard.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_GOODBYE_TIMEOUT):
                        await client.cancel(unfinished)

    def _submit(self, client: Any, block: ClusterBlock, vantage: str) -> Any:
        # The key names the run, the block and the vantage: the same every time this block is
        # asked for, so a rescheduled block is the same task and yields one result.
        key = f"exposure-audit-{self._run_id}-block-{block.index:06d}"
        resources = None
        if vantage:
            key += f"-{vantage}"
            resources = {vantage_resource(vantage): 1}
        return client.submit(
            audit_block,
            block,
            self.settings,
            key=key,
            resources=resources,
            retries=_RETRIES,
            pure=False,
        )

    def _arrived(self, task: _Task, total_tasks: int) -> None:
        """One task's outcome is in: when its block is in from every vantage, its hosts are
        reported (on_host, progress)."""
        assert task.outcome is not None
        self._tasks_done += 1
        outcomes = self._outcomes.setdefault(task.block.index, {})
        outcomes[task.vantage] = task.outcome
        if isinstance(task.outcome, Report):
            self._block_errors.setdefault(task.vantage, []).extend(task.outcome.errors)
            self._block_notes.setdefault(task.vantage, []).extend(task.outcome.notes)
            if task.outcome.tool_version != __version__:
                # Findings are only comparable between the same rules: say so when they differ.
                self.notes.append(
                    f"a worker ran exposure-audit {task.outcome.tool_version}, the client "
                    f"{__version__}: install the same version everywhere"
                )
        else:
            # With vantages, the merge prefixes it with the vantage ("[eu] block ...").
            self._block_errors.setdefault(task.vantage, []).append(
                f"{task.block.describe(len(self.blocks))} could not be audited: {task.outcome}"
            )
        if len(outcomes) == len(self.vantages or ("",)):
            hosts = self._block_hosts(task.block, outcomes)
            self._hosts[task.block.index] = hosts
            if self.on_host is not None:
                for host in hosts:
                    self.on_host(host)
            self.progress.advance(len(hosts), hosts)
        self._phase(total_tasks)

    def _block_hosts(
        self, block: ClusterBlock, outcomes: Mapping[str, _Outcome]
    ) -> tuple[HostReport, ...]:
        reports = {v: o for v, o in outcomes.items() if isinstance(o, Report)}
        now = self.clock()
        if not reports:
            reasons = "; ".join(dict.fromkeys(o for o in outcomes.values() if isinstance(o, str)))
            return tuple(
                unaudited_host(
                    address,
                    names,
                    f"not audited: its block failed on the cluster: {reasons}",
                    now=now,
                )
                for address, names in block.targets.hosts.items()
            )
        if not self.vantages:
            return _every_host(block, reports[""].hosts, now)
        # A vantage whose block failed holds none of its hosts: merge_vantages then says they
        # were not audited from there, rather than reading its silence as "not reachable".
        views = {
            v: reports.get(v) or _empty_report(self.settings, now, complete=False)
            for v in self.vantages
        }
        return _every_host(block, merge_vantages(views, now=now).hosts, now)

    def _errors_and_notes(self) -> tuple[list[str], list[str]]:
        """The run's errors and notes: the client's own, then the blocks' (once each; with
        vantages, prefixed ``[eu]`` unless every vantage reported the same)."""
        if not self.vantages:
            errors = self._block_errors.get("", [])
            notes = self._block_notes.get("", [])
        else:
            now = self.clock()
            views = {
                v: _empty_report(
                    self.settings,
                    now,
                    complete=True,
                    errors=self._block_errors.get(v, []),
                    notes=self._block_notes.get(v, []),
                )
                for v in self.vantages
            }
            merged = merge_vantages(views, now=now)
            errors, notes = list(merged.errors), list(merged.notes)
        return (
            list(dict.fromkeys([*self.errors, *errors])),
            list(dict.fromkeys([*self.notes, *notes])),
        )

    def _phase(self, total_tasks: int) -> None:
        workers = f"{self.workers} worker{'s' * (self.workers != 1)}"
        self.progress.phase(f"blocks {self._tasks_done}/{total_tasks} done on {workers}")

    async def _watch(self, client: Any, tasks: Sequence[_Task]) -> None:
        """Every second: how many workers there are (for the progress line), and whether the
        pending blocks of a vantage (or of the run) have a worker that can take them. After
        ``orphan_timeout`` seconds without one, those blocks are cancelled and fail."""
        without: dict[str, float] = {}
        while True:
            await asyncio.sleep(_WATCH_INTERVAL)
            try:
                workers = await _live_workers(client)
            except Exception:
                workers = None  # the scheduler is away: its futures will say so
            if workers is None:
                continue
            self.workers = len(workers)
            pending = {t.vantage for t in tasks if t.outcome is None}
            for vantage in pending - set(self._given_up):
                if any(_serves(w, vantage) for w in workers):
                    without.pop(vantage, None)
                    continue
                since = without.setdefault(vantage, time.monotonic())
                if time.monotonic() - since < self.options.orphan_timeout:
                    continue
                what = f"with resource {vantage_resource(vantage)}" if vantage else "at all"
                self._given_up[vantage] = (
                    f"no worker {what} for {self.options.orphan_timeout:g} s: the cluster at "
                    f"{self.options.address} lost them"
                )
                orphans = [t.future for t in tasks if t.outcome is None and t.vantage == vantage]
                with contextlib.suppress(Exception):
                    await client.cancel(orphans, reason="no worker left to take it")


def _split(resolved: ResolvedTargets, size: int, scope: frozenset[str]) -> list[ClusterBlock]:
    """Blocks of at most ``size`` addresses of one family each, in plan order."""
    families: dict[bool, list[str]] = {}
    for address in resolved.hosts:
        families.setdefault(":" in address, []).append(address)
    blocks: list[ClusterBlock] = []
    for addresses in families.values():
        for start in range(0, len(addresses), size):
            part = addresses[start : start + size]
            blocks.append(
                ClusterBlock(len(blocks), resolved.subset(part), scope.intersection(part))
            )
    return blocks


def _every_host(
    block: ClusterBlock, hosts: Sequence[HostReport], now: datetime
) -> tuple[HostReport, ...]:
    """The block's hosts, each once, in block order; one a worker's report lacks (never seen
    from an Auditor, but nothing may go missing silently) is reported as not audited."""
    by_address = {h.address: h for h in hosts}
    return tuple(
        by_address.get(address)
        or unaudited_host(address, names, "not audited: missing from its block's report", now=now)
        for address, names in block.targets.hosts.items()
    )


def _empty_report(
    settings: AuditSettings,
    now: datetime,
    *,
    complete: bool,
    errors: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> Report:
    return Report(
        tool_version=__version__,
        started_at=now,
        finished_at=now,
        ports=settings.ports,
        hosts=(),
        errors=tuple(errors),
        complete=complete,
        notes=tuple(notes),
    )


async def _outcome(future: Any) -> _Outcome:
    """The block's report, or why its task failed for good: ``KilledWorker`` (its workers kept
    dying), an exception raised in the worker (after the retry), the future cancelled (the
    scheduler lost, or no worker left)."""
    try:
        result = await future
    except Exception as exc:  # whatever Dask raises fails this block only
        text = " ".join(str(exc).split()) or "no detail"  # Dask's messages span lines
        return f"{type(exc).__name__}: {text[:500]}"
    if not isinstance(result, Report):
        return f"the worker returned {type(result).__name__}, not a report"
    return result


async def _connect(distributed: ModuleType, options: ClusterOptions) -> Any:
    """A started asynchronous client (never the process's default client)."""
    try:
        async with asyncio.timeout(options.connect_timeout + 1):
            return await distributed.Client(
                options.address,
                asynchronous=True,
                timeout=options.connect_timeout,
                set_as_default=False,
            )
    except (OSError, TimeoutError) as exc:
        raise RunError(
            f"the Dask scheduler at {options.address} did not answer within "
            f"{options.connect_timeout:g} s ({type(exc).__name__}: {exc}); nothing was scanned"
        ) from None
    except Exception as exc:  # TLS without certificates, a bad address, ...
        raise RunError(
            f"cannot use the Dask scheduler at {options.address}: {type(exc).__name__}: {exc}; "
            "nothing was scanned"
        ) from None


async def _close(client: Any) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_GOODBYE_TIMEOUT):
            await client.close()


async def _live_workers(client: Any) -> list[dict[str, Any]]:
    # The scheduler's identity with every worker's (the asynchronous client's cached
    # scheduler_info() carries no per-worker information).
    info = await client.scheduler.identity(n_workers=-1)
    workers = info.get("workers", {}) if isinstance(info, dict) else {}
    return [w for w in workers.values() if isinstance(w, dict) and w.get("status") in _LIVE_WORKER]


def _serves(worker: Mapping[str, Any], vantage: str) -> bool:
    if not vantage:
        return True
    resources = worker.get("resources") or {}
    return bool(resources.get(vantage_resource(vantage), 0) >= 1)


async def _ready_workers(client: Any, options: ClusterOptions) -> list[dict[str, Any]]:
    """The live workers; :class:`RunError` when there are none, or none for a vantage."""
    try:
        workers = await _live_workers(client)
    except Exception as exc:
        raise RunError(
            f"the Dask scheduler at {options.address} did not say which workers it has: "
            f"{type(exc).__name__}: {exc}; nothing was scanned"
        ) from None
    if not workers:
        raise RunError(
            f"the Dask scheduler at {options.address} has no workers: start some with "
            f"'dask worker {options.address}' (docs/cluster.md); nothing was scanned"
        )
    missing = [v for v in options.vantages if not any(_serves(w, v) for w in workers)]
    if missing:
        listed = ", ".join(f"{v} ({vantage_resource(v)})" for v in missing)
        raise RunError(
            f"no worker of the Dask cluster at {options.address} offers vantage {listed}: "
            f"start one with 'dask worker {options.address} --resources "
            f"{vantage_resource(missing[0])}=1'; nothing was scanned"
        )
    return workers
