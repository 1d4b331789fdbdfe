"""A scan session: audit -> accepted risks -> history -> diff -> notifications.

What a scheduled audit needs around one :class:`~exposure_audit.run.audit.Auditor` run. Every
finished host goes into the history store as it completes (an interrupted run keeps it and is
marked incomplete); accepted risks are applied before the run is stored; the diff compares with
the baseline, the latest complete run before this one that covered what it was asked to, and
the findings that run did not re-check (carried in the history: see :mod:`exposure_audit.diff`);
the run is stored with the findings it in turn did not re-check, and with its coverage: a run
that audited nothing, or fewer hosts than a baseline with the same targets, is stored as such,
never becomes a baseline, and is notified whatever the policy. Notifications go out when the
policy says the run has something to say, and a failing one never loses the run.

Faults and signals (``docs/security.md``): a history store that cannot be opened or take the
run (damaged, locked past the busy timeout, on a full disk) stops the session before anything
is scanned; trouble with it later is reported and the scan goes on. SIGINT and SIGTERM behave
alike in every phase (:class:`Interrupts`): the run ends with what it found, is stored as
interrupted, and the history's last write is never cut in half.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import queue
import signal
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from .. import __version__
from ..codec import host_dict, to_dict
from ..diff import CarriedFinding, CoverageShortfall, ReportDiff, coverage_shortfall, diff_reports
from ..errors import RunError, UsageError
from ..findings import Severity
from ..history.accept import AcceptedRisk, apply_acceptances
from ..history.apprise_notify import AppriseTarget, send_apprise
from ..history.message import compose, should_notify
from ..history.notify import (
    DeliveryResult,
    EmailTarget,
    WebhookTarget,
    make_webhook_client,
    send_email,
    send_webhook,
)
from ..history.store import HistoryStore, StoreError
from ..report import HostReport, Report
from .audit import AuditRun

__all__ = [
    "BUSY_TIMEOUT_ENV",
    "Interrupts",
    "NotifyPlan",
    "SessionOptions",
    "SessionOutcome",
    "history_busy_timeout",
    "run_session",
]


@dataclass(frozen=True)
class NotifyPlan:
    """Where and when to notify (from ``[notify]``, ``--webhook`` and ``--notify``)."""

    when: str = "change"
    min_severity: Severity = Severity.INFO
    webhook: WebhookTarget | None = None
    email: EmailTarget | None = None
    fail_run_on_error: bool = False
    apprise: AppriseTarget | None = None


@dataclass(frozen=True)
class SessionOptions:
    """``history`` None means no history (``--no-history``); ``compare`` asks for the diff
    against the latest complete run even when nothing else needs it."""

    history: Path | None
    command: str
    targets: Sequence[str]
    compare: bool = False
    need_diff: bool = False
    accepted: Sequence[AcceptedRisk] = ()
    notify: NotifyPlan | None = None
    today: date = field(default_factory=date.today)


@dataclass
class SessionOutcome:
    """What the session did. ``previous_run`` is the run the diff compares with (None on the
    first run); ``shortfall`` says the run audited nothing or fewer hosts than that run (it is
    then stored as such and never becomes a baseline); ``store_errors`` are history problems
    that did not stop the scan (this run is then not, or not wholly, in the history);
    ``compare_errors`` are problems reading the run to compare with. ``interrupted`` names the
    phase a SIGINT or SIGTERM stopped in (``interrupted_in``: "the scan", "writing the
    history", "notifications") and the signal (``signal``)."""

    report: Report
    interrupted: bool = False
    run_id: int | None = None
    previous_run: int | None = None
    diff: ReportDiff | None = None
    shortfall: CoverageShortfall | None = None
    stale: list[AcceptedRisk] = field(default_factory=list)
    deliveries: list[DeliveryResult] = field(default_factory=list)
    store_errors: list[str] = field(default_factory=list)
    history: Path | None = None
    compare_errors: list[str] = field(default_factory=list)
    interrupted_in: str = ""
    signal: str = ""

    @property
    def notification_failed(self) -> bool:
        return any(not d.delivered for d in self.deliveries)


_T = TypeVar("_T")


class Interrupts:
    """SIGINT and SIGTERM, one behaviour for both, while a command runs (a context manager).

    * Inside :meth:`run` (the event loop of the audit or of a webhook), the first signal
      cancels the running task: it ends with what it found, and :meth:`run` raises
      :class:`asyncio.CancelledError`. A second signal raises :class:`KeyboardInterrupt`.
    * Inside :meth:`deferred` (the whole session but those two), a signal is noted in
      ``received`` and the code goes on to a point where it looks: a history transaction or
      the report's atomic rename is never cut in half, and no moment is left where a signal
      would land outside the handling. A second signal there raises
      :class:`KeyboardInterrupt`: whoever insists gets out at once.
    * Inside :meth:`interruptible` (blocking network code: SMTP), and anywhere else, a signal
      raises :class:`KeyboardInterrupt`, as Ctrl-C does.

    ``received`` names the first signal (None when none came). Without this, SIGTERM (what
    ``kill``, systemd and cron's timeouts send) would end the process on the spot outside
    the event loop: no report, the run left "running". Signal handlers can only be set in
    the main thread; elsewhere this object changes nothing and ``received`` stays None.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._deferred = 0
        self._count = 0

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def name(self) -> str:
        """``SIGINT``, ``SIGTERM``, or "" when no signal came."""
        return self.received.name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._count += 1
        if self.received is None:
            self.received = signal.Signals(signum)
        if self._count > 1:
            raise KeyboardInterrupt
        if self._task is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        elif not self._deferred:
            raise KeyboardInterrupt

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """``asyncio.run(coro)``, cancelled by a signal (or at once when one came before)."""

        async def main() -> _T:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            try:
                if self.received is not None:
                    raise asyncio.CancelledError
                return await coro
            finally:
                self._task = None
                self._loop = None

        try:
            return asyncio.run(main())
        finally:
            coro.close()  # never awaited when the signal came first: no "never awaited" warning

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals inside the block are noted in ``received``; the code looks when it can."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Blocking code that a signal may cut (``KeyboardInterrupt``), deferred or not; at once
        when a signal came before."""
        saved, self._deferred = self._deferred, 0
        try:
            if self.received is not None:
                raise KeyboardInterrupt
            yield
        finally:
            self._deferred = saved


def run_session(
    auditor: AuditRun, options: SessionOptions, interrupts: Interrupts | None = None
) -> SessionOutcome:
    """Run the audit and everything around it. ``auditor`` is an ``audit.Auditor`` or a
    ``cluster.ClusterAudit`` (anything that is an ``audit.AuditRun``).

    Raises :class:`StoreError` (saying that nothing was scanned) when the history store cannot
    be opened or the run cannot be started in it: a damaged, locked or full store stops the
    run before any packet is sent. Later store trouble is recorded in ``store_errors`` and the
    scan goes on. A SIGINT or SIGTERM ends the run with what it found (``interrupted``);
    ``interrupts`` is the caller's :class:`Interrupts` when it also guards what comes after
    (the output), else the session installs its own.
    """
    with contextlib.ExitStack() as stack:
        if interrupts is None:
            interrupts = stack.enter_context(Interrupts())
        stack.enter_context(interrupts.deferred())
        store = _open(options.history) if options.history is not None else None
        stopped = False
        try:
            outcome = _run(auditor, options, store, interrupts)
        except KeyboardInterrupt:
            # A second signal: stop now. A host record may be waiting for another process's
            # lock; the store is left to the end of the process, as safe for it as SIGKILL.
            stopped = True
            raise
        finally:
            if store is not None and not stopped:
                store.close()
    return outcome


def _open(path: Path) -> HistoryStore:
    try:
        return HistoryStore(path, busy_timeout=history_busy_timeout())
    except StoreError as exc:
        raise StoreError(f"{exc}; nothing was scanned") from exc


BUSY_TIMEOUT_ENV = "EXPOSURE_AUDIT_HISTORY_TIMEOUT"
"""How long (seconds) a write waits for another process's lock on the history store."""


def history_busy_timeout(environ: Mapping[str, str] | None = None) -> float:
    """``$EXPOSURE_AUDIT_HISTORY_TIMEOUT`` seconds, default 30; :class:`UsageError` naming
    the variable when it is not a positive number."""
    text = (os.environ if environ is None else environ).get(BUSY_TIMEOUT_ENV, "").strip()
    if not text:
        return 30.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86_400:
        raise UsageError(f"${BUSY_TIMEOUT_ENV} {text!r}: give a number of seconds above 0")
    return value


def _run(
    auditor: AuditRun,
    options: SessionOptions,
    store: HistoryStore | None,
    interrupts: Interrupts,
) -> SessionOutcome:
    outcome = SessionOutcome(report=auditor.report(complete=False), history=options.history)
    recorder: _HostRecorder | None = None
    if store is not None:
        try:
            previous = store.latest_complete(1)
            outcome.previous_run = previous[0] if previous else None
            outcome.run_id = store.start_run(
                started_at=auditor.started_at,
                tool_version=__version__,
                command=options.command,
                targets=list(options.targets),
                ports=auditor.settings.ports,
            )
        except StoreError as exc:
            raise StoreError(f"{exc}; nothing was scanned") from exc
        recorder = _HostRecorder(store, outcome.run_id, outcome.store_errors)
        auditor.on_host = recorder
    started = time.monotonic()
    try:
        # A signal before this point (while the store was opened) cancels it at once.
        report = interrupts.run(auditor.run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        outcome.interrupted, outcome.interrupted_in = True, "the scan"
        report = auditor.report(complete=False)
    except RunError as exc:  # a probe failing in a way the audit did not absorb
        auditor.errors.append(str(exc))
        report = auditor.report(complete=False)
    # The last writes are not cut by a signal (the session runs deferred): it is honoured
    # once they are done.
    if recorder is not None:
        auditor.progress.phase("writing the history")  # may wait for another writer's lock
        recorder.drain()
    if interrupts.received is not None and not outcome.interrupted:
        outcome.interrupted, outcome.interrupted_in = True, "writing the history"
    if outcome.interrupted:  # every format says so (Report.run_notes), the history too
        report = dataclasses.replace(report, complete=False, interrupted=True)
    report, outcome.stale = apply_acceptances(report, options.accepted, options.today)
    if outcome.stale:
        notes = tuple(
            f"accepted risk at {r.where} matches nothing (stale): {r.reason}" for r in outcome.stale
        )
        report = dataclasses.replace(report, notes=report.notes + notes)
    outcome.report = report
    # A run the user stopped is compared with nothing: it is stored as interrupted, never a
    # baseline, and not notified.
    diff = None if outcome.interrupted else _compare(options, store, outcome)
    if store is not None and outcome.run_id is not None:
        try:
            store.finish_run(
                outcome.run_id,
                to_dict(report),
                complete=report.complete and not outcome.interrupted,
                duration=time.monotonic() - started,
                interrupted=outcome.interrupted,
                carried=diff.carried if diff is not None else (),
                shortfall=outcome.shortfall,
            )
        except StoreError as exc:
            outcome.store_errors.append(f"{exc}; this run is not stored in full")
    if interrupts.received is not None and not outcome.interrupted:
        outcome.interrupted, outcome.interrupted_in = True, "writing the history"
    if not outcome.interrupted:
        try:
            _notify_run(options, outcome, diff, interrupts)
        except (KeyboardInterrupt, asyncio.CancelledError):
            # The run is stored; what was not sent yet is not sent.
            outcome.interrupted, outcome.interrupted_in = True, "notifications"
        if interrupts.received is not None and not outcome.interrupted:
            outcome.interrupted, outcome.interrupted_in = True, "notifications"
    outcome.signal = interrupts.name
    return outcome


def _compare(
    options: SessionOptions, store: HistoryStore | None, outcome: SessionOutcome
) -> ReportDiff | None:
    """The diff of ``outcome.report`` against the baseline (``outcome.previous_run``) and the
    findings the baseline carried, and ``outcome.shortfall``. Problems reading the baseline go
    to ``compare_errors``: the run is then compared with nothing (and only "audited nothing"
    is judged). A baseline asked to audit other targets is not counted against: a narrower
    scope chosen on purpose is not a shortfall."""
    report = outcome.report
    previous = outcome.previous_run
    old: Report | None = None
    carried: tuple[CarriedFinding, ...] = ()
    same_targets = False
    if store is not None and previous is not None:
        try:
            old = store.report(previous)
            summary = store.summary(previous)
        except (StoreError, ValueError) as exc:
            outcome.compare_errors.append(f"run {previous} cannot be compared: {exc}")
        else:
            same_targets = sorted(summary.targets) == sorted(options.targets)
            try:
                carried = store.carried(previous)
            except StoreError as exc:
                outcome.compare_errors.append(
                    f"{exc}; the findings run {previous} did not re-check are not carried"
                )
    outcome.shortfall = coverage_shortfall(
        report, old if same_targets else None, baseline_run=previous
    )
    if old is None:
        return None
    return diff_reports(old, report, old_run=previous, new_run=outcome.run_id, carried=carried)


def _notify_run(
    options: SessionOptions,
    outcome: SessionOutcome,
    diff: ReportDiff | None,
    interrupts: Interrupts,
) -> None:
    wants_diff = options.compare or options.need_diff or options.notify is not None
    outcome.diff = diff if wants_diff else None
    if options.notify is not None:
        _notify(
            options.notify,
            outcome.report,
            outcome.diff,
            outcome.shortfall,
            interrupts,
            outcome.deliveries,
            outcome.run_id,
        )


class _HostRecorder:
    """Records each finished host in the store as it finishes, in a thread of its own: the
    commit (an fsync, or a wait for another process's lock) never stalls the event loop and so
    never eats into the probes' timeouts. Hosts are written in the order they finished. After
    the first failure (a full disk, a lock held past the busy timeout) no more hosts are
    tried one by one: each would wait the busy timeout again. The whole report is still
    offered to the store at the end (``finish_run``). The thread is a daemon: a second signal
    does not wait for a record stuck behind a lock (an unfinished transaction is rolled back,
    as for a killed process)."""

    def __init__(self, store: HistoryStore, run_id: int | None, errors: list[str]) -> None:
        self._store = store
        self._run_id = run_id
        self._errors = errors
        self._failed = False
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._work, name="history-writer", daemon=True)
        self._writer.start()

    def __call__(self, host: HostReport) -> None:
        if self._run_id is not None:
            self._queue.put(host_dict(host))

    def _work(self) -> None:
        while (doc := self._queue.get()) is not None:
            self._record(doc)

    def _record(self, doc: dict[str, Any]) -> None:
        if self._failed or self._run_id is None:
            return
        try:
            self._store.record_host(self._run_id, doc)
        except (StoreError, ValueError) as exc:
            # A full disk or a lock must not stop the scan: the report still gets written.
            self._failed = True
            self._errors.append(
                f"recording host {doc.get('address')}: {exc}; no more hosts recorded one by one"
            )

    def drain(self) -> None:
        """Wait until every host handed in so far is written (or given up)."""
        self._queue.put(None)
        self._writer.join()


def _notify(
    plan: NotifyPlan,
    report: Report,
    diff: ReportDiff | None,
    shortfall: CoverageShortfall | None,
    interrupts: Interrupts,
    results: list[DeliveryResult],
    run_id: int | None,
) -> None:
    """Send what the policy asks for (and, whatever it says, a coverage ``shortfall``),
    appending each result to ``results`` as it comes (an interruption keeps the ones already
    sent)."""
    if not should_notify(plan.when, diff, report, plan.min_severity, shortfall):
        return
    message = compose(report, diff, shortfall, run_id=run_id)
    if plan.webhook is not None:
        webhook = plan.webhook

        async def post() -> DeliveryResult:
            async with make_webhook_client() as client:
                return await send_webhook(client, webhook, message)

        results.append(interrupts.run(post()))
    if plan.email is not None:
        with interrupts.interruptible():  # smtplib blocks: a signal cuts it
            results.append(send_email(plan.email, message))
    if plan.apprise is not None:
        with interrupts.interruptible():  # bounded by its deadline; a signal cuts the wait
            results.extend(send_apprise(plan.apprise, message))
