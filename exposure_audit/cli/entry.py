"""The program's entry point (``exposure-audit`` and ``python -m exposure_audit``): runs
:func:`exposure_audit.cli.main.main` and turns what can interrupt any command at any moment
into a one-line message and an exit code, never a traceback.

It imports the command-line interface itself, inside the ``try``: a Ctrl-C in the first
fraction of a second (while the libraries are still loading) is then handled like any other.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["run"]

_EXIT_RUN = 3  # as cli.commands.output.EXIT_RUN: the command could not run or finish


def run() -> int:
    """Run the CLI on ``sys.argv``; returns the exit code."""
    try:
        from .main import main

        return main()
    except KeyboardInterrupt:
        # Only outside a scan: the scan handles its own signals (run.session.Interrupts).
        print("exposure-audit: interrupted by SIGINT; stopped", file=sys.stderr)
        # Leave at once, with our code: CPython remembers a KeyboardInterrupt raised in code
        # that exec() compiled from a string (dataclasses, namedtuple: most of the imports)
        # and would otherwise kill the process with SIGINT at exit, however it was handled.
        # Nothing is left to finish here: whatever was open was closed as the exception rose.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(_EXIT_RUN)
    except BrokenPipeError:
        # stdout was closed early (``| head``): nothing more can be said there.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _EXIT_RUN
