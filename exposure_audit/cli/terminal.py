"""How wide the terminal report may be: the CLI decides, the renderers take a number.

The rule (docs/usage.md, "Terminal width"): ``$COLUMNS`` when it holds a positive whole number
(set it to fit a log viewer, or very large to keep every table row on one line); otherwise the
terminal's width when the report goes to standard output and that is a terminal; otherwise
80 columns (a pipe, a file written with ``-o``, a cron mail).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping

from ..render import DEFAULT_WIDTH

__all__ = ["report_width"]


def report_width(output: str | None, environ: Mapping[str, str] | None = None) -> int:
    """The width, in terminal cells, for a table written to ``output`` (``-o``; None or
    ``-`` for standard output)."""
    columns = (os.environ if environ is None else environ).get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if (not output or output == "-") and sys.stdout.isatty():
        # The real terminal's size (COLUMNS is unset or unusable here: asked above).
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH
