"""The HTML report in a real browser (headless Chromium, tests/browser/conftest.py).

The demo lab is audited once (``exposure-audit demo --format json``), stored in a history
store as the newest of three runs, and rendered with the store's trend and the diff against
the previous complete run: the page must show grade F, the DSM 4.3 host first with its
SynoLocker finding and remediation, one trend bar per stored run, and log no console error
(a CSP violation is one). A page of hostile banners must run nothing. Screenshots go to
tests/artifacts/; ``--update-golden`` also refreshes the docs' screenshots in docs/img/.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from exposure_audit.codec import report_from_dict, to_dict
from exposure_audit.diff import diff_reports
from exposure_audit.history.store import HistoryStore
from exposure_audit.observations import (
    HttpObservation,
    PortMapping,
    ServiceObservation,
    UpnpObservation,
)
from exposure_audit.render.html import TrendPoint, render_html
from exposure_audit.report import Report
from exposure_audit.rules import rule_by_id
from exposure_audit.text import printable

from ..report_samples import HOSTILE_TITLE, sample_report, vantage_report
from .conftest import Chromium

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
DSM43 = "127.77.0.10"
# Each would leave a trace if it ran: a global, a changed title, a dialog, an image request.
PAYLOAD = (
    '<script>window.__pwned = 1; document.title = "pwned"; alert(1)</script>'
    '<img src=x onerror="window.__pwned = 2"><svg onload="window.__pwned = 3"></svg>'
    '</title></style></textarea><iframe srcdoc="<script>parent.__pwned = 4</script>">'
    '<a href="javascript:window.__pwned = 5">x</a><style>body { display: none }</style>'
)


@dataclasses.dataclass(frozen=True)
class _Stored:
    report: Report
    run_ids: list[int]
    html: str


def _demo_report() -> Report:
    result = subprocess.run(
        [sys.executable, "-m", "exposure_audit", "demo", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return report_from_dict(json.loads(result.stdout))


def _earlier(report: Report, weeks: int, drop: set[str]) -> Report:
    """The same perimeter ``weeks`` earlier, before the hosts in ``drop`` were exposed."""
    shift = timedelta(weeks=weeks)
    return dataclasses.replace(
        report,
        started_at=report.started_at - shift,
        finished_at=report.finished_at - shift,
        hosts=tuple(h for h in report.hosts if h.address not in drop),
    )


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> _Stored:
    """Given the demo lab audited now, and two earlier runs of it in the history (the oldest
    complete, the middle one cut short), the page of the newest run with the store's trend
    and the diff against the previous complete run."""
    demo = _demo_report()
    store_path = tmp_path_factory.mktemp("history") / "history.sqlite3"
    runs = (
        (_earlier(demo, 2, {"127.77.0.50", "127.77.0.60"}), True),
        (_earlier(demo, 1, {"127.77.0.60"}), False),
        (demo, True),
    )
    with HistoryStore(store_path) as store:
        for report, complete in runs:
            run_id = store.start_run(
                started_at=report.started_at,
                tool_version=report.tool_version,
                command="exposure-audit demo",
                targets=[h.address for h in report.hosts],
            )
            doc = to_dict(dataclasses.replace(report, complete=complete))
            store.finish_run(run_id, doc, complete=complete, duration=10.0)
        # What the CLI does for `report RUN --format html` (the lead's wiring, in miniature)
        summaries = store.runs()
        trend = [
            TrendPoint(s.id, s.started_at, s.grade, s.counts, complete=s.complete)
            for s in summaries
        ]
        new_id, old_id = store.latest_complete(2)
        newest = store.report(new_id)
        diff = diff_reports(store.report(old_id), newest, old_run=old_id, new_run=new_id)
    run_ids = sorted(s.id for s in summaries)
    return _Stored(newest, run_ids, render_html(newest, trend=trend, diff=diff))


def test_the_demo_lab_report_shows_grade_f_the_dsm43_host_first_and_a_trend(
    chromium: Chromium,
    stored: _Stored,
    tmp_path: Path,
    artifacts: Path,
    update_golden: bool,
) -> None:
    path = tmp_path / "report.html"
    path.write_text(stored.html, encoding="utf-8")
    page, log = chromium.open(path, width=1000, height=1100)

    # The run's grade, visible at the top
    grade = page.locator("#run-grade")
    assert grade.is_visible() and grade.inner_text() == "F"
    assert page.title().startswith("Exposure audit: grade F")

    # The DSM 4.3 host's card is the first one, also on screen
    cards = page.locator("section.host")
    first = cards.first
    assert first.get_attribute("data-address") == DSM43
    boxes = [cards.nth(i).bounding_box() for i in range(cards.count())]
    assert all(b is not None for b in boxes)
    assert boxes[0] == min(boxes, key=lambda b: b["y"] if b else 0)
    assert "DSM 4.3-3810" in first.inner_text()

    # with its SynoLocker finding and the remediation, both visible
    synolocker = first.locator('.finding[data-rule="DSM003"]')
    synolocker.scroll_into_view_if_needed()
    assert synolocker.is_visible()
    text = synolocker.inner_text()
    assert "DSM003" in text and "SynoLocker" in text and "CVE-2013-6955" in text
    remediation = synolocker.locator(".remediation")
    assert remediation.is_visible()
    step = re.search(r"step (\d) of “What to do first” above", remediation.inner_text())
    assert step is not None, remediation.inner_text()
    # and the card opens with what to do first; that step points at the run's "fix first"
    # list, and following the link shows the SynoLocker remediation there
    steps = first.locator(".first-steps li")
    steps.first.scroll_into_view_if_needed()
    assert steps.first.is_visible()
    pointer = steps.nth(int(step[1]) - 1)
    listed = re.search(r"Fix first (\d) above \(DSM003 on", pointer.inner_text())
    assert listed is not None, pointer.inner_text()
    pointer.locator("a").click()
    entry = page.locator("#fix-first li").nth(int(listed[1]) - 1)
    assert entry.is_visible()
    assert rule_by_id("DSM003").remediation in entry.inner_text()
    assert f"{DSM43} 5000/tcp, 5001/tcp" in entry.inner_text()

    # The trend chart: one bar per stored run, oldest first, each with the run's grade
    chart = page.locator("#trend-chart")
    assert chart.is_visible()
    bars = chart.locator("g.bar")
    assert bars.count() == len(stored.run_ids) >= 2
    assert [bars.nth(i).get_attribute("data-run") for i in range(bars.count())] == [
        str(i) for i in stored.run_ids
    ]
    for i in range(bars.count()):
        box = bars.nth(i).locator("rect").first.bounding_box()
        assert box is not None and box["height"] > 10  # every demo run has findings
    assert "incomplete" in (bars.nth(1).get_attribute("class") or "")
    assert chart.locator("text.grade-letter").all_text_contents() == ["F", "F", "F"]

    # The diff against the previous complete run: the legacy box's services are new
    diff = page.locator("#diff")
    assert diff.is_visible()
    assert diff.locator('#diff-new li[data-rule="SVC001"]').count() == 3

    # Nothing ran, nothing was fetched, nothing complained
    assert page.evaluate("document.scripts.length") == 0
    assert log == type(log)(), log
    assert chromium.blocked == []

    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    if update_golden:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(DOCS_IMG / "report.png"))
        # The card's head, services and first findings (DSM001, DSM003): small enough for docs
        box = first.bounding_box()  # relative to the viewport; the clip is on the page
        assert box is not None
        top = box["y"] + page.evaluate("window.scrollY")
        page.screenshot(
            path=str(DOCS_IMG / "report-host.png"),
            clip={
                "x": box["x"],
                "y": top,
                "width": box["width"],
                "height": min(box["height"], 760),
            },
            full_page=True,
        )
    page.close()


def _hostile_report() -> Report:
    """The sample report with the payload in every place a target's text can reach."""
    report = sample_report()
    text = PAYLOAD + HOSTILE_TITLE
    host = report.hosts[1]
    mapping = PortMapping(80, "TCP", "192.168.1.66", 80, text)
    services = (
        ServiceObservation(
            80,
            "tcp",
            "open",
            "http",
            http=HttpObservation("http", 200, text, text),
            upnp_mapping=mapping,
        ),
        ServiceObservation(21, "tcp", "open", "ftp", text, text, banner=text),
    )
    observation = dataclasses.replace(
        host.observation,
        hostnames=(text,),
        services=services,
        upnp=UpnpObservation(mappings_readable=True, mappings=(mapping,)),
        notes=(text,),
        errors=(text,),
    )
    findings = tuple(dataclasses.replace(f, evidence=text, title=text) for f in host.findings)
    hostile = dataclasses.replace(host, observation=observation, findings=findings)
    return dataclasses.replace(report, hosts=(report.hosts[0], hostile), errors=(text,))


