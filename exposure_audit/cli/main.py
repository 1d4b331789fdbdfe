"""Command-line interface: argument parsing and dispatch. The commands live in
:mod:`exposure_audit.cli.commands`; argv, files, stdout/stderr and exit codes stay on this side.

Exit codes: 0 done, nothing at or above ``--fail-on`` (or, with ``--fail-on-new``, nothing new
or worse at or above it); 1 done, such findings; 2 bad usage or input, nothing scanned; 3 the
run could not run or finish (whatever was found is still written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tabulate import tabulate

from .. import __version__
from ..errors import RunError, UsageError
from ..history.schedule import scan_argv
from ..render import DIFF_FORMATS, REPORT_FORMATS
from ..rules import RULES, rule_by_id
from ..targets import MAX_HOSTS_CAP
from ..timing import PRESETS
from .argtypes import CommandParser, integer, run_ref, seconds
from .commands.grade import cmd_grade
from .commands.history import cmd_diff, cmd_history, cmd_report, cmd_schedule
from .commands.output import EXIT_OK, EXIT_RUN, EXIT_USAGE, check_terminal
from .commands.scan import check_scan_config, cmd_demo, cmd_scan
from .commands.upnp import cmd_upnp_inventory
from .settings import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_FAIL_ON,
    DEFAULT_HOST_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_HOSTS,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SSDP_WAIT,
    MAX_BODY_CAP,
    parse_severity,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="exposure-audit",
        description="Audit Internet exposure from the outside: DSM management ports, NAS "
        "services, UPnP forwards, versions; graded against 'patch, and never expose management'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _scan_parser(
        _command(
            sub,
            "scan",
            "audit addresses, ranges and host names",
            "Audit addresses, CIDR ranges and host names from the outside: port discovery "
            "(nmap), HTTP/TLS/DSM and UPnP probes, version checks; graded, stored in the "
            "history, compared with the last run (docs/usage.md).",
        )
    )

    demo = _command(
        sub,
        "demo",
        "start the built-in lab on loopback and audit it",
        "Start the built-in vulnerable lab on loopback addresses, audit it, print the report "
        "and stop the lab. Exits 0 when the audit ran (the lab is vulnerable on purpose).",
    )
    demo.add_argument(
        "--network",
        metavar="127.X.Y.0/24",
        help="the loopback block for the lab's hosts (default 127.77.0.0/24, or the first "
        "free one of 127.77.1.0/24 ... 127.77.63.0/24 when something listens there)",
    )
    _output_options(demo, REPORT_FORMATS)

    history = _command(
        sub,
        "history",
        "list the stored runs",
        "List the runs in the history store, newest first: grade, findings by severity, "
        "hosts, complete or not.",
    )
    _store_option(history)
    _config_option(history)
    history.add_argument(
        "--limit", type=integer(0), default=None, metavar="N", help="show only the N newest runs"
    )
    _output_options(history, ["table", "json"])
    report = _command(
        sub,
        "report",
        "re-render a stored run",
        "Render a run from the history store again, in any format; --compare adds what "
        "changed since the complete run before it.",
    )
    report.add_argument("run", type=run_ref, metavar="RUN", help="a run id, 'latest' or 'previous'")
    _store_option(report)
    _config_option(report)
    report.add_argument(
        "--compare",
        action="store_true",
        help="also show what changed since the complete run before it (as scan --compare)",
    )
    _output_options(report, REPORT_FORMATS)
    diff = _command(
        sub,
        "diff",
        "what changed between two stored runs",
        "Compare two runs of the history store: new, resolved, changed and not re-checked "
        "findings, hosts and services that appeared or vanished.",
    )
    diff.add_argument(
        "old", nargs="?", type=run_ref, metavar="OLD", help="default: the previous complete run"
    )
    diff.add_argument(
        "new", nargs="?", type=run_ref, metavar="NEW", help="default: the latest complete run"
    )
    _store_option(diff)
    _config_option(diff)
    _output_options(diff, sorted(DIFF_FORMATS))

    schedule = _command(
        sub,
        "schedule",
        "print a weekly cron line or systemd units",
        "Check a config as the weekly 'scan -c FILE --compare' would read it (targets, files "
        "it names, ports, thresholds), then print a crontab line or a systemd service and "
        "timer that run it every Monday at 06:00 (docs/scheduling.md). A bad config exits 2 "
        "and prints nothing.",
    )
    schedule.add_argument(
        "--print",
        choices=("cron", "systemd"),
        required=True,
        help="cron: one crontab line; systemd: a service and a timer unit",
    )
    schedule.add_argument(
        "-c", "--config", required=True, metavar="FILE", help="the TOML config the job scans with"
    )
    schedule.add_argument("--log", metavar="FILE", help="cron: append output to this file")

    inventory = _command(
        sub,
        "upnp-inventory",
        "inside the LAN: read the router's UPnP port mappings (read-only) into a file",
        "Inside the LAN: find the Internet gateway (SSDP, or --igd URL) and read its external "
        "address and UPnP port-mapping table, read-only, into a file that 'scan "
        "--upnp-inventory' ties to what is reachable from outside (docs/upnp.md).",
    )
    inventory.add_argument("--igd", metavar="URL", help="the IGD description URL (skip SSDP)")
    inventory.add_argument(
        "--wait",
        type=seconds,
        default=3.0,
        metavar="SECONDS",
        help="how long to wait for SSDP answers (default 3)",
    )
    _output_options(inventory, ["json", "table"], default="json")

    grade = _command(
        sub,
        "grade",
        "grade an existing nmap XML run (no re-scan)",
        "Grade the hosts and ports of an nmap -oX file without scanning again; --probe adds "
        "the HTTP/TLS/DSM and UPnP probes on its open ports.",
    )
    grade.add_argument("--nmap-xml", required=True, metavar="FILE", help="nmap's -oX output")
    grade.add_argument(
        "--probe",
        action="store_true",
        help="also run the HTTP/TLS/DSM and UPnP probes on its open ports",
    )
    grade.add_argument(
        "--allow-private",
        action="store_true",
        help="with --probe: allow probing non-public addresses",
    )
    grade.add_argument(
        "--host-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"with --probe: per-host deadline (default {DEFAULT_HOST_TIMEOUT:g})",
    )
    grade.add_argument(
        "--request-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"with --probe: per-request HTTP/TLS timeout (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    grade.add_argument("--no-upnp", action="store_true", help="with --probe: no UPnP probes")
    grade.add_argument(
        "--upnp-inventory",
        metavar="FILE",
        help="mappings taken inside with upnp-inventory, to tie to the open ports",
    )
    grade.add_argument(
        "--fail-on",
        default=None,
        metavar="SEVERITY",
        help=f"exit 1 when a finding reaches it (default {DEFAULT_FAIL_ON.label}; 'never')",
    )
    _output_options(grade, REPORT_FORMATS)

    rules = _command(
        sub,
        "rules",
        "list every rule",
        "List every rule: its stable id, default severity and title.",
    )
    rules.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format (default table)"
    )
    explain = _command(
        sub,
        "explain",
        "show one rule in full",
        "Show one rule in full: severity, why it matters, remediation and references.",
    )
    explain.add_argument("rule", metavar="RULE_ID", help="a rule id, e.g. DSM001")
    return parser


def _command(
    sub: argparse._SubParsersAction[CommandParser],
    name: str,
    summary: str,
    description: str,
) -> argparse.ArgumentParser:
    """A subcommand with its one-line ``summary`` (the command list) and its ``description``
    (its own --help)."""
    return sub.add_parser(name, help=summary, description=description)


def _scan_parser(scan: argparse.ArgumentParser) -> None:
    scan.add_argument("targets", nargs="*", metavar="TARGET", help="address, CIDR or host name")
    scan.add_argument("-c", "--config", metavar="FILE", help="a TOML config (flags override it)")
    scan.add_argument(
        "-i",
        "--input-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read targets from FILE (one per line, # comments)",
    )
    scan.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="ITEM",
        help="never scan this address, range or name (repeatable)",
    )
    scan.add_argument(
        "--exclude-file",
        action="append",
        default=[],
        metavar="FILE",
        help="never scan what FILE lists (one item per line, # comments; repeatable)",
    )
    scan.add_argument(
        "--allow-private",
        action="store_true",
        help="allow non-public targets (private, loopback, documentation, ...)",
    )
    scan.add_argument(
        "--max-hosts",
        type=integer(1, MAX_HOSTS_CAP),
        default=None,
        metavar="N",
        help=f"refuse ranges expanding past N addresses (default {DEFAULT_MAX_HOSTS})",
    )
    scan.add_argument(
        "--dry-run", action="store_true", help="print the effective targets and ports, scan nothing"
    )
    scan.add_argument(
        "-p",
        "--ports",
        metavar="SPEC",
        help="ports to scan, e.g. 22,80,5000-5001,U:161 (default: Synology and console set)",
    )
    scan.add_argument("--resolver", metavar="HOST[:PORT]", help="DNS server to ask")
    scan.add_argument(
        "--host-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"per-host deadline (default {DEFAULT_HOST_TIMEOUT:g})",
    )
    scan.add_argument(
        "--request-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"per-request HTTP/TLS timeout (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    scan.add_argument(
        "--max-body",
        type=integer(None, MAX_BODY_CAP),
        default=None,
        metavar="BYTES",
        help="bytes read of one HTTP body, counted after decompression "
        f"(default {DEFAULT_MAX_BODY})",
    )
    scan.add_argument(
        "--timing",
        choices=list(PRESETS),
        default=None,
        help="discovery pace: polite, default or fast (docs/performance.md)",
    )
    scan.add_argument(
        "--rate",
        type=integer(),
        default=None,
        metavar="PROBES/S",
        help="hold nmap's discovery at this many probes per second",
    )
    scan.add_argument(
        "--retries",
        type=integer(),
        default=None,
        metavar="N",
        help="resend an unanswered probe N times (default 2)",
    )
    scan.add_argument("--no-udp", action="store_true", help="do not scan UDP ports with nmap")
    scan.add_argument(
        "--no-version-detection", action="store_true", help="skip nmap -sV on non-HTTP ports"
    )
    scan.add_argument(
        "--no-upnp",
        action="store_true",
        help="no UPnP probes (SSDP, IGD description, mapping table)",
    )
    scan.add_argument(
        "--ssdp-wait",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="how long to wait for SSDP answers, all targets together "
        f"(default {DEFAULT_SSDP_WAIT:g})",
    )
    scan.add_argument(
        "--upnp-inventory",
        metavar="FILE",
        help="mappings taken inside with upnp-inventory, to tie to what is reachable",
    )
    _store_option(scan)
    scan.add_argument("--no-history", action="store_true", help="do not store this run")
    scan.add_argument(
        "--compare",
        action="store_true",
        help="also show what changed since the latest complete run",
    )
    scan.add_argument(
        "--fail-on-new",
        metavar="SEVERITY",
        help="exit 1 only when a new or worsened finding reaches SEVERITY",
    )
    scan.add_argument(
        "--accepted",
        action="append",
        default=[],
        metavar="FILE",
        help="accepted risks ([[accept]] entries in TOML)",
    )
    scan.add_argument("--webhook", metavar="URL", help="POST a notification here after the run")
    scan.add_argument(
        "--notify",
        action="append",
        default=None,
        metavar="URL",
        help="notify through Apprise (slack://, discord://, ntfy://, tgram://, json://...; "
        "repeatable; replaces the config's [notify.apprise] URLs; needs exposure-audit[notify])",
    )
    scan.add_argument(
        "--metrics",
        metavar="FILE",
        help="write the run as Prometheus metrics here, atomically (node_exporter's textfile "
        "collector reads *.prom)",
    )
    _output_options(scan, REPORT_FORMATS)
    scan.add_argument(
        "--fail-on",
        default=None,
        metavar="SEVERITY",
        help=f"exit 1 when a finding reaches it (default {DEFAULT_FAIL_ON.label}; 'never')",
    )
    cluster = scan.add_argument_group("scale-out on a Dask cluster (docs/cluster.md)")
    cluster.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="audit on the workers of this Dask scheduler, tcp://HOST:PORT or tls://HOST:PORT",
    )
    cluster.add_argument(
        "--block-size",
        type=integer(),
        default=None,
        metavar="N",
        help=f"addresses per block a worker audits (default {DEFAULT_BLOCK_SIZE})",
    )
    cluster.add_argument(
        "--vantages",
        metavar="NAME,NAME",
        help="audit every block from each vantage (workers with resource vantage-NAME) "
        "and merge what they saw",
    )
    cluster.add_argument(
        "--local",
        action="store_true",
        help="run on this machine even though the config names a [cluster]",
    )


def _store_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--history", metavar="PATH", help="the history store (default: the user data dir)"
    )


def _config_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="use the history store this TOML config names ([history] path), as scan -c does",
    )


def _output_options(
    cmd: argparse.ArgumentParser, formats: Iterable[str], default: str = "table"
) -> None:
    names = list(formats)
    cmd.add_argument(
        "--format",
        choices=names,
        default=default,
        help=f"output format (default {default})",
    )
    cmd.add_argument("-o", "--output", metavar="FILE", help="write here (atomically)")
    cmd.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    cmd.add_argument(
        "--progress", action="store_true", help="show progress even when stderr is not a terminal"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "scan": cmd_scan,
        "demo": cmd_demo,
        "history": cmd_history,
        "report": cmd_report,
        "diff": cmd_diff,
        "schedule": _cmd_schedule,
        "upnp-inventory": cmd_upnp_inventory,
        "grade": cmd_grade,
        "rules": _cmd_rules,
        "explain": _cmd_explain,
    }
    try:
        if getattr(args, "fail_on", None) is not None:
            parse_severity(args.fail_on, "--fail-on")  # fail fast, before anything runs
        if not getattr(args, "dry_run", False):  # markup for a terminal: refused before any work
            check_terminal(getattr(args, "format", None), getattr(args, "output", None))
        return commands[args.command](args)
    except UsageError as exc:
        print(f"exposure-audit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"exposure-audit: run failed: {exc}", file=sys.stderr)
        return EXIT_RUN


def _cmd_schedule(args: argparse.Namespace) -> int:
    """``schedule --print``, once the config holds up as the job will run it: exactly the
    scheduled command line, parsed by the scan's own parser."""
    config = Path(args.config).resolve()
    try:
        command = scan_argv(config)
    except ValueError as exc:
        raise UsageError(f"-c {args.config}: {exc}") from None
    scan_args = _parser().parse_args(command[command.index("scan") :])
    try:
        warnings = check_scan_config(scan_args)
    except UsageError as exc:
        raise UsageError(f"not scheduled: the weekly scan would fail: {exc}") from None
    for warning in warnings:
        print(f"exposure-audit: warning: {warning}", file=sys.stderr)
    return cmd_schedule(args)


def _cmd_rules(args: argparse.Namespace) -> int:
    if args.format == "json":
        rows = [
            {
                "id": r.id,
                "title": r.title,
                "severity": r.severity.label,
                "rationale": r.rationale,
                "remediation": r.remediation,
                "references": list(r.references),
            }
            for r in RULES.values()
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(
        tabulate(
            [[r.id, r.severity.label, r.title] for r in RULES.values()],
            headers=["id", "severity", "title"],
        )
    )
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    try:
        rule = rule_by_id(args.rule)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    print(f"{rule.id}: {rule.title}\nseverity: {rule.severity.label}\n")
    print(f"why: {rule.rationale}\n\nremediation: {rule.remediation}")
    for ref in rule.references:
        print(f"reference: {ref}")
    return EXIT_OK
