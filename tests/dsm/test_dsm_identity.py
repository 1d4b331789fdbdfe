"""Synology DDNS names and DSM default certificates."""

from __future__ import annotations

import pytest

from exposure_audit.dsm import is_synology_default_certificate, synology_ddns_domain


@pytest.mark.parametrize(
    ("name", "domain"),
    [
        ("nas.synology.me", "synology.me"),
        ("NAS.Synology.ME.", "synology.me"),
        ("a.b.myds.me", "myds.me"),
        ("box.dscloud.mobi", "dscloud.mobi"),
        ("family.familyds.org", "familyds.org"),
        ("abc.direct.quickconnect.to", "direct.quickconnect.to"),
        ("192-0-2-10.abc.direct.quickconnect.to", "direct.quickconnect.to"),
        ("x.vpnplus.to", "vpnplus.to"),
    ],
)
def test_names_under_a_synology_suffix_give_that_suffix(name: str, domain: str) -> None:
    assert synology_ddns_domain(name) == domain


@pytest.mark.parametrize(
    "name",
    [
        "nas.myftp.biz",  # No-IP, a DDNS provider DSM can use
        "nas.mysynology.net",  # Dynu
        "synology.me",  # the suffix itself is Synology's zone, not a box
        "notsynology.me",  # not on a label boundary
        "nas.synology.me.example.com",
        "abc.quickconnect.to",  # the relay portal, not a direct name
        "nas..synology.me",
        "",
        ".",
    ],
)
def test_other_names_are_not_synology_ddns(name: str) -> None:
    assert synology_ddns_domain(name) is None


@pytest.mark.parametrize(
    ("subject", "issuer"),
    [
        # DSM 6/7 default: CN=synology issued by Synology Inc. CA (reference section 6.3).
        ("CN=synology,O=Synology Inc.,C=TW", "CN=Synology Inc. CA,O=Synology Inc.,L=Taipei,C=TW"),
        # cryptography's rfc4514_string() order and the "Taipel" spelling seen in the wild.
        ("C=TW,O=Synology Inc.,CN=synology", "C=TW,L=Taipel,O=Synology Inc.,CN=Synology Inc. CA"),
        # Legacy synology.com certificate (recog x509_issuers / x509_subjects).
        (
            "CN=synology.com,OU=FTP Team,O=Synology Inc.,L=Taipei,ST=Taiwan,C=TW",
            "CN=synology.com,O=Synology Inc.,L=Taipei,C=TW",
        ),
    ],
)
def test_dsm_default_certificates_are_recognised(subject: str, issuer: str) -> None:
    assert is_synology_default_certificate(subject, issuer)


@pytest.mark.parametrize(
    ("subject", "issuer"),
    [
        ("CN=synology", "CN=R11,O=Let's Encrypt,C=US"),  # CN=synology alone is not enough
        ("CN=nas.synology.me", "CN=R11,O=Let's Encrypt,C=US"),
        ("CN=nas.example.com", "CN=Synology Inc. CA,O=Someone Else,C=TW"),
        ("CN=synology", "CN=Synology Inc. CA"),
        ("", ""),
        ("garbage without equals", "\\"),
    ],
)
def test_other_certificates_are_not_the_default(subject: str, issuer: str) -> None:
    assert not is_synology_default_certificate(subject, issuer)


def test_escaped_commas_do_not_split_an_attribute() -> None:
    issuer = "CN=Synology Inc. CA,O=Synology Inc.\\, Taiwan,C=TW"
    assert not is_synology_default_certificate("CN=synology", issuer)
