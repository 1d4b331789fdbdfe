"""Text from targets is made inert before it reaches a terminal or a spreadsheet."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exposure_audit.text import csv_cell, plural, printable


def test_escape_sequences_nuls_and_bidi_controls_become_visible_escapes() -> None:
    text = "nginx\x1b[2J\x1b]0;owned\x07\x00\u202etxt.exe"
    out = printable(text)
    assert "\x1b" not in out and "\x00" not in out and "\u202e" not in out and "\x07" not in out
    assert out.startswith("nginx\\x1b[2J")
    assert "\\u202e" in out


def test_long_text_is_cut() -> None:
    assert len(printable("a" * 10_000, 100)) == 100


def test_csv_cells_that_look_like_formulas_are_quoted() -> None:
    for cell in ("=HYPERLINK(1)", "+1", "-2+3", "@SUM(A1)"):
        assert csv_cell(cell).startswith("'")
    assert csv_cell("nginx") == "nginx"


@given(st.text())
def test_printable_output_has_no_control_characters(text: str) -> None:
    import unicodedata

    assert all(unicodedata.category(c) not in ("Cc", "Cf") for c in printable(text))


def test_a_count_of_one_takes_no_plural_ending() -> None:
    assert [plural(n, "host") for n in (0, 1, 2)] == ["0 hosts", "1 host", "2 hosts"]
    assert plural(1, "address") == "1 address" and plural(3, "address") == "3 addresses"
