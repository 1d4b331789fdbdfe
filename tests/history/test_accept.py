"""Accepted risks: parsing the file (errors name file, line and key), matching by id and by
rule+address+port, the day after expiry, stale entries, and regrading."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exposure_audit.errors import UsageError
from exposure_audit.findings import Acceptance, Severity, finding_id
from exposure_audit.grading import Grade
from exposure_audit.history.accept import (
    AcceptedRisk,
    TomlFileError,
    apply_acceptances,
    parse_accepted,
)
from exposure_audit.observations import HostStatus, ServiceObservation
from exposure_audit.report import Report

from ..test_diff import FTP, NAS, dsm_http, finding, host, report, ssh

DATA = Path(__file__).parents[1] / "data" / "accept"
EXPIRES = date(2026, 12, 31)


def nas_report() -> Report:
    return report(
        host(
            NAS,
            (dsm_http("7.2.2", 72806), ssh("9.6p1")),
            (
                finding("DSM005", Severity.LOW, NAS, 5000),
                finding("SVC002", Severity.MEDIUM, NAS, 22),
            ),
        ),
        host(
            FTP,
            (ServiceObservation(21, "tcp", "open", "ftp"),),
            (finding("SVC001", Severity.HIGH, FTP, 21),),
        ),
    )


def by_id(rule: str, address: str, port: int) -> AcceptedRisk:
    return AcceptedRisk(
        id=finding_id(rule, address, "tcp", port),
        reason="known",
        owner="alice",
        expires=EXPIRES,
        where="accepted.toml:1",
    )


def by_key(rule: str, address: str, port: int, protocol: str | None = None) -> AcceptedRisk:
    return AcceptedRisk(
        rule=rule,
        address=address,
        port=port,
        protocol=protocol,
        reason="known",
        owner="bob",
        expires=EXPIRES,
        where="accepted.toml:7",
    )


# --- the example file --------------------------------------------------------------------------


def test_the_example_file_parses_into_entries_that_say_where_they_were_written() -> None:
    risks = parse_accepted((DATA / "accepted.toml").read_text(), "accepted.toml")
    assert risks == [
        AcceptedRisk(
            id="DSM005-3f1c0e9a2b7d",
            reason="the version endpoint cannot be turned off; DSM stays patched",
            owner="alice@example.net",
            expires=date(2027, 3, 31),
            where="accepted.toml:4",
        ),
        AcceptedRisk(
            rule="SVC002",
            address="2001:db8::7",
            port=22,
            reason="SSH with keys only, Auto Block on",
            owner="bob",
            expires=date(2026, 12, 31),
            where="accepted.toml:10",
        ),
        AcceptedRisk(
            rule="SVC001",
            address="198.51.100.9",
            port=21,
            protocol="tcp",
            reason="FTP drop for the scanner vendor",
            owner="carol",
            expires=date(2026, 6, 30),
            where="accepted.toml:18",
        ),
    ]


def test_an_empty_file_accepts_nothing() -> None:
    assert parse_accepted("# nothing accepted yet\n", "accepted.toml") == []


# --- errors name the file, the line and the key ------------------------------------------------

_ENTRY = '[[accept]]\nid = "DSM005-3f1c0e9a2b7d"\nreason = "r"\nowner = "o"\nexpires = 2026-12-31\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _ENTRY + "\n[[accept]]\nid = 'x'\nreason = 'r'\nowner = 'o'\n",
            "accepted.toml:7: accept[1].expires: missing (every entry needs reason, owner and "
            "expires)",
        ),
        (
            _ENTRY.replace("owner", "ownr"),
            "accepted.toml:4: accept[0].ownr: unknown key (did you mean owner?)",
        ),
        (
            _ENTRY.replace("2026-12-31", '"31/12/2026"'),
            "accepted.toml:5: accept[0].expires: '31/12/2026' is not a date like 2026-12-31",
        ),
        (
            _ENTRY.replace("2026-12-31", "2026-12-31T10:00:00"),
            "accepted.toml:5: accept[0].expires: must be a date like 2026-12-31, not a date-time",
        ),
        (
            _ENTRY + "port = 22\n",
            "accepted.toml:6: accept[0].port: name the finding by id or by rule+address+port, "
            "not both",
        ),
        (
            "[[accept]]\nrule = 'SVC002'\naddress = '198.51.100.7'\nreason = 'r'\nowner = 'o'\n"
            "expires = 2026-12-31\n",
            "accepted.toml:1: accept[0].port: missing (name the finding by id, or by rule, "
            "address and port)",
        ),
        (
            "[[accept]]\nrule = 'SVC002'\naddress = 'nas.example.net'\nport = 22\n",
            "accepted.toml:3: accept[0].address: 'nas.example.net' is not an IP address",
        ),
        (
            "[[accept]]\nrule = 'SVC002'\naddress = '198.51.100.7'\nport = 70000\n",
            "accepted.toml:4: accept[0].port: must be between 0 and 65535, not 70000",
        ),
        (
            _ENTRY.replace('reason = "r"', "reason = 42"),
            "accepted.toml:3: accept[0].reason: must be a string, not an integer",
        ),
        (
            _ENTRY.replace('reason = "r"', 'reason = "  "'),
            "accepted.toml:3: accept[0].reason: must not be empty",
        ),
        (
            "accept = 1\n",
            "accepted.toml:1: accept: must be an array of tables ([[accept]] entries)",
        ),
        ("[notify]\nwhen = 'new'\n", "accepted.toml:1: notify: unknown key (known: accept)"),
        (
            "[[accept]\n",
            "accepted.toml:1: not valid TOML: Expected ']]' at the end of an array declaration",
        ),
    ],
)
def test_a_bad_entry_is_an_error_naming_the_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(TomlFileError) as caught:
        parse_accepted(text, "accepted.toml")
    assert str(caught.value) == message
    assert isinstance(caught.value, UsageError)  # exit 2, nothing scanned


def test_a_key_in_a_later_entry_points_at_its_own_line() -> None:
    text = _ENTRY * 3 + "protocol = 'tcp'\n"
    with pytest.raises(TomlFileError) as caught:
        parse_accepted(text, "accepted.toml")
    assert (caught.value.line, caught.value.key) == (16, "accept[2].protocol")


# --- matching and applying ---------------------------------------------------------------------


def test_acceptances_match_by_id_and_by_rule_address_port() -> None:
    # Given one entry by id and one by rule+address+port
    risks = [by_id("DSM005", NAS, 5000), by_key("SVC001", FTP, 21)]
    # When they are applied before they expire
    accepted, stale = apply_acceptances(nas_report(), risks, date(2026, 12, 1))
    # Then both findings are marked, stay in the report, and nothing is stale
    marked = {f.rule: f.acceptance for f in accepted.findings()}
    assert marked == {
        "DSM005": Acceptance("known", "alice", EXPIRES),
        "SVC002": None,
        "SVC001": Acceptance("known", "bob", EXPIRES),
    }
    assert stale == []
    assert len(accepted.findings()) == 3


def test_accepted_findings_do_not_count_for_the_host_grade() -> None:
    accepted, _ = apply_acceptances(nas_report(), [by_key("SVC001", FTP, 21)], date(2026, 12, 1))
    grades = {h.address: h.grade for h in accepted.hosts}
    assert grades == {NAS: Grade.C, FTP: Grade.A}
    assert accepted.severity_counts()["high"] == 0 and accepted.accepted_count() == 1


def test_an_acceptance_holds_on_its_expiry_day_and_lapses_the_day_after() -> None:
    risks = [by_key("SVC001", FTP, 21)]
    on_the_day, _ = apply_acceptances(nas_report(), risks, EXPIRES)
    day_after, stale = apply_acceptances(nas_report(), risks, date(2027, 1, 1))
    assert {h.address: h.grade for h in on_the_day.hosts}[FTP] is Grade.A
    ftp = next(f for f in day_after.findings() if f.address == FTP)
    assert ftp.acceptance == Acceptance("known", "bob", EXPIRES, expired=True)
    assert ftp.counts  # flagged "acceptance expired", and counted again
    assert {h.address: h.grade for h in day_after.hosts}[FTP] is Grade.D
    assert stale == []  # an expired entry still matched something


def test_an_entry_that_matches_nothing_is_stale() -> None:
    gone = by_key("SVC001", NAS, 23)
    wrong_protocol = by_key("SVC001", FTP, 21, protocol="udp")
    risks = [by_id("DSM005", NAS, 5000), gone, wrong_protocol]
    _, stale = apply_acceptances(nas_report(), risks, date(2026, 12, 1))
    assert stale == [gone, wrong_protocol]


def test_a_live_entry_wins_over_an_expired_one_for_the_same_finding() -> None:
    old = AcceptedRisk(
        id=finding_id("SVC001", FTP, "tcp", 21),
        reason="old",
        owner="alice",
        expires=date(2025, 1, 1),
        where="a:1",
    )
    accepted, stale = apply_acceptances(
        nas_report(), [old, by_key("SVC001", FTP, 21)], date(2026, 12, 1)
    )
    ftp = next(f for f in accepted.findings() if f.address == FTP)
    assert ftp.acceptance is not None and ftp.acceptance.owner == "bob"
    assert stale == []


def test_applying_again_with_no_entries_clears_the_marks_and_regrades() -> None:
    accepted, _ = apply_acceptances(nas_report(), [by_key("SVC001", FTP, 21)], date(2026, 12, 1))
    cleared, stale = apply_acceptances(accepted, [], date(2026, 12, 1))
    assert cleared == nas_report() and stale == []


def test_an_incomplete_host_with_only_accepted_findings_grades_unknown_not_a() -> None:
    incomplete = report(
        host(
            FTP,
            (ServiceObservation(21, "tcp", "open", "ftp"),),
            (finding("SVC001", Severity.HIGH, FTP, 21),),
            status=HostStatus.INCOMPLETE,
        )
    )
    accepted, _ = apply_acceptances(incomplete, [by_key("SVC001", FTP, 21)], date(2026, 12, 1))
    assert accepted.hosts[0].grade is Grade.UNKNOWN


def test_an_entry_must_name_a_finding_one_way() -> None:
    with pytest.raises(ValueError, match="needs an id"):
        AcceptedRisk(rule="SVC001", reason="r", owner="o", expires=EXPIRES, where="x")
    with pytest.raises(ValueError, match="by id or"):
        AcceptedRisk(id="x", port=22, reason="r", owner="o", expires=EXPIRES, where="x")


def test_inline_entries_and_crlf_line_ends_point_at_the_right_line() -> None:
    text = (
        "accept = [\r\n"
        '  {id = "a", reason = "r", owner = "o", expires = 2026-01-01},\r\n'
        '  {id = "b", reason = "r", owner = "o", expires = "soon"},\r\n'
        "]\r\n"
    )
    with pytest.raises(TomlFileError) as caught:
        parse_accepted(text, "accepted.toml")
    assert (caught.value.line, caught.value.key) == (3, "accept[1].expires")


@settings(max_examples=300)
@given(st.text())
def test_arbitrary_text_raises_only_toml_file_error(text: str) -> None:
    with contextlib.suppress(TomlFileError):
        parse_accepted(text, "accepted.toml")
