"""DSM rules (DSM001-DSM005): the Synology DSM management interface on the Internet.

DSM001 and DSM002: its login reachable over plain HTTP or over HTTPS; DSM003: a build that
SynoLocker exploits; DSM004: a build below a pre-authentication advisory's fix, or end of life;
DSM005: the version or build readable without login. Every check reads the DSM fingerprint the
HTTP probe left on a service; the advisory and end-of-life knowledge is :mod:`exposure_audit.dsm`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ..dsm import AdvisoryVerdict, assess, end_of_life, synolocker_exploitable
from ..findings import Rule, Severity
from ..observations import DsmFingerprint, HostObservation, ServiceObservation
from ._base import Match, Registered

_OFF_INTERNET = (
    "Take the DSM management interface off the Internet: remove the router's port forwards for "
    "it, turn off UPnP / automatic port forwarding for the NAS (DSM: Control Panel > External "
    "Access > Router Configuration), and reach DSM through a VPN instead."
)
_PATCH = (
    "Update DSM to the latest release for the model (Control Panel > Update & Restore); if the "
    "model gets no updates any more, keep it off the Internet entirely."
)
# DSM003 and DSM004 never come alone: every DSM port also gets DSM001 (HTTP) or DSM002 (HTTPS),
# whose remediation is taking DSM off the Internet. Pointing at it, instead of repeating it,
# keeps a "fix first" list to one mention of each action.
_SEE_EXPOSURE = "take DSM off the Internet as DSM001 or DSM002 on the same port says."
_SYNOLOCKER_REF = "https://www.synology.com/en-global/security/advisory/SynoLocker"
_SYNOLOGY_SA = "https://www.synology.com/en-global/security/advisory"


def _dsm_services(host: HostObservation) -> Iterator[tuple[ServiceObservation, DsmFingerprint]]:
    for service in host.open_services():
        if service.dsm is not None:
            yield service, service.dsm


def _describe_dsm(dsm: DsmFingerprint) -> str:
    version = dsm.version or "version unknown"
    build = f"-{dsm.build}" if dsm.build is not None else ""
    update = f" Update {dsm.update}" if dsm.update is not None else ""
    model = f" on {dsm.model}" if dsm.model else ""
    return f"DSM {version}{build}{update}{model}"


def _check_dsm_http(host: HostObservation, now: datetime) -> Iterator[Match]:
    return _dsm_logins(host, "http", "plain HTTP")


def _check_dsm_https(host: HostObservation, now: datetime) -> Iterator[Match]:
    return _dsm_logins(host, "https", "HTTPS")


def _dsm_logins(host: HostObservation, scheme: str, transport: str) -> Iterator[Match]:
    """A match for each DSM login served over ``scheme``; ``transport`` names it in the evidence."""
    for service, dsm in _dsm_services(host):
        if service.http is not None and service.http.scheme == scheme:
            yield Match(
                service,
                f"{_describe_dsm(dsm)} login over {transport} on {service.port}/tcp "
                f"(markers: {', '.join(dsm.markers)})",
            )


def _check_synolocker(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service, dsm in _dsm_services(host):
        if synolocker_exploitable(dsm.version, dsm.build):
            yield Match(
                service,
                f"{_describe_dsm(dsm)} is below the SynoLocker fixes (4.0-2259, 4.2-3243, "
                "4.3-3827; DSM 5.0) and reachable on "
                f"{service.port}/tcp: CVE-2013-6955 pre-auth remote code execution",
            )


def _check_advisories(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service, dsm in _dsm_services(host):
        verdicts = assess(dsm)
        eol = end_of_life(dsm.version, dsm.build)
        if not verdicts and eol is None:
            continue
        parts = [f"end of life: {eol}"] if eol else []
        parts += [_describe_verdict(v) for v in verdicts]
        certain = eol is not None or any(v.certain for v in verdicts)
        yield Match(
            service,
            f"{_describe_dsm(dsm)} on {service.port}/tcp: " + "; ".join(parts),
            Severity.CRITICAL if certain else Severity.HIGH,
            "the build or leaked update level decides it"
            if certain
            else "possibly vulnerable: the update level is not visible remotely",
        )


def _describe_verdict(verdict: AdvisoryVerdict) -> str:
    cves = ", ".join(verdict.cves) or "no CVE"
    # A branch the advisory leaves unfixed has no "fixed in" to name: say that instead.
    fixed = f"fixed in {verdict.fixed_in}" if verdict.fixed_in else "no fix for this branch"
    maybe = "" if verdict.certain else "; possibly: update level unknown"
    return f"{verdict.key} ({cves}; {fixed}{maybe})"


def _check_version_disclosed(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service, dsm in _dsm_services(host):
        if dsm.version is not None or dsm.build is not None:
            source = f" via {dsm.version_source}" if dsm.version_source else ""
            yield Match(service, f"{_describe_dsm(dsm)} readable without login{source}")


# This topic's rules, in id order; the registry (rules/__init__.py) collects them into RULES.
REGISTERED: tuple[Registered, ...] = (
    Registered(
        Rule(
            "DSM001",
            "DSM management interface reachable over plain HTTP",
            Severity.CRITICAL,
            "The DSM login and administration UI is exposed to anyone on the Internet, and over "
            "cleartext HTTP its passwords and session cookies cross the network unencrypted. "
            "SynoLocker (2014) encrypted exactly such boxes.",
            _OFF_INTERNET + " Until then, turn off HTTP access (Control Panel > Network > DSM "
            "Settings: automatically redirect HTTP to HTTPS) and patch.",
            (_SYNOLOCKER_REF,),
        ),
        _check_dsm_http,
    ),
    Registered(
        Rule(
            "DSM002",
            "DSM management interface reachable over HTTPS",
            Severity.HIGH,
            "Every pre-authentication flaw in DSM (SynoLocker, SA-20:26, SA-22:01, SA-24:20) is "
            "reachable by anyone on the Internet while the login UI is exposed; TLS does not help.",
            _OFF_INTERNET,
            (_SYNOLOCKER_REF, _SYNOLOGY_SA),
        ),
        _check_dsm_https,
    ),
    Registered(
        Rule(
            "DSM003",
            "DSM build exploitable by SynoLocker (CVE-2013-6955)",
            Severity.CRITICAL,
            "DSM 4.0 below 4.0-2259, all of 4.1, 4.2 below 4.2-3243 and 4.3 below 4.3-3827 have a "
            "pre-authentication remote code execution flaw exploited by the SynoLocker ransomware "
            "in August 2014.",
            "Back up the data now, update DSM (at least 4.3-3827, better the latest release), "
            "and " + _SEE_EXPOSURE,
            (_SYNOLOCKER_REF, "https://nvd.nist.gov/vuln/detail/CVE-2013-6955"),
        ),
        _check_synolocker,
    ),
    Registered(
        Rule(
            "DSM004",
            "DSM below the fix of a pre-authentication advisory, or end of life",
            Severity.CRITICAL,
            "The DSM version read from the box is below the fixed build of a Synology advisory "
            "exploitable without login, or its branch gets no security fixes any more. "
            "When only the unknown update level leaves it open, the finding says 'possibly'.",
            _PATCH + " " + _SEE_EXPOSURE[0].upper() + _SEE_EXPOSURE[1:],
            (_SYNOLOGY_SA,),
        ),
        _check_advisories,
    ),
    Registered(
        Rule(
            "DSM005",
            "DSM version or build disclosed to unauthenticated clients",
            Severity.LOW,
            "Unauthenticated endpoints tell anyone the exact DSM build, which lets attackers pick "
            "exploits for it without probing.",
            "Keep DSM off the Internet (the endpoints cannot be turned off); "
            + _PATCH[0].lower()
            + _PATCH[1:],
            (),
        ),
        _check_version_disclosed,
    ),
)
