"""``exposure-audit grade --nmap-xml FILE [--probe]``: grade an existing nmap run (nmap's own
XML, not a re-scan), optionally adding the HTTP/DSM and UPnP probes on its open ports."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ...errors import UsageError
from ...ports import PortSet
from ...probes.http import HttpProbeSettings
from ...render import render_report
from ...run.audit import AuditSettings
from ...run.grade_import import grade_nmap_xml
from .output import EXIT_FINDINGS, EXIT_OK, EXIT_RUN, emit, say_nothing_audited
from .scan import parse_severity, progress_for
from .upnp import read_inventory

__all__ = ["cmd_grade"]


def cmd_grade(args: argparse.Namespace) -> int:
    path = Path(args.nmap_xml)
    try:
        xml = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--nmap-xml {path}: {exc.strerror or exc}") from None
    if args.host_timeout <= 0 or args.request_timeout <= 0:
        raise UsageError("--host-timeout and --request-timeout must be positive")
    settings = AuditSettings(
        ports=PortSet(),  # the nmap run's own ports are graded
        host_timeout=args.host_timeout,
        http=HttpProbeSettings(
            request_timeout=args.request_timeout,
            identify_timeout=min(HttpProbeSettings.identify_timeout, args.request_timeout),
        ),
        upnp=not args.no_upnp,
        inventory=read_inventory(args.upnp_inventory) if args.upnp_inventory else None,
    )
    fail_on = parse_severity(args.fail_on or "high", "--fail-on")
    try:
        report = asyncio.run(
            grade_nmap_xml(
                xml,
                source=str(path),
                probe=args.probe,
                settings=settings,
                allow_private=args.allow_private,
                progress=progress_for(args),
            )
        )
    except KeyboardInterrupt:
        print("exposure-audit: interrupted", flush=True)
        return EXIT_RUN
    code = emit(render_report(report, args.format), args.output)
    nothing = say_nothing_audited(report)  # an nmap run with no host grades nothing
    if code != EXIT_OK or not report.complete or nothing:
        return EXIT_RUN
    worst = report.worst_severity()
    return (
        EXIT_FINDINGS if fail_on is not None and worst is not None and worst >= fail_on else EXIT_OK
    )
