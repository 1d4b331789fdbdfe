"""Every command block of README.md and docs/usage.md marked runnable runs as written, with
the exit status it is documented to give (``tests/docs/runnable.py`` has the marker); and the
documentation's facts that drift (formats, default ports, the webhook schema, links) match the
tool."""

from __future__ import annotations

import collections.abc
import re
from pathlib import Path

import pytest

from exposure_audit.history.message import SCHEMA as NOTIFICATION_SCHEMA
from exposure_audit.lab import demo_lab
from exposure_audit.ports import default_ports
from exposure_audit.render import DIFF_FORMATS, REPORT_FORMATS

from .runnable import REPO, Block, blocks_of, check_safe, fresh_clone, run_line

DOCUMENTED = ("README.md", "docs/usage.md")

BLOCKS = [b for doc in DOCUMENTED for b in blocks_of(REPO / doc)]


def test_both_documents_have_runnable_blocks_of_each_kind_they_need() -> None:
    kinds = collections.Counter((b.where.split(":")[0], b.kind) for b in BLOCKS)
    assert kinds[("README.md", "plain")] >= 1
    assert kinds[("docs/usage.md", "plain")] >= 1
    assert kinds[("docs/usage.md", "lab")] >= 1
    assert [b.kind for b in blocks_of(REPO / "docs/scheduling.md")] == ["workflow"]


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "plain"], ids=lambda b: b.where)
def test_a_runnable_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    cwd = fresh_clone(tmp_path)
    for command in block.commands:
        check_safe(block.kind, command)
        result = run_line(command.text, cwd)
        assert result.returncode == command.exit_code, (
            f"{command.where}: {command.text}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
        assert "Traceback" not in result.stderr, result.stderr
        if command.exit_code == 0:
            assert result.stdout, f"{command.where}: printed nothing"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "lab"], ids=lambda b: b.where)
def test_a_runnable_lab_block_runs_as_written_against_the_demo_lab(
    block: Block, tmp_path: Path
) -> None:
    cwd = fresh_clone(tmp_path)
    # The documented lab, `python3 -m exposure_audit.lab demo`, on its default block
    with demo_lab():
        for command in block.commands:
            check_safe(block.kind, command)
            result = run_line(command.text, cwd)
            assert result.returncode == command.exit_code, (
                f"{command.where}: {command.text}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
            assert "Traceback" not in result.stderr, result.stderr
    for written in re.findall(r"-o (\S+)", " ".join(c.text for c in block.commands)):
        assert (cwd / written).stat().st_size > 0, written


def test_the_safety_check_refuses_what_would_leave_the_machine() -> None:
    from .runnable import Command

    for kind, text in (
        ("plain", "exposure-audit scan 198.51.100.7 --allow-private"),
        ("plain", "exposure-audit demo"),
        ("lab", "exposure-audit scan 198.51.100.7 --allow-private"),
        ("lab", "exposure-audit scan nas.example.net --resolver 127.0.0.1:53"),
        ("lab", "exposure-audit upnp-inventory"),
    ):
        with pytest.raises(AssertionError):
            check_safe(kind, Command(text, "here", 0))


def test_a_marker_that_marks_no_sh_block_is_an_error(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- runnable -->\n\n```sh\ntrue\n```\n")
    with pytest.raises(ValueError, match="must precede"):
        blocks_of(doc)


# -- facts of the tool the docs state --------------------------------------------------------


def _read(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


def test_readme_and_architecture_name_every_output_format() -> None:
    readme, usage, architecture = (
        _read("README.md"),
        _read("docs/usage.md"),
        _read("docs/architecture.md"),
    )

    def names(text: str, fmt: str) -> bool:
        return re.search(rf"`(--format )?{fmt}`", text) is not None

    for fmt in REPORT_FORMATS:
        for where, text in (("README", readme), ("usage", usage), ("architecture", architecture)):
            assert names(text, fmt), (where, fmt)
    for fmt in DIFF_FORMATS:
        assert names(architecture, fmt), fmt


def test_the_documented_default_ports_are_the_tools() -> None:
    ports = default_ports()
    section = _read("docs/usage.md").split("- Default ports:", 1)[1].split("\n- ", 1)[0]
    documented = {int(p) for p in re.findall(r"\b(\d{2,5})\b", section)} - {22, 80, 5000, 5001}
    # every default port is named (the -p example's 22,80,5000-5001 are defaults too)
    assert set(ports.tcp) - {22, 80, 5000, 5001} <= documented, set(ports.tcp) - documented
    assert set(ports.udp) <= documented
    assert {1900, 2869, 5431, 49000, 49152, 52869} <= set(ports.tcp)  # UPnP included


def test_the_documented_webhook_schema_is_the_one_sent() -> None:
    assert f'"schema": "{NOTIFICATION_SCHEMA}"' in _read("docs/scheduling.md")
    assert NOTIFICATION_SCHEMA in _read("docs/audit.example.toml")


def test_the_documented_timing_defaults_are_the_tools(tmp_path: Path) -> None:
    dry = run_line("exposure-audit scan 127.0.0.1 --allow-private --dry-run", tmp_path)
    assert dry.returncode == 0, dry.stderr
    discovery = next(x for x in dry.stdout.splitlines() if x.startswith("discovery:"))
    assert discovery == "discovery: default: -T4 --max-retries 2 --min-rate 5000"
    assert "`-T4 --min-rate 5000 --max-retries 2`" in _read("docs/usage.md").replace("\n  ", " ")
    assert "bounds: host-timeout 60 s, request-timeout 10 s, max-body 1048576 bytes" in dry.stdout
    usage = _read("docs/usage.md")
    assert "`--request-timeout` (default 10 s)" in usage
    assert "`--host-timeout` (default 60 s)" in usage


_NOT_ENGLISH = re.compile(
    r"/(?:zh|ja|ko|de|fr|es|it|ru|pt|nl|pl|tr|cs|sv|da|fi|nb|hu|th|vi)(?:[-_][a-z]{2,4})?/",
    re.IGNORECASE,
)
# A source that exists in one language only (the French national CERT's alert).
_ONLY_IN_ITS_LANGUAGE = ("https://www.cert.ssi.gouv.fr/",)


def _links() -> collections.abc.Iterator[tuple[str, str]]:
    files = [REPO / "README.md", REPO / "DEVELOPERS.md", *sorted((REPO / "docs").rglob("*.md"))]
    files += sorted((REPO / "docs").glob("*.toml"))
    files += sorted((REPO / "exposure_audit").rglob("*.py"))
    files += sorted((REPO / "exposure_audit" / "data").glob("*.json"))
    for path in files:
        for url in re.findall(r"https?://[^\s)>\"'`,;\]]+", path.read_text(encoding="utf-8")):
            yield path.relative_to(REPO).as_posix(), url


def test_every_external_link_points_to_the_english_page() -> None:
    links = list(_links())
    assert len(links) > 50
    foreign = [
        (where, url)
        for where, url in links
        if _NOT_ENGLISH.search(url) and not url.startswith(_ONLY_IN_ITS_LANGUAGE)
    ]
    assert foreign == []


def test_the_example_config_names_files_that_exist() -> None:
    import tomllib

    config = tomllib.loads(_read("docs/audit.example.toml"))
    for name in config.get("target_files", []) + config.get("exclude_files", []):
        assert (REPO / "docs" / name).is_file(), name
    assert config["target_files"] == ["targets.txt"]
