"""Throwaway TLS certificates for the lab, generated in memory at start-up.

Each *profile* imitates what one kind of box presents (docs/reference/dsm.md section 6.3):

``dsm-legacy``
    DSM 4.x's shipped self-signed certificate, ``CN=synology.com, OU=FTP Team, O=Synology Inc.,
    L=Taipei, ST=Taiwan, C=TW``, expired in 2019 (recog x509_subjects.xml matches this subject).
``dsm-default``
    DSM 6/7's default: ``CN=synology, O=Synology Inc., C=TW`` with SAN ``synology``, issued by a
    generated ``CN=Synology Inc. CA, O=Synology Inc., L=Taipei, C=TW``; currently valid.
``example``
    A plain web server: ``CN=www.example.net`` (SAN ``www.example.net``, ``example.net``)
    from a generated ``CN=Example Lab CA, O=Example Lab``; currently valid.
``qnap``
    A self-signed ``CN=QNAP NAS`` certificate for the QNAP negative; currently valid.
``proxmox``, ``vmware-esxi``, ``vmware-vcenter``
    The default issuers the management catalog recognises (docs/reference/management.md
    section 4): a leaf from ``CN=Proxmox Virtual Environment, O=PVE Cluster Manager CA``, from
    ``O=VMware Installer``, from a VMCA ``CN=CA, DC=vsphere, DC=local, OU=VMware Engineering``.
``supermicro``, ``unifi``
    Self-signed default subjects: ``O=Super Micro Computer, CN=IPMI`` (a Supermicro BMC) and
    ``O=Ubiquiti Inc., OU=UniFi, CN=UniFi`` (a UniFi Network controller).

Keys are EC P-256 (milliseconds to make) and generated once per process; every certificate
is cached too, so a second lab in the same process starts without signing anything.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["PROFILES", "IssuedCertificate", "issue", "server_context"]

PROFILES = (
    "dsm-legacy",
    "dsm-default",
    "example",
    "qnap",
    "proxmox",
    "vmware-esxi",
    "vmware-vcenter",
    "supermicro",
    "unifi",
)

_UTC = dt.UTC


@dataclass(frozen=True)
class IssuedCertificate:
    """A server certificate with its key, as PEM.

    ``chain_pem`` holds the leaf first, then the issuing CA when there is one (nginx serves
    the full chain on DSM). ``ca_pem`` is that CA alone, for a client that wants to verify;
    None for a self-signed leaf.
    """

    profile: str
    chain_pem: bytes
    key_pem: bytes
    ca_pem: bytes | None

    @property
    def leaf_pem(self) -> bytes:
        end = b"-----END CERTIFICATE-----\n"
        return self.chain_pem[: self.chain_pem.index(end) + len(end)]


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


@cache
def _key(purpose: str) -> ec.EllipticCurvePrivateKey:
    # One key per purpose ("ca", "leaf") for the whole process: startup must stay fast and
    # nothing in the lab depends on keys being distinct per certificate.
    return ec.generate_private_key(ec.SECP256R1())


def _sign(
    subject: x509.Name,
    issuer: x509.Name,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool,
    sans: tuple[str, ...] = (),
    signer: ec.EllipticCurvePrivateKey,
    public: ec.EllipticCurvePublicKey,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issued_by_ca(
    profile: str, ca_name: x509.Name, leaf_name: x509.Name, sans: tuple[str, ...]
) -> IssuedCertificate:
    now = dt.datetime.now(_UTC)
    ca_key, leaf_key = _key("ca"), _key("leaf")
    ca = _sign(
        ca_name,
        ca_name,
        not_before=now - dt.timedelta(days=400),
        not_after=now + dt.timedelta(days=365 * 20),
        ca=True,
        signer=ca_key,
        public=ca_key.public_key(),
    )
    leaf = _sign(
        leaf_name,
        ca_name,
        not_before=now - dt.timedelta(days=30),
        not_after=now + dt.timedelta(days=365),
        ca=False,
        sans=sans,
        signer=ca_key,
        public=leaf_key.public_key(),
    )
    return IssuedCertificate(profile, _pem(leaf, ca), _key_pem(leaf_key), _pem(ca))


def _self_signed(
    profile: str, name: x509.Name, not_before: dt.datetime, not_after: dt.datetime
) -> IssuedCertificate:
    key = _key("leaf")
    cert = _sign(
        name,
        name,
        not_before=not_before,
        not_after=not_after,
        ca=True,  # `openssl req -x509` marks its self-signed output CA:TRUE, as DSM 4's is
        signer=key,
        public=key.public_key(),
    )
    return IssuedCertificate(profile, _pem(cert), _key_pem(key), None)


# The management lab's consoles: (CA name, leaf name, SAN) of the issued profiles and the
# names of the self-signed ones, in the name order that RFC 4514 prints as the catalog reads it.
_CONSOLE_CAS: dict[str, tuple[x509.Name, x509.Name, str]] = {
    "proxmox": (
        _name(
            (NameOID.ORGANIZATION_NAME, "PVE Cluster Manager CA"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "0f1e2d3c-lab"),
            (NameOID.COMMON_NAME, "Proxmox Virtual Environment"),
        ),
        _name(
            (NameOID.ORGANIZATION_NAME, "PVE Cluster Node"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "Proxmox Virtual Environment"),
            (NameOID.COMMON_NAME, "pve1.lab.example"),
        ),
        "pve1.lab.example",
    ),
    "vmware-esxi": (
        _name(
            (NameOID.COUNTRY_NAME, "US"),
            (NameOID.ORGANIZATION_NAME, "VMware Installer"),
            (NameOID.COMMON_NAME, "esxi01.lab.example"),
        ),
        _name(
            (NameOID.COUNTRY_NAME, "US"),
            (NameOID.ORGANIZATION_NAME, "VMware, Inc"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "VMware ESX Server Default Certificate"),
            (NameOID.COMMON_NAME, "esxi01.lab.example"),
        ),
        "esxi01.lab.example",
    ),
    "vmware-vcenter": (
        _name(
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "VMware Engineering"),
            (NameOID.ORGANIZATION_NAME, "vcsa.lab.example"),
            (NameOID.COUNTRY_NAME, "US"),
            (NameOID.DOMAIN_COMPONENT, "local"),
            (NameOID.DOMAIN_COMPONENT, "vsphere"),
            (NameOID.COMMON_NAME, "CA"),
        ),
        _name((NameOID.COUNTRY_NAME, "US"), (NameOID.COMMON_NAME, "vcsa.lab.example")),
        "vcsa.lab.example",
    ),
}
_CONSOLE_SELF_SIGNED: dict[str, x509.Name] = {
    "supermicro": _name(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "California"),
        (NameOID.LOCALITY_NAME, "San Jose"),
        (NameOID.ORGANIZATION_NAME, "Super Micro Computer"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Software"),
        (NameOID.COMMON_NAME, "IPMI"),
    ),
    "unifi": _name(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "New York"),
        (NameOID.LOCALITY_NAME, "New York"),
        (NameOID.ORGANIZATION_NAME, "Ubiquiti Inc."),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "UniFi"),
        (NameOID.COMMON_NAME, "UniFi"),
    ),
}

# Re-entrant: server_context() holds it while _context() calls issue().
_issue_lock = threading.RLock()


@cache
def _issue(profile: str) -> IssuedCertificate:
    now = dt.datetime.now(_UTC)
    if profile == "dsm-legacy":
        # Name order C, ST, L, O, OU, CN: RFC 4514 prints it reversed, the form recog matches.
        name = _name(
            (NameOID.COUNTRY_NAME, "TW"),
            (NameOID.STATE_OR_PROVINCE_NAME, "Taiwan"),
            (NameOID.LOCALITY_NAME, "Taipei"),
            (NameOID.ORGANIZATION_NAME, "Synology Inc."),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "FTP Team"),
            (NameOID.COMMON_NAME, "synology.com"),
        )
        return _self_signed(
            profile,
            name,
            dt.datetime(2009, 10, 1, tzinfo=_UTC),
            dt.datetime(2019, 9, 29, tzinfo=_UTC),
        )
    if profile == "dsm-default":
        return _issued_by_ca(
            profile,
            _name(
                (NameOID.COUNTRY_NAME, "TW"),
                (NameOID.LOCALITY_NAME, "Taipei"),
                (NameOID.ORGANIZATION_NAME, "Synology Inc."),
                (NameOID.COMMON_NAME, "Synology Inc. CA"),
            ),
            _name(
                (NameOID.COUNTRY_NAME, "TW"),
                (NameOID.ORGANIZATION_NAME, "Synology Inc."),
                (NameOID.COMMON_NAME, "synology"),
            ),
            ("synology",),
        )
    if profile == "example":
        return _issued_by_ca(
            profile,
            _name(
                (NameOID.ORGANIZATION_NAME, "Example Lab"),
                (NameOID.COMMON_NAME, "Example Lab CA"),
            ),
            _name((NameOID.COMMON_NAME, "www.example.net")),
            ("www.example.net", "example.net"),
        )
    if profile == "qnap":
        name = _name(
            (NameOID.COUNTRY_NAME, "TW"),
            (NameOID.STATE_OR_PROVINCE_NAME, "Taiwan"),
            (NameOID.LOCALITY_NAME, "Taipei"),
            (NameOID.ORGANIZATION_NAME, "QNAP Systems Inc."),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "QNAP NAS"),
            (NameOID.COMMON_NAME, "QNAP NAS"),
        )
        return _self_signed(
            profile, name, now - dt.timedelta(days=200), now + dt.timedelta(days=3650)
        )
    if profile in _CONSOLE_CAS:
        ca_name, leaf_name, san = _CONSOLE_CAS[profile]
        return _issued_by_ca(profile, ca_name, leaf_name, (san,))
    if profile in _CONSOLE_SELF_SIGNED:
        return _self_signed(
            profile,
            _CONSOLE_SELF_SIGNED[profile],
            now - dt.timedelta(days=200),
            now + dt.timedelta(days=3650),
        )
    raise ValueError(f"unknown certificate profile {profile!r}; known: {', '.join(PROFILES)}")


def issue(profile: str) -> IssuedCertificate:
    """The certificate of ``profile`` (one of :data:`PROFILES`), made once per process.

    Raises ``ValueError`` for an unknown profile.
    """
    with _issue_lock:
        return _issue(profile)


@cache
def _context(profile: str) -> ssl.SSLContext:
    issued = issue(profile)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl can only load a chain from files: write them to a private temporary directory
    # that disappears as soon as OpenSSL has read them.
    with tempfile.TemporaryDirectory(prefix="exposure-audit-lab-") as tmp:
        chain, key = Path(tmp) / "chain.pem", Path(tmp) / "key.pem"
        chain.write_bytes(issued.chain_pem)
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
        context.load_cert_chain(chain, key)
    return context


def server_context(profile: str) -> ssl.SSLContext:
    """A server-side ``SSLContext`` presenting ``profile``'s chain; shared, do not modify.

    Raises ``ValueError`` for an unknown profile.
    """
    with _issue_lock:
        return _context(profile)
