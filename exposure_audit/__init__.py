"""exposure_audit: audit a network's Internet exposure from the outside.

Probes public addresses and host names for reachable Synology DSM management interfaces,
other NAS services and version banners, and grades each finding against the SynoLocker-era
advice: patch, and never expose a management interface to the Internet.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
