"""``history``, ``report RUN``, ``diff [OLD] [NEW]`` and ``schedule --print``: reading the store
and printing what a scheduled audit needs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tabulate import tabulate

from ...diff import diff_reports
from ...errors import UsageError
from ...history.schedule import cron_line, systemd_units
from ...history.store import HistoryStore, RunSummary, default_history_path
from ...render import render_diff, render_report
from ..terminal import report_width
from .output import EXIT_OK, check_output, emit, warn_if_store_shared
from .trend import trend_of

__all__ = ["cmd_diff", "cmd_history", "cmd_report", "cmd_schedule"]


def _store(args: argparse.Namespace) -> HistoryStore:
    """The store the command reads, once ``-o`` is known not to be it (a report written over
    the store would destroy the history)."""
    path = Path(args.history) if args.history else default_history_path()
    if not path.exists():
        raise UsageError(f"no history store at {path} (run a scan first, or pass --history)")
    check_output(getattr(args, "output", None), [(path, "history store")])
    warn_if_store_shared(path)
    return HistoryStore(path)


def _summary_dict(run: RunSummary) -> dict[str, object]:
    return {
        "id": run.id,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "grade": run.grade.value if run.grade else None,
        "counts": run.counts,
        "complete": run.complete,
        "state": run.state,
        "coverage": run.coverage.value,
        "coverage_note": run.coverage_note,
        "hosts": run.host_count,
        "duration": run.duration,
        "tool_version": run.tool_version,
    }


def cmd_history(args: argparse.Namespace) -> int:
    with _store(args) as store:
        runs = store.runs(limit=args.limit)
    if args.format == "json":
        text = json.dumps([_summary_dict(r) for r in runs], indent=2) + "\n"
    else:
        rows = [
            [
                r.id,
                f"{r.started_at:%Y-%m-%d %H:%M}",
                r.grade.value if r.grade else "-",
                ", ".join(f"{k} {v}" for k, v in r.counts.items() if v) or "none",
                r.host_count,
                r.state,
            ]
            for r in runs
        ]
        headers = ["run", "started (UTC)", "grade", "findings", "hosts", "state"]
        text = tabulate(rows, headers=headers) + "\n"
    return emit(text, args.output, "history")


def cmd_report(args: argparse.Namespace) -> int:
    with _store(args) as store:
        run_id = store.resolve_run(args.run)
        report = store.report(run_id)
        trend = trend_of([r for r in store.runs() if r.id <= run_id])
    text = render_report(report, args.format, trend=trend, width=report_width(args.output))
    return emit(text, args.output)


def cmd_diff(args: argparse.Namespace) -> int:
    """Diff two stored runs; by default the two latest complete ones (runs that covered
    nothing or fewer hosts are never among them)."""
    with _store(args) as store:
        if args.old is None and args.new is None:
            latest = store.latest_complete(2)
            if len(latest) < 2:
                raise UsageError("the history holds fewer than two complete runs to compare")
            new_id, old_id = latest
        else:
            old_id = store.resolve_run(args.old or "previous")
            new_id = store.resolve_run(args.new or "latest")
        # The old run's not re-checked findings are part of its side, as for the scan's diff.
        diff = diff_reports(
            store.report(old_id),
            store.report(new_id),
            old_run=old_id,
            new_run=new_id,
            carried=store.carried(old_id),
        )
    text = render_diff(diff, args.format, width=report_width(args.output))
    return emit(text, args.output, "diff")


def cmd_schedule(args: argparse.Namespace) -> int:
    config = Path(args.config).resolve()
    if not config.is_file():
        raise UsageError(f"config file {config}: not found")
    log = Path(args.log).resolve() if args.log else None
    if args.print == "cron":
        sys.stdout.write(cron_line(config, log=log) + "\n")
    else:
        service, timer = systemd_units(config)
        sys.stdout.write(f"# exposure-audit.service\n{service}\n# exposure-audit.timer\n{timer}")
    return EXIT_OK
