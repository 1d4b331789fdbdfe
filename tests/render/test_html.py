"""The HTML report as text: its golden file, the page's self-containment (CSP, no script, no
external URL), inert hostile text, and what each section shows. Regenerate the golden file
with ``pytest tests/test_render_html.py --update-golden`` and review the diff. The page in a
real browser: tests/browser/."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from exposure_audit.findings import Acceptance, Severity
from exposure_audit.grading import Grade, grade_host
from exposure_audit.observations import (
    HttpObservation,
    PortMapping,
    ServiceObservation,
    UpnpForwarding,
    UpnpObservation,
)
from exposure_audit.render.html import TREND_LIMIT, TrendPoint, render_html
from exposure_audit.report import Report
from exposure_audit.text import printable

from ..report_samples import HOSTILE_TITLE, sample_report, vantage_report
from ..test_diff import weekly_diff

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "report.html"
# Attributes through which a page loads or links something.
_URL_ATTRIBUTES = {"src", "href", "xlink:href", "action", "formaction", "srcset", "data", "poster"}


@dataclasses.dataclass
class _Bar:
    """One ``<g class="bar">`` of the trend chart."""

    run: str
    classes: list[str]
    rects: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    texts: list[str] = dataclasses.field(default_factory=list)


class _Page(HTMLParser):
    """Start tags (with attributes), text outside <style>, the <style> text, and the trend
    chart's bars."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style: list[str] = []
        self.bars: list[_Bar] = []
        self._stack: list[str] = []
        self._bar: _Bar | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in ("meta", "br", "rect", "line", "link", "img", "input"):
            self._stack.append(tag)
        classes = (attributes.get("class") or "").split()
        if tag == "g" and "bar" in classes:
            self._bar = _Bar(attributes["data-run"] or "", classes)
            self.bars.append(self._bar)
        elif tag == "rect" and self._bar is not None:
            self._bar.rects.append((attributes["class"] or "", float(attributes["height"] or 0)))

    def handle_endtag(self, tag: str) -> None:
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()
        if tag == "g":
            self._bar = None

    def handle_data(self, data: str) -> None:
        if self._stack and self._stack[-1] == "style":
            self.style.append(data)
            return
        self.text.append(data)
        if self._bar is not None and self._stack and self._stack[-1] == "text":
            self._bar.texts.append(data)

    def all_text(self) -> str:
        return "".join(self.text)


def _csp(html: str) -> str:
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
    assert match is not None
    return match.group(1).replace("&#39;", "'")


def test_the_sample_report_matches_its_golden_file(update_golden: bool) -> None:
    html = render_html(sample_report())
    if update_golden:
        GOLDEN.write_text(html, encoding="utf-8")
    assert html == GOLDEN.read_text(encoding="utf-8")


def test_a_report_from_two_vantages_matches_its_golden_file(update_golden: bool) -> None:
    html = render_html(vantage_report())
    golden = GOLDEN.with_name("report-vantages.html")
    if update_golden:
        golden.write_text(html, encoding="utf-8")
    assert html == golden.read_text(encoding="utf-8")


def test_each_service_shows_where_it_is_reachable_from_in_a_vantage_report() -> None:
    html = render_html(vantage_report())
    assert 'id="vantages">Audited from 2 vantage points: eu, us</p>' in html
    nas = html[html.index('id="host-198.51.100.7"') :]
    nas = nas[: nas.index("</section>")]
    assert "<th>vantages</th>" in nas and "Audited from: eu, us" in nas
    assert (
        '<td data-label="vantages" class="reachability inconsistent">'
        "<strong>reachable from eu; not from us</strong></td>" in nas
    )
    assert '<td data-label="vantages" class="reachability">reachable from eu, us</td>' in nas
    assert "reachable from eu; not tested from us" in html
    # Still no script, nothing loaded, the one stylesheet
    page = _Page(html)
    assert not {t for t, _ in page.tags} & {"script", "link", "img", "iframe"}
    assert [t for t, _ in page.tags].count("style") == 1


def test_without_vantages_the_page_has_no_vantage_column() -> None:
    html = render_html(sample_report())
    assert "vantage" not in html.lower()


