"""The CLI's commands, one module each; :mod:`exposure_audit.cli.main` parses argv and
dispatches."""
