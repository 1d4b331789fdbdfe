"""Synology identification signals outside HTTP: DDNS host names and default TLS certificates.

The DDNS suffixes are data (``exposure_audit/data/dsm_ddns.json``, from the Public Suffix
List's "Synology, Inc." section); the certificate names are from recog's x509 fingerprints and
public DSM certificate listings (docs/reference/dsm.md sections 6.1 and 6.3).
"""

from __future__ import annotations

from functools import cache

from ._data import get_str_list, load_object

__all__ = ["is_synology_default_certificate", "synology_ddns_domain"]

_FILE = "dsm_ddns.json"

# DSM 6/7 self-signs its default certificate with this CA: issuer "CN=Synology Inc. CA,
# O=Synology Inc., L=Taipei, C=TW" (the city is sometimes spelled "Taipel", so L is not
# checked). Older DSM used "CN=synology.com,O=Synology Inc.,L=Taipei,C=TW" (recog
# x509_issuers.xml:284). The subject of the DSM 6/7 default is just CN=synology, which anyone can
# choose, so the issuer decides.
_ISSUER_NAMES = frozenset({"synology inc. ca", "synology.com"})
_ORGANIZATION = "synology inc."


@cache
def _suffixes() -> tuple[str, ...]:
    suffixes = get_str_list(load_object(_FILE), "suffixes", _FILE)
    # Longest first, so direct.quickconnect.to would win over a shorter overlapping entry.
    return tuple(sorted((s.lower() for s in suffixes), key=len, reverse=True))


def synology_ddns_domain(name: str) -> str | None:
    """The Synology DDNS/QuickConnect suffix ``name`` lies under, or None.

    ``nas.synology.me`` -> ``"synology.me"``; ``x.direct.quickconnect.to`` ->
    ``"direct.quickconnect.to"``. Matching is on label boundaries and case-insensitive, ignores
    a trailing dot, and needs at least one label below the suffix (the bare suffix is Synology's
    own zone, not a box). ``myftp.biz`` (No-IP) and ``mysynology.net`` (Dynu) are not Synology's.
    """
    host = name.strip().rstrip(".").lower()
    labels = host.split(".")
    if not host or len(host) > 253 or "" in labels:
        return None
    for suffix in _suffixes():
        if host.endswith("." + suffix):
            return suffix
    return None


def _attributes(dn: str) -> dict[str, str]:
    """RFC 4514 string -> {attribute type (lower case): value (case-folded)}; last one wins.

    Splits on unescaped ``,`` and ``+`` and undoes ``\\,``-style and ``\\XX`` hex escapes. Never
    raises; malformed parts are skipped.
    """
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(dn):
        char = dn[index]
        if char == "\\" and index + 1 < len(dn):
            pair = dn[index + 1 : index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                current.append(chr(int(pair, 16)))
                index += 3
                continue
            current.append(dn[index + 1])
            index += 2
            continue
        if char in ",+":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    attributes: dict[str, str] = {}
    for part in parts:
        kind, sep, value = part.partition("=")
        if sep:
            attributes[kind.strip().lower()] = value.strip().casefold()
    return attributes


def is_synology_default_certificate(subject: str, issuer: str) -> bool:
    """True when a certificate is DSM's factory default, by its RFC 4514 subject and issuer.

    True when the issuer is ``O=Synology Inc.`` with ``CN=Synology Inc. CA`` (DSM 6/7) or
    ``CN=synology.com`` (older DSM), or when the subject is the legacy
    ``CN=synology.com, O=Synology Inc., C=TW`` (recog x509_subjects.xml:442). Attribute order
    does not matter. ``CN=synology`` alone is not enough.
    """
    issued_by = _attributes(issuer)
    if issued_by.get("o") == _ORGANIZATION and issued_by.get("cn") in _ISSUER_NAMES:
        return True
    subject_of = _attributes(subject)
    return (
        subject_of.get("cn") == "synology.com"
        and subject_of.get("o") == _ORGANIZATION
        and subject_of.get("c") == "tw"
    )
