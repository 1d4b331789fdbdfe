"""The built-in labs: ``demo`` (a small perimeter), ``corpus`` (DSM versus look-alikes),
``management`` (every management console of the catalog on its default port), ``bench`` (many
hosts, for timing), ``nas`` (one DSM box inside a network namespace) and ``perimeter``
(services here and there over a /22, inside a network namespace).

Expected grades follow the project's rules (``exposure_audit.rules``): DSM over plain HTTP,
a SynoLocker-era build, Telnet or SMB is F; DSM over HTTPS only is D; SSH or an SRM login
alone is C; a web server, UPnP description server or closed box is A. They assume every
service started: when :attr:`Lab.skipped` is not empty (not root), expectations of the hosts
it names no longer hold.
"""

from __future__ import annotations

import errno
import ipaddress

from ..mgmt import load_catalog
from ..ports import PortSet, default_ports
from .model import ExpectedConsole, LabHost, LabService
from .nameserver import Zone
from .runtime import Lab
from .sites import CONSOLE_PREFIX, consoles

__all__ = [
    "DEMO_NETWORK",
    "DEMO_ZONE",
    "PERIMETER_HOSTS",
    "PERIMETER_ROLES",
    "bench_lab",
    "corpus_lab",
    "demo_lab",
    "demo_ports",
    "demo_zone",
    "management_lab",
    "nas_lab",
    "perimeter_lab",
    "start_demo_lab",
]

_DSM_VERSIONS = {"dsm43": "4.3-3810", "dsm62": "6.2.4-25556", "dsm72": "7.2.2-72806"}


def _addresser(network: str) -> tuple[str, ...]:
    """Host addresses .0 ... .255 of a loopback /24; ``ValueError`` for anything else."""
    net = ipaddress.ip_network(network)
    if net.version != 4 or net.prefixlen != 24 or not net.is_loopback:
        raise ValueError(f"{network} is not a /24 inside 127.0.0.0/8")
    return tuple(str(a) for a in net)


#: The demo's default loopback block.
DEMO_NETWORK = "127.77.0.0/24"

#: Where :func:`start_demo_lab` looks when the default block is busy, in this order.
_DEMO_FALLBACKS = tuple(f"127.77.{n}.0/24" for n in range(1, 64))


