"""``exposure-audit upnp-inventory``, and reading an inventory file for ``scan``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ...errors import UsageError
from ...probes.http import HttpProbeSettings, make_client
from ...probes.upnp import take_inventory
from ...run.session import Interrupts
from ...text import printable
from ...upnp import Inventory, inventory_from_dict, inventory_to_dict
from .output import EXIT_RUN, STDOUT, check_output, emit

__all__ = ["check_igd_url", "cmd_upnp_inventory", "read_inventory"]


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
    if args.igd is not None:
        check_igd_url(args.igd)
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
        text = _inventory_table(inventory, args.igd)
    code = emit(text, args.output, "inventory")
    if args.format != "table" or (args.output and args.output != STDOUT):
        # The table on stdout lists them itself; elsewhere the terminal still hears of them.
        for error in inventory.errors:
            print(f"exposure-audit: {printable(error, 1000)}", file=sys.stderr)
    if inventory.igd_url is None:
        if args.igd is None:
            why = (
                "no Internet gateway answered on the LAN (SSDP); "
                "pass --igd URL if UPnP discovery is filtered"
            )
        else:
            why = f"the gateway at --igd {printable(args.igd, 200)} could not be read"
        print(f"exposure-audit: {why}", file=sys.stderr)
        return EXIT_RUN
    if inventory.errors:
        # A table read after failed calls may be empty or cut short: never a clean "0".
        print(
            f"exposure-audit: the inventory may be incomplete: {_errors(inventory)}",
            file=sys.stderr,
        )
        return EXIT_RUN
    return code


def check_igd_url(url: str) -> None:
    """:class:`UsageError` unless ``url`` is an absolute http(s) URL with a host (and, if
    given, a port 1-65535): the IGD description to read."""
    where = f"--igd {printable(url, 200)}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{where}: not a URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(
            f"{where}: give the description URL, e.g. http://192.168.1.1:5000/rootDesc.xml"
        )
    if not parts.hostname:
        raise UsageError(f"{where}: the URL has no host")
    if port == 0:
        raise UsageError(f"{where}: port 0")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise UsageError(f"{where}: spaces or control characters in the URL")


def _errors(inventory: Inventory) -> str:
    count = len(inventory.errors)
    return f"{count} error{'' if count == 1 else 's'} reading the gateway"


def _inventory_table(inventory: Inventory, asked: str | None) -> str:
    """The inventory as a table under a one-line head; what could not be read is listed
    after it (``asked``: the ``--igd`` URL, if given)."""
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
    if inventory.igd_url is None:
        count = "no mapping table read"
    elif inventory.errors and not rows:
        count = f"no mapping read: {_errors(inventory)}"
    elif inventory.errors:
        count = f"{len(rows)} mapping(s) read, {_errors(inventory)}: the table may be incomplete"
    else:
        count = f"{len(rows)} mapping(s)"
    if inventory.igd_url is not None:
        igd = printable(inventory.igd_url)
    else:
        igd = f"{printable(asked)}: not read" if asked else "none found"
    head = f"IGD {igd}; external address {inventory.external_address or 'unknown'}; {count}\n"
    text = head
    if rows:
        headers = [
            "external",
            "protocol",
            "internal client",
            "internal port",
            "description",
            "lease",
        ]
        text += tabulate(rows, headers=headers) + "\n"
    if inventory.errors:
        text += "errors:\n" + "".join(f"  {printable(e, 1000)}\n" for e in inventory.errors)
    return text