def test_hostile_banner_text_runs_nothing_and_reads_as_text(
    chromium: Chromium, tmp_path: Path, artifacts: Path
) -> None:
    path = tmp_path / "hostile.html"
    path.write_text(render_html(_hostile_report()), encoding="utf-8")
    page, log = chromium.open(path, width=1000, height=1200)

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.title().startswith("Exposure audit: grade F")  # not "pwned"
    assert log.dialogs == []
    counts = page.evaluate(
        "[document.scripts.length, document.images.length,"
        " document.querySelectorAll('iframe, body style, a[href^=javascript]').length]"
    )
    assert counts == [0, 0, 0]
    body = page.locator("body")
    assert body.is_visible()  # the payload's <style> did not hide the page
    card = page.locator('section.host[data-address="2001:db8::7"]')
    shown = printable(PAYLOAD + HOSTILE_TITLE)
    assert card.locator("dd.target-text").first.inner_text() == shown  # the server header
    assert shown in card.locator(".evidence").first.inner_text()
    assert "\\x1b[2J" in shown and "\\u202e" in shown  # controls and bidi as visible escapes
    assert log == type(log)(), log
    assert chromium.blocked == []
    page.screenshot(path=str(artifacts / "report-hostile.png"), full_page=True)
    page.close()


def test_a_csp_violation_is_caught_as_a_console_error(chromium: Chromium, tmp_path: Path) -> None:
    # Given the page with an inline script and an unhashed style slipped in after rendering
    html = render_html(sample_report()).replace(
        "</body>",
        "<script>window.__pwned = 1</script><style>body { display: none }</style></body>",
    )
    path = tmp_path / "tampered.html"
    path.write_text(html, encoding="utf-8")
    page, log = chromium.open(path)
    # Then the policy blocks both and says so on the console: the checks above are not vacuous
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#run-grade").is_visible()
    assert any("Content Security Policy" in e for e in log.console_errors), log
    assert len(log.console_errors) >= 2
    page.close()


