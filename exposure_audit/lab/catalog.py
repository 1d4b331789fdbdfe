"""The built-in labs: ``demo`` (a small perimeter), ``corpus`` (DSM versus look-alikes),
``bench`` (many hosts, for timing) and ``nas`` (one DSM box inside a network namespace).

Expected grades follow the project's rules (``exposure_audit.rules``): DSM over plain HTTP,
a SynoLocker-era build, Telnet or SMB is F; DSM over HTTPS only is D; SSH or an SRM login
alone is C; a web server, UPnP description server or closed box is A. They assume every
service started: when :attr:`Lab.skipped` is not empty (not root), expectations of the hosts
it names no longer hold.
"""

from __future__ import annotations

import ipaddress

from .model import LabHost, LabService
from .nameserver import Zone
from .runtime import Lab

__all__ = ["DEMO_ZONE", "bench_lab", "corpus_lab", "demo_lab", "demo_zone", "nas_lab"]

_DSM_VERSIONS = {"dsm43": "4.3-3810", "dsm62": "6.2.4-25556", "dsm72": "7.2.2-72806"}


def _addresser(network: str) -> tuple[str, ...]:
    """Host addresses .0 ... .255 of a loopback /24; ``ValueError`` for anything else."""
    net = ipaddress.ip_network(network)
    if net.version != 4 or net.prefixlen != 24 or not net.is_loopback:
        raise ValueError(f"{network} is not a /24 inside 127.0.0.0/8")
    return tuple(str(a) for a in net)


def demo_zone(network: str = "127.77.0.0/24", ipv6: str | None = "::1") -> Zone:
    """The demo's DNS names for a demo lab on ``network``.

    ``gone.example.net`` (or any other name under the two origins) is NXDOMAIN;
    ``diskstation.myds.me`` is a Synology DDNS name (dsm.md section 6.1).
    """
    at = _addresser(network)
    dsm7: tuple[tuple[str, str], ...] = (("A", at[20]),)
    if ipv6:
        dsm7 += (("AAAA", ipv6),)
    return {
        "nas.example.net": (("CNAME", "syno43.example.net"),),
        "syno43.example.net": (("A", at[10]),),
        "dsm7.example.net": dsm7,
        "diskstation.myds.me": (("A", at[30]),),
        "www.example.net": (("A", at[40]),),
        "v4only.example.net": (("A", at[70]),),
    }


#: The demo zone for the default addresses.
DEMO_ZONE: Zone = demo_zone()


def demo_lab(network: str = "127.77.0.0/24", ipv6: str | None = "::1") -> Lab:
    """A small perimeter on 127.77.0.0/24 (plus [::1]:5001) with :data:`DEMO_ZONE`.

    ``network`` moves it to another loopback /24 (host numbers stay), ``ipv6`` moves or, with
    None, drops syno72's IPv6 side: two demo labs can then run at once (tests next to a
    running ``exposure-audit demo``). Raises ``ValueError`` for a network that is not a
    loopback /24.

    ===============  ===========  =============================================  =====  ===
    name             address      services                                       grade  DSM
    ===============  ===========  =============================================  =====  ===
    syno43           127.77.0.10  dsm43 http 5000, https 5001 (expired cert)     F      4.3-3810
    syno72           127.77.0.20  dsm72 https 5001 (+ [::1]:5001)                D      7.2.2-72806
    syno62-moved     127.77.0.30  dsm62 http 8080, ssh 22                        F      6.2.4-25556
    web              127.77.0.40  nginx http 80, https 443                       A
    upnp             127.77.0.50  upnp_desc http 5000 (IGD description: UPNP002) F
    legacy           127.77.0.60  telnet 23, smb 445, silent 139                 F
    clean            127.77.0.70  nothing                                        A
    ===============  ===========  =============================================  =====  ===
    """
    at = _addresser(network)
    return Lab(
        (
            LabHost(
                "syno43",
                at[10],
                "dsm",
                (
                    LabService(5000, "http", "dsm43", "DSM 4.3 on its default HTTP port"),
                    LabService(5001, "https", "dsm43", "legacy self-signed cert, expired"),
                ),
                "F",
                "4.3-3810",
            ),
            LabHost(
                "syno72",
                at[20],
                "dsm",
                (LabService(5001, "https", "dsm72", "DSM 7.2 default certificate"),),
                "D",
                "7.2.2-72806",
                extra_addresses=(ipv6,) if ipv6 else (),
            ),
            LabHost(
                "syno62-moved",
                at[30],
                "dsm",
                (
                    LabService(8080, "http", "dsm62", "DSM moved off 5000"),
                    LabService(22, "banner", "ssh", "OpenSSH on the NAS"),
                ),
                "F",
                "6.2.4-25556",
            ),
            LabHost(
                "web",
                at[40],
                "web",
                (
                    LabService(80, "http", "nginx"),
                    LabService(443, "https", "nginx", "certificate from Example Lab CA"),
                ),
                "A",
                None,
            ),
            LabHost(
                "upnp",
                at[50],
                "upnp",
                (LabService(5000, "http", "upnp_desc", "miniupnpd's HTTP port, not DSM"),),
                # Not DSM; but an IGD description readable from outside is UPNP002 (critical).
                "F",
                None,
            ),
            LabHost(
                "legacy",
                at[60],
                "legacy",
                (
                    LabService(23, "banner", "telnet_syno", "DiskStation telnetd"),
                    LabService(139, "silent", "netbios-ssn", "says nothing, hangs up on input"),
                    LabService(445, "banner", "smb", "Samba answering SMB1 negotiate"),
                ),
                "F",
                None,
            ),
            LabHost("clean", at[70], "closed", (), "A", None),
        ),
        demo_zone(network, ipv6),
    )


