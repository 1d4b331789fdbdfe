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
from ...history.store import (
    HistoryStore,
    RunCoverage,
    RunStatus,
    RunSummary,
    default_history_path,
)
from ...render import render_diff, render_report
from ..settings import merge_settings
from .compare import render_compared, verdict
from .output import EXIT_OK, check_output, emit, warn_if_store_shared
from .scan import load_config
from .trend import trend_of

__all__ = ["cmd_diff", "cmd_history", "cmd_report", "cmd_schedule"]


def _store_path(args: argparse.Namespace) -> tuple[Path, list[tuple[Path, str]]]:
    """The store the command reads: ``--history``, else the ``[history] path`` of ``-c
    CONFIG`` (relative to the config, as ``scan -c`` reads it), else the default store; and
    the files read (for the ``-o`` check)."""
    config_path = getattr(args, "config", None)
    if not config_path:
        path = Path(args.history) if args.history else default_history_path()
        return path, [(path, "history store")]
    config = load_config(config_path)
    history = merge_settings(args, config).history
    path = history.path or default_history_path()
    if not history.enabled and not args.history:
        raise UsageError(
            f"{config.source}: [history] enabled = false: this config keeps no runs "
            "(pass --history PATH to read a store)"
        )
    return path, [(path, "history store"), (Path(config_path), "config file")]


def _store(args: argparse.Namespace) -> HistoryStore:
    """The store the command reads, once ``-o`` is known not to be it (a report written over
    the store would destroy the history)."""
    path, inputs = _store_path(args)
    if not path.exists():
        hint = "run a scan first, or pass --history"
        if getattr(args, "config", None):
            hint = f"run 'exposure-audit scan -c {args.config}' first"
        raise UsageError(f"no history store at {path} ({hint})")
    check_output(getattr(args, "output", None), inputs)
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
    """Render a stored run; with ``--compare``, with what changed since its baseline (the
    latest complete run before it that covered what it was asked to, as the scan compared
    it), and the findings that baseline did not re-check."""
    with _store(args) as store:
        run_id = store.resolve_run(args.run)
        report = store.report(run_id)
        runs = store.runs()
        trend = trend_of(_up_to(runs, run_id))
        diff = None
        if args.compare:
            baseline = _baseline(runs, run_id)
            if baseline is not None:
                diff = diff_reports(
                    store.report(baseline),
                    report,
                    old_run=baseline,
                    new_run=run_id,
                    carried=store.carried(baseline),
                )
    if args.compare:
        text = render_compared(report, args.format, diff, trend=trend)
    else:
        text = render_report(report, args.format, trend=trend)
    summary = verdict(report, diff, compared=args.compare)
    return emit(text, args.output, verdict=f"run {run_id}: {summary}")


def _up_to(runs: list[RunSummary], run_id: int) -> list[RunSummary]:
    """The runs up to ``run_id`` in the history's order (``runs`` is newest first)."""
    ids = [r.id for r in runs]
    return runs[ids.index(run_id) :] if run_id in ids else []


def _baseline(runs: list[RunSummary], run_id: int) -> int | None:
    """The run ``run_id`` is compared with: the newest complete run before it that covered
    what it was asked to (``runs`` newest first, as :meth:`HistoryStore.runs` gives them),
    or None for a first run."""
    earlier = _up_to(runs, run_id)[1:]
    full = (r for r in earlier if r.status is RunStatus.COMPLETE)
    return next((r.id for r in full if r.coverage is RunCoverage.FULL), None)


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
    return emit(render_diff(diff, args.format), args.output, "diff")


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
