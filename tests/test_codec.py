"""Reading report documents back: the exact inverse of ``codec.to_dict`` (on the sample report
and on reports hypothesis builds), and errors that name the JSON path of the bad field."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exposure_audit.codec import ReportFormatError, host_from_dict, report_from_dict, to_dict
from exposure_audit.findings import Acceptance, Finding, Severity
from exposure_audit.grading import Grade
from exposure_audit.observations import (
    AddressFamily,
    DsmFingerprint,
    HostObservation,
    HostStatus,
    HttpObservation,
    IgdDescription,
    IgdService,
    NameResolution,
    PortMapping,
    ProbeAttempt,
    ProbeStatus,
    Redirect,
    ServiceObservation,
    SsdpReply,
    TlsCertificate,
    UpnpForwarding,
    UpnpObservation,
)
from exposure_audit.ports import PortSet
from exposure_audit.render import render_json
from exposure_audit.report import HostReport, Report, SkippedAddress

from .report_samples import sample_report, vantage_report


def _through_json(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(doc, ensure_ascii=True))
    return result


def test_the_sample_report_survives_a_round_trip() -> None:
    doc = to_dict(sample_report())
    restored = report_from_dict(_through_json(doc))
    assert to_dict(restored) == doc
    assert render_json(restored) == render_json(sample_report())


def test_a_report_from_several_vantages_survives_a_round_trip() -> None:
    report = vantage_report()
    doc = to_dict(report)
    restored = report_from_dict(_through_json(doc))
    assert restored == report  # every field: vantages, reachable_from, untested_from
    assert to_dict(restored) == doc


def test_a_service_naming_a_vantage_its_host_lacks_is_refused() -> None:
    doc = _through_json(to_dict(vantage_report()))
    doc["hosts"][0]["services"][1]["reachable_from"] = ["eu", "mars"]
    with pytest.raises(ReportFormatError, match=r"hosts\[0\]\.services\[1\]\.reachable_from"):
        report_from_dict(doc)


def test_a_report_without_vantages_writes_no_vantage_keys() -> None:
    doc = to_dict(sample_report())
    assert "vantages" not in doc
    assert "vantages" not in doc["hosts"][0]
    assert "reachable_from" not in doc["hosts"][0]["services"][0]


def test_findings_come_back_equal_to_the_originals() -> None:
    restored = report_from_dict(to_dict(sample_report()))
    assert restored.findings() == sample_report().findings()
    assert [h.grade for h in restored.hosts] == [Grade.F, Grade.D]


def test_host_from_dict_reads_one_host() -> None:
    report = sample_report()
    doc = to_dict(report)
    host = host_from_dict(doc["hosts"][1])
    assert host.observation.status is HostStatus.INCOMPLETE
    assert host.observation.attempts == (
        ProbeAttempt("versions", ProbeStatus.TIMED_OUT, "host deadline reached"),
    )
    alone = Report(
        report.tool_version, report.started_at, report.finished_at, report.ports, (host,)
    )
    assert to_dict(alone)["hosts"] == [doc["hosts"][1]]


def test_a_finding_without_acceptance_or_with_null_has_none() -> None:
    doc = to_dict(sample_report())
    finding = doc["hosts"][0]["findings"][0]
    finding.pop("acceptance", None)
    assert report_from_dict(doc).hosts[0].findings[0].acceptance is None
    finding["acceptance"] = None
    assert report_from_dict(doc).hosts[0].findings[0].acceptance is None


def test_an_acceptance_is_read_with_its_expiry_date() -> None:
    doc = to_dict(sample_report())
    doc["hosts"][0]["findings"][2]["acceptance"] = {
        "reason": "telnet kept for the UPS",
        "owner": "ops@example.net",
        "expires": "2027-01-31",
        "expired": False,
    }
    finding = report_from_dict(doc).hosts[0].findings[2]
    assert finding.acceptance == Acceptance(
        "telnet kept for the UPS", "ops@example.net", date(2027, 1, 31), expired=False
    )
    assert not finding.counts


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _delete(doc: dict[str, Any], path: tuple[Any, ...]) -> None:
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]


_ACCEPTANCE = {"reason": "r", "owner": "o", "expires": "2027-01-31", "expired": False}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("hosts", 1, "findings", 0, "severity"), "urgent", "hosts[1].findings[0].severity: "),
        (("hosts", 0, "findings", 3, "port"), "5001", "hosts[0].findings[3].port: "),
        (("hosts", 0, "findings", 0, "port"), 70000, "hosts[0].findings[0].port: 70000 is not"),
        (("hosts", 0, "family"), "ipv5", "hosts[0].family: 'ipv5' is not one of"),
        (("hosts", 0, "grade"), "E", "hosts[0].grade: "),
        (("hosts", 1, "status"), "done", "hosts[1].status: "),
        (("hosts", 0, "services", 1, "tls", "not_after"), "soon", "hosts[0].services[1].tls."),
        (("hosts", 0, "services", 0, "http", "redirects"), {}, "hosts[0].services[0].http."),
        (("hosts", 0, "services", 0, "dsm", "build"), "3810", "hosts[0].services[0].dsm.build"),
        (("hosts", 1, "attempts", 0, "status"), "maybe", "hosts[1].attempts[0].status: "),
        (("hosts", 0, "hostnames", 0), 7, "hosts[0].hostnames[0]: must be a string"),
        (("hosts", 0, "findings", 0, "acceptance"), "yes", "hosts[0].findings[0].acceptance: "),
        (
            ("hosts", 0, "findings", 0, "acceptance"),
            {**_ACCEPTANCE, "expires": "31/01/2027"},
            "hosts[0].findings[0].acceptance.expires: '31/01/2027' is not a YYYY-MM-DD date",
        ),
        (("hosts", 0, "services", 2, "forwarding"), "upnp", "hosts[0].services[2].forwarding"),
        (("ports", "tcp", 2), True, "ports.tcp[2]: must be an integer"),
        (("started_at",), "noon", "started_at: 'noon' is not an ISO 8601 time"),
        (("complete",), "yes", "complete: must be true or false"),
        (("hosts",), None, "hosts: must be a list, not null"),
        (("hosts", 1), [], "hosts[1]: must be an object"),
        (("names", 2, "ipv4"), "192.168.1.10", "names[2].ipv4: must be a list"),
        (("skipped", 0, "address"), None, "skipped[0].address: must be a string, not null"),
    ],
)
def test_a_bad_field_is_named_by_its_json_path(
    path: tuple[Any, ...], value: Any, message: str
) -> None:
    doc = to_dict(sample_report())
    _set(doc, path, value)
    with pytest.raises(ReportFormatError) as caught:
        report_from_dict(doc)
    assert str(caught.value).startswith(message), str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("hosts", 0, "address"), "hosts[0].address: is missing"),
        (("hosts", 1, "findings", 0, "severity"), "hosts[1].findings[0].severity: is missing"),
        (("finished_at",), "finished_at: is missing"),
        (("tool",), "tool: is missing"),
    ],
)
def test_a_missing_required_field_is_named(path: tuple[Any, ...], message: str) -> None:
    doc = to_dict(sample_report())
    _delete(doc, path)
    with pytest.raises(ReportFormatError, match="^" + message.replace("[", r"\[")):
        report_from_dict(doc)


def test_fields_added_later_to_the_schema_default_when_absent() -> None:
    # Given a document from before upnp/forwarding/attempts existed
    doc = to_dict(sample_report())
    for host in doc["hosts"]:
        for key in ("upnp", "attempts", "notes", "errors"):
            del host[key]
        for service in host["services"]:
            for key in ("upnp_mapping", "forwarding", "identified_as"):
                del service[key]
    # When it is read, Then the hosts have no UPnP and no attempts
    report = report_from_dict(doc)
    assert all(h.observation.upnp is None and not h.observation.attempts for h in report.hosts)


def test_unknown_keys_are_ignored() -> None:
    doc = to_dict(sample_report())
    doc["future_field"] = {"anything": 1}
    doc["hosts"][0]["findings"][0]["cvss"] = 9.8
    assert to_dict(report_from_dict(doc)) == to_dict(sample_report())


@pytest.mark.parametrize("schema", ["exposure-audit/2", None, "exposure-audit-upnp-inventory/1"])
def test_another_schema_is_refused(schema: str | None) -> None:
    doc = to_dict(sample_report())
    doc["schema"] = schema
    with pytest.raises(ReportFormatError, match=r"^schema: .* is not 'exposure-audit/1'"):
        report_from_dict(doc)


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ReportFormatError, match=r"^\$: must be an object, not a list"):
        report_from_dict([])  # type: ignore[arg-type]


def test_a_manual_forward_needs_the_hosts_forwarding_table() -> None:
    doc = to_dict(sample_report())
    doc["hosts"][0]["services"][2]["forwarding"] = "manual forward, DMZ or IPv6"
    with pytest.raises(ReportFormatError, match=r"^hosts\[0\]\.services\[2\]\.forwarding: "):
        report_from_dict(doc)


# -- property: to_dict(report_from_dict(to_dict(r))) == to_dict(r) ----------------------------

_text = st.text(max_size=6)
_port = st.integers(0, 0xFFFF)
_small = st.integers(-(2**40), 2**40)


def _tuples(strategy: st.SearchStrategy[Any], size: int = 3) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(strategy, max_size=size).map(tuple)


_moments = st.datetimes(
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), None])
)
_dsm = st.builds(
    DsmFingerprint,
    markers=_tuples(_text),
    version=st.none() | _text,
    build=st.none() | _small,
    update=st.none() | _small,
    model=st.none() | _text,
    version_source=st.none() | _text,
)
_http = st.builds(
    HttpObservation,
    scheme=st.sampled_from(["http", "https"]),
    status_code=_small,
    server=st.none() | _text | st.just("miniupnpd/2.1 UPnP/1.1"),
    title=st.none() | _text,
    redirects=_tuples(st.builds(Redirect, _text, _text, _small), 2),
    dsm=st.none() | _dsm,
    srm=st.booleans(),
)
_tls = st.builds(
    TlsCertificate,
    subject=_text,
    issuer=_text,
    not_before=_moments,
    not_after=_moments,
    self_signed=st.booleans(),
    synology_default=st.booleans(),
    subject_alt_names=_tuples(_text),
    sha256=_text,
)
_mapping = st.builds(
    PortMapping,
    external_port=_port,
    protocol=st.sampled_from(["TCP", "UDP"]),
    internal_client=_text,
    internal_port=_port,
    description=_text,
    lease_duration=st.integers(0, 2**32 - 1),
    enabled=st.booleans(),
    remote_host=_text,
)
# Few distinct ports, so that forwarding tables, mappings and services meet.
_service_port = st.sampled_from([80, 443, 5000, 5001])
_service = st.builds(
    ServiceObservation,
    port=_service_port,
    protocol=st.sampled_from(["tcp", "udp"]),
    state=st.sampled_from(["open", "filtered", "closed", "open|filtered"]),
    service=_text,
    product=_text,
    version=_text,
    banner=_text,
    http=st.none() | _http,
    tls=st.none() | _tls,
    upnp_mapping=st.none() | _mapping,
)
_igd = st.builds(
    IgdDescription,
    url=st.sampled_from(["http://192.168.1.1:5000/rootDesc.xml", "http://gw/desc.xml"]) | _text,
    device_type=_text,
    friendly_name=_text,
    manufacturer=_text,
    model_name=_text,
    model_number=_text,
    services=_tuples(st.builds(IgdService, _text, _text, _text), 2),
)
_upnp = st.builds(
    UpnpObservation,
    ssdp=_tuples(st.builds(SsdpReply, _text, _text, _text, _text, _text), 2),
    igd=st.none() | _igd,
    control_url=st.none() | _text,
    mappings_readable=st.booleans(),
    mappings=_tuples(_mapping, 2),
    external_address=st.none() | _text,
)
_forwarding = st.builds(
    UpnpForwarding,
    source=st.sampled_from(["wan", "inventory", ""]),
    mapped_unreachable=_tuples(_mapping, 2),
    unmapped_reachable=_tuples(_service_port | _port, 3),
)
_host_observation = st.builds(
    HostObservation,
    address=_text,
    family=st.sampled_from(AddressFamily),
    hostnames=_tuples(_text),
    services=_tuples(_service, 4),
    status=st.sampled_from(HostStatus),
    attempts=_tuples(
        st.builds(ProbeAttempt, _text, st.sampled_from(ProbeStatus), _text, st.none() | _port)
    ),
    errors=_tuples(_text),
    notes=_tuples(_text),
    upnp=st.none() | _upnp,
    forwarding=st.none() | _forwarding,
).flatmap(lambda host: _seen_from_vantages(host))


_vantage_names = st.lists(st.sampled_from(["ap", "eu", "us", "x.y_z-1"]), unique=True).map(
    lambda names: tuple(sorted(names))
)


@st.composite
def _seen_from_vantages(draw: st.DrawFn, host: HostObservation) -> HostObservation:
    """``host`` audited from some vantages (or none): each service reachable from some of them
    and not tested from some others."""
    vantages = draw(_vantage_names)
    services = []
    for service in host.services:
        reachable = tuple(v for v in vantages if draw(st.booleans()))
        untested = tuple(v for v in vantages if v not in reachable and draw(st.booleans()))
        services.append(
            dataclasses.replace(service, reachable_from=reachable, untested_from=untested)
        )
    return dataclasses.replace(host, services=tuple(services), vantages=vantages)


_acceptance = st.builds(Acceptance, _text, _text, st.dates(), st.booleans())
_finding = st.builds(
    Finding,
    id=_text,
    rule=_text,
    severity=st.sampled_from(Severity),
    address=_text,
    port=_port,
    protocol=_text,
    title=_text,
    evidence=_text,
    remediation=_text,
    severity_reason=_text,
    acceptance=st.none() | _acceptance,
)
_host = st.builds(
    HostReport,
    observation=_host_observation,
    findings=_tuples(_finding),
    grade=st.sampled_from(Grade),
)
_report = st.builds(
    Report,
    tool_version=_text,
    started_at=_moments,
    finished_at=_moments,
    ports=st.builds(PortSet, _tuples(_port, 4), _tuples(_port, 2)),
    hosts=_tuples(_host, 3),
    names=_tuples(
        st.builds(
            NameResolution,
            _text,
            _tuples(_text),
            _tuples(_text),
            _tuples(_text),
            _tuples(_text),
            st.none() | _text,
        ),
        2,
    ),
    skipped=_tuples(st.builds(SkippedAddress, _text, _text, _text), 2),
    errors=_tuples(_text),
    complete=st.booleans(),
    notes=_tuples(_text),
    vantages=_vantage_names,
)


@settings(max_examples=300, deadline=None)
@given(_report)
def test_any_report_survives_a_round_trip_through_json(report: Report) -> None:
    doc = to_dict(report)
    again = to_dict(report_from_dict(_through_json(copy.deepcopy(doc))))
    assert again == doc


@settings(max_examples=100, deadline=None)
@given(_host)
def test_any_host_survives_a_round_trip(host: HostReport) -> None:
    def wrap(h: HostReport) -> dict[str, Any]:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        return to_dict(Report("0", now, now, PortSet(), (h,)))["hosts"][0]  # type: ignore[no-any-return]

    doc = wrap(host)
    assert wrap(host_from_dict(_through_json(doc))) == doc
