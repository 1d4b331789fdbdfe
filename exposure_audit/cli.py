"""Command-line interface: argv, files, stdout/stderr and exit codes live here and only here.

Exit codes: 0 done, nothing at or above ``--fail-on``; 1 done, findings at or above it;
2 bad usage or input, nothing scanned; 3 the run could not run or finish (whatever was found
is still written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import __version__
from .audit import Auditor, AuditSettings, Progress
from .errors import RunError, UsageError
from .findings import Severity
from .ports import PortSet, default_ports, parse_ports
from .probes.dns import make_resolver
from .probes.http import HttpProbeSettings, make_client
from .probes.nmap_scan import NmapScanner, udp_scan_possible
from .probes.upnp import take_inventory
from .render import FORMATS, render
from .report import Report
from .rules import RULES, rule_by_id
from .targets import (
    DEFAULT_MAX_HOSTS,
    TargetPlan,
    TargetSpec,
    parse_item,
    parse_lines,
    plan_targets,
)
from .text import printable
from .upnp import Inventory, inventory_from_dict, inventory_to_dict

__all__ = ["main"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_RUN = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exposure-audit",
        description="Audit Internet exposure from the outside: DSM management ports, NAS "
        "services, versions; graded against 'patch, and never expose management'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = sub.add_parser("scan", help="audit addresses, ranges and host names")
    scan.add_argument("targets", nargs="*", metavar="TARGET", help="address, CIDR or host name")
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
    scan.add_argument("--exclude-file", action="append", default=[], metavar="FILE")
    scan.add_argument(
        "--allow-private",
        action="store_true",
        help="allow non-public targets (private, loopback, documentation, ...)",
    )
    scan.add_argument(
        "--max-hosts",
        type=int,
        default=DEFAULT_MAX_HOSTS,
        metavar="N",
        help=f"refuse ranges expanding past N addresses (default {DEFAULT_MAX_HOSTS})",
    )
    scan.add_argument(
        "--dry-run", action="store_true", help="print the effective targets and ports, scan nothing"
    )
    _add_run_options(scan)

    inventory = sub.add_parser(
        "upnp-inventory",
        help="inside the LAN: read the router's UPnP port mappings (read-only) into a file",
    )
    inventory.add_argument("--igd", metavar="URL", help="the IGD description URL (skip SSDP)")
    inventory.add_argument("--format", choices=("json", "table"), default="json")
    inventory.add_argument("-o", "--output", metavar="FILE", help="write it here (atomically)")
    inventory.add_argument(
        "--wait",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="how long to wait for SSDP answers (default 3)",
    )

    demo = sub.add_parser("demo", help="start the built-in lab on loopback and audit it")
    _add_output_options(demo)

    rules = sub.add_parser("rules", help="list every rule")
    rules.add_argument("--format", choices=("table", "json"), default="table")
    explain = sub.add_parser("explain", help="show one rule in full")
    explain.add_argument("rule", metavar="RULE_ID")
    return parser


def _add_run_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "-p",
        "--ports",
        metavar="SPEC",
        help="ports to scan, e.g. 22,80,5000-5001,U:161 (default: Synology set)",
    )
    cmd.add_argument("--resolver", metavar="HOST[:PORT]", help="DNS server to ask")
    cmd.add_argument(
        "--host-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="per-host deadline (default 60)",
    )
    cmd.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="per-request HTTP/TLS timeout (default 10)",
    )
    cmd.add_argument("--no-udp", action="store_true", help="do not scan UDP ports")
    cmd.add_argument(
        "--no-version-detection", action="store_true", help="skip nmap -sV on non-HTTP ports"
    )
    cmd.add_argument(
        "--no-upnp",
        action="store_true",
        help="no UPnP probes (SSDP, IGD description, mapping table)",
    )
    cmd.add_argument(
        "--ssdp-wait",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long to wait for SSDP answers, all targets together (default 2)",
    )
    cmd.add_argument(
        "--upnp-inventory",
        metavar="FILE",
        help="mappings taken inside with upnp-inventory, to tie to what is reachable",
    )
    _add_output_options(cmd)


def _add_output_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--format", choices=sorted(FORMATS), default="table")
    cmd.add_argument("-o", "--output", metavar="FILE", help="write the report here (atomically)")
    cmd.add_argument(
        "--fail-on",
        default="high",
        metavar="SEVERITY",
        help="exit 1 when a finding reaches this severity (default high; 'never')",
    )
    cmd.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    cmd.add_argument(
        "--progress", action="store_true", help="show progress even when stderr is not a terminal"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "rules":
            return _cmd_rules(args.format)
        if args.command == "explain":
            return _cmd_explain(args.rule)
        if args.command == "upnp-inventory":
            return _cmd_upnp_inventory(args)
        fail_on = _fail_on(args.fail_on)
        if args.command == "demo":
            return _cmd_demo(args, fail_on)
        return _cmd_scan(args, fail_on)
    except UsageError as exc:
        print(f"exposure-audit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"exposure-audit: run failed: {exc}", file=sys.stderr)
        return EXIT_RUN


def _fail_on(text: str) -> Severity | None:
    if text.strip().lower() in ("never", "none", "off"):
        return None
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None


def _cmd_rules(fmt: str) -> int:
    if fmt == "json":
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
    from tabulate import tabulate

    print(
        tabulate(
            [[r.id, r.severity.label, r.title] for r in RULES.values()],
            headers=["id", "severity", "title"],
        )
    )
    return EXIT_OK


def _cmd_explain(rule_id: str) -> int:
    try:
        rule = rule_by_id(rule_id)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    print(f"{rule.id}: {rule.title}\nseverity: {rule.severity.label}\n")
    print(f"why: {rule.rationale}\n\nremediation: {rule.remediation}")
    for ref in rule.references:
        print(f"reference: {ref}")
    return EXIT_OK


def _read_items(path: str, what: str) -> list[TargetSpec]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} file {path}: not found") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} file {path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{what} file {path}: {exc.strerror}") from None
    return parse_lines(text.splitlines(), path)


def _plan(args: argparse.Namespace) -> TargetPlan:
    targets = [parse_item(t, f"argument {i}") for i, t in enumerate(args.targets, 1)]
    for path in args.input_file:
        targets += _read_items(path, "targets")
    exclusions = [parse_item(e, f"--exclude {e!r}") for e in args.exclude]
    for path in args.exclude_file:
        exclusions += _read_items(path, "exclude")
    if not targets:
        raise UsageError("no targets: give addresses, ranges or names, or -i FILE")
    if args.max_hosts < 1:
        raise UsageError("--max-hosts must be at least 1")
    return plan_targets(
        targets, exclusions, allow_private=args.allow_private, max_hosts=args.max_hosts
    )


def _settings(args: argparse.Namespace) -> AuditSettings:
    ports: PortSet = parse_ports(args.ports) if args.ports else default_ports()
    for name in ("host_timeout", "request_timeout"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    http = HttpProbeSettings(
        request_timeout=args.request_timeout,
        identify_timeout=min(5.0, args.request_timeout),
    )
    if args.ssdp_wait <= 0:
        raise UsageError("--ssdp-wait must be positive")
    return AuditSettings(
        ports=ports,
        host_timeout=args.host_timeout,
        http=http,
        udp=False if args.no_udp else None,
        version_detection=not args.no_version_detection,
        upnp=not args.no_upnp,
        ssdp_wait=args.ssdp_wait,
        inventory=_read_inventory(args.upnp_inventory) if args.upnp_inventory else None,
    )


def _read_inventory(path: str) -> Inventory:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--upnp-inventory {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--upnp-inventory {path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--upnp-inventory {path}:{exc.lineno}: not JSON ({exc.msg})") from None
    try:
        return inventory_from_dict(data)
    except ValueError as exc:
        raise UsageError(f"--upnp-inventory {path}: {exc}") from None


def _cmd_upnp_inventory(args: argparse.Namespace) -> int:
    if args.wait <= 0:
        raise UsageError("--wait must be positive")

    async def take() -> Inventory:
        async with make_client(HttpProbeSettings()) as client:
            return await take_inventory(client, args.igd, wait=args.wait)

    try:
        inventory = asyncio.run(take())
    except KeyboardInterrupt:
        print("exposure-audit: interrupted", file=sys.stderr)
        return EXIT_RUN
    if args.format == "json":
        text = json.dumps(inventory_to_dict(inventory), indent=2) + "\n"
    else:
        text = _inventory_table(inventory)
    if args.output:
        try:
            _write_atomically(Path(args.output), text)
        except OSError as exc:
            print(
                f"exposure-audit: cannot write {args.output}: {exc.strerror or exc}; "
                "the inventory follows on stdout",
                file=sys.stderr,
            )
            sys.stdout.write(text)
            return EXIT_RUN
    else:
        sys.stdout.write(text)
    if inventory.igd_url is None:
        print(
            "exposure-audit: no Internet gateway answered on the LAN (SSDP); "
            "pass --igd URL if UPnP discovery is filtered",
            file=sys.stderr,
        )
        return EXIT_RUN
    return EXIT_OK


def _inventory_table(inventory: Inventory) -> str:
    from tabulate import tabulate

    rows = [
        [
            m.external_port,
            m.protocol,
            m.internal_client,
            m.internal_port,
            printable(m.description, 60),
            m.lease_duration,
        ]
        for m in inventory.mappings
    ]
    head = (
        f"IGD {printable(inventory.igd_url or 'none found')}; external address "
        f"{inventory.external_address or 'unknown'}; {len(rows)} mapping(s)\n"
    )
    headers = ["external", "protocol", "internal client", "internal port", "description", "lease"]
    return head + tabulate(rows, headers=headers) + "\n"


def _cmd_scan(args: argparse.Namespace, fail_on: Severity | None) -> int:
    plan = _plan(args)
    settings = _settings(args)
    resolver = make_resolver(args.resolver)
    if args.dry_run:
        _print_dry_run(plan, settings)
        return EXIT_OK
    scanner = NmapScanner()
    auditor = Auditor(
        plan,
        settings,
        scanner=scanner,
        resolver=resolver,
        udp_possible=udp_scan_possible(),
        progress=_progress(args),
    )
    return _execute(auditor, args, fail_on)


def _print_dry_run(plan: TargetPlan, settings: AuditSettings) -> None:
    print(f"{len(plan.addresses)} address(es), {len(plan.hostnames)} name(s) to resolve")
    for address in plan.addresses:
        print(f"address {address}")
    for name in plan.hostnames:
        print(f"name {name}")
    print(f"ports: {settings.ports.describe()}")


def _execute(auditor: Auditor, args: argparse.Namespace, fail_on: Severity | None) -> int:
    interrupted = False
    try:
        report = asyncio.run(_run_with_signals(auditor))
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
        report = auditor.report(complete=False)
    code = _write_report(report, args)
    if interrupted:
        print("exposure-audit: interrupted; the report holds what was found", file=sys.stderr)
        return EXIT_RUN
    if code != EXIT_OK or not report.complete:
        for error in report.errors:
            print(f"exposure-audit: run error: {error}", file=sys.stderr)
        return EXIT_RUN
    worst = report.worst_severity()
    return (
        EXIT_FINDINGS if fail_on is not None and worst is not None and worst >= fail_on else EXIT_OK
    )


async def _run_with_signals(auditor: Auditor) -> Report:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await auditor.run()


def _write_report(report: Report, args: argparse.Namespace) -> int:
    text = render(report, args.format)
    if not args.output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        _write_atomically(Path(args.output), text)
    except OSError as exc:
        print(
            f"exposure-audit: cannot write {args.output}: {exc.strerror or exc}; "
            "the report follows on stdout",
            file=sys.stderr,
        )
        sys.stdout.write(text)
        return EXIT_RUN
    return EXIT_OK


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: readers never see half."""
    directory = path.parent if str(path.parent) else Path()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def _progress(args: argparse.Namespace, stream: TextIO = sys.stderr) -> Progress | None:
    from .progress import make_progress

    return make_progress(stream, quiet=args.quiet, forced=args.progress)


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


def _cmd_demo(args: argparse.Namespace, fail_on: Severity | None) -> int:
    from .lab import demo_lab

    lab = demo_lab()
    try:
        lab.start()
    except OSError as exc:
        raise RunError(f"the demo lab could not start: {exc}") from None
    try:
        for line in lab.skipped:
            print(f"demo lab: not started: {line}", file=sys.stderr)
        targets = [h.address for h in lab.hosts] + list(_DEMO_NAMES)
        plan = plan_targets([parse_item(t, "demo lab") for t in targets], allow_private=True)
        settings = AuditSettings(ports=default_ports(), host_timeout=30.0)
        auditor = Auditor(
            plan,
            settings,
            scanner=NmapScanner(),
            resolver=make_resolver(lab.resolver),
            udp_possible=udp_scan_possible(),
            progress=_progress(args),
        )
        code = _execute(auditor, args, None)
    finally:
        lab.stop()
    # The demo lab is vulnerable on purpose: the demo succeeds when the audit ran.
    return code if code == EXIT_RUN else EXIT_OK
