"""TLS rules (TLS001): the certificate an exposed service presents (Synology's default, expired)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ..findings import Rule, Severity
from ..observations import HostObservation
from ._base import Match, Registered


def _check_certificate(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service in host.open_services():
        cert = service.tls
        if cert is None:
            continue
        problems = []
        if cert.synology_default:
            problems.append(f"Synology default certificate (issuer {cert.issuer})")
        if cert.expired_at(now):
            problems.append(f"expired on {cert.not_after:%Y-%m-%d}")
        if problems:
            yield Match(service, f"{service.port}/tcp presents a " + ", ".join(problems))


# This topic's rules, in id order; the registry (rules/__init__.py) collects them into RULES.
REGISTERED: tuple[Registered, ...] = (
    Registered(
        Rule(
            "TLS001",
            "Default Synology or expired certificate on an exposed service",
            Severity.LOW,
            "A default self-signed certificate (or an expired one) trains users to click through "
            "warnings and identifies the box as a Synology to scanners.",
            "Install a certificate from a public CA (DSM's Let's Encrypt integration: Control "
            "Panel > Security > Certificate) and renew it before it expires.",
            (),
        ),
        _check_certificate,
    ),
)
