"""``python -m exposure_audit`` runs the command-line interface."""

from exposure_audit.cli.entry import run

raise SystemExit(run())