def test_a_hostile_vantage_name_is_text_on_the_page() -> None:
    report = vantage_report()
    host = report.hosts[0]
    obs = dataclasses.replace(host.observation, vantages=("<b>x</b>\x1b[2J", "eu"))
    report = dataclasses.replace(
        report, vantages=obs.vantages, hosts=(dataclasses.replace(host, observation=obs),)
    )
    html = render_html(report)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;\\x1b[2J" in html


def test_rendering_is_deterministic() -> None:
    trend = _trend([{"critical": 1}, {"high": 2}])
    assert render_html(sample_report(), trend=trend, diff=weekly_diff()) == render_html(
        sample_report(), trend=trend, diff=weekly_diff()
    )


def test_a_strict_csp_comes_first_and_allows_only_the_pages_own_stylesheet() -> None:
    html = render_html(sample_report(), trend=_trend([{"low": 1}]), diff=weekly_diff())
    head = html[: html.index("<style>")]
    assert head.index('<meta charset="utf-8">') < head.index("Content-Security-Policy")
    directives = dict(d.strip().split(" ", 1) for d in _csp(html).split(";"))
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives  # default-src 'none' forbids every script
    assert directives["img-src"] == "data:"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"
    # Given the one <style> element's text, its hash is the only style the policy allows
    page = _Page(html)
    assert [t for t, _ in page.tags].count("style") == 1
    digest = hashlib.sha256("".join(page.style).encode()).digest()
    assert directives["style-src"] == f"'sha256-{base64.b64encode(digest).decode()}'"


def test_the_page_holds_no_script_and_loads_nothing() -> None:
    html = render_html(sample_report(), trend=_trend([{"low": 1}]), diff=weekly_diff())
    assert "<script" not in html.lower()
    page = _Page(html)
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base", "form"}
    for tag, attributes in page.tags:
        assert not any(a.startswith("on") for a in attributes), tag  # no event handlers
        assert "style" not in attributes, tag  # inline styles would break the CSP hash
        for name, value in attributes.items():
            if name in _URL_ATTRIBUTES:
                assert value is not None and value.startswith("#"), (tag, name, value)
    css = "".join(page.style)
    assert "url(" not in css and "@import" not in css and "@font-face" not in css


def test_hostile_banner_text_shows_as_text_with_controls_escaped() -> None:
    html = render_html(sample_report())
    for char in html:
        assert char == "\n" or unicodedata.category(char) not in ("Cc", "Cf"), hex(ord(char))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    shown = printable(HOSTILE_TITLE)
    assert shown.startswith("\\x1b[2J") and "\\u202e" in shown
    page = _Page(html)
    text = page.all_text()
    assert text.count(shown) == 4  # server header, title, ftp product, evidence
    assert f"FTP ({shown})" in text


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_target_text_adds_no_markup_and_is_shown_printable(text: str) -> None:
    # Given the sample report with ``text`` as a title, server header, banner and evidence
    def hostile(value: str) -> Report:
        report = sample_report()
        host = report.hosts[1]
        services = (
            ServiceObservation(
                80, "tcp", "open", "http", http=HttpObservation("http", 200, value, value)
            ),
            ServiceObservation(21, "tcp", "open", "ftp", value, banner=value),
        )
        findings = tuple(dataclasses.replace(f, evidence=value) for f in host.findings)
        observation = dataclasses.replace(host.observation, services=services)
        return dataclasses.replace(
            report,
            hosts=(
                report.hosts[0],
                dataclasses.replace(host, observation=observation, findings=findings),
            ),
        )

    # When it is rendered, then the page has the same elements as with plain text
    baseline = _Page(render_html(hostile("plain")))
    page = _Page(render_html(hostile(text)))
    assert [t for t, _ in page.tags] == [t for t, _ in baseline.tags]
    # and the text reads as the printable form of what the target sent
    assert printable(text, 2000) in page.all_text()


def test_the_summary_shows_the_run_grade_and_counts_by_severity() -> None:
    html = render_html(sample_report())
    assert '<span class="grade big grade-f" id="run-grade"' in html
    counts = re.findall(r'data-severity="(\w+)">\w+ (\d+)<', html)
    assert counts == [
        ("critical", "3"),
        ("high", "1"),
        ("medium", "0"),
        ("low", "1"),
        ("info", "0"),
    ]
    assert "2 hosts (1 incomplete), 5 findings." in html


def test_host_cards_come_worst_first_with_status_services_and_findings() -> None:
    report = sample_report()
    clean = dataclasses.replace(report.hosts[1], findings=(), grade=Grade.UNKNOWN)
    report = dataclasses.replace(report, hosts=(clean, report.hosts[0]))
    html = render_html(report)
    cards = re.findall(r'<section class="card host" id="host-([^"]+)"', html)
    assert cards == ["198.51.100.7", "2001:db8::7"]
    nas = html[html.index('id="host-198.51.100.7"') : html.index('id="host-2001:db8::7"')]
    assert "DSM 4.3-3810 (DS1512+)" in nas and "Synology DSM" in nas
    assert "Synology DiskStation telnetd" in nas
    assert "22/tcp" not in nas  # closed ports are not services
    assert "Synology default certificate; expired 2019-01-01" in nas
    # The run's "fix first" list follows the verdict: the worst findings' remediation, each
    # once, naming host, port and rules
    fix = html[html.index('id="fix-first"') : html.index('id="host-198.51.100.7"')]
    assert re.findall(r"remediation of (\w+)", fix) == ["DSM001", "DSM003", "SVC001"]
    assert "(198.51.100.7 5000/tcp; DSM003)" in fix
    # What to do first opens the card and points at the list's entries; the findings below
    # point at their step instead of repeating it
    first = nas[nas.index("What to do first") : nas.index("Open services")]
    assert re.findall(r'<a href="#fix-first">Fix first (\d)</a> above', first) == ["1", "2", "3"]
    assert re.search(r'data-rule="DSM003".*step 2 of “What to do first” above', nas, re.S)
    assert re.search(r'data-rule="TLS001".*remediation of TLS001', nas, re.S)
    assert html.count("remediation of DSM003") == 1
    assert '<td data-label="category"><strong class="nowrap">NAS</strong></td>' in nas
    assert 'status-complete">complete' in nas
    assert 'status-incomplete">incomplete' in html
    assert "versions probe timed out: host deadline reached" in html


def test_one_remediation_per_rule_and_severity_on_a_host() -> None:
    report = sample_report()
    nas = report.hosts[0]
    twice = next(f for f in nas.findings if f.rule == "DSM003")
    second = dataclasses.replace(twice, id="DSM003-other", port=5001, evidence="on 5001 too")
    host = dataclasses.replace(nas, findings=(*nas.findings, second))
    html = render_html(dataclasses.replace(report, hosts=(host, *report.hosts[1:])))
    assert html.count("remediation of DSM003") == 1
    assert "on 5001 too" in html and "SynoLocker" in html


def test_accepted_findings_are_shown_apart_and_expired_ones_count_again() -> None:
    report = sample_report()
    nas = report.hosts[0]
    findings = tuple(
        dataclasses.replace(f, acceptance=Acceptance("lab box", "ops", date(2027, 1, 1)))
        if f.rule == "SVC001"
        else dataclasses.replace(
            f, acceptance=Acceptance("old", "sec", date(2026, 1, 1), expired=True)
        )
        if f.rule == "TLS001"
        else f
        for f in nas.findings
    )
    host = dataclasses.replace(nas, findings=findings, grade=grade_host(findings, nas.observation))
    html = render_html(dataclasses.replace(report, hosts=(host, *report.hosts[1:])))
    accepted = html[html.index('<div class="accepted">') :]
    accepted = accepted[: accepted.index("</div>")]
    assert 'data-rule="SVC001"' in accepted and "accepted by ops until 2027-01-01" in accepted
    assert "TLS001" not in accepted
    findings_part = html[html.index("<h3>Findings</h3>") : html.index('<div class="accepted">')]
    assert 'data-rule="SVC001"' not in findings_part
    assert "acceptance by sec expired 2026-01-01" in findings_part
    assert "1 accepted risk not counted" in html


def test_upnp_mappings_and_unexplained_forwards_are_listed() -> None:
    report = sample_report()
    nas = report.hosts[0]
    mapping = PortMapping(5000, "TCP", "192.168.1.10", 5000, "<b>DSM</b>\u202e", 3600)
    services = tuple(
        dataclasses.replace(s, upnp_mapping=mapping) if s.port == 5000 else s
        for s in nas.observation.services
    )
    observation = dataclasses.replace(
        nas.observation,
        services=services,
        upnp=UpnpObservation(mappings_readable=True, mappings=(mapping,)),
        forwarding=UpnpForwarding(
            "wan",
            mapped_unreachable=(PortMapping(8443, "TCP", "192.168.1.11", 443, "cam"),),
            unmapped_reachable=(23,),
        ),
    )
    host = dataclasses.replace(nas, observation=observation)
    html = render_html(dataclasses.replace(report, hosts=(host, *report.hosts[1:])))
    assert "<h3>UPnP</h3>" in html
    assert '<td class="mono">5000/tcp</td><td class="mono">192.168.1.10:5000</td>' in html
    assert "&lt;b&gt;DSM&lt;/b&gt;\\u202e" in html and "3600 s" in html
    assert "read from the router over the Internet" in html
    assert "8443/tcp → 192.168.1.11:443" in html
    assert 'manual forward, DMZ or IPv6): <span class="mono">23/tcp' in html


def _trend(counts: list[dict[str, int]], *, start: int = 1) -> list[TrendPoint]:
    day = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    return [
        TrendPoint(
            start + i,
            day + timedelta(days=7 * i),
            Grade.F if c.get("critical") else Grade.D if c.get("high") else Grade.A,
            c,
        )
        for i, c in enumerate(counts)
    ]


def test_no_trend_and_no_diff_sections_without_their_data() -> None:
    html = render_html(sample_report())
    assert 'id="trend"' not in html and "<svg" not in html and 'id="diff"' not in html


def test_the_trend_has_one_stacked_bar_per_run_oldest_first_with_its_grade() -> None:
    # Given three runs listed newest first, as the store lists them
    trend = _trend([{"critical": 2}, {"critical": 4, "low": 4}, {}])[::-1]
    page = _Page(render_html(sample_report(), trend=trend))
    assert [b.run for b in page.bars] == ["1", "2", "3"]
    first, second, third = page.bars
    # Then bars share one scale (the top of the axis is 8 here, over 160 units)
    assert first.rects == [("seg-critical", 40.0)]
    assert second.rects == [("seg-critical", 80.0), ("seg-low", 80.0)]
    assert third.rects == [("none", 1.0)]  # a run with no findings still has its bar
    assert [b.texts[0] for b in page.bars] == ["F", "F", "A"]
    assert "#1" in first.texts and "11-01" in first.texts


def test_an_incomplete_run_is_marked_and_a_run_with_no_grade_shows_a_dash() -> None:
    point = TrendPoint(9, datetime(2026, 11, 2, tzinfo=UTC), None, {"high": 1}, complete=False)
    page = _Page(render_html(sample_report(), trend=[point]))
    (bar,) = page.bars
    assert "incomplete" in bar.classes
    assert bar.texts[0] == "–"
    assert "run 9, 2026-11-02 00:00 UTC: grade –, 1 high (incomplete)" in page.all_text()


def test_the_trend_draws_at_most_the_newest_runs_of_its_limit() -> None:
    trend = _trend([{"low": i % 5} for i in range(TREND_LIMIT + 8)])
    html = render_html(sample_report(), trend=trend)
    page = _Page(html)
    assert len(page.bars) == TREND_LIMIT
    assert page.bars[0].run == "9" and page.bars[-1].run == str(TREND_LIMIT + 8)
    assert f"the last {TREND_LIMIT} of {TREND_LIMIT + 8} runs" in html
    labelled = [b for b in page.bars if any(t.startswith("#") for t in b.texts)]
    assert 0 < len(labelled) <= 16 and labelled[-1] is page.bars[-1]


def test_the_diff_section_lists_new_resolved_and_changed_findings_by_rule() -> None:
    diff = weekly_diff()
    html = render_html(sample_report(), diff=diff)
    section = html[html.index('<section class="card diff"') :]
    section = section[: section.index("</section>")]
    assert "Changes since run 1" in section and "(run 1 → run 2)" in section
    for key, changes in (("new", diff.new), ("resolved", diff.resolved), ("changed", diff.changed)):
        assert changes, key
        part = section[section.index(f'id="diff-{key}"') :]
        for change in changes:
            assert f'data-rule="{change.rule}"' in part
    for change in diff.changed:
        for text in change.changes:
            assert str(escape(text)) in section
    assert diff.new[0].after is not None
    assert diff.new[0].after.remediation in section
    if diff.not_confirmed:
        assert "Not resolved: the new run could not test these" in section
    assert diff.not_rechecked  # the host that timed out
    part = section[section.index('id="diff-not_rechecked"') :]
    assert "Not re-checked (1)" in part and "the new run did not look at these" in part
    assert f'data-rule="{diff.not_rechecked[0].rule}"' in part
    assert str(escape(diff.not_rechecked[0].changes[0])) in part


def test_the_diff_section_lists_a_per_vantage_reachability_change() -> None:
    from .test_diff import vantage_diff

    html = render_html(vantage_report(), diff=vantage_diff())
    assert (
        '<li>service reachability changed: <span class="mono">198.51.100.7:5001/tcp</span> '
        "reachable from eu -&gt; eu, us</li>" in html
    )


def test_severity_labels_match_the_model() -> None:
    html = render_html(sample_report())
    assert set(re.findall(r'class="sev sev-(\w+)', html)) <= {s.label for s in Severity}
