"""``exposure-audit grade --nmap-xml FILE [--probe]``: grade an existing nmap run (nmap's own
XML, not a re-scan), optionally adding the HTTP/DSM and UPnP probes on its open ports."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ...errors import UsageError
from ...ports import PortSet
from ...render import render_report
from ...run.grade_import import grade_nmap_xml
from ..settings import merge_settings
from .compare import verdict
from .output import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_RUN,
    check_output,
    emit,
    say_nothing_audited,
)
from .scan import progress_for
from .upnp import read_inventory

__all__ = ["cmd_grade"]


def cmd_grade(args: argparse.Namespace) -> int:
    path = Path(args.nmap_xml)
    inputs = [(path, "nmap XML input")]
    if args.upnp_inventory:
        inputs.append((Path(args.upnp_inventory), "UPnP inventory"))
    check_output(args.output, inputs)
    try:
        xml = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--nmap-xml {path}: {exc.strerror or exc}") from None
    # No config file: flags over the defaults; flags scan has and grade lacks keep theirs.
    merged = merge_settings(args, None)
    scan = merged.scan
    scan.check_bounds("--host-timeout and --request-timeout")
    inventory = read_inventory(scan.upnp_inventory) if scan.upnp_inventory else None
    settings = scan.audit_settings(PortSet(), inventory)  # the nmap run's own ports are graded
    try:
        report = asyncio.run(
            grade_nmap_xml(
                xml,
                source=str(path),
                probe=args.probe,
                settings=settings,
                allow_private=scan.allow_private,
                progress=progress_for(args),
            )
        )
    except KeyboardInterrupt:
        print("exposure-audit: interrupted", flush=True)
        return EXIT_RUN
    code = emit(render_report(report, args.format), args.output, verdict=verdict(report))
    nothing = say_nothing_audited(report)  # an nmap run with no host grades nothing
    if code != EXIT_OK or not report.complete or nothing:
        return EXIT_RUN
    return EXIT_FINDINGS if merged.thresholds.failed_by(report) else EXIT_OK
