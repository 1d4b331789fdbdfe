"""Every subcommand's ``--help`` says what it does, and every option says what it is for
(issue 14, item 7): checked on the parser itself, and through the real CLI."""

from __future__ import annotations

import argparse

import pytest

from exposure_audit.cli.main import _parser

from .runner import run_cli


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_subcommand_has_a_description_and_every_option_a_help_text() -> None:
    parser = _parser()
    assert parser.description
    missing = []
    for name, command in _subcommands().items():
        if not (command.description or "").strip():
            missing.append(f"{name}: no description")
        for action in command._actions:
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                flags = "/".join(action.option_strings) or action.dest
                missing.append(f"{name} {flags}: no help")
    assert missing == []


def test_every_subcommand_is_listed_with_a_summary() -> None:
    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    listed = {a.dest: a.help for a in sub._choices_actions}
    assert set(listed) == set(_subcommands())
    assert all((text or "").strip() for text in listed.values())


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_help_through_the_cli_shows_the_description_and_option_help(name: str) -> None:
    done = run_cli(name, "--help", timeout=60)
    assert done.returncode == 0
    description = _subcommands()[name].description or ""
    assert " ".join(description.split()[:4]) in " ".join(done.stdout.split())
    if "--format" in done.stdout:
        assert "output format (default" in done.stdout