def test_the_page_fits_a_phone_screen_and_prints(
    chromium: Chromium, stored: _Stored, tmp_path: Path, artifacts: Path
) -> None:
    path = tmp_path / "report.html"
    path.write_text(stored.html, encoding="utf-8")
    page, log = chromium.open(path, width=390, height=844)
    # No sideways scrolling of the page itself (wide tables scroll inside their own box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#run-grade").is_visible()
    assert page.locator("#trend-chart").bounding_box()["width"] <= 390  # type: ignore[index]
    page.screenshot(path=str(artifacts / "report-phone.png"))
    page.emulate_media(media="print")
    pdf = page.pdf(path=str(artifacts / "report.pdf"), format="A4", print_background=True)
    assert pdf.startswith(b"%PDF")
    assert log == type(log)(), log
    page.close()


def test_a_report_from_two_vantages_shows_each_services_reach_on_a_wide_and_a_phone_screen(
    chromium: Chromium, tmp_path: Path, artifacts: Path
) -> None:
    # Given the two-vantage sample: 5001 open from eu and filtered from us
    path = tmp_path / "vantages.html"
    path.write_text(render_html(vantage_report()), encoding="utf-8")
    page, log = chromium.open(path, width=1000, height=1200)
    # Then the NAS card has a vantages column naming who reaches 5001 and who does not
    card = page.locator('section.host[data-address="198.51.100.7"]')
    assert card.locator("th", has_text="vantages").is_visible()
    assert card.locator("td.reachability.inconsistent").inner_text() == (
        "reachable from eu; not from us"
    )
    assert card.locator('[data-rule="VAN001"]').is_visible()
    assert page.locator("#vantages").inner_text() == "Audited from 2 vantage points: eu, us"
    page.screenshot(path=str(artifacts / "report-vantages.png"), full_page=True)
    # and on a phone the column is a labelled line of the service, with no sideways scroll
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert card.locator("td.reachability.inconsistent").is_visible()
    assert log == type(log)(), log
    assert chromium.blocked == []
    page.close()
