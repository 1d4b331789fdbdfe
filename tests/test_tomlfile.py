"""The position-aware TOML reader on its own: the line of each key, dotted keys in messages,
the typed getters (None when absent), and syntax errors with tomllib's line. The accepted-risks
and config parsers are tested through their own files (tests/history/test_accept.py,
tests/cli/test_config.py)."""

from __future__ import annotations

from datetime import date

import pytest

from exposure_audit.errors import UsageError
from exposure_audit.tomlfile import TomlDocument, TomlFileError

TEXT = """\
name = "nas"

[scan]
ports = [
  22,
  "x",
]
timeout = 0

[[entry]]
day = 2026-12-31

[[entry]]
day = "soon"
inline = { "odd key" = 1 }
"""


def document() -> TomlDocument:
    return TomlDocument.parse(TEXT, "f.toml")


def test_every_key_table_and_element_knows_its_line() -> None:
    doc = document()
    assert doc.line(("name",)) == 1
    assert doc.line(("scan",)) == 3
    assert doc.line(("scan", "ports", 1)) == 6
    assert doc.line(("entry", 1, "day")) == 14
    assert doc.line(("entry", 1, "inline", "odd key")) == 15
    assert doc.line(("entry", 1, "absent")) == 13  # the nearest parent's line
    assert doc.where(("nowhere",)) == "f.toml"


def test_a_failure_names_file_line_and_dotted_key() -> None:
    doc = document()
    with pytest.raises(TomlFileError) as caught:
        doc.fail(("entry", 1, "inline", "odd key"), "bad")
    assert str(caught.value) == 'f.toml:15: entry[1].inline."odd key": bad'
    assert isinstance(caught.value, UsageError)


def test_the_typed_getters_return_none_when_absent_and_fail_on_the_wrong_type() -> None:
    doc = document()
    scan = doc.data["scan"]
    assert doc.text(("scan",), scan, "absent") is None
    assert doc.seconds(("scan",), scan, "absent") is None
    with pytest.raises(
        TomlFileError, match=r"^f\.toml:5: scan\.ports\[0\]: must be a string, not an"
    ):
        doc.texts(("scan",), scan, "ports")
    with pytest.raises(TomlFileError, match=r"^f\.toml:8: scan\.timeout: must be more than 0"):
        doc.seconds(("scan",), scan, "timeout")
    first, second = doc.data["entry"]
    assert doc.day(("entry", 0), first, "day") == date(2026, 12, 31)
    with pytest.raises(TomlFileError, match=r"'soon' is not a date like 2026-12-31"):
        doc.day(("entry", 1), second, "day")


def test_a_syntax_error_keeps_tomllib_s_line_and_raises_the_callers_error_type() -> None:
    class MyError(TomlFileError):
        pass

    with pytest.raises(MyError) as caught:
        TomlDocument.parse("a = 1\na = 2\n", "f.toml", MyError)
    assert str(caught.value) == "f.toml:2: not valid TOML: Cannot overwrite a value"
