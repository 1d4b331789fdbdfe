"""``python -m exposure_audit`` runs the command-line interface."""

from exposure_audit.cli.main import main

raise SystemExit(main())
