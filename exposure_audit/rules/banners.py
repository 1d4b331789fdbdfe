"""Banner rules: VULN001, a service version with a known-exploited vulnerability.

Reads nmap's ``-sV`` product, version and extra info (``ServiceObservation.product``,
``.version``, ``.banner``) through :mod:`exposure_audit.banners`, which says where the version
came from and how sure it is. One finding per port, however many advisories apply; its
severity is the worst verdict's: critical when the version is certainly affected and the CVE is
in CISA's KEV catalog, high when certainly affected otherwise, medium when only possibly
(a guessed or invisible version, a vendor build, an unknown backport). Web ports are left to
the HTTP rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ..banners import BannerVerdict, Status, assess, sighting_from_nmap
from ..findings import Rule, Severity
from ..observations import HostObservation
from ._base import Match, Registered


def _severity(verdict: BannerVerdict) -> Severity:
    if verdict.status is Status.POSSIBLY:
        return Severity.MEDIUM
    return Severity.CRITICAL if verdict.advisory.kev_listed else Severity.HIGH


def _describe(verdict: BannerVerdict) -> str:
    advisory = verdict.advisory
    kev = f", in CISA KEV since {advisory.kev_date_added}" if advisory.kev_listed else ""
    return f"{advisory.cve} ({advisory.name}{kev}): {verdict.status}, {verdict.reason}"


def _reason(worst: BannerVerdict, severity: Severity) -> str:
    if severity is Severity.CRITICAL:
        return f"{worst.advisory.cve} is certainly affected and listed in CISA KEV"
    if severity is Severity.MEDIUM:
        return "only possibly affected: the version seen does not decide it"
    return ""


def _check_known_exploited(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service in host.open_services():
        if service.http is not None or service.unidentified:
            continue
        sighting = sighting_from_nmap(
            service.product, service.version, service.banner, service.service
        )
        verdicts = assess(sighting) if sighting is not None else ()
        if not verdicts:
            continue
        worst = max(verdicts, key=_severity)
        severity = _severity(worst)
        seen = f"{sighting.seen!r} from {sighting.source}, {sighting.certainty}" if sighting else ""
        yield Match(
            service,
            f"{service.port}/{service.protocol} {seen}: "
            + "; ".join(_describe(v) for v in verdicts),
            severity,
            _reason(worst, severity),
        )


# This topic's rules, in id order; the registry (rules/__init__.py) collects them into RULES.
REGISTERED: tuple[Registered, ...] = (
    Registered(
        Rule(
            "VULN001",
            "Service version with a known-exploited vulnerability",
            Severity.HIGH,
            "The version a service announces (nmap -sV, or its banner) lies in the range of a "
            "flaw attackers exploit: regreSSHion in OpenSSH, the vsftpd 2.3.4 backdoor, "
            "ProFTPD mod_copy, SambaCry, Netatalk, rsync, ESXi's OpenSLP (ESXiArgs). Critical "
            "when the version is certainly affected and CISA's KEV catalog lists the CVE; "
            "medium ('possibly') when the version is guessed, not visible, or a distribution "
            "or vendor build whose backported fix cannot be seen from outside.",
            "Update the service to a fixed release (or the distribution's fixed package, named "
            "in the evidence), then take it off the Internet: reach file sharing, SSH and "
            "hypervisor management through a VPN. Where the verdict is 'possibly', check the "
            "installed package from inside the network.",
            (
                "https://www.cisa.gov/known-exploited-vulnerabilities-catalog",
                "docs/reference/banners.md",
            ),
        ),
        _check_known_exploited,
    ),
)
