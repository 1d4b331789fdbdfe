"""TLS server contexts with odd certificates, made on the fly (``ssl`` needs a PEM pair on disk
to load one: a temporary directory holds it for the time of the call).

The odd certificate has a 20 KiB subject (a hundred 200-character OUs); a CN whose bytes are not
UTF-8, with a NUL and an escape sequence, in a string type that cannot hold them; a SAN with
``\\x1b[31m`` and one that is not ASCII (a bidi override, a NUL); a notBefore in 2090 and a
notAfter in 9999. The CN and the second SAN are patched into the DER after signing: no library
writes them, a hostile server does. The signature is then wrong, which nobody checks (the
scanner reads certificates, it does not trust them) and OpenSSL does not mind on the server
side.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["ODD_CN", "ODD_SAN", "odd_certificate", "server_context"]

# Same lengths as the placeholders they replace in the DER.
ODD_CN = b"\xff\xfe\x80\xc3(\x00\x1b[31mRED"
ODD_SAN = b"\xe2\x80\xaegnp.exe\x00\xffab"
_CN_PLACEHOLDER = b"PLACEHOLDERCN0"
_SAN_PLACEHOLDER = b"PLACEHOLDERSAN"
assert len(ODD_CN) == len(_CN_PLACEHOLDER) and len(ODD_SAN) == len(_SAN_PLACEHOLDER)


def odd_certificate(
    cn_tag: int = 0x14,
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """The DER of the odd certificate and its key. The CN is a T61String (``cn_tag`` 0x14,
    which OpenSSL serves and ``cryptography`` cannot decode) or a PrintableString (0x13, which
    ``cryptography`` refuses to load at all)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{i:03d}" + "U" * 197)
            for i in range(100)
        ]
        + [x509.NameAttribute(NameOID.COMMON_NAME, _CN_PLACEHOLDER.decode())]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2090, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("evil\x1b[31m.example"), x509.DNSName(_SAN_PLACEHOLDER.decode())]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    utf8 = bytes([0x0C, len(_CN_PLACEHOLDER)])
    der = der.replace(utf8 + _CN_PLACEHOLDER, bytes([cn_tag, len(ODD_CN)]) + ODD_CN)
    return der.replace(_SAN_PLACEHOLDER, ODD_SAN), key


def server_context(der: bytes, key: ec.EllipticCurvePrivateKey) -> ssl.SSLContext:
    """A TLS server context presenting ``der``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(pem)
        key_file.write_bytes(key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context