def corpus_lab(network: str = "127.78.0.0/24") -> Lab:
    """DSM positives and look-alike negatives on 127.78.0.0/24, one site per host.

    Negatives (``expect_dsm`` None) serve HTTP on 5000: qnap .11, router .12, webstation .13,
    srm .14, echo .15, notfound .16, nginx .17, upnp_desc .18, and qnap over HTTPS on 5001 at
    .19. Positives: dsm43 (http 5000) .31, dsm62 (http 5000) .32, dsm72 (https 5001) .33.
    """
    at = _addresser(network)
    negatives = ("qnap", "router", "webstation", "srm", "echo", "notfound", "nginx", "upnp_desc")
    hosts = [
        LabHost(
            f"neg-{site}",
            at[11 + i],
            "negative",
            (LabService(5000, "http", site, "must not be identified as DSM"),),
            # SRM's login is remote administration (rule SVC002, medium); an IGD description
            # readable from outside is UPNP002 (critical); the rest is clean.
            {"srm": "C", "upnp_desc": "F"}.get(site, "A"),
            None,
        )
        for i, site in enumerate(negatives)
    ]
    hosts.append(
        LabHost(
            "neg-qnap-https",
            at[19],
            "negative",
            (LabService(5001, "https", "qnap", "QNAP over TLS on DSM's HTTPS port"),),
            "A",
            None,
        )
    )
    hosts += [
        LabHost(
            "pos-dsm43",
            at[31],
            "dsm",
            (LabService(5000, "http", "dsm43"),),
            "F",
            _DSM_VERSIONS["dsm43"],
        ),
        LabHost(
            "pos-dsm62",
            at[32],
            "dsm",
            (LabService(5000, "http", "dsm62"),),
            "F",
            _DSM_VERSIONS["dsm62"],
        ),
        LabHost(
            "pos-dsm72",
            at[33],
            "dsm",
            (LabService(5001, "https", "dsm72"),),
            "D",
            _DSM_VERSIONS["dsm72"],
        ),
    ]
    return Lab(hosts)


def bench_lab(count: int = 254, network: str = "127.88.0.0/24") -> Lab:
    """``count`` hosts 127.88.0.1 ... 127.88.0.<count> in a fixed mix, for timing scans.

    Host ``i``: when ``i % 4 == 0``, DSM over HTTP on 5000, cycling dsm43/dsm62/dsm72 with
    ``i // 4``, plus HTTPS on 5001 when ``i % 8 == 0`` and SSH on 22 when ``i % 12 == 0``
    (grade F: DSM over plain HTTP); ``i % 8 == 1``: nginx on 80; ``i % 8 == 5``: nginx on
    8080 (A); ``i % 8 == 2``: SSH only (C); the rest listen on nothing (A). No DNS names.

    Raises ``ValueError`` unless 1 <= ``count`` <= 254, or for a network that is not a
    loopback /24.
    """
    if not 1 <= count <= 254:
        raise ValueError(f"count must be 1-254, not {count}")
    at = _addresser(network)
    generations = ("dsm43", "dsm62", "dsm72")
    hosts = []
    for i in range(1, count + 1):
        address = at[i]
        if i % 4 == 0:
            site = generations[(i // 4) % 3]
            services = [LabService(5000, "http", site)]
            if i % 8 == 0:
                services.append(LabService(5001, "https", site))
            if i % 12 == 0:
                services.append(LabService(22, "banner", "ssh"))
            hosts.append(
                LabHost(f"b{i}-{site}", address, "dsm", tuple(services), "F", _DSM_VERSIONS[site])
            )
        elif i % 8 in (1, 5):
            port = 80 if i % 8 == 1 else 8080
            hosts.append(
                LabHost(
                    f"b{i}-web", address, "web", (LabService(port, "http", "nginx"),), "A", None
                )
            )
        elif i % 8 == 2:
            hosts.append(
                LabHost(f"b{i}-ssh", address, "ssh", (LabService(22, "banner", "ssh"),), "C", None)
            )
        else:
            hosts.append(LabHost(f"b{i}-closed", address, "closed", (), "A", None))
    return Lab(hosts)


def nas_lab(address: str = "192.168.50.10") -> Lab:
    """One DSM 4.3-3810 NAS, ``syno43`` (dsm43 http 5000, https 5001 with its expired legacy
    certificate; grade F), on ``address``, for network-namespace labs only.

    ``address`` is the NAS's address inside a namespace the caller created (the UPnP lab in
    ``tests/netns`` puts it on 192.168.50.10 behind a NAT router); run the lab inside that
    namespace, e.g. ``ip netns exec NS python -m exposure_audit.lab nas --address ADDR``. A
    loopback address works anywhere. No DNS names. Raises ``ValueError`` for a global address.
    """
    return Lab(
        (
            LabHost(
                "syno43",
                address,
                "dsm",
                (
                    LabService(5000, "http", "dsm43", "DSM 4.3 on its default HTTP port"),
                    LabService(5001, "https", "dsm43", "legacy self-signed cert, expired"),
                ),
                "F",
                _DSM_VERSIONS["dsm43"],
                in_netns=True,
            ),
        )
    )
