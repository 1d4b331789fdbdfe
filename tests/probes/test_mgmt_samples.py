"""The management catalog end to end over real sockets: each composed sample (tests/data/mgmt)
served on loopback, probed by the real HTTP probe; and the negative corpus audited through the
real CLI (real nmap) without a single MGMT finding."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from exposure_audit.mgmt import identify
from exposure_audit.observations import HttpObservation
from exposure_audit.probes.http import HttpProbeSettings, fingerprint_port, make_client

from ..cli.runner import run_cli
from ..mgmt.samples import load, sighting
from .sample_server import serve_samples

POSITIVE_NET = "127.203.0."
NEGATIVE_NET = "127.204.0."


def _served_markers_suffice(doc: dict[str, Any]) -> bool:
    """Whether the sample is identified from what a loopback server can show: no nmap string,
    no certificate name, no favicon (the sample gives its hash, not its bytes)."""
    bare = dict(doc, nmap_product=None, nmap_extrainfo=None, cert_subject=None, cert_issuer=None)
    bare["favicon_mmh3"] = None
    found = identify(sighting(bare)).matches
    return bool(found) and found[0].product_id == doc["expect"]["product"]


POSITIVES = {name: doc for name, doc in load("positive").items() if _served_markers_suffice(doc)}


def _probe_all(placed: dict[str, dict[str, Any]]) -> dict[str, HttpObservation | None]:
    async def run() -> dict[str, HttpObservation | None]:
        settings = HttpProbeSettings(request_timeout=5, identify_timeout=5)
        async with make_client(settings) as client:
            prints = await asyncio.gather(
                *(
                    fingerprint_port(client, address, doc["port"], settings=settings)
                    for address, doc in placed.items()
                )
            )
        return {address: fp.http for address, fp in zip(placed, prints, strict=True)}

    return asyncio.run(run())


def test_every_servable_positive_sample_is_identified_with_its_category() -> None:
    assert len(POSITIVES) >= 20  # most of the catalog is recognisable from HTTP alone
    placed = {f"{POSITIVE_NET}{i + 1}": doc for i, doc in enumerate(POSITIVES.values())}
    with serve_samples(placed):
        seen = _probe_all(placed)
    for (name, doc), address in zip(POSITIVES.items(), placed, strict=True):
        http = seen[address]
        assert http is not None, name
        assert http.management is not None, name
        if doc["expect"]["product"] == "synology-dsm":
            # DSM: its own detection fills the catalog entry (markers and version from it).
            assert http.dsm is not None, name
            assert http.management.product == "synology-dsm", name
            assert http.management.markers == http.dsm.markers, name
            assert http.management.version == http.dsm.version, name
            continue
        if doc["expect"]["product"] == "synology-srm":
            # Named by its catalog entry (this page lacks the DSM-framework markers the deep
            # SRM detection also wants); SVC002, not MGMT, judges an SRM.
            assert http.management.product == "synology-srm", name
            assert http.management.version == doc["expect"]["version"], name
            continue
        assert http.management.product == doc["expect"]["product"], name
        assert http.management.version == doc["expect"]["version"], name


def test_the_negative_corpus_gets_no_mgmt_finding_through_the_cli(tmp_path: Any) -> None:
    negatives = load("negative")
    placed = {f"{NEGATIVE_NET}{i + 1}": doc for i, doc in enumerate(negatives.values())}
    ports = ",".join(sorted({str(doc["port"]) for doc in negatives.values()}))
    out = tmp_path / "report.json"
    with serve_samples(placed):
        result = run_cli(
            "scan", *placed, "--allow-private", "--ports", ports, "--format", "json",
            "-o", str(out), "--host-timeout", "30",
        )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(out.read_text())
    findings = [f for h in doc["hosts"] for f in h["findings"]]
    # No negative is identified as a console (MGMT001-MGMT003). The generic nginx 401 on
    # Cockpit's port and the honeypot's login form are what they are, password prompts
    # nothing identifies: MGMT004 each, and nothing else.
    assert {f["rule"] for f in findings if f["rule"].startswith("MGMT")} == {"MGMT004"}
    prompts = {f["address"] for f in findings if f["rule"] == "MGMT004"}
    names = dict(zip(placed, negatives, strict=True))
    assert {names[a] for a in prompts} == {"nginx-401-on-9090", "honeypot-qnap-title"}
    services = {
        (h["address"], s["port"]): s for h in doc["hosts"] for s in h["services"] if s["http"]
    }
    assert all(s["management"] is None for s in services.values())
    # A honeypot copying one marker (QNAP's title, Webmin's Server header), a generic 401 on
    # Cockpit's port, a blog quoting page markup: at most "possible" notes, shown, never an
    # identification; proxy error pages naming their backend, Web Station and default pages:
    # nothing.
    for address, (name, sample) in zip(placed, negatives.items(), strict=True):
        hints = services[(address, sample["port"])]["management_hints"]
        assert sorted(h["product"] for h in hints) == sorted(sample["expect_hints"]), name
    assert {h["grade"] for h in doc["hosts"] if h["address"] not in prompts} == {"A"}


_ADMIN_EXISTS = {"/api/users/admin/check": {"status": 204, "headers": [], "body": ""}}
_NO_RPC_PASSWORD = {
    "status": 200,
    "body": "<html><head><title>Transmission Web Interface</title></head></html>",
    "paths": {"/transmission/rpc": {"status": 409, "headers": [], "body": ""}},
}


@pytest.mark.parametrize(
    ("name", "changes", "acts"),
    [
        ("supervisor", {}, True),  # the status page answered without credentials
        ("transmission", _NO_RPC_PASSWORD, True),
        ("transmission", {}, False),  # 401 with a Basic challenge: a password is set
        ("portainer", {}, True),  # /api/users/admin/check is a 404: no administrator yet
        ("portainer", {"paths": _ADMIN_EXISTS}, False),
    ],
)
def test_a_console_acting_without_a_login_carries_the_evidence(
    name: str, changes: dict[str, Any], acts: bool
) -> None:
    doc = {**load("positive")[name], **changes}
    if name == "portainer":
        doc["paths"] = {**load("positive")[name]["paths"], **doc["paths"]}
    address = f"{POSITIVE_NET}200"
    with serve_samples({address: doc}):
        http = _probe_all({address: doc})[address]
    assert http is not None and http.management is not None
    assert http.management.product == name
    assert bool(http.management.unauthenticated) is acts


def test_on_a_busy_default_port_the_hinted_products_paths_come_first() -> None:
    # 443 is a default port of a dozen products, more paths than the probe fetches: UniFi's
    # title hints at it, and its /status must still be read to confirm it.
    doc = {**load("positive")["ubiquiti-unifi"], "port": 443, "cert_subject": None}
    address = f"{POSITIVE_NET}201"
    with serve_samples({address: doc}):
        http = _probe_all({address: doc})[address]
    assert http is not None and http.management is not None
    assert http.management.product == "ubiquiti-unifi"
    assert "path /status" in http.management.markers
