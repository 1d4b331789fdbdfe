"""The diff of two runs by finding id: the issue's weekly scenario in miniature (a DSM upgraded,
a port opened, a port closed, a host timed out), then each rule of the diff on its own.

The two runs are built from plain values; ``week_one``/``week_two`` are shared with the
renderer tests (tests/test_render_diff.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

from exposure_audit.diff import (
    CarriedFinding,
    CoverageShortfall,
    FindingChange,
    ReportDiff,
    coverage_shortfall,
    diff_reports,
)
from exposure_audit.findings import Acceptance, Finding, Severity, finding_id
from exposure_audit.grading import Grade, grade_host
from exposure_audit.observations import (
    AddressFamily,
    DsmFingerprint,
    HostObservation,
    HostStatus,
    HttpObservation,
    ProbeAttempt,
    ProbeStatus,
    ServiceObservation,
)
from exposure_audit.ports import PortSet
from exposure_audit.report import HostReport, Report, UnauditedTarget

NAS = "198.51.100.7"
FTP = "198.51.100.9"
ROUTER = "198.51.100.20"
WEB = "203.0.113.5"
GONE = "203.0.113.99"
FRESH = "203.0.113.20"

TITLES = {
    "DSM001": "DSM management interface reachable over plain HTTP",
    "DSM002": "DSM management interface reachable over HTTPS",
    "DSM003": "DSM build exploitable by SynoLocker (CVE-2013-6955)",
    "DSM004": "DSM below the fix of a pre-authentication advisory, or end of life",
    "DSM005": "DSM version or build disclosed to unauthenticated clients",
    "SVC001": "Cleartext or data-plane service reachable from the Internet",
    "SVC002": "Remote administration reachable from the Internet (SSH, SRM)",
    "TLS001": "Default Synology or expired certificate on an exposed service",
    "VAN001": "Service reachable from some vantage points and not from others",
}


def finding(rule: str, severity: Severity, address: str, port: int, proto: str = "tcp") -> Finding:
    return Finding(
        id=finding_id(rule, address, proto, port),
        rule=rule,
        severity=severity,
        address=address,
        port=port,
        protocol=proto,
        title=TITLES[rule],
        evidence=f"evidence of {rule} on {port}/{proto}",
        remediation=f"Remediation of {rule}.",
    )


def host(
    address: str,
    services: tuple[ServiceObservation, ...],
    findings: tuple[Finding, ...] = (),
    *,
    status: HostStatus = HostStatus.COMPLETE,
    attempts: tuple[ProbeAttempt, ...] = (),
) -> HostReport:
    observation = HostObservation(
        address=address,
        family=AddressFamily.IPV6 if ":" in address else AddressFamily.IPV4,
        services=services,
        status=status,
        attempts=attempts,
    )
    return HostReport(observation, findings, grade_host(findings, observation))


def report(*hosts: HostReport, day: int = 1) -> Report:
    started = datetime(2026, 11, day, 3, 0, tzinfo=UTC)
    return Report(
        tool_version="0.1.0",
        started_at=started,
        finished_at=started.replace(minute=2),
        ports=PortSet((21, 22, 23, 80, 443, 873, 5000, 5001, 8080)),
        hosts=hosts,
    )


def dsm_http(version: str, build: int, update: int | None = None) -> ServiceObservation:
    dsm = DsmFingerprint(("title", "info-cgi"), version=version, build=build, update=update)
    return ServiceObservation(
        5000, "tcp", "open", "http", http=HttpObservation("http", 200, dsm=dsm)
    )


def ssh(version: str, port: int = 22) -> ServiceObservation:
    return ServiceObservation(port, "tcp", "open", "ssh", "OpenSSH", version)


def https(port: int = 443) -> ServiceObservation:
    return ServiceObservation(port, "tcp", "open", "https", http=HttpObservation("https", 200))


def week_one() -> Report:
    """Run 1: an old DSM on the NAS with Telnet and SSH, an FTP box, a web server with SSH."""
    return report(
        host(
            NAS,
            (
                dsm_http("4.3", 3810),
                ServiceObservation(23, "tcp", "open", "telnet", "Synology DiskStation telnetd"),
                ssh("8.2p1"),
            ),
            (
                finding("DSM001", Severity.CRITICAL, NAS, 5000),
                finding("DSM003", Severity.CRITICAL, NAS, 5000),
                finding("DSM004", Severity.CRITICAL, NAS, 5000),
                finding("DSM005", Severity.LOW, NAS, 5000),
                finding("SVC001", Severity.CRITICAL, NAS, 23),
                finding("SVC002", Severity.MEDIUM, NAS, 22),
            ),
        ),
        host(
            FTP,
            (ServiceObservation(21, "tcp", "open", "ftp", "ProFTPD", "1.3.5"),),
            (finding("SVC001", Severity.HIGH, FTP, 21),),
        ),
        host(ROUTER, (ssh("9.6p1"),), (finding("SVC002", Severity.MEDIUM, ROUTER, 22),)),
        host(
            WEB,
            (https(), ssh("9.6p1")),
            (
                finding("TLS001", Severity.LOW, WEB, 443),
                finding("SVC002", Severity.MEDIUM, WEB, 22),
            ),
        ),
        host(GONE, ()),
    )


def week_two() -> Report:
    """Run 2: the DSM upgraded, Telnet closed, rsync opened, OpenSSH upgraded on the NAS; the FTP
    box timed out; SSH closed on the web server; one host left the list, one joined."""
    return report(
        host(
            NAS,
            (
                dsm_http("7.2.2", 72806),
                ServiceObservation(23, "tcp", "closed", "telnet"),
                ssh("9.6p1"),
                ServiceObservation(873, "tcp", "open", "rsync", "rsync", "protocol 31"),
            ),
            (
                finding("DSM001", Severity.CRITICAL, NAS, 5000),
                finding("DSM005", Severity.LOW, NAS, 5000),
                finding("SVC002", Severity.MEDIUM, NAS, 22),
                finding("SVC001", Severity.HIGH, NAS, 873),
            ),
        ),
        host(
            FTP,
            (),
            status=HostStatus.INCOMPLETE,
            attempts=(ProbeAttempt("discovery", ProbeStatus.TIMED_OUT, "host deadline reached"),),
        ),
        host(ROUTER, (ssh("9.6p1"),), (finding("SVC002", Severity.MEDIUM, ROUTER, 22),)),
        host(WEB, (https(),), (finding("TLS001", Severity.LOW, WEB, 443),)),
        host(FRESH, (ServiceObservation(8080, "tcp", "open", "http-proxy"),)),
        day=8,
    )


def weekly_diff() -> ReportDiff:
    return diff_reports(week_one(), week_two(), old_run=1, new_run=2)


def keys(changes: tuple[FindingChange, ...]) -> list[tuple[str, str, int]]:
    return [(c.rule, c.address, c.port) for c in changes]


# --- the weekly scenario ---------------------------------------------------------------------


def test_an_upgraded_dsm_resolves_its_advisories_and_changes_the_version_finding() -> None:
    diff = weekly_diff()
    assert ("DSM003", NAS, 5000) in keys(diff.resolved)
    assert ("DSM004", NAS, 5000) in keys(diff.resolved)
    changed = {(c.rule, c.port): c.changes for c in diff.changed}
    assert changed[("DSM005", 5000)] == ("DSM 4.3-3810 -> 7.2.2-72806",)
    assert changed[("DSM001", 5000)] == ("DSM 4.3-3810 -> 7.2.2-72806",)


def test_a_newly_opened_port_is_the_only_new_finding_and_the_only_worsened_one() -> None:
    diff = weekly_diff()
    assert keys(diff.new) == [("SVC001", NAS, 873)]
    assert diff.new[0].before is None and diff.new[0].after is not None
    assert diff.worsened() == list(diff.new)
    assert (NAS, 873, "tcp") in diff.services_appeared


def test_a_closed_port_resolves_its_finding_and_says_the_port_closed() -> None:
    diff = weekly_diff()
    telnet = next(c for c in diff.resolved if c.port == 23)
    assert telnet.rule == "SVC001" and telnet.after is None and telnet.before is not None
    assert telnet.changes == ("port 23/tcp closed",)
    assert (NAS, 23, "tcp") in diff.services_vanished
    web_ssh = next(c for c in diff.resolved if c.address == WEB)
    assert web_ssh.changes == ("port 22/tcp no longer open",)


def test_findings_of_a_host_that_timed_out_are_not_rechecked_rather_than_resolved() -> None:
    diff = weekly_diff()
    assert keys(diff.not_rechecked) == [("SVC001", FTP, 21)]
    assert diff.not_confirmed == ()
    assert diff.not_rechecked[0].changes == (
        f"host {FTP} incomplete in the new run (discovery timed out)",
    )
    assert all(c.address != FTP for c in diff.resolved)
    assert (FTP, 21, "tcp") not in diff.services_vanished  # not seen is not closed


def test_a_product_upgrade_and_a_host_grade_change_are_changes_in_words() -> None:
    diff = weekly_diff()
    changed = {(c.rule, c.address): c.changes for c in diff.changed}
    assert changed[("SVC002", NAS)] == ("product version 8.2p1 -> 9.6p1",)
    assert changed[("TLS001", WEB)] == ("host grade C -> B",)


def test_an_untouched_finding_is_unchanged() -> None:
    diff = weekly_diff()
    assert keys(diff.unchanged) == [("SVC002", ROUTER, 22)]
    assert diff.unchanged[0].changes == ()


def test_hosts_that_joined_or_left_and_the_run_grades_are_reported() -> None:
    diff = weekly_diff()
    assert diff.hosts_appeared == (FRESH,)
    assert diff.hosts_vanished == (GONE,)
    assert diff.services_appeared == ((NAS, 873, "tcp"), (FRESH, 8080, "tcp"))
    assert diff.services_vanished == ((NAS, 23, "tcp"), (WEB, 22, "tcp"))
    assert (diff.old_grade, diff.new_grade) == (Grade.F, Grade.F)
    assert (diff.old_run, diff.new_run) == (1, 2)
    assert diff.has_changes


def test_every_finding_of_either_run_lands_in_exactly_one_list() -> None:
    old, new = week_one(), week_two()
    diff = diff_reports(old, new)
    lists = (
        diff.new,
        diff.resolved,
        diff.changed,
        diff.unchanged,
        diff.not_confirmed,
        diff.not_rechecked,
    )
    ids = [c.id for changes in lists for c in changes]
    assert sorted(ids) == sorted({f.id for f in old.findings()} | {f.id for f in new.findings()})


def test_each_list_is_sorted_worst_severity_first() -> None:
    resolved = weekly_diff().resolved
    severities = [c.before.severity for c in resolved if c.before is not None]
    assert severities == sorted(severities, reverse=True)
    assert keys(resolved) == [
        ("SVC001", NAS, 23),  # critical, then by address, protocol, port, rule
        ("DSM003", NAS, 5000),
        ("DSM004", NAS, 5000),
        ("SVC002", WEB, 22),
    ]


# --- each rule on its own ----------------------------------------------------------------------


def test_a_run_compared_with_itself_has_no_changes() -> None:
    run = week_one()
    diff = diff_reports(run, run)
    assert not diff.has_changes
    assert len(diff.unchanged) == len(run.findings())
    assert not (diff.new or diff.resolved or diff.changed or diff.not_confirmed)
    assert not (diff.not_rechecked or diff.carried)


def test_a_port_filtered_in_the_new_run_is_not_confirmed() -> None:
    old = report(host(FTP, (ServiceObservation(21, "tcp", "open", "ftp"),), (_ftp(),)))
    new = report(host(FTP, (ServiceObservation(21, "tcp", "filtered", "ftp"),)))
    diff = diff_reports(old, new)
    assert diff.not_confirmed[0].changes == ("port 21/tcp filtered in the new run",)
    assert not diff.resolved and not diff.services_vanished


def test_a_port_missing_while_a_probe_timed_out_is_not_confirmed() -> None:
    old = report(host(FTP, (ServiceObservation(21, "tcp", "open", "ftp"),), (_ftp(),)))
    timed_out = ProbeAttempt("discovery", ProbeStatus.TIMED_OUT, "nmap timed out")
    new = report(host(FTP, (), attempts=(timed_out,)))
    diff = diff_reports(old, new)
    assert diff.not_confirmed[0].changes == (
        "port 21/tcp not seen while discovery timed out in the new run",
    )


def test_a_probe_error_on_the_port_leaves_its_findings_not_confirmed() -> None:
    # Given DSM 4.3 in run 1, and in run 2 an HTTP probe that failed half-way on the same port
    old = report(
        host(NAS, (dsm_http("4.3", 3810),), (finding("DSM003", Severity.CRITICAL, NAS, 5000),))
    )
    broken = ServiceObservation(5000, "tcp", "open", "http", http=HttpObservation("http", 200))
    error = ProbeAttempt("http", ProbeStatus.ERROR, "http answered, then failed", 5000)
    new = report(host(NAS, (broken,), attempts=(error,)))
    # When the runs are compared
    diff = diff_reports(old, new)
    # Then the SynoLocker finding is not claimed fixed
    assert keys(diff.not_confirmed) == [("DSM003", NAS, 5000)]
    assert diff.not_confirmed[0].changes == ("http probe error on port 5000/tcp in the new run",)


def test_a_host_left_out_of_the_new_run_has_its_findings_not_rechecked() -> None:
    old = report(host(FTP, (ServiceObservation(21, "tcp", "open", "ftp"),), (_ftp(),)))
    diff = diff_reports(old, report())
    assert diff.hosts_vanished == (FTP,)
    assert diff.not_rechecked[0].changes == (f"host {FTP} not audited in the new run",)
    assert diff.services_vanished == ()


def test_a_host_level_finding_is_resolved_on_a_complete_host() -> None:
    upnp = finding("SVC001", Severity.HIGH, NAS, 0, "")
    old = report(host(NAS, (), (upnp,)))
    diff = diff_reports(old, report(host(NAS, ())))
    assert keys(diff.resolved) == [("SVC001", NAS, 0)]
    assert diff.resolved[0].changes == ()


def test_a_severity_change_is_a_change_and_worsens_when_it_goes_up() -> None:
    service = (ServiceObservation(21, "tcp", "open", "ftp"),)
    old = report(host(FTP, service, (_ftp(Severity.MEDIUM),)))
    new = report(host(FTP, service, (_ftp(Severity.CRITICAL),)))
    diff = diff_reports(old, new)
    assert diff.changed[0].changes == ("severity medium -> critical", "host grade C -> F")
    assert diff.worsened() == [diff.changed[0]]
    assert (diff.old_grade, diff.new_grade) == (Grade.C, Grade.F)
    assert diff_reports(new, old).worsened() == []


def test_a_dsm_update_level_and_a_product_swap_are_described() -> None:
    old = report(
        host(
            NAS,
            (dsm_http("7.2.2", 72806), ssh("8.2p1")),
            (
                finding("DSM005", Severity.LOW, NAS, 5000),
                finding("SVC002", Severity.MEDIUM, NAS, 22),
            ),
        )
    )
    dropbear = ServiceObservation(22, "tcp", "open", "ssh", "Dropbear sshd", "2022.83")
    new = report(
        host(
            NAS,
            (dsm_http("7.2.2", 72806, update=1), dropbear),
            (
                finding("DSM005", Severity.LOW, NAS, 5000),
                finding("SVC002", Severity.MEDIUM, NAS, 22),
            ),
        )
    )
    changes = {c.rule: c.changes for c in diff_reports(old, new).changed}
    assert changes["DSM005"] == ("DSM 7.2.2-72806 -> 7.2.2-72806 Update 1",)
    assert changes["SVC002"] == ("product OpenSSH 8.2p1 -> Dropbear sshd 2022.83",)


def test_an_accepted_finding_is_still_diffed_and_keeps_its_acceptance() -> None:
    # Given the same finding, accepted in run 2 only
    service = (ServiceObservation(21, "tcp", "open", "ftp"),)
    acceptance = Acceptance("FTP for the scanner drop", "alice", date(2026, 12, 31))
    accepted = dataclasses.replace(_ftp(), acceptance=acceptance)
    old = report(host(FTP, service, (_ftp(),)))
    new = report(host(FTP, service, (accepted,)))
    # When the runs are compared
    change = diff_reports(old, new).changed[0]
    # Then the diff says what happened and the acceptance stays on the finding
    assert change.changes == ("host grade D -> A", "accepted until 2026-12-31 by alice")
    assert change.after is not None and change.after.acceptance == acceptance


def test_an_expired_acceptance_shows_in_the_changes() -> None:
    service = (ServiceObservation(21, "tcp", "open", "ftp"),)
    live = Acceptance("FTP for the scanner drop", "alice", date(2026, 12, 31))
    expired = dataclasses.replace(live, expired=True)
    old = report(host(FTP, service, (dataclasses.replace(_ftp(), acceptance=live),)))
    new = report(host(FTP, service, (dataclasses.replace(_ftp(), acceptance=expired),)))
    change = diff_reports(old, new).changed[0]
    assert change.changes == ("host grade A -> D", "acceptance expired (2026-12-31)")


def test_a_new_finding_under_an_acceptance_says_so() -> None:
    service = (ServiceObservation(21, "tcp", "open", "ftp"),)
    live = Acceptance("FTP for the scanner drop", "alice", date(2026, 12, 31))
    new = report(host(FTP, service, (dataclasses.replace(_ftp(), acceptance=live),)))
    diff = diff_reports(report(host(FTP, service)), new)
    assert diff.new[0].changes == ("accepted until 2026-12-31 by alice",)


def _ftp(severity: Severity = Severity.HIGH) -> Finding:
    return finding("SVC001", severity, FTP, 21)


# -- runs audited from several vantages -------------------------------------------------------


def _seen(
    port: int, reachable: tuple[str, ...], untested: tuple[str, ...] = ()
) -> ServiceObservation:
    return dataclasses.replace(https(port), reachable_from=reachable, untested_from=untested)


def _vantage_run(*services: ServiceObservation, day: int, rules: tuple[str, ...] = ()) -> Report:
    nas = host(NAS, services, tuple(finding(r, Severity.MEDIUM, NAS, 5001) for r in rules))
    nas = dataclasses.replace(
        nas, observation=dataclasses.replace(nas.observation, vantages=("eu", "us"))
    )
    return dataclasses.replace(report(nas, day=day), vantages=("eu", "us"))


def test_a_service_now_reachable_from_another_vantage_is_a_change() -> None:
    # Given 5001 reachable from eu only in week one, from eu and us in week two
    old = _vantage_run(_seen(443, ("eu", "us")), _seen(5001, ("eu",)), day=1)
    new = _vantage_run(_seen(443, ("eu", "us")), _seen(5001, ("eu", "us")), day=8)
    diff = diff_reports(old, new)
    # Then the service changed (from/to), and only that one
    (change,) = diff.services_changed
    assert change.key == (NAS, 5001, "tcp")
    assert (change.before, change.after) == (("eu",), ("eu", "us"))
    assert change.describe() == "reachable from eu -> eu, us"
    assert diff.has_changes
    assert not diff.services_appeared and not diff.services_vanished


def test_a_service_no_longer_reachable_from_a_vantage_that_scanned_it_is_a_change() -> None:
    old = _vantage_run(_seen(5001, ("eu", "us")), day=1)
    new = _vantage_run(_seen(5001, ("eu",)), day=8)
    (change,) = diff_reports(old, new).services_changed
    assert change.describe() == "reachable from eu, us -> eu"


def test_a_vantage_that_could_not_tell_this_time_changes_nothing() -> None:
    old = _vantage_run(_seen(5001, ("eu", "us")), day=1)
    new = _vantage_run(_seen(5001, ("eu",), untested=("us",)), day=8)
    diff = diff_reports(old, new)
    assert diff.services_changed == ()
    assert not diff.has_changes


def test_van001_appearing_and_resolving_are_finding_changes_as_usual() -> None:
    consistent = _vantage_run(_seen(5001, ("eu", "us")), day=1)
    split = _vantage_run(_seen(5001, ("eu",)), day=8, rules=("VAN001",))
    appeared = diff_reports(consistent, split)
    assert [c.rule for c in appeared.new] == ["VAN001"]
    assert appeared.new[0].id == finding_id("VAN001", NAS, "tcp", 5001)
    resolved = diff_reports(split, consistent)
    assert [c.rule for c in resolved.resolved] == ["VAN001"]


def test_runs_without_vantages_on_either_side_have_no_reachability_changes() -> None:
    plain = report(host(NAS, (https(5001),)))
    split = _vantage_run(_seen(5001, ("eu",)), day=8)
    assert diff_reports(plain, split).services_changed == ()
    assert diff_reports(split, plain).services_changed == ()
    assert weekly_diff().services_changed == ()


# -- what the new run did not look at: not re-checked, and carried to the next diff -----------


def _dsm_https(version: str = "7.2.2", build: int = 72806) -> ServiceObservation:
    dsm = DsmFingerprint(("title", "info-cgi"), version=version, build=build)
    return ServiceObservation(
        5001, "tcp", "open", "https", http=HttpObservation("https", 200, dsm=dsm)
    )


def _nas_run(*services: ServiceObservation, ports: tuple[int, ...], day: int) -> Report:
    """The NAS with DSM001 on 5000 (grade F), and DSM002 on 5001 whenever 5001 is among
    ``services``, open and identified."""
    findings = [finding("DSM001", Severity.CRITICAL, NAS, 5000)]
    findings += [
        finding("DSM002", Severity.HIGH, NAS, 5001)
        for s in services
        if s.port == 5001 and s.state == "open" and not s.unidentified
    ]
    run = report(host(NAS, (dsm_http("7.2.2", 72806), *services), tuple(findings)), day=day)
    return dataclasses.replace(run, ports=PortSet(ports))


def test_a_port_the_new_run_did_not_scan_is_not_rechecked_never_resolved() -> None:
    # Given DSM002 on 5001 in run 1, and run 2 scanning only 5000 (-p 5000)
    old = _nas_run(_dsm_https(), ports=(5000, 5001), day=1)
    new = _nas_run(ports=(5000,), day=8)
    # When the runs are compared
    diff = diff_reports(old, new, old_run=1, new_run=2)
    # Then DSM002 is not re-checked, not resolved, and 5001 did not "close"
    assert keys(diff.not_rechecked) == [("DSM002", NAS, 5001)]
    assert diff.not_rechecked[0].changes == ("port 5001/tcp not in the new run's port set",)
    assert diff.resolved == () and diff.services_vanished == ()
    assert not diff.has_changes
    # And it is carried as seen in run 1, with its service and host grade then
    (carried,) = diff.carried
    assert carried.finding.rule == "DSM002" and carried.seen_in == 1
    assert carried.service is not None and carried.service.dsm is not None
    assert carried.host_grade == old.hosts[0].grade
    assert carried.reason == "port 5001/tcp not in the new run's port set"


def test_a_carried_finding_seen_again_is_unchanged_not_new() -> None:
    # Given run 2 did not re-check DSM002 on 5001, and run 3 scans 5001 again and sees it
    run1 = _nas_run(_dsm_https(), ports=(5000, 5001), day=1)
    run2 = _nas_run(ports=(5000,), day=8)
    run3 = _nas_run(_dsm_https(), ports=(5000, 5001), day=15)
    carried = diff_reports(run1, run2, old_run=1, new_run=2).carried
    # When run 3 is compared with run 2 and what run 2 carried
    diff = diff_reports(run2, run3, old_run=2, new_run=3, carried=carried)
    # Then DSM002 is unchanged against the carried finding: not new, nothing worsened
    assert diff.new == () and diff.worsened() == []
    assert ("DSM002", NAS, 5001) in keys(diff.unchanged)
    assert diff.carried == ()
    # Without the carried findings it would have been new (the bug this fixes)
    assert keys(diff_reports(run2, run3).new) == [("DSM002", NAS, 5001)]


def test_a_carried_finding_compares_with_its_service_as_last_seen() -> None:
    run1 = _nas_run(_dsm_https("7.1.1", 42962), ports=(5000, 5001), day=1)
    run2 = _nas_run(ports=(5000,), day=8)
    run3 = _nas_run(_dsm_https("7.2.2", 72806), ports=(5000, 5001), day=15)
    carried = diff_reports(run1, run2, old_run=1, new_run=2).carried
    diff = diff_reports(run2, run3, old_run=2, new_run=3, carried=carried)
    (change,) = diff.changed
    assert change.rule == "DSM002"
    assert change.changes == ("DSM 7.1.1-42962 -> 7.2.2-72806",)


def test_a_run_that_again_could_not_look_keeps_it_not_rechecked_since_its_last_sighting() -> None:
    run1 = _nas_run(_dsm_https(), ports=(5000, 5001), day=1)
    run2 = _nas_run(ports=(5000,), day=8)
    run3 = _nas_run(ports=(5000,), day=15)
    carried = diff_reports(run1, run2, old_run=1, new_run=2).carried
    diff = diff_reports(run2, run3, old_run=2, new_run=3, carried=carried)
    assert keys(diff.not_rechecked) == [("DSM002", NAS, 5001)]
    assert diff.not_rechecked[0].changes == (
        "port 5001/tcp not in the new run's port set",
        "last seen in run 1",
    )
    assert [c.seen_in for c in diff.carried] == [1]  # still last seen in run 1, not run 2


def test_only_a_run_that_looked_and_did_not_see_it_resolves_a_carried_finding() -> None:
    run1 = _nas_run(_dsm_https(), ports=(5000, 5001), day=1)
    run2 = _nas_run(ports=(5000,), day=8)
    run3 = _nas_run(ServiceObservation(5001, "tcp", "closed"), ports=(5000, 5001), day=15)
    carried = diff_reports(run1, run2, old_run=1, new_run=2).carried
    diff = diff_reports(run2, run3, old_run=2, new_run=3, carried=carried)
    assert keys(diff.resolved) == [("DSM002", NAS, 5001)]
    assert diff.resolved[0].changes == ("port 5001/tcp closed", "last seen in run 1")
    assert diff.carried == () and diff.has_changes


def test_a_finding_the_old_run_holds_wins_over_a_carried_one() -> None:
    run = _nas_run(_dsm_https(), ports=(5000, 5001), day=1)
    stale = CarriedFinding(
        dataclasses.replace(run.findings()[1], severity=Severity.LOW), 0, Grade.A
    )
    diff = diff_reports(run, run, old_run=1, new_run=2, carried=(stale,))
    assert not diff.has_changes and ("DSM002", NAS, 5001) in keys(diff.unchanged)
    assert next(c for c in diff.unchanged if c.rule == "DSM002").before == run.findings()[1]


def test_an_open_port_nothing_identified_is_not_rechecked() -> None:
    old = _nas_run(_dsm_https(), ports=(5000, 5001), day=1)
    silent = ServiceObservation(
        5001, "tcp", "open", unidentified="no answer within 10 s on HTTP, TLS or nmap -sV"
    )
    new = _nas_run(silent, ports=(5000, 5001), day=8)
    diff = diff_reports(old, new)
    assert diff.not_rechecked[0].changes == (
        "port 5001/tcp open but not identified in the new run",
    )
    assert diff.resolved == ()


def test_udp_left_out_of_the_new_run_leaves_udp_findings_not_rechecked() -> None:
    snmp = finding("SVC001", Severity.HIGH, NAS, 161, "udp")
    old = report(host(NAS, (ServiceObservation(161, "udp", "open", "snmp"),), (snmp,)))
    old = dataclasses.replace(old, ports=PortSet((5000,), (161,)))
    skipped = ProbeAttempt("udp", ProbeStatus.SKIPPED, "UDP ports 161 skipped: needs root")
    new = dataclasses.replace(
        report(host(NAS, (), attempts=(skipped,))), ports=PortSet((5000,), (161,))
    )
    diff = diff_reports(old, new)
    assert diff.not_rechecked[0].changes == (
        "port 161/udp not probed in the new run (UDP ports 161 skipped: needs root)",
    )
    assert diff.services_vanished == ()


def test_a_filtered_port_is_not_confirmed_and_carried_too() -> None:
    old = report(host(FTP, (ServiceObservation(21, "tcp", "open", "ftp"),), (_ftp(),)))
    new = report(host(FTP, (ServiceObservation(21, "tcp", "filtered", "ftp"),)))
    diff = diff_reports(old, new, old_run=4, new_run=5)
    assert keys(diff.not_confirmed) == [("SVC001", FTP, 21)] and diff.not_rechecked == ()
    assert [(c.finding.rule, c.seen_in) for c in diff.carried] == [("SVC001", 4)]


# -- coverage: a run that audited nothing, or fewer hosts than its baseline -------------------


def test_a_run_that_audited_nothing_falls_short_with_each_targets_reason() -> None:
    empty = dataclasses.replace(
        report(), not_audited=(UnauditedTarget("nas.example.net", "NXDOMAIN"),)
    )
    shortfall = coverage_shortfall(empty, week_one(), baseline_run=1)
    assert shortfall is not None and shortfall.nothing
    assert shortfall.describe() == "audit covered nothing: nas.example.net: NXDOMAIN"
    assert shortfall.expected == 5 and shortfall.baseline_run == 1
    # Without a baseline (a first run) too
    first = coverage_shortfall(empty)
    assert first is not None and first.describe().startswith("audit covered nothing: ")


def test_a_run_with_fewer_hosts_than_its_baseline_falls_short_and_names_the_missing() -> None:
    baseline = report(host(NAS, ()), host(FTP, ()))
    shortfall = coverage_shortfall(report(host(NAS, ())), baseline, baseline_run=3)
    assert shortfall == CoverageShortfall(audited=1, expected=2, baseline_run=3, missing=(FTP,))
    assert shortfall.describe() == (
        f"audit covered fewer hosts than run 3: 1 of 2 (not audited: {FTP})"
    )


def test_as_many_hosts_as_the_baseline_or_no_baseline_is_no_shortfall() -> None:
    baseline = report(host(NAS, ()), host(FTP, ()))
    assert coverage_shortfall(report(host(NAS, ()), host(WEB, ())), baseline) is None
    assert coverage_shortfall(report(host(NAS, ()))) is None
