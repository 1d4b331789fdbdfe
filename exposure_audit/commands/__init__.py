"""The CLI's commands, one module each; :mod:`exposure_audit.cli` parses argv and dispatches."""