def demo_zone(network: str = "127.77.0.0/24", ipv6: str | None = "::1") -> Zone:
    """The demo's DNS names for a demo lab on ``network``.

    ``gone.example.net`` (or any other name under the two origins) is NXDOMAIN;
    ``diskstation.myds.me`` is a Synology DDNS name (docs/reference/dsm.md section 6.1).
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
    hung             127.77.0.80  mute 5001 (takes connections, never answers)   C
    qnap             127.77.0.90  qnap http 8080 (QNAP QTS: MGMT001)              F
    proxmox          127.77.0.91  proxmox https 8006 (Proxmox VE: MGMT002)        D
    jupyter          127.77.0.92  jupyter_open http 8888 (no token: MGMT001)      F
    cockpit          127.77.0.93  cockpit https 9090 (Cockpit: MGMT002)           D
    ===============  ===========  =============================================  =====  ===

    Audit it with :func:`demo_ports`: the consoles' ports are not all in the default set.
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
            LabHost(
                "hung",
                at[80],
                "hung",
                # Something on DSM's HTTPS port that never answers: UNK001, never an A.
                (LabService(5001, "banner", "mute", "a hung DSM or a stalled reverse proxy"),),
                "C",
                None,
            ),
            *_management_hosts(at),
        ),
        demo_zone(network, ipv6),
    )


#: The demo's management consoles of the catalog (docs/reference/management.md): name, host
#: number, service, grade. Over plain HTTP a console is MGMT001 (critical, F); over HTTPS
#: MGMT002 (high, D); Jupyter without a token acts without a login (critical whatever the
#: scheme).
_MANAGEMENT_HOSTS: tuple[tuple[str, int, LabService, str], ...] = (
    ("qnap", 90, LabService(8080, "http", "qnap", "QNAP QTS login on 8080"), "F"),
    ("proxmox", 91, LabService(8006, "https", "proxmox", "Proxmox VE on 8006 over TLS"), "D"),
    ("jupyter", 92, LabService(8888, "http", "jupyter_open", "Jupyter without a token"), "F"),
    ("cockpit", 93, LabService(9090, "https", "cockpit", "Cockpit on 9090 over TLS"), "D"),
)


def start_demo_lab(network: str | None = None) -> tuple[Lab, tuple[str, ...]]:
    """A started :func:`demo_lab` and what a user should know about where it went.

    With ``network`` (a loopback /24) the lab runs there; without, on :data:`DEMO_NETWORK` or,
    when something already listens on one of the demo's ports there (another demo, a test
    run), on the first free block of 127.77.1.0/24 ... 127.77.63.0/24. The demo's names
    (:func:`demo_zone`) follow the block. syno72's IPv6 side ([::1]:5001) is kept when that
    port is free and dropped otherwise. The notes say, one line each, what moved or was
    dropped; empty when the lab runs where it always does.

    Raises ``ValueError`` for a ``network`` that is not a loopback /24, and ``OSError`` when the
    given block, or every candidate, is busy (or a listener fails for another reason).
    """
    candidates = (network,) if network is not None else (DEMO_NETWORK, *_DEMO_FALLBACKS)
    notes: list[str] = []
    first_busy: OSError | None = None
    for block in candidates:
        for ipv6 in ("::1", None):
            lab = demo_lab(block, ipv6)  # ValueError for a bad network: nothing started
            try:
                lab.start()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                if ipv6 is not None:
                    continue  # perhaps only [::1]:5001 is taken: try the block without it
                first_busy = first_busy or exc
                break
            if first_busy is not None:
                notes.append(f"{candidates[0]} is busy ({first_busy.strerror}): using {block}")
            if ipv6 is None:
                notes.append("[::1]:5001 is taken: the demo runs without its IPv6 side")
            return lab, tuple(notes)
    assert first_busy is not None  # every candidate ended in "busy"
    if network is not None:
        raise first_busy
    raise OSError(
        errno.EADDRINUSE,
        f"no free loopback block for the demo in 127.77.0.0/24 ... 127.77.63.0/24 "
        f"({first_busy.strerror}); pass --network 127.X.Y.0/24",
    )


def _management_hosts(at: tuple[str, ...]) -> tuple[LabHost, ...]:
    return tuple(
        LabHost(name, at[number], "management", (service,), grade, None)
        for name, number, service, grade in _MANAGEMENT_HOSTS
    )


def demo_ports(lab: Lab | None = None) -> PortSet:
    """The ports an audit of the demo lab scans: the default set plus every TCP port the lab
    declares (the default set holds the catalog consoles' ports; a lab host may listen
    on a port outside it)."""
    base = default_ports()
    declared = {p for h in (lab or demo_lab()).hosts for p in h.ports}
    return PortSet(tuple(sorted(set(base.tcp) | declared)), base.udp)


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
            # readable from outside is UPNP002 (critical); QNAP's login over plain HTTP is a
            # management interface (MGMT001, critical); the rest is clean.
            {"srm": "C", "upnp_desc": "F", "qnap": "F"}.get(site, "A"),
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
            "D",  # a management interface over HTTPS: MGMT002 (high)
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


def management_lab(network: str = "127.76.0.0/24") -> Lab:
    """Every product of the management catalog (``data/management_catalog.json``) on its own
    address of ``network``, in catalog order from ``.1``, named ``mgmt-<product id>``, on the
    product's default port. Pages are composed from the catalog's public markers, two or more
    each (``pages/management.json``; docs/reference/lab.md section 9); DSM and SRM are the
    lab's dsm72 and srm sites.

    Each host's :class:`ExpectedConsole` says what a correct auditor finds: the product, the
    version it discloses without a login, and the rule: MGMT001 (critical, grade F) over plain
    HTTP, MGMT002 (high, grade D) over HTTPS, critical (F) whatever the scheme when the console
    is left able to act without a login (Portainer before its first account, Transmission
    without an RPC password, Supervisor without a username); DSM over HTTPS is DSM002 (D), SRM
    SVC002 (C). A product with catalog advisories may also get a "possibly" MGMT003 (high),
    which changes no grade here. Audit it with :func:`demo_ports` of the lab (some default
    ports, such as 631, 9091 or 19999, are not in the default set).

    Raises ``ValueError`` for a network that is not a loopback /24, or when the catalog holds
    a product the lab has no console for.
    """
    at = _addresser(network)
    imitated = {c.product: c for c in consoles()}
    hosts = []
    for number, product in enumerate(load_catalog(), start=1):
        name = f"mgmt-{product.id}"
        if product.id == "synology-dsm":
            hosts.append(
                LabHost(
                    name,
                    at[number],
                    "dsm",
                    (LabService(5001, "https", "dsm72", "DSM 7.2 on its default HTTPS port"),),
                    "D",
                    _DSM_VERSIONS["dsm72"],
                    expect_console=ExpectedConsole(product.id, "7.2.2", "DSM002", "high"),
                )
            )
            continue
        if product.id == "synology-srm":
            hosts.append(
                LabHost(
                    name,
                    at[number],
                    "management",
                    (LabService(8001, "https", "srm", "SRM on its default HTTPS port"),),
                    "C",  # remote administration: SVC002 (medium)
                    None,
                    # SRM is recognised as SRM, without a version (its version file is
                    # served, but the audit reports SRM as remote administration only).
                    expect_console=ExpectedConsole(product.id, None, "SVC002", "medium"),
                )
            )
            continue
        console = imitated.get(product.id)
        if console is None:
            raise ValueError(f"the management lab has no console for catalog product {product.id}")
        critical = console.scheme == "http" or console.acts_without_login
        hosts.append(
            LabHost(
                name,
                at[number],
                "management",
                (
                    LabService(
                        console.port, console.scheme, CONSOLE_PREFIX + product.id, console.note
                    ),
                ),
                "F" if critical else "D",
                None,
                expect_console=ExpectedConsole(
                    product.id,
                    console.version,
                    "MGMT001" if console.scheme == "http" else "MGMT002",
                    "critical" if critical else "high",
                ),
            )
        )
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


#: The perimeter lab's host kinds, in the order they are dealt out (see :func:`perimeter_lab`):
#: name -> (role, services, expect_grade, site whose DSM version the box shows or None).
PERIMETER_ROLES: dict[str, tuple[str, tuple[LabService, ...], str, str | None]] = {
    # SynoLocker's target (2014): DSM 4.3-3810 with both management ports open.
    "dsm43": (
        "dsm",
        (
            LabService(5000, "http", "dsm43", "DSM 4.3 on its default HTTP port"),
            LabService(5001, "https", "dsm43", "legacy self-signed cert, expired"),
        ),
        "F",
        "dsm43",
    ),
    "dsm72": (
        "dsm",
        (LabService(5001, "https", "dsm72", "current DSM, HTTPS only"),),
        "D",
        "dsm72",
    ),
    "ssh": ("ssh", (LabService(22, "banner", "ssh", "OpenSSH port-forwarded"),), "C", None),
    "dsm62": ("dsm", (LabService(5000, "http", "dsm62", "DSM 6.2 over plain HTTP"),), "F", "dsm62"),
    "web": (
        "web",
        (
            LabService(80, "http", "nginx"),
            LabService(443, "https", "nginx", "certificate from Example Lab CA"),
        ),
        "A",
        None,
    ),
    "smb": ("legacy", (LabService(445, "banner", "smb", "Samba answering SMB1"),), "F", None),
    "dsm72-ssh": (
        "dsm",
        (
            LabService(22, "banner", "ssh", "SSH enabled on the NAS"),
            LabService(5001, "https", "dsm72"),
        ),
        "D",
        "dsm72",
    ),
    "dsm62-moved": (
        "dsm",
        (
            LabService(8080, "http", "dsm62", "DSM moved off 5000"),
            LabService(5001, "https", "dsm62"),
        ),
        "F",
        "dsm62",
    ),
}

#: How many addresses of the perimeter's /22 carry services (one in 16).
PERIMETER_HOSTS = 64
# An odd multiplier makes i -> (i * 389 + 71) % 1024 a permutation of 0..1023: exactly
# PERIMETER_HOSTS addresses land below the cut, scattered over the whole /22 rather than bunched.
_SCATTER_MULTIPLIER = 389
_SCATTER_OFFSET = 71


def perimeter_lab(network: str = "198.18.0.0/22") -> Lab:
    """Services here and there over the 1,024 addresses of ``network``, for a filtered-perimeter
    lab that puts them behind a firewall (``tests/perimeter``). Everything else of the /22
    listens on nothing. No DNS names.

    Address ``i`` (0-1023, ``network[i]``) carries services when ``k = (i * 389 + 71) % 1024``
    is below 64 (a scattered 64 hosts); its kind is the ``k % 8``-th of
    :data:`PERIMETER_ROLES` (eight hosts each), its name ``p<i>-<kind>``:

    ============  =================================================  =====  ===========
    kind          services                                           grade  DSM
    ============  =================================================  =====  ===========
    dsm43         dsm43 http 5000, https 5001 (expired legacy cert)  F      4.3-3810
    dsm72         dsm72 https 5001                                   D      7.2.2-72806
    ssh           ssh 22                                             C
    dsm62         dsm62 http 5000                                    F      6.2.4-25556
    web           nginx http 80, https 443                           A
    smb           smb 445 (Samba banner)                             F
    dsm72-ssh     ssh 22, dsm72 https 5001                           D      7.2.2-72806
    dsm62-moved   dsm62 http 8080, https 5001                        F      6.2.4-25556
    ============  =================================================  =====  ===========

    The grades are for an auditor that reaches every service; behind a firewall that drops
    some of them the grade seen from outside is that of the services it lets through.

    ``network`` is an IPv4 /22 that is loopback (runs anywhere) or private/documentation/
    benchmarking space such as the default 198.18.0.0/22 (RFC 2544); the hosts are then marked
    ``in_netns``: run the lab inside a network namespace that routes the whole /22 to itself
    (``ip route add local 198.18.0.0/22 dev lo``), e.g. ``ip netns exec NS python -m
    exposure_audit.lab perimeter --network 198.18.0.0/22``. Raises ``ValueError`` for any
    other network.
    """
    net = ipaddress.ip_network(network)
    if net.version != 4 or net.prefixlen != 22:
        raise ValueError(f"{network} is not an IPv4 /22")
    in_netns = not net.is_loopback
    if in_netns and (net.is_global or not net.is_private):
        raise ValueError(
            f"{network} is neither loopback nor private, documentation or benchmarking space"
        )
    kinds = tuple(PERIMETER_ROLES)
    hosts = []
    for i, address in enumerate(net):
        k = (i * _SCATTER_MULTIPLIER + _SCATTER_OFFSET) % net.num_addresses
        if k >= PERIMETER_HOSTS:
            continue
        kind = kinds[k % len(kinds)]
        role, services, grade, site = PERIMETER_ROLES[kind]
        hosts.append(
            LabHost(
                f"p{i}-{kind}",
                str(address),
                role,
                services,
                grade,
                _DSM_VERSIONS[site] if site else None,
                in_netns=in_netns,
            )
        )
    return Lab(hosts)
