"""``exposure-audit scan`` and ``exposure-audit demo``: options from flags over the config file,
the audit session (history, accepted risks, diff, notifications), output and the exit code."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ...errors import RunError, UsageError
from ...history.accept import AcceptedRisk, parse_accepted
from ...history.apprise_notify import shown_url
from ...history.notify import redact_url
from ...history.store import HistoryStore, StoreError
from ...nmap.scanner import NmapScanner, udp_scan_possible
from ...ports import default_ports, parse_ports
from ...probes.dns import make_resolver
from ...render import TrendPoint, render_report
from ...run.audit import Auditor, AuditRun, AuditSettings, Progress
from ...run.cluster import (
    DEFAULT_BLOCK_SIZE,
    ClusterAudit,
    ClusterOptions,
    check_cluster,
    parse_block_size,
    parse_cluster_address,
    parse_vantages,
    require_distributed,
)
from ...run.session import (
    Interrupts,
    NotifyPlan,
    SessionOptions,
    SessionOutcome,
    history_busy_timeout,
    run_session,
)
from ...targets import (
    AddressRanges,
    TargetPlan,
    TargetSpec,
    parse_item,
    parse_lines,
    plan_targets,
)
from ...text import plural, printable
from ..argtypes import cut
from ..config import AuditConfig, parse_config
from ..inputfile import LINE_CAP, read_input
from ..settings import NotifySettings, Thresholds, merge_settings
from ..terminal import report_width
from .compare import render_compared, verdict
from .metrics import write_metrics
from .output import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_RUN,
    check_output,
    emit,
    say_nothing_audited,
    warn_if_store_shared,
)
from .trend import trend_of
from .upnp import read_inventory

__all__ = ["check_scan_config", "cmd_demo", "cmd_scan", "load_config", "progress_for"]

_LISTED = 65_536
"""A dry run lists at most this many addresses one by one (the default --max-hosts)."""

# The names the demo resolves through the lab's DNS server: a CNAME chain, a dual-stack name, a
# Synology DDNS name, a name with no AAAA record, and one that does not exist.
_DEMO_NAMES = (
    "nas.example.net",
    "dsm7.example.net",
    "diskstation.myds.me",
    "www.example.net",
    "v4only.example.net",
    "gone.example.net",
)


def progress_for(args: argparse.Namespace, stream: TextIO = sys.stderr) -> Progress | None:
    from ..progress import make_progress

    return make_progress(stream, quiet=args.quiet, forced=args.progress)


def _stop(progress: Progress | None) -> None:
    """Stop a progress display that can be stopped (the CLI's own: progress.RichProgress)."""
    stop = getattr(progress, "stop", None)
    if callable(stop):
        stop()


def _read_text(path: Path, what: str) -> str:
    return read_input(path, what)


def _items(path: Path, what: str) -> list[TargetSpec]:
    return parse_lines(read_input(path, what, line_cap=LINE_CAP).splitlines(), str(path))


@dataclass(frozen=True)
class _Effective:
    """Flags over the config file over the defaults."""

    plan: TargetPlan
    settings: AuditSettings
    resolver: str | None
    thresholds: Thresholds
    history: Path | None
    accepted: tuple[AcceptedRisk, ...]
    notify: NotifyPlan | None
    cluster: ClusterOptions | None = None
    inputs: tuple[tuple[Path, str], ...] = ()
    metrics: Path | None = None


def _cluster(args: argparse.Namespace, config: AuditConfig | None) -> ClusterOptions | None:
    """``--cluster``, ``--block-size``, ``--vantages`` over the config's ``[cluster]``; the
    last two need a scheduler (``--local`` ignores the config's)."""
    configured = config.cluster if config is not None and not args.local else None
    scheduler = args.cluster or (configured.scheduler if configured else None)
    if scheduler is None:
        for flag, value in (("--block-size", args.block_size), ("--vantages", args.vantages)):
            if value is not None:
                raise UsageError(f"{flag} needs --cluster (the Dask scheduler to run on)")
        return None
    where = f"{config.source}: [cluster] " if configured and config else ""
    try:
        address = parse_cluster_address(scheduler)
        block_size = args.block_size
        if block_size is None and configured is not None:
            block_size = configured.block_size
        size = DEFAULT_BLOCK_SIZE if block_size is None else parse_block_size(block_size)
        if args.vantages is not None:
            vantages = parse_vantages(args.vantages)
        else:
            vantages = parse_vantages(",".join(configured.vantages)) if configured else ()
    except UsageError as exc:
        raise UsageError(f"{where}{exc}" if not args.cluster else str(exc)) from None
    require_distributed()  # without it: a usage error naming the extra to install
    return ClusterOptions(address, block_size=size, vantages=vantages)


def _scope(
    args: argparse.Namespace, config: AuditConfig | None, base: Path
) -> tuple[list[TargetSpec], list[TargetSpec]]:
    """Targets and exclusions: the config's (files relative to it), then the command line's."""
    where = config.source if config else ""
    targets = [parse_item(t, f"{where}: targets") for t in (config.targets if config else ())]
    targets += [parse_item(t, f"argument {i}") for i, t in enumerate(args.targets, 1)]
    files = [base / f for f in (config.target_files if config else ())]
    for path in [*files, *map(Path, args.input_file)]:
        targets += _items(path, "targets file")
    exclusions = [parse_item(e, f"{where}: exclude") for e in (config.exclude if config else ())]
    exclusions += [parse_item(e, f"--exclude {cut(e)}") for e in args.exclude]
    files = [base / f for f in (config.exclude_files if config else ())]
    for path in [*files, *map(Path, args.exclude_file)]:
        exclusions += _items(path, "exclude file")
    if not targets:
        raise UsageError("no targets: give addresses, ranges or names, -i FILE, or -c CONFIG")
    return targets, exclusions


def _effective(args: argparse.Namespace, warnings: list[str] | None = None) -> _Effective:
    """Everything the scan will do, checked (:class:`UsageError` for the first problem).
    With ``warnings`` (a list), what depends on the environment the run will have rather than
    this one (a ``url_env`` not set here) is appended to it instead of raised."""
    config = _config(args.config) if args.config else None
    base = Path(config.base_dir) if config else Path()
    targets, exclusions = _scope(args, config, base)
    merged = merge_settings(args, config)
    scan = merged.scan
    scan.check_max_hosts()
    plan = plan_targets(
        targets, exclusions, allow_private=scan.allow_private, max_hosts=scan.max_hosts
    )
    scan.check_bounds("--host-timeout, --request-timeout and --ssdp-wait")
    # An empty -p is an error (parse_ports says so), never the default set.
    ports = parse_ports(scan.ports) if scan.ports is not None else default_ports()
    inventory = read_inventory(scan.upnp_inventory) if scan.upnp_inventory else None
    return _Effective(
        plan=plan,
        settings=scan.audit_settings(ports, inventory),
        resolver=scan.resolver,
        thresholds=merged.thresholds,
        history=merged.history.store_path(),
        accepted=_accepted(args, config, base),
        notify=_notify_plan(merged.notify, warnings),
        cluster=_cluster(args, config),
        inputs=_inputs(args, config, base, scan.upnp_inventory),
        metrics=_metrics_path(args, config, base),
    )


def _metrics_path(args: argparse.Namespace, config: AuditConfig | None, base: Path) -> Path | None:
    """``--metrics``, else the config's ``[metrics] path`` (relative to the config file)."""
    if args.metrics:
        return Path(args.metrics)
    if config is not None and config.metrics is not None:
        return base / config.metrics.path
    return None


def _config(path: str) -> AuditConfig:
    text = _read_text(Path(path), "config file")
    return parse_config(text, path)


def load_config(path: str) -> AuditConfig:
    """The config file at ``path``, parsed; :class:`UsageError` (exit 2) naming the file,
    line and key when it cannot be read or is not valid."""
    return _config(path)


def _notify_plan(notify: NotifySettings, warnings: list[str] | None) -> NotifyPlan | None:
    if warnings is None:
        return notify.plan()
    try:
        return notify.plan()
    except UsageError as exc:
        warnings.append(f"{exc} here: set it where the scheduled job runs")
        return None


def check_scan_config(args: argparse.Namespace) -> list[str]:
    """Check what ``scan`` would run with ``args`` (a parsed ``scan -c CONFIG ...``) without
    scanning or resolving anything: the config, every file it names (targets, exclusions,
    accepted risks, UPnP inventory), the targets against the policy, ports, timing,
    thresholds, the cluster settings and where the report and history go. Raises
    :class:`UsageError` for the first problem; returns warnings (a notification variable
    that is not set in this environment)."""
    warnings: list[str] = []
    effective = _effective(args, warnings)
    history = [(effective.history, "history store")] if effective.history else []
    check_output(args.output, [*history, *effective.inputs])
    if effective.history is not None and effective.history.is_dir():
        raise UsageError(f"history store {effective.history} is a directory")
    return warnings


def _accepted(
    args: argparse.Namespace, config: AuditConfig | None, base: Path
) -> tuple[AcceptedRisk, ...]:
    risks = list(config.accepted) if config else []
    files = [str(base / f) for f in (config.accepted_files if config else ())] + list(args.accepted)
    for name in files:
        risks += parse_accepted(_read_text(Path(name), "accepted risks file"), name)
    return tuple(risks)


def _inputs(
    args: argparse.Namespace, config: AuditConfig | None, base: Path, scan_inventory: str | None
) -> tuple[tuple[Path, str], ...]:
    """Every file the scan reads, named for the error when ``-o`` points at one (the config's
    paths are relative to it, the command line's to the working directory)."""
    named: list[tuple[Path, str]] = [(Path(args.config), "config file")] if args.config else []
    listed = (
        ("targets file", config.target_files if config else (), args.input_file),
        ("exclude file", config.exclude_files if config else (), args.exclude_file),
        ("accepted-risk file", config.accepted_files if config else (), args.accepted),
    )
    for what, from_config, from_flags in listed:
        named += [(base / name, what) for name in from_config]
        named += [(Path(name), what) for name in from_flags]
    if scan_inventory:
        named.append((Path(scan_inventory), "UPnP inventory"))
    return tuple(named)


def _check_combinations(args: argparse.Namespace) -> None:
    """Flags that contradict each other: without a history there is nothing to compare with."""
    if args.no_history:
        for flag, given in (("--compare", args.compare), ("--fail-on-new", args.fail_on_new)):
            if given:
                raise UsageError(
                    f"--no-history with {flag}: {flag} compares with the history's latest "
                    "complete run, and --no-history turns the history off; drop one of them"
                )


def cmd_scan(args: argparse.Namespace) -> int:
    _check_combinations(args)
    # A dry run sends nothing: a notification's unset variable is said, not fatal (the real
    # run still refuses it before scanning).
    dry_warnings: list[str] | None = [] if args.dry_run else None
    effective = _effective(args, dry_warnings)
    for warning in dry_warnings or ():
        print(f"exposure-audit: warning: {warning}", file=sys.stderr)
    # Before anything is scanned: a report must never replace what the run reads or keeps.
    history = [(effective.history, "history store")] if effective.history else []
    check_output(args.output, [*history, *effective.inputs])
    if effective.metrics is not None:
        report_file = [(Path(args.output), "report (-o)")] if args.output else []
        check_output(
            str(effective.metrics), [*history, *effective.inputs, *report_file], "--metrics"
        )
    history_busy_timeout()  # a bad $EXPOSURE_AUDIT_HISTORY_TIMEOUT stops the run here (exit 2)
    if args.dry_run:
        _print_dry_run(effective)
        return EXIT_OK
    warn_if_store_shared(effective.history)
    auditor: AuditRun
    progress = progress_for(args)
    if effective.cluster is not None:
        # Fails at once (exit 3) when the cluster cannot take the run: nothing resolved, stored.
        check_cluster(effective.cluster)
        auditor = ClusterAudit(
            effective.plan,
            effective.settings,
            effective.cluster,
            resolver=make_resolver(effective.resolver),
            progress=progress,
        )
    else:
        auditor = Auditor(
            effective.plan,
            effective.settings,
            scanner=NmapScanner(policy=effective.settings.discovery),
            resolver=make_resolver(effective.resolver),
            udp_possible=udp_scan_possible(),
            progress=progress,
        )
    options = SessionOptions(
        history=effective.history,
        command=_command_line(sys.argv[1:], args),
        targets=[*effective.plan.addresses, *effective.plan.hostnames],
        compare=args.compare,
        need_diff=effective.thresholds.fail_on_new is not None or effective.metrics is not None,
        accepted=effective.accepted,
        notify=effective.notify,
    )
    # A signal is honoured where the session looks for it, never in the middle of a write
    # (session.Interrupts); only a second one stops everything at once.
    with Interrupts() as interrupts, interrupts.deferred():
        try:
            try:
                outcome = run_session(auditor, options, interrupts)
            finally:
                _stop(progress)  # before any message: no bar drawn over it, cursor back
            code = _finish(outcome, args, effective)
        except KeyboardInterrupt:
            print(
                f"exposure-audit: interrupted again by {interrupts.name or 'a signal'}: stopped"
                " at once; what was not written yet is lost (the history lists the run as"
                " interrupted)",
                file=sys.stderr,
            )
            return EXIT_RUN
        if interrupts.received is not None and not outcome.interrupted:
            print(
                f"exposure-audit: interrupted by {interrupts.name} while writing the report; "
                "the run finished and is stored",
                file=sys.stderr,
            )
            return EXIT_RUN
    return code


def _command_line(argv: list[str], args: argparse.Namespace) -> str:
    """The command as stored in the history, with the webhook URL cut to its origin (its path
    is the credential of a chat webhook) and each ``--notify`` URL to its scheme (Apprise URLs
    carry their token anywhere), however the flag was spelt (``--webhook=URL``, ``--webh
    URL``)."""
    words = ["exposure-audit", *argv]
    if args.webhook:
        words = [w.replace(args.webhook, redact_url(args.webhook)) for w in words]
    for index, url in enumerate(args.notify or (), 1):
        words = [w.replace(url, shown_url(url, index).split(" ", 1)[1]) for w in words]
    return " ".join(words)


def _print_dry_run(effective: _Effective) -> None:
    """What the run would scan. Up to :data:`_LISTED` addresses are listed one by one; more
    are shown as CIDR blocks (a /8 is one line, not 16 million)."""
    plan = effective.plan
    count = len(plan.addresses)
    names = plural(len(plan.hostnames), "name")
    print(f"{plural(count, 'address')}, {names} to resolve")
    if count <= _LISTED or not isinstance(plan.addresses, AddressRanges):
        for address in plan.addresses:
            print(f"address {address}")
    else:
        for network in plan.addresses.networks():
            print(f"range {network} ({network.num_addresses:,} addresses)")
    for name in plan.hostnames:
        print(f"name {name}")
    print(f"ports: {effective.settings.ports.describe()}")
    print(f"discovery: {effective.settings.discovery.describe()}")
    http = effective.settings.http
    print(
        f"bounds: host-timeout {effective.settings.host_timeout:g} s, request-timeout "
        f"{http.request_timeout:g} s, max-body {http.max_body_bytes} bytes"
    )
    print(f"history: {effective.history or 'off'}")
    if effective.metrics is not None:
        print(f"metrics: {effective.metrics}")
    if effective.notify is not None and effective.notify.apprise is not None:
        shown = [shown_url(u, i) for i, u in enumerate(effective.notify.apprise.urls, 1)]
        print(f"apprise: {', '.join(shown)}")
    if effective.cluster is not None:
        cluster = effective.cluster
        vantages = f", vantages {', '.join(cluster.vantages)}" if cluster.vantages else ""
        print(f"cluster: {cluster.address}, blocks of {cluster.block_size} addresses{vantages}")


def _render(outcome: SessionOutcome, args: argparse.Namespace) -> str:
    width = report_width(args.output)
    if args.format == "html":
        return render_report(
            outcome.report,
            "html",
            trend=_trend(outcome),
            diff=outcome.diff if args.compare else None,
        )
    if not args.compare:
        return render_report(outcome.report, args.format, run_id=outcome.run_id, width=width)
    # The table shows the changes right after its verdict (render_compared).
    return render_compared(
        outcome.report, args.format, outcome.diff, run_id=outcome.run_id, width=width
    )


def _trend(outcome: SessionOutcome) -> list[TrendPoint]:
    """The history's runs up to this one, for the HTML trend chart (none without history)."""
    if outcome.history is None:
        return []
    try:
        with HistoryStore(outcome.history, busy_timeout=history_busy_timeout()) as store:
            return trend_of(store.runs())
    except StoreError:
        return []  # the report matters more than its chart: the store's trouble is reported


def _finish(outcome: SessionOutcome, args: argparse.Namespace, effective: _Effective) -> int:
    """Write the report, say on stderr what went wrong, and give the exit code: 3 when the run
    was interrupted, could not finish or be written or stored, or audited no host at all."""
    summary = verdict(outcome.report, outcome.diff if args.compare else None, compared=args.compare)
    code = emit(_render(outcome, args), args.output, verdict=summary)
    if effective.metrics is not None and not write_metrics(effective.metrics, outcome):
        code = EXIT_RUN
    report = outcome.report
    nothing = say_nothing_audited(report)
    for error in [*outcome.store_errors, *outcome.compare_errors]:
        print(f"exposure-audit: history: {error}", file=sys.stderr)
    for delivery in outcome.deliveries:
        if not delivery.delivered:
            print(
                f"exposure-audit: notification by {delivery.channel} to {delivery.target} "
                f"failed after {plural(delivery.attempts, 'attempt')}: {delivery.error}",
                file=sys.stderr,
            )
    if outcome.interrupted:
        by = f" by {outcome.signal}" if outcome.signal else ""
        during = f" during {outcome.interrupted_in}" if outcome.interrupted_in else ""
        stored = ""
        if outcome.run_id is not None and not outcome.store_errors:
            stored = "; the run is in the history" + (
                "" if outcome.interrupted_in == "notifications" else " as interrupted"
            )
        print(
            f"exposure-audit: interrupted{by}{during}; the report holds what was found{stored}",
            file=sys.stderr,
        )
        return EXIT_RUN
    if code != EXIT_OK or not report.complete or outcome.store_errors or nothing:
        # A run the history could not take in full ends with 3 as well: the report has it.
        for error in report.errors:
            # printable: nmap's stderr and target text may carry terminal escapes
            print(f"exposure-audit: run error: {printable(error, 1000)}", file=sys.stderr)
        return EXIT_RUN
    if outcome.notification_failed and effective.notify and effective.notify.fail_run_on_error:
        return EXIT_RUN
    return EXIT_FINDINGS if effective.thresholds.failed_by(report, outcome.diff) else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the built-in lab on loopback, audit it (no history), print, stop the lab."""
    from ...lab.catalog import demo_ports, start_demo_lab

    check_output(args.output)
    try:
        lab, notes = start_demo_lab(args.network)
    except ValueError as exc:
        raise UsageError(f"--network: {exc}") from None
    except OSError as exc:
        raise RunError(f"the demo lab could not start: {exc.strerror or exc}") from None
    try:
        for line in notes:
            print(f"demo lab: {line}", file=sys.stderr)
        for line in lab.skipped:
            print(f"demo lab: not started: {line}", file=sys.stderr)
        targets = [h.address for h in lab.hosts] + list(_DEMO_NAMES)
        progress = progress_for(args)
        plan = plan_targets([parse_item(t, "demo lab") for t in targets], allow_private=True)
        auditor = Auditor(
            plan,
            AuditSettings(ports=demo_ports(lab), host_timeout=30.0),
            scanner=NmapScanner(),
            resolver=make_resolver(lab.resolver),
            udp_possible=udp_scan_possible(),
            progress=progress,
        )
        try:
            outcome = run_session(
                auditor,
                SessionOptions(history=None, command="exposure-audit demo", targets=targets),
            )
        finally:
            _stop(progress)
        text = render_report(outcome.report, args.format, width=report_width(args.output))
        code = emit(text, args.output, verdict=verdict(outcome.report))
    finally:
        lab.stop()
    nothing = say_nothing_audited(outcome.report)
    if outcome.interrupted or code != EXIT_OK or nothing:
        return EXIT_RUN
    # The demo lab is vulnerable on purpose: the demo succeeds when the audit ran.
    return EXIT_OK
