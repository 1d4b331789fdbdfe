"""``exposure-audit upnp-inventory``, and reading an inventory file for ``scan``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from ...errors import UsageError
from ...probes.http import HttpProbeSettings, make_client
from ...probes.upnp import take_inventory
from ...run.session import Interrupts
from ...text import printable
from ...upnp import Inventory, inventory_from_dict, inventory_to_dict
from .output import EXIT_OK, EXIT_RUN, check_output, emit

__all__ = ["cmd_upnp_inventory", "read_inventory"]


def read_inventory(path: str) -> Inventory:
    """Load an inventory file; :class:`UsageError` naming the file (and field) when bad."""
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


def cmd_upnp_inventory(args: argparse.Namespace) -> int:
    """Inside the LAN: find the IGD (SSDP multicast or ``--igd``), read its mappings."""
    if args.wait <= 0:
        raise UsageError("--wait must be positive")
    check_output(args.output)

    async def take() -> Inventory:
        async with make_client(HttpProbeSettings()) as client:
            return await take_inventory(client, args.igd, wait=args.wait)

    with Interrupts() as interrupts:  # SIGTERM stops it as Ctrl-C does
        try:
            inventory = interrupts.run(take())
        except (KeyboardInterrupt, asyncio.CancelledError):
            by = f" by {interrupts.name}" if interrupts.name else ""
            print(f"exposure-audit: interrupted{by}; nothing was written", file=sys.stderr)
            return EXIT_RUN
    if args.format == "json":
        text = json.dumps(inventory_to_dict(inventory), indent=2) + "\n"
    else:
        text = _inventory_table(inventory)
    code = emit(text, args.output, "inventory")
    if inventory.igd_url is None:
        print(
            "exposure-audit: no Internet gateway answered on the LAN (SSDP); "
            "pass --igd URL if UPnP discovery is filtered",
            file=sys.stderr,
        )
        return EXIT_RUN
    return code if code != EXIT_OK else EXIT_OK


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
