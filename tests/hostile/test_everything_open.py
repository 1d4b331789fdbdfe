"""A host that accepts every port: detected, probed on a sample, and reported as one note (not a
thousand services), with the ports that answered differently still reported.

The decision (``docs/hostile.md``): at least 90 % of 50 or more scanned TCP ports open, or every
one of 20 or more; then a spread sample of 8 ports and the ports of the default set are
probed; if the sample answers alike, only the ports that answered differently are reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from exposure_audit.nmap.scanner import NmapScanner
from exposure_audit.observations import HostStatus
from exposure_audit.ports import parse_ports
from exposure_audit.probes.dns import make_resolver
from exposure_audit.probes.http import HttpProbeSettings
from exposure_audit.report import Report
from exposure_audit.run.audit import Auditor, AuditSettings
from exposure_audit.run.host import accepts_everything, spread
from exposure_audit.targets import parse_item, plan_targets

from .corpus import Case, Corpus, answer, hold, page

# Addresses before the corpus shifts them (use hosts.address(name)).
SILENT = "127.90.2.1"
MIXED = "127.90.2.2"
BEHIND = "127.90.2.3"
RANGE = range(22000, 22060)  # 60 ports
DSM_LIKE = 9901  # a port of the default set (Surveillance Station)


def audit(address: str, ports: str) -> tuple[Report, float]:
    settings = AuditSettings(
        ports=parse_ports(ports),
        host_timeout=15.0,
        http=HttpProbeSettings(request_timeout=1.0, identify_timeout=1.0),
        version_detection=False,
        upnp=False,
    )
    plan = plan_targets([parse_item(address, "test")], allow_private=True)
    auditor = Auditor(plan, settings, scanner=NmapScanner(), resolver=make_resolver(None))
    started = time.monotonic()
    report = asyncio.run(auditor.run())
    return report, time.monotonic() - started


@pytest.fixture(scope="module")
def hosts() -> Iterator[Corpus]:
    cases = [
        Case("silent", SILENT, hold, "every port accepts, none speaks", ports=tuple(RANGE)),
        Case(
            "mixed",
            MIXED,
            answer(page(b"real")),
            "a real host with many services",
            ports=tuple(RANGE)[::2],
        ),
        Case("mixed-silent", MIXED, hold, "", ports=tuple(RANGE)[1::2]),
        Case("behind", BEHIND, hold, "a firewall accepting all", ports=tuple(RANGE)),
        Case("behind-dsm", BEHIND, answer(page(b"NAS")), "a NAS behind it", ports=(DSM_LIKE,)),
    ]
    try:
        with Corpus([], extra=cases) as silent_hosts:
            yield silent_hosts
    except OSError as exc:  # pragma: no cover - a port of the range is taken on this machine
        pytest.skip(f"cannot bind the everything-open range: {exc}")


def test_the_thresholds() -> None:
    assert accepts_everything(45, 50) and accepts_everything(900, 1000)
    assert not accepts_everything(44, 50) and not accepts_everything(48, 49)
    assert accepts_everything(20, 20) and accepts_everything(31, 31)
    assert not accepts_everything(19, 20) and not accepts_everything(19, 19)
    assert spread(list(range(1000)), 8) == [62, 187, 312, 437, 562, 687, 812, 937]
    assert spread([1, 2, 3], 8) == [1, 2, 3]


def test_a_silent_host_accepting_every_port_is_one_note(hosts: Corpus) -> None:
    report, seconds = audit(hosts.address("silent"), f"{RANGE.start}-{RANGE.stop - 1}")
    (host,) = report.hosts
    obs = host.observation
    assert obs.services == () and host.findings == ()
    assert obs.status is HostStatus.INCOMPLETE and host.grade.value == "?"
    (note,) = obs.notes
    assert note.startswith("all 60 scanned TCP ports accepted connections")
    assert "(no HTTP or TLS answer)" in note
    # The sample only: 8 ports, each tried over TLS and plain HTTP, not 60.
    assert hosts.hits("silent").connections <= 60 + 8 * 2  # nmap's connects, then the sample
    assert seconds < 10


def test_a_host_whose_sample_answers_differ_is_reported_port_by_port(hosts: Corpus) -> None:
    report, _ = audit(hosts.address("mixed"), f"{RANGE.start}-{RANGE.stop - 1}")
    (host,) = report.hosts
    obs = host.observation
    assert len(obs.open_services()) == 60
    assert obs.notes == () and obs.status is HostStatus.COMPLETE
    assert sum(1 for s in obs.services if s.http is not None) == 30


def test_a_port_answering_differently_behind_an_accept_all_firewall_is_still_reported(
    hosts: Corpus,
) -> None:
    report, _ = audit(hosts.address("behind"), f"{RANGE.start}-{RANGE.stop - 1},{DSM_LIKE}")
    (host,) = report.hosts
    obs = host.observation
    assert [(s.port, s.http and s.http.title) for s in obs.services] == [(DSM_LIKE, "NAS")]
    (note,) = obs.notes
    assert note.startswith("all 61 scanned TCP ports") and f"{DSM_LIKE} answered" in note
