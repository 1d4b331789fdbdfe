"""Per-request timeouts and the per-host deadline, in the audit itself: tarpits, slow drips and
stalled TLS handshakes are cut at the host deadline and reported incomplete, while a well-behaved
host in the same run is reported at full speed, and nmap -sV never outlives the deadline by
more than its grace."""

from __future__ import annotations

import asyncio
import time

from exposure_audit.nmap.scanner import NmapScanner
from exposure_audit.observations import HostStatus
from exposure_audit.ports import parse_ports
from exposure_audit.probes.dns import make_resolver
from exposure_audit.probes.http import HttpProbeSettings
from exposure_audit.report import HostReport
from exposure_audit.run.audit import _NMAP_GRACE, Auditor, AuditSettings
from exposure_audit.targets import parse_item, plan_targets

from .corpus import Corpus

HOST_TIMEOUT = 4.0
SLOW = ["tarpit", "drip-head", "drip-body", "tls-stall", "garbage-status"]


def test_slow_hosts_are_cut_at_the_deadline_and_the_fast_one_is_not_held_back(
    corpus: Corpus,
) -> None:
    names = ["fast", *SLOW]
    finished: dict[str, float] = {}
    by_address = {corpus.address(n): n for n in names}
    plan = plan_targets([parse_item(corpus.address(n), "test") for n in names], allow_private=True)
    settings = AuditSettings(
        ports=parse_ports(",".join(str(corpus.port(n)) for n in names)),
        host_timeout=HOST_TIMEOUT,
        # The defaults: the identify timeout alone (10 s) is longer than this host deadline.
        http=HttpProbeSettings(),
        upnp=False,
    )

    def on_host(host: HostReport) -> None:
        finished[by_address[host.observation.address]] = time.monotonic() - started

    auditor = Auditor(
        plan, settings, scanner=NmapScanner(), resolver=make_resolver(None), on_host=on_host
    )
    started = time.monotonic()
    report = asyncio.run(auditor.run())
    elapsed = time.monotonic() - started

    hosts = {by_address[h.observation.address]: h for h in report.hosts}
    assert hosts["fast"].observation.status is HostStatus.COMPLETE
    assert finished["fast"] < 2.0, finished
    for name in SLOW:
        obs = hosts[name].observation
        assert obs.status is HostStatus.INCOMPLETE, name
        # Cut with its open port unidentified: graded on that finding (UNK002), never A.
        assert hosts[name].grade.value != "A", name
        assert "UNK002" in {f.rule for f in hosts[name].findings}, name
        assert any(a.status.value == "timed_out" for a in obs.attempts), name
        assert [s.port for s in obs.open_services()] == [corpus.port(name)], name
    # Everything within the deadline, the -sV grace and start-up: not the sum of the tarpits.
    assert elapsed < HOST_TIMEOUT + _NMAP_GRACE + 2.0, finished
    assert report.complete
