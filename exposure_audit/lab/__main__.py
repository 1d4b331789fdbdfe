"""``python -m exposure_audit.lab {demo|corpus|management|bench [--count N]|perimeter}
[--network CIDR]``
or ``python -m exposure_audit.lab nas [--address ADDR]``: run a lab in the foreground.

``nas`` and ``perimeter`` are for network-namespace labs: ``nas`` is one DSM 4.3 box on
``ADDR`` (default 192.168.50.10), ``perimeter`` 64 hosts scattered over a /22 (default
198.18.0.0/22, which the namespace must route to itself: ``ip route add local 198.18.0.0/22
dev lo``); run them with ``ip netns exec NS`` inside the namespace that holds the addresses.

Prints one JSON line (``resolver``, ``hosts`` with ``name``, ``address``, ``ports`` actually
listening, ``expect_grade``, ``expect_dsm``, ``expect_console``, and ``skipped``), then
``ready``, and serves until SIGTERM, SIGINT or end of standard input (a parent holding a
pipe to stdin stops the lab by closing it; pass ``--ignore-stdin`` when stdin is /dev/null).
Exit status 0 on a clean stop, 1 when the lab could not start (the reason on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from types import FrameType

from .catalog import bench_lab, corpus_lab, demo_lab, management_lab, nas_lab, perimeter_lab
from .runtime import Lab


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exposure_audit.lab",
        description="Run a built-in lab on loopback (nas, perimeter: inside a network namespace).",
    )
    parser.add_argument(
        "lab", choices=("demo", "corpus", "management", "bench", "nas", "perimeter")
    )
    parser.add_argument("--count", type=int, default=254, help="bench: hosts 1-254")
    parser.add_argument(
        "--network",
        help="another loopback /24 for the hosts (default: demo 127.77.0.0/24, corpus "
        "127.78.0.0/24, management 127.76.0.0/24, bench 127.88.0.0/24; the demo then drops "
        "its [::1] side); perimeter: "
        "a /22, loopback or private (default 198.18.0.0/22, inside a network namespace)",
    )
    parser.add_argument(
        "--address",
        help="nas: the NAS's address inside the network namespace the lab runs in "
        "(default 192.168.50.10; private or documentation addresses only)",
    )
    parser.add_argument(
        "--ignore-stdin", action="store_true", help="do not stop at end of standard input"
    )
    args = parser.parse_args(argv)
    if args.address and args.lab != "nas":
        parser.error("--address is for the nas lab only")
    if args.network and args.lab == "nas":
        parser.error("the nas lab takes --address, not --network")
    return args


def _build(args: argparse.Namespace) -> Lab:
    if args.lab == "demo":
        return demo_lab(args.network, None) if args.network else demo_lab()
    if args.lab == "nas":
        return nas_lab(args.address) if args.address else nas_lab()
    if args.lab == "perimeter":
        return perimeter_lab(args.network) if args.network else perimeter_lab()
    if args.lab == "management":
        return management_lab(args.network) if args.network else management_lab()
    if args.lab == "corpus":
        return corpus_lab(args.network) if args.network else corpus_lab()
    return bench_lab(args.count, args.network) if args.network else bench_lab(args.count)


def _watch_stdin(done: threading.Event) -> None:
    # os.read returns what is there (no line buffering) and b"" only at end of input.
    with contextlib.suppress(OSError, ValueError):
        while os.read(sys.stdin.fileno(), 4096):
            pass
    done.set()


def main(argv: list[str] | None = None) -> int:
    """Run the lab named in ``argv`` until told to stop; the process exit status."""
    args = _parse(argv)
    try:
        lab = _build(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        lab.start()
    except (OSError, RuntimeError) as exc:
        print(f"error: the lab could not start: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(lab.describe()), flush=True)
        print("ready", flush=True)
        if not args.ignore_stdin:
            threading.Thread(target=_watch_stdin, args=(done,), daemon=True).start()
        while not done.wait(0.5):
            pass  # wake up regularly so signal handlers run promptly
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
