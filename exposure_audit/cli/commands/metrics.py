"""Writing a run's Prometheus metrics (``--metrics FILE``, ``[metrics] path``) for
node_exporter's textfile collector: rendered by :func:`exposure_audit.render.prometheus.
render_metrics`, written atomically (a temporary file in the same directory, then a rename:
the collector never reads half a file, and its name does not end in ``.prom`` meanwhile)."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from ... import __version__
from ...render.prometheus import render_metrics
from ...run.session import SessionOutcome
from .output import write_atomically

__all__ = ["METRICS_MODE", "write_metrics"]

METRICS_MODE = 0o644
"""The mode of a new metrics file: node_exporter runs as its own user and must read it (the
file holds addresses, grades and counts, no evidence; an existing file keeps its mode)."""


def write_metrics(path: Path, outcome: SessionOutcome) -> bool:
    """Write ``outcome``'s metrics to ``path``; False (said on stderr) when it cannot be
    written. New findings come from the session's diff; on a first run with a history all
    findings are new; without a history (or a comparison) the metric is left out."""
    first_run = (
        outcome.diff is None
        and outcome.history is not None
        and outcome.previous_run is None
        and not outcome.compare_errors
        and not outcome.interrupted
    )
    text = render_metrics(
        outcome.report, diff=outcome.diff, first_run=first_run, version=__version__
    )
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = METRICS_MODE
    try:
        write_atomically(target, text)
        with contextlib.suppress(OSError):
            target.chmod(mode)
    except OSError as exc:
        print(
            f"exposure-audit: cannot write the metrics to {path}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return False
    return True
