"""Rules: the judgement layer. Each rule reads a host's observations and yields findings.

One explicit registry (:data:`RULES`, in id order) holds every rule with its metadata; ids are
stable and opaque (``DSM001``), so renaming a title never breaks history or accepted risks.
The advice behind every remediation is the SynoLocker-era one, still true: patch, and never
expose a management interface to the Internet (use a VPN), and turn off UPnP port forwarding
for the NAS on the router.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from ..dsm import AdvisoryVerdict, assess, end_of_life, synolocker_exploitable
from ..findings import Finding, Rule, Severity, finding_id
from ..observations import DsmFingerprint, HostObservation, PortMapping, ServiceObservation
from ..ports import is_management_port
from ..upnp import vulnerable_stack

__all__ = ["RULES", "describe_mapping", "evaluate_host", "rule_by_id"]

_OFF_INTERNET = (
    "Take the DSM management interface off the Internet: remove the router's port forwards for "
    "it, turn off UPnP / automatic port forwarding for the NAS (DSM: Control Panel > External "
    "Access > Router Configuration), and reach DSM through a VPN instead."
)
_PATCH = (
    "Update DSM to the latest release for the model (Control Panel > Update & Restore); if the "
    "model gets no updates any more, keep it off the Internet entirely."
)
_SYNOLOCKER_REF = "https://www.synology.com/zh-tw/security/advisory/SynoLocker"
_SYNOLOGY_SA = "https://www.synology.com/en-global/security/advisory"


@dataclass(frozen=True)
class _Match:
    service: ServiceObservation | None
    evidence: str
    severity: Severity | None = None
    severity_reason: str = ""


_Check = Callable[[HostObservation, datetime], Iterable[_Match]]


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


def _check_dsm_http(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service, dsm in _dsm_services(host):
        if service.http is not None and service.http.scheme == "http":
            yield _Match(
                service,
                f"{_describe_dsm(dsm)} login over plain HTTP on {service.port}/tcp "
                f"(markers: {', '.join(dsm.markers)})",
            )


def _check_dsm_https(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service, dsm in _dsm_services(host):
        if service.http is not None and service.http.scheme == "https":
            yield _Match(
                service,
                f"{_describe_dsm(dsm)} login over HTTPS on {service.port}/tcp "
                f"(markers: {', '.join(dsm.markers)})",
            )


def _check_synolocker(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service, dsm in _dsm_services(host):
        if synolocker_exploitable(dsm.version, dsm.build):
            yield _Match(
                service,
                f"{_describe_dsm(dsm)} is below the SynoLocker fixes (4.0-2259, 4.2-3243, "
                "4.3-3827; DSM 5.0) and reachable on "
                f"{service.port}/tcp: CVE-2013-6955 pre-auth remote code execution",
            )


def _check_advisories(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service, dsm in _dsm_services(host):
        verdicts = assess(dsm)
        eol = end_of_life(dsm.version, dsm.build)
        if not verdicts and eol is None:
            continue
        parts = [f"end of life: {eol}"] if eol else []
        parts += [_describe_verdict(v) for v in verdicts]
        certain = eol is not None or any(v.certain for v in verdicts)
        yield _Match(
            service,
            f"{_describe_dsm(dsm)} on {service.port}/tcp: " + "; ".join(parts),
            Severity.CRITICAL if certain else Severity.HIGH,
            "the build or leaked update level decides it"
            if certain
            else "possibly vulnerable: the update level is not visible remotely",
        )


def _describe_verdict(verdict: AdvisoryVerdict) -> str:
    cves = ", ".join(verdict.cves) or "no CVE"
    fixed = verdict.fixed_in or "no fix for this branch"
    maybe = "" if verdict.certain else "; possibly: update level unknown"
    return f"{verdict.key} ({cves}; fixed in {fixed}{maybe})"


def _check_version_disclosed(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service, dsm in _dsm_services(host):
        if dsm.version is not None or dsm.build is not None:
            source = f" via {dsm.version_source}" if dsm.version_source else ""
            yield _Match(service, f"{_describe_dsm(dsm)} readable without login{source}")


# nmap's service names (from -sV or its port table) for services that must never face the
# Internet: cleartext logins or raw data planes. docs/reference/dsm.md section 4, "NEVER".
_DATA_PLANE: dict[str, tuple[str, Severity]] = {
    "telnet": ("Telnet (cleartext remote login)", Severity.CRITICAL),
    "microsoft-ds": ("SMB file sharing", Severity.CRITICAL),
    "netbios-ssn": ("SMB/NetBIOS file sharing", Severity.CRITICAL),
    "ftp": ("FTP (cleartext logins and data)", Severity.HIGH),
    "afp": ("AFP (Netatalk) file sharing", Severity.HIGH),
    "rsync": ("rsync backup service", Severity.HIGH),
    "nfs": ("NFS file sharing", Severity.HIGH),
    "rpcbind": ("RPC portmapper (NFS)", Severity.HIGH),
    "mountd": ("NFS mountd", Severity.HIGH),
    "iscsi": ("iSCSI target", Severity.HIGH),
    "mysql": ("MariaDB/MySQL database", Severity.HIGH),
    "snmp": ("SNMP", Severity.HIGH),
    "ldap": ("LDAP directory", Severity.HIGH),
}


def _is_web(service: ServiceObservation) -> bool:
    return service.http is not None


def _check_data_plane(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service in host.open_services():
        known = _DATA_PLANE.get(service.service)
        if known is None or _is_web(service):
            continue
        label, severity = known
        product = " ".join(p for p in (service.product, service.version) if p)
        yield _Match(
            service,
            f"{label} reachable on {service.port}/{service.protocol}"
            + (f" ({product})" if product else ""),
            severity,
            f"{service.service} is rated {severity.label}" if severity is not Severity.HIGH else "",
        )


def _check_remote_admin(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service in host.open_services():
        if service.service == "ssh" and not _is_web(service):
            product = " ".join(p for p in (service.product, service.version) if p)
            yield _Match(
                service,
                f"SSH reachable on {service.port}/tcp" + (f" ({product})" if product else ""),
            )
        elif service.http is not None and service.http.srm:
            yield _Match(
                service, f"Synology Router Manager login on {service.port}/{service.http.scheme}"
            )


def _check_certificate(host: HostObservation, now: datetime) -> Iterator[_Match]:
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
            yield _Match(service, f"{service.port}/tcp presents a " + ", ".join(problems))


_UPNP_OFF = (
    "Turn off UPnP on the router (at the very least on its WAN side), turn off DSM's automatic "
    "router configuration (Control Panel > External Access > Router Configuration), and remove "
    "the listed port mappings; forward by hand only what must be public, and nothing that "
    "manages the NAS."
)


def _ssdp_port(host: HostObservation) -> ServiceObservation:
    # SSDP has no nmap-discovered service: findings about it sit on 1900/udp.
    return ServiceObservation(1900, "udp", "open", "ssdp")


def _check_ssdp(host: HostObservation, now: datetime) -> Iterator[_Match]:
    if host.upnp is None or not host.upnp.ssdp:
        return
    first = host.upnp.ssdp[0]
    parts = [f"{len(host.upnp.ssdp)} SSDP answer(s) to M-SEARCH on 1900/udp"]
    if first.server:
        parts.append(f"SERVER {first.server}")
    if first.location:
        parts.append(f"LOCATION {first.location}")
    yield _Match(_ssdp_port(host), "; ".join(parts))


def _check_igd(host: HostObservation, now: datetime) -> Iterator[_Match]:
    upnp = host.upnp
    # Only a gateway's description matters here: a NAS's own device description (DSM's
    # desc-DSM-eth0.xml) has no port-mapping table to read or write.
    if upnp is None or upnp.igd is None or not (upnp.igd.is_gateway or upnp.control_url):
        return
    igd = upnp.igd
    port = urlsplit(igd.url).port or 80
    what = igd.friendly_name or igd.model_name or igd.device_type or "UPnP device"
    evidence = f"device description {igd.url} ({what}) answered from outside"
    if upnp.mappings_readable:
        evidence += (
            f"; control URL {upnp.control_url} answered: {len(upnp.mappings)} port mapping(s) "
            "readable by anyone"
        )
    elif upnp.control_url:
        evidence += f"; control URL {upnp.control_url} did not give its mapping table"
    yield _Match(ServiceObservation(port, "tcp", "open", "upnp"), evidence)


def describe_mapping(mapping: PortMapping) -> str:
    """``5000/TCP -> 192.168.50.10:5000 'DSM 5000' (lease 0 s)``, for evidence and tables."""
    lease = "permanent" if mapping.lease_duration == 0 else f"lease {mapping.lease_duration} s"
    return (
        f"{mapping.external_port}/{mapping.protocol.upper()} -> {mapping.internal_client}:"
        f"{mapping.internal_port} '{mapping.description}' ({lease})"
    )


def _check_forwarded(host: HostObservation, now: datetime) -> Iterator[_Match]:
    source = host.forwarding.source if host.forwarding else "router"
    for service in host.open_services():
        if service.upnp_mapping is not None:
            yield _Match(
                service,
                f"{service.port}/{service.protocol} is forwarded by the UPnP mapping "
                f"{describe_mapping(service.upnp_mapping)} (seen in the {source} table)",
            )


def _check_stack(host: HostObservation, now: datetime) -> Iterator[_Match]:
    if host.upnp is None:
        return
    seen: dict[str, str] = {}
    reliable = False
    for reply in host.upnp.ssdp:
        for verdict in vulnerable_stack(reply.server):
            reliable = reliable or verdict.banner_reliable
            maybe = "" if verdict.banner_reliable else "possibly, "
            seen.setdefault(
                verdict.key,
                f"SERVER '{reply.server}': {verdict.product} {verdict.version} "
                f"({maybe}fixed in {verdict.fixed_in}): {', '.join(verdict.cves)}",
            )
    if seen:
        yield _Match(
            _ssdp_port(host),
            "; ".join(seen.values()),
            None if reliable else Severity.HIGH,
            ""
            if reliable
            else "possibly vulnerable: vendors backport fixes without changing "
            "the version in the banner",
        )


def _check_vantages(host: HostObservation, now: datetime) -> Iterator[_Match]:
    # Only vantages that scanned the port count as "not reachable": one whose audit of the host
    # was cut short, that skipped the port or its protocol (untested_from), or that never
    # reported the host (not in host.vantages) proves nothing.
    for service in host.open_services():
        unreachable = host.unreachable_from(service)
        if not service.reachable_from or not unreachable:
            continue
        evidence = (
            f"{service.port}/{service.protocol} reachable from "
            f"{', '.join(service.reachable_from)}; not from {', '.join(unreachable)}"
        )
        if service.untested_from:
            evidence += f"; not tested from {', '.join(service.untested_from)}"
        yield _Match(service, evidence)


def _check_unidentified_management(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service in host.unidentified_services():
        if is_management_port(service.protocol, service.port):
            yield _Match(
                service,
                f"management port {service.port}/{service.protocol} open, service not "
                f"identified: {service.unidentified}",
            )


def _check_unidentified_other(host: HostObservation, now: datetime) -> Iterator[_Match]:
    for service in host.unidentified_services():
        if not is_management_port(service.protocol, service.port):
            yield _Match(
                service,
                f"{service.port}/{service.protocol} open, service not identified: "
                f"{service.unidentified}",
            )


@dataclass(frozen=True)
class _Registered:
    rule: Rule
    check: _Check


_REGISTRY: tuple[_Registered, ...] = (
    _Registered(
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
    _Registered(
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
    _Registered(
        Rule(
            "DSM003",
            "DSM build exploitable by SynoLocker (CVE-2013-6955)",
            Severity.CRITICAL,
            "DSM 4.0 below 4.0-2259, all of 4.1, 4.2 below 4.2-3243 and 4.3 below 4.3-3827 have a "
            "pre-authentication remote code execution flaw exploited by the SynoLocker ransomware "
            "in August 2014.",
            "Back up the data now, update DSM (at least 4.3-3827, better the latest release), "
            "and " + _OFF_INTERNET[0].lower() + _OFF_INTERNET[1:],
            (_SYNOLOCKER_REF, "https://nvd.nist.gov/vuln/detail/CVE-2013-6955"),
        ),
        _check_synolocker,
    ),
    _Registered(
        Rule(
            "DSM004",
            "DSM below the fix of a pre-authentication advisory, or end of life",
            Severity.CRITICAL,
            "The DSM version read from the box is below the fixed build of a Synology advisory "
            "exploitable without login, or its branch gets no security fixes any more. "
            "When only the unknown update level leaves it open, the finding says 'possibly'.",
            _PATCH + " " + _OFF_INTERNET,
            (_SYNOLOGY_SA,),
        ),
        _check_advisories,
    ),
    _Registered(
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
    _Registered(
        Rule(
            "SVC001",
            "Cleartext or data-plane service reachable from the Internet",
            Severity.HIGH,
            "File-sharing, block-storage, database, directory and cleartext login services "
            "(Telnet, FTP, SMB, AFP, rsync, NFS, iSCSI, MariaDB, SNMP, LDAP) are built for the "
            "LAN; "
            "they carry pre-auth flaws (Netatalk SA-22:06, Samba SA-22:02) and brute-forceable "
            "logins. Telnet and SMB are rated critical.",
            "Close the port on the router (remove the forward or UPnP mapping) and reach the "
            "service through a VPN; turn off Telnet and FTP on the NAS altogether.",
            (),
        ),
        _check_data_plane,
    ),
    _Registered(
        Rule(
            "SVC002",
            "Remote administration reachable from the Internet (SSH, SRM)",
            Severity.MEDIUM,
            "SSH and the Synology Router Manager UI are administration interfaces; botnets "
            "brute-force them (StealthWorker, 2021).",
            "Close the port on the router and use a VPN; if SSH must stay reachable, allow keys "
            "only, disable the admin account and enable DSM's Auto Block.",
            (),
        ),
        _check_remote_admin,
    ),
    _Registered(
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
    _Registered(
        Rule(
            "UNK001",
            "Management port open, service not identified",
            Severity.MEDIUM,
            "A port DSM, SRM or UPnP use for management (5000/5001, SSH, SRM 8000/8001, the "
            "UPnP description and control ports) takes connections, but nothing the scanner "
            "tried identified what answers: a hung or overloaded DSM, a stalled reverse proxy, "
            "a tarpit, or a service that waits for its own protocol. The scanner cannot say it "
            "is safe, so it does not: verify what answers here.",
            "From inside the network, find which device and service the router forwards this "
            "port to (its port-forwarding and UPnP tables) and what listens there. If it is a "
            "management interface, take it off the Internet (remove the forward or UPnP "
            "mapping, reach it through a VPN) and patch it; if nothing should answer, close "
            "the port. Then audit again.",
            (),
        ),
        _check_unidentified_management,
    ),
    _Registered(
        Rule(
            "UNK002",
            "Open port, service not identified",
            Severity.LOW,
            "A port takes connections, but nothing the scanner tried (HTTP, TLS, a wait for a "
            "first banner, nmap -sV) identified what answers. An unidentified service is not a "
            "safe one: it may be anything the router forwards.",
            "Find which device and service the router forwards this port to and what listens "
            "there; close the port if nothing on the Internet needs it, and keep whatever "
            "answers patched. Then audit again.",
            (),
        ),
        _check_unidentified_other,
    ),
    _Registered(
        Rule(
            "UPNP001",
            "SSDP answers M-SEARCH on the Internet-facing address",
            Severity.HIGH,
            "A UPnP device that answers discovery from the Internet tells anyone its stack and "
            "where its description lives (LOCATION often leaks a private LAN address and port), "
            "and can be abused for SSDP reflection (Rapid7 counted 81 million such devices in "
            "2013).",
            _UPNP_OFF,
            ("https://www.rapid7.com/research/report/security-flaws-in-universal-plug-and-play/",),
        ),
        _check_ssdp,
    ),
    _Registered(
        Rule(
            "UPNP002",
            "IGD description or control URL reachable from the Internet",
            Severity.CRITICAL,
            "A router that serves its Internet Gateway Device description and control URL on its "
            "WAN side lets anyone read its port-mapping table and, on bad firmware, add mappings "
            "that forward the Internet into the LAN (Akamai's UPnProxy found 65,000+ routers "
            "abused this way).",
            _UPNP_OFF + " Update the router's firmware.",
            ("https://www.akamai.com/blog/security/upnproxy-blackhat-seo-and-compromised-routers",),
        ),
        _check_igd,
    ),
    _Registered(
        Rule(
            "UPNP003",
            "A service reachable from the Internet is forwarded by a UPnP mapping",
            Severity.MEDIUM,
            "The port was opened by a device on the LAN asking the router over UPnP (DSM's router "
            "configuration does this for 5000/5001), often without the owner knowing. The "
            "service's own findings keep their severity and name the mapping.",
            _UPNP_OFF,
            (),
        ),
        _check_forwarded,
    ),
    _Registered(
        Rule(
            "UPNP004",
            "SSDP SERVER names a UPnP stack with known remote vulnerabilities",
            Severity.CRITICAL,
            "The UPnP stack named in the SSDP answer has published remote code execution or "
            "memory corruption flaws reachable with one UDP packet (Rapid7 2013: MiniUPnPd before "
            "1.4, libupnp before 1.6.18).",
            "Update the router's or device's firmware; until then, "
            + _UPNP_OFF[0].lower()
            + _UPNP_OFF[1:],
            ("https://www.rapid7.com/research/report/security-flaws-in-universal-plug-and-play/",),
        ),
        _check_stack,
    ),
    _Registered(
        Rule(
            "VAN001",
            "Service reachable from some vantage points and not from others",
            Severity.MEDIUM,
            "The same port answered from one vantage point and not from another that scanned "
            "the host to the end: the firewall lets one region or network in and not another. "
            "Such a rule set is inconsistent (a geo-block, a per-region allow-list or security "
            "group, a forward on one path only), and the exposure is as wide as the widest "
            "view: anyone where the port answers can attack it, while the vantages it hides "
            "from give false comfort. The service's own findings keep their severity.",
            "Decide who must reach the service. If nobody outside: close it on the router or "
            "firewall for every source and use a VPN. If some sources: restrict it explicitly "
            "to the intended source addresses rather than relying on what happens to be "
            "filtered on some paths. Then audit again from every vantage point.",
            (),
        ),
        _check_vantages,
    ),
)

RULES: dict[str, Rule] = {entry.rule.id: entry.rule for entry in _REGISTRY}


def rule_by_id(rule_id: str) -> Rule:
    """The rule with this id (case-insensitive); ``KeyError`` naming the known ids otherwise."""
    try:
        return RULES[rule_id.upper()]
    except KeyError:
        raise KeyError(f"no rule {rule_id!r}; known: {', '.join(RULES)}") from None


def evaluate_host(host: HostObservation, now: datetime) -> tuple[Finding, ...]:
    """Run every rule on one host; findings come in rule order, then port order."""
    findings: list[Finding] = []
    for entry in _REGISTRY:
        for match in entry.check(host, now):
            rule = entry.rule
            port = match.service.port if match.service else 0
            protocol = match.service.protocol if match.service else ""
            findings.append(
                Finding(
                    id=finding_id(rule.id, host.address, protocol, port),
                    rule=rule.id,
                    severity=match.severity if match.severity is not None else rule.severity,
                    address=host.address,
                    port=port,
                    protocol=protocol,
                    title=rule.title,
                    evidence=match.evidence,
                    remediation=rule.remediation,
                    severity_reason=match.severity_reason,
                )
            )
    return tuple(_name_mappings(host, findings))


def _name_mappings(host: HostObservation, findings: list[Finding]) -> list[Finding]:
    """A service's own findings keep their severity and name the UPnP mapping behind it."""
    mapped = {
        (s.port, s.protocol): s.upnp_mapping for s in host.services if s.upnp_mapping is not None
    }
    named = []
    for finding in findings:
        mapping = mapped.get((finding.port, finding.protocol))
        if mapping is not None and finding.rule != "UPNP003":
            finding = replace(
                finding, evidence=f"{finding.evidence} [UPnP mapping {describe_mapping(mapping)}]"
            )
        named.append(finding)
    return named
