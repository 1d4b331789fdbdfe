"""How an identified management interface and a "looks like" hint show in every report format,
and that the JSON document carries them and reads them back unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from exposure_audit.codec import report_from_dict, to_dict
from exposure_audit.grading import Grade
from exposure_audit.observations import (
    AddressFamily,
    HostObservation,
    HttpObservation,
    ManagementHint,
    ManagementObservation,
    ServiceObservation,
)
from exposure_audit.ports import PortSet
from exposure_audit.render import render_report
from exposure_audit.report import HostReport, Report
from exposure_audit.rules import evaluate_host

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
JUPYTER = ManagementObservation(
    "jupyter",
    "Jupyter Notebook / JupyterLab / Jupyter Server",
    "Project Jupyter",
    "notebook",
    ("title", "body", "path /api"),
    version="2.12.5",
    unauthenticated="GET /api/kernels answered 200 without a token",
)
HINT = ManagementHint("qnap-qts", "QNAP QTS / QuTS hero", "title")


def _report() -> Report:
    host = HostObservation(
        "198.51.100.9",
        AddressFamily.IPV4,
        services=(
            ServiceObservation(
                8888,
                "tcp",
                "open",
                "http",
                http=HttpObservation(
                    "http", 200, "TornadoServer/6.4", "JupyterLab", management=JUPYTER
                ),
            ),
            ServiceObservation(
                80,
                "tcp",
                "open",
                "http",
                http=HttpObservation(
                    "http", 200, "nginx", "QNAP Turbo NAS", management_hints=(HINT,)
                ),
            ),
        ),
    )
    findings = evaluate_host(host, NOW)
    return Report(
        tool_version="0.1.0",
        started_at=NOW,
        finished_at=NOW,
        ports=PortSet((80, 8888)),
        hosts=(HostReport(host, findings, Grade.F),),
    )


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_every_report_shows_the_product_its_category_and_the_hint(fmt: str) -> None:
    text = render_report(_report(), fmt, width=200)
    # The product with its version, and its category, on the service's row
    product = "Jupyter Notebook / JupyterLab / Jupyter Server 2.12.5"
    rows = text.split("<tr>") if fmt == "html" else text.splitlines()
    row = next(r for r in rows if product in r)
    assert "notebook" in row.replace(product, "")
    assert "possibly QNAP QTS / QuTS hero (title only)" in text
    assert "MGMT001" in text


def test_the_json_document_carries_management_and_reads_it_back() -> None:
    doc = to_dict(_report())
    services = {s["port"]: s for s in doc["hosts"][0]["services"]}
    assert services[8888]["identified_as"] == JUPYTER.name
    assert services[8888]["management"] == {
        "product": "jupyter",
        "name": JUPYTER.name,
        "vendor": "Project Jupyter",
        "category": "notebook",
        "version": "2.12.5",
        "markers": ["title", "body", "path /api"],
        "unauthenticated": "GET /api/kernels answered 200 without a token",
    }
    assert services[80]["management"] is None
    assert services[80]["management_hints"] == [
        {"product": "qnap-qts", "name": "QNAP QTS / QuTS hero", "marker": "title"}
    ]
    restored = report_from_dict(json.loads(json.dumps(doc)))
    assert to_dict(restored) == doc
    assert restored.hosts[0].observation.services[0].management == JUPYTER


def test_a_document_written_before_management_existed_still_reads() -> None:
    doc = to_dict(_report())
    for service in doc["hosts"][0]["services"]:
        del service["management"], service["management_hints"]
    restored = report_from_dict(doc)
    assert all(s.management is None for s in restored.hosts[0].observation.services)
