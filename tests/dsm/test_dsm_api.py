"""The public surface of exposure_audit.dsm, pinned."""

from __future__ import annotations

import exposure_audit.dsm as dsm


def test_the_dsm_package_exports_exactly_its_public_api() -> None:
    assert sorted(dsm.__all__) == [
        "AdvisoryVerdict",
        "DSM_PROBE_PATHS",
        "HttpResponse",
        "InfoCgi",
        "USER_AGENT",
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
    assert all(hasattr(dsm, name) for name in dsm.__all__)


def test_the_user_agent_is_a_fixed_distinctive_token_without_a_url() -> None:
    assert dsm.USER_AGENT.startswith("exposure-audit/")
    assert "http" not in dsm.USER_AGENT
    assert len(dsm.USER_AGENT.split()) == 2
