"""The terminal report fits any width it is given: tables wrap their widest columns, become
short records on a terminal too narrow for them, and no line of the table or the diff ever
runs past the edge, whatever text the targets sent."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exposure_audit.render import render_diff, render_report
from exposure_audit.render._fit import MIN_WIDTH, cells, clip, fit_table, wrap

from ..report_samples import sample_report, vantage_report
from .test_diff import weekly_diff


@pytest.mark.parametrize("width", [20, 33, 40, 52, 60, 72, 80, 100, 132, 200])
def test_no_line_of_the_table_or_the_diff_runs_past_the_width(width: int) -> None:
    for report in (sample_report(), vantage_report()):
        text = render_report(report, "table", width=width)
        assert max(cells(line) for line in text.splitlines()) <= width, width
    diff = render_diff(weekly_diff(), "table", width=width)
    assert max(cells(line) for line in diff.splitlines()) <= width, width


def test_a_narrow_terminal_gets_records_a_wide_one_keeps_each_row_on_a_line() -> None:
    wide = render_report(vantage_report(), "table", width=200)
    assert "5001/tcp  open     https      Synology DSM 7.2.2-72806 Update 3" in wide
    narrow = render_report(vantage_report(), "table", width=50)
    assert "- port: 5001/tcp; state: open; service: https;\n  product: Synology DSM" in narrow


def test_below_the_minimum_width_the_report_is_laid_out_for_the_minimum() -> None:
    text = render_report(sample_report(), "table", width=5)
    assert max(cells(line) for line in text.splitlines()) <= MIN_WIDTH


def test_wide_characters_count_two_cells() -> None:
    assert cells("NAS") == 3 and cells("ディスク") == 8 and cells("e\u0301") == 1
    assert clip(["ディスクステーション"], 20) == ["ディスクステーション"]
    assert clip(["ディスクステーションです"], 20) == ["ディスクステーション", "です"]


def test_a_table_keeps_its_natural_widths_when_it_fits() -> None:
    lines = fit_table(["a", "b"], [["x", "y" * 10]], 80, flexible={1})
    assert lines == ["a    b", "---  ----------", "x    yyyyyyyyyy"]


@settings(max_examples=60, deadline=None)
@given(
    title=st.text(min_size=1, max_size=300),
    width=st.integers(min_value=1, max_value=160),
)
def test_hostile_titles_never_push_a_line_past_the_width(title: str, width: int) -> None:
    report = sample_report()
    host = report.hosts[0]
    services = tuple(
        dataclasses.replace(s, product=title, version=title[::-1])
        for s in host.observation.services
    )
    observation = dataclasses.replace(host.observation, services=services)
    report = dataclasses.replace(
        report, hosts=(dataclasses.replace(host, observation=observation), *report.hosts[1:])
    )
    text = render_report(report, "table", width=width)
    assert max(cells(line) for line in text.splitlines()) <= max(width, MIN_WIDTH)
    assert all(cells(line) <= max(width, MIN_WIDTH) for line in wrap(title, width, "   "))
