"""Probes: the only code that talks to targets (DNS, HTTP/TLS, UPnP); each returns frozen
observations and never changes a target."""
