"""Service rules: what answers on an open port, other than DSM's own interface.

SVC001: a cleartext or data-plane service (Telnet, SMB, FTP, NFS, ...); SVC002: remote
administration (SSH, the Synology Router Manager login); UNK001 and UNK002: an open port that
nothing identified, on a management port or any other. SVC001 and SVC002 read nmap's service
names, so they judge imported nmap scans (``grade``) too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ..findings import Rule, Severity
from ..observations import HostObservation, ServiceObservation
from ..ports import is_management_port
from ._base import Match, Registered

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


def _product_suffix(service: ServiceObservation) -> str:
    """`` (OpenSSH 9.6p1)``: nmap's product and version for evidence; empty when it named none."""
    product = " ".join(p for p in (service.product, service.version) if p)
    return f" ({product})" if product else ""


def _check_data_plane(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service in host.open_services():
        known = _DATA_PLANE.get(service.service)
        if known is None or _is_web(service):
            continue
        label, severity = known
        yield Match(
            service,
            f"{label} reachable on {service.port}/{service.protocol}{_product_suffix(service)}",
            severity,
            f"{service.service} is rated {severity.label}" if severity is not Severity.HIGH else "",
        )


def _check_remote_admin(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service in host.open_services():
        if service.service == "ssh" and not _is_web(service):
            yield Match(service, f"SSH reachable on {service.port}/tcp{_product_suffix(service)}")
        elif service.http is not None and service.http.srm:
            yield Match(
                service, f"Synology Router Manager login on {service.port}/{service.http.scheme}"
            )


def _check_unidentified_management(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service in host.unidentified_services():
        if is_management_port(service.protocol, service.port):
            yield Match(
                service,
                f"management port {service.port}/{service.protocol} open, service not "
                f"identified: {service.unidentified}",
            )


def _check_unidentified_other(host: HostObservation, now: datetime) -> Iterator[Match]:
    for service in host.unidentified_services():
        if not is_management_port(service.protocol, service.port):
            yield Match(
                service,
                f"{service.port}/{service.protocol} open, service not identified: "
                f"{service.unidentified}",
            )


# This topic's rules, in id order; the registry (rules/__init__.py) collects them into RULES.
REGISTERED: tuple[Registered, ...] = (
    Registered(
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
    Registered(
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
    Registered(
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
    Registered(
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
)
