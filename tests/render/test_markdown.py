"""The Markdown report: its golden file, its structure, and inert target text (no link, HTML,
code span or table break can come from a banner). Regenerate with ``pytest --update-golden``."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import date
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from exposure_audit.findings import Acceptance
from exposure_audit.observations import PortMapping, UpnpForwarding
from exposure_audit.render.markdown import md_text, render_markdown
from exposure_audit.report import Report
from exposure_audit.text import printable

from ..report_samples import HOSTILE_TITLE, sample_report, vantage_report

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "report.md"

# CommonMark plus GFM tables: what GitHub, GitLab and most chat and ticket tools render.
_MARKDOWN = MarkdownIt("commonmark").enable("table").enable("strikethrough")

_INJECTIONS = [
    HOSTILE_TITLE,
    "[click](https://evil.example/)",
    "![img](https://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "<https://evil.example>",
    "`code` and ``more``",
    "a | b || c",
    "*bold* _it_ ~~gone~~",
    "&lt;script&gt; &#60;b&#62; &#x3c;i&#x3e; but Update & Restore stays",
    "line\nbreak\r\n| x | y |",
    "back\\slash \\| pipe",
    "visit https://evil.example or www.evil.example or mail root@evil.example",
    "[ref]\n\n[ref]: https://evil.example",
]


def _to_html(markdown: str) -> str:
    return str(_MARKDOWN.render(markdown))


def _with_evidence(evidence: str) -> Report:
    report = sample_report()
    host = report.hosts[1]
    finding = dataclasses.replace(host.findings[0], evidence=evidence)
    hosts = (report.hosts[0], dataclasses.replace(host, findings=(finding,)))
    return dataclasses.replace(report, hosts=hosts)


def test_the_markdown_report_matches_its_golden_file(update_golden: bool) -> None:
    text = render_markdown(sample_report())
    if update_golden:
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_a_report_from_two_vantages_matches_its_golden_file(update_golden: bool) -> None:
    text = render_markdown(vantage_report())
    golden = GOLDEN.with_name("report-vantages.md")
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_services_show_where_they_are_reachable_from_in_a_vantage_report() -> None:
    text = render_markdown(vantage_report())
    assert "; vantages eu, us\n" in text
    assert "ipv4, complete, audited from eu, us" in text
    page = _to_html(text)
    assert "<th>Vantages</th>" in page
    assert "<td>reachable from eu; not from us</td>" in page
    assert "<td>reachable from eu; not tested from us</td>" in page


def test_a_hostile_vantage_name_read_back_from_a_file_stays_text() -> None:
    report = vantage_report()
    host = report.hosts[0]
    evil = "[x](https://evil.example)"
    obs = dataclasses.replace(host.observation, vantages=(evil, "eu"))
    report = dataclasses.replace(
        report, vantages=(evil,), hosts=(dataclasses.replace(host, observation=obs),)
    )
    page = _to_html(render_markdown(report))
    assert "<a " not in page and "evil.example" in page


def test_the_headline_gives_the_grade_and_counts_and_hosts_come_worst_first() -> None:
    text = render_markdown(sample_report())
    assert text.startswith("# Exposure audit: grade F\n")
    assert "| 3 | 1 | 0 | 1 | 0 | 0 |" in text  # critical, high, medium, low, info, accepted
    headings = re.findall(r"^## ([^ ,]+)", text, flags=re.MULTILINE)
    assert headings == ["198.51.100.7", "2001:db8::7"]


def test_each_host_has_a_findings_table_remediation_and_services() -> None:
    page = _to_html(render_markdown(sample_report()))
    assert page.count("<table>") == 5  # counts; two findings tables; two services tables
    assert "<td>DSM001</td>" in page and "<td>5000/tcp</td>" in page
    # Fix first, right after the verdict: the critical findings' remediation, each once,
    # naming host and port; each host's "what to do first" points at it
    fix = page[page.index("Fix first") : page.index("<table>")]
    assert "<li>198.51.100.7 5000/tcp (DSM003; critical): remediation of DSM003</li>" in fix
    assert page.index("Verdict") < page.index("Fix first") < page.index("198.51.100.7 (nas")
    first = page[page.index("What to do first") : page.index("<table>", page.index("Findings"))]
    assert "Fix first 2 above (DSM003 on 5000/tcp)" in first
    assert page.count("remediation of DSM003") == 1
    assert "<strong>TLS001</strong>: remediation of TLS001" in page  # the rest, once
    assert "<td>Synology DSM 4.3-3810 (DS1512+)</td>" in page and "<td>NAS</td>" in page
    assert "22/tcp" not in page  # closed ports are left out, as in the table report


@pytest.mark.parametrize("evidence", _INJECTIONS)
def test_target_text_renders_as_its_own_characters_and_nothing_else(evidence: str) -> None:
    # Given a finding whose evidence is hostile text in a table cell.
    markdown = render_markdown(_with_evidence(evidence))
    page = _to_html(markdown)
    # Then no link, image, HTML element, code span or emphasis comes out of it ...
    for tag in ("<a ", "<img", "<script", "<code>", "<em>", "<s>", "<del>"):
        assert tag not in page, (tag, evidence)
    # ... the findings table keeps one row of five cells ...
    table = page.split("<h3>Findings</h3>")[2].split("</table>")[0]
    assert table.count("<tr>") == 2 and table.count("<td>") == 5
    # ... and the cell shows exactly the text (control characters as visible escapes).
    cell = re.findall(r"<td>(.*?)</td>", table)[4]
    assert html.unescape(cell) == printable(evidence)


def test_bare_urls_and_addresses_cannot_autolink() -> None:
    # GFM autolinks "scheme://", "www." and "user@host" in plain text: each trigger is escaped.
    text = md_text("visit https://evil.example or www.evil.example or mail root@evil.example")
    assert "s://" not in text and "www." not in text and "t@" not in text
    assert text == (
        "visit https\\://evil.example or www\\.evil.example or mail root\\@evil.example"
    )


def test_control_and_bidi_characters_become_visible_escapes() -> None:
    text = render_markdown(sample_report())
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\\\x1b\\[2J" in text  # shows as \x1b[2J


def test_accepted_findings_are_listed_apart_and_expired_ones_count_again() -> None:
    report = sample_report()
    nas = report.hosts[0]
    live = dataclasses.replace(
        nas.findings[3],
        acceptance=Acceptance("[internal](https://x) only", "ops <ops@x>", date(2027, 1, 31)),
    )
    expired = dataclasses.replace(
        nas.findings[2],
        acceptance=Acceptance("legacy", "ops", date(2026, 1, 1), expired=True),
    )
    nas = dataclasses.replace(nas, findings=(*nas.findings[:2], expired, live))
    text = render_markdown(dataclasses.replace(report, hosts=(nas, report.hosts[1])))
    accepted = text.split("### Accepted risks (not counted)")[1].split("##")[0]
    assert "TLS001 5001/tcp (low)" in accepted and "until 2027-01-31" in accepted
    assert "\\[internal\\](https\\://x) only" in accepted and "\\<ops\\@x>" in accepted
    findings = text.split("### Findings")[1].split("### ")[0]
    assert "TLS001" not in findings
    assert "| **critical** (acceptance expired) | SVC001 | 23/tcp |" in findings
    assert "| 3 | 1 | 0 | 0 | 0 | 1 |" in text  # the low one no longer counts; one accepted


def test_upnp_mappings_and_forwarding_are_listed() -> None:
    report = sample_report()
    nas = report.hosts[0]
    mapping = PortMapping(5000, "TCP", "192.168.1.10", 5000, "DSM | [x](y)")
    services = tuple(
        dataclasses.replace(s, upnp_mapping=mapping) if s.port == 5000 else s
        for s in nas.observation.services
    )
    observation = dataclasses.replace(
        nas.observation,
        services=services,
        forwarding=UpnpForwarding(
            "inventory", (PortMapping(6690, "TCP", "192.168.1.10", 6690),), (23,)
        ),
    )
    nas = dataclasses.replace(nas, observation=observation)
    text = render_markdown(dataclasses.replace(report, hosts=(nas, report.hosts[1])))
    upnp = text.split("### UPnP")[1].split("##")[0]
    assert (
        "- 5000/tcp forwarded by UPnP (inventory): 5000/TCP -> 192.168.1.10:5000 "
        "'DSM \\| \\[x\\](y)' (permanent)"
    ) in upnp
    assert "mapped but not reachable from here" in upnp and "6690/TCP" in upnp
    assert "- 23/tcp reachable with no UPnP mapping" in upnp


def test_an_incomplete_run_and_untested_probes_are_said() -> None:
    report = dataclasses.replace(sample_report(), complete=False, errors=("nmap <crashed>",))
    text = render_markdown(report)
    assert "**Run incomplete**" in text
    assert "- error: nmap \\<crashed>" in text
    assert "- versions timed_out: host deadline reached" in text
