"""A scan session: audit -> accepted risks -> history -> diff -> notifications.

What a scheduled audit needs around one :class:`~exposure_audit.audit.Auditor` run. Every
finished host goes into the history store as it completes (an interrupted run keeps it and is
marked incomplete); accepted risks are applied before the run is stored; the diff compares with
the latest complete run before this one; notifications go out when the policy says the run has
something to say, and a failing one never loses the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from . import __version__
from .accept import AcceptedRisk, apply_acceptances
from .audit import Auditor
from .diff import ReportDiff, diff_reports
from .findings import Severity
from .message import compose, should_notify
from .notify import (
    DeliveryResult,
    EmailTarget,
    WebhookTarget,
    make_webhook_client,
    send_email,
    send_webhook,
)
from .render import host_dict, to_dict
from .report import HostReport, Report
from .store import HistoryStore, StoreError

__all__ = ["NotifyPlan", "SessionOptions", "SessionOutcome", "run_session"]


@dataclass(frozen=True)
class NotifyPlan:
    """Where and when to notify (from ``[notify]`` and ``--webhook``)."""

    when: str = "change"
    min_severity: Severity = Severity.INFO
    webhook: WebhookTarget | None = None
    email: EmailTarget | None = None
    fail_run_on_error: bool = False


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
    first run); ``store_errors`` are history problems that did not stop the scan."""

    report: Report
    interrupted: bool = False
    run_id: int | None = None
    previous_run: int | None = None
    diff: ReportDiff | None = None
    stale: list[AcceptedRisk] = field(default_factory=list)
    deliveries: list[DeliveryResult] = field(default_factory=list)
    store_errors: list[str] = field(default_factory=list)

    @property
    def notification_failed(self) -> bool:
        return any(not d.delivered for d in self.deliveries)


def run_session(auditor: Auditor, options: SessionOptions) -> SessionOutcome:
    """Run the audit and everything around it. Raises :class:`StoreError` only when the
    store cannot be opened (before anything is scanned); later store trouble is recorded."""
    store = HistoryStore(options.history) if options.history is not None else None
    try:
        return _run(auditor, options, store)
    finally:
        if store is not None:
            store.close()


def _run(auditor: Auditor, options: SessionOptions, store: HistoryStore | None) -> SessionOutcome:
    outcome = SessionOutcome(report=auditor.report(complete=False))
    previous = store.latest_complete(1) if store is not None else []
    outcome.previous_run = previous[0] if previous else None
    if store is not None:
        outcome.run_id = store.start_run(
            started_at=auditor.started_at,
            tool_version=__version__,
            command=options.command,
            targets=list(options.targets),
            ports=auditor.settings.ports,
        )
        auditor.on_host = _HostRecorder(store, outcome)
    started = time.monotonic()
    try:
        report = asyncio.run(_run_with_signals(auditor))
    except (KeyboardInterrupt, asyncio.CancelledError):
        outcome.interrupted = True
        report = auditor.report(complete=False)
    report, outcome.stale = apply_acceptances(report, options.accepted, options.today)
    if outcome.stale:
        notes = tuple(
            f"accepted risk at {r.where} matches nothing (stale): {r.reason}" for r in outcome.stale
        )
        report = dataclasses.replace(report, notes=report.notes + notes)
    outcome.report = report
    if store is not None and outcome.run_id is not None:
        try:
            store.finish_run(
                outcome.run_id,
                to_dict(report),
                complete=report.complete and not outcome.interrupted,
                duration=time.monotonic() - started,
                interrupted=outcome.interrupted,
            )
        except StoreError as exc:
            outcome.store_errors.append(str(exc))
    if outcome.interrupted:
        return outcome
    wants_diff = options.compare or options.need_diff or options.notify is not None
    if wants_diff and store is not None and outcome.previous_run is not None:
        try:
            old = store.report(outcome.previous_run)
        except (StoreError, ValueError) as exc:
            outcome.store_errors.append(f"run {outcome.previous_run} cannot be compared: {exc}")
        else:
            outcome.diff = diff_reports(
                old, report, old_run=outcome.previous_run, new_run=outcome.run_id
            )
    if options.notify is not None:
        outcome.deliveries = _notify(options.notify, report, outcome.diff)
    return outcome


@dataclass
class _HostRecorder:
    """Records each finished host in the store, committed at once."""

    store: HistoryStore
    outcome: SessionOutcome

    def __call__(self, host: HostReport) -> None:
        if self.outcome.run_id is None:
            return
        try:
            self.store.record_host(self.outcome.run_id, host_dict(host))
        except StoreError as exc:
            # A full disk or a lock must not stop the scan: the report still gets written.
            self.outcome.store_errors.append(str(exc))


def _notify(plan: NotifyPlan, report: Report, diff: ReportDiff | None) -> list[DeliveryResult]:
    if not should_notify(plan.when, diff, report, plan.min_severity):
        return []
    message = compose(report, diff)
    results: list[DeliveryResult] = []
    if plan.webhook is not None:
        webhook = plan.webhook

        async def post() -> DeliveryResult:
            async with make_webhook_client() as client:
                return await send_webhook(client, webhook, message)

        results.append(asyncio.run(post()))
    if plan.email is not None:
        results.append(send_email(plan.email, message))
    return results


async def _run_with_signals(auditor: Auditor) -> Report:
    """Run the audit; SIGTERM cancels it like Ctrl-C, so what was found is still reported."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await auditor.run()
