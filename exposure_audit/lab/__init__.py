"""The built-in lab: real servers on loopback that imitate the hosts exposure_audit grades.

DSM 4.3, 6.2 and 7.2 web UIs (HTTP and HTTPS with Synology's default certificates), look-alikes
that must not pass for DSM (QNAP, a home router, Web Station, SRM, an echo server, a Synology
404 page, nginx, a miniupnpd description server), Telnet/SSH/FTP/SMB banners exact to nmap's
fingerprints, management consoles of the catalog (QNAP QTS, Proxmox VE, Jupyter without a
token, Cockpit), and an authoritative DNS server for the lab's names. Everything binds only
loopback addresses (127.0.0.0/8, ::1) and sends nothing anywhere else; the one exception is a
host marked ``in_netns`` (``catalog.nas_lab``), which binds a private address inside a network
namespace that a test run created.

    with demo_lab() as lab:
        ...  # scan lab.addresses(), resolve names through lab.resolver

The demo, the integration tests and the benchmark use it; ``python -m exposure_audit.lab``
runs one in the foreground.
"""

from __future__ import annotations

from .catalog import DEMO_ZONE, bench_lab, corpus_lab, demo_lab
from .model import LabHost, LabService
from .runtime import Lab

__all__ = ["DEMO_ZONE", "Lab", "LabHost", "LabService", "bench_lab", "corpus_lab", "demo_lab"]
