"""What exposure_audit knows about Synology DSM, as pure functions over plain values.

- :mod:`.versions`: build number -> release (``6.2.4``) from the sourced build table;
- :mod:`.advisories`: SynoLocker, end-of-life branches and pre-auth advisories judged against a
  :class:`~exposure_audit.observations.DsmFingerprint`;
- :mod:`.fingerprint`: DSM markers and version endpoints parsed from HTTP responses;
- :mod:`.identity`: Synology DDNS names and default TLS certificates.

The facts (build table, advisories, DDNS suffixes) live in ``exposure_audit/data/dsm_*.json``
with their sources. Nothing here touches the network.
"""

from __future__ import annotations

from .advisories import AdvisoryVerdict, assess, end_of_life, synolocker_exploitable
from .fingerprint import (
    DSM_PROBE_PATHS,
    USER_AGENT,
    HttpResponse,
    InfoCgi,
    fingerprint,
    is_srm,
    markers_in,
    parse_api_info,
    parse_fullversion,
    parse_info_cgi,
    parse_synodefs_build,
    parse_synohdpack,
)
from .identity import is_synology_default_certificate, synology_ddns_domain
from .versions import resolve_version, version_for_build

__all__ = [
    "DSM_PROBE_PATHS",
    "USER_AGENT",
    "AdvisoryVerdict",
    "HttpResponse",
    "InfoCgi",
    "assess",
    "end_of_life",
    "fingerprint",
    "is_srm",
    "is_synology_default_certificate",
    "markers_in",
    "parse_api_info",
    "parse_fullversion",
    "parse_info_cgi",
    "parse_synodefs_build",
    "parse_synohdpack",
    "resolve_version",
    "synolocker_exploitable",
    "synology_ddns_domain",
    "version_for_build",
]
