"""The cleanroom command: help on every verb, JSON for scripts, clear errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cleanroom.cli import main as cli
from cleanroom.registry import Registry


def _verbs(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += _verbs(sub, (*prefix, name))
    return found


def test_every_verb_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    verbs = _verbs(cli.build_parser())
    assert ("members", "remove") in verbs and ("datasets", "register") in verbs
    assert {("check",), ("audit",), ("images",)} <= set(verbs)
    for verb in verbs:
        code: int | str | None
        try:
            code = cli.main([*verb, "--help"])
        except SystemExit as done:
            code = done.code
        assert code == 0, verb
        assert "usage: cleanroom" in capsys.readouterr().out, verb


def test_project_lifecycle_with_json(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", "a long enough password")
    assert cli.main(["users", "add", "alice", "--password-env", "PW"]) == 0
    assert cli.main(["projects", "create", "press-quality", "--title", "Press"]) == 0
    assert cli.main(["members", "add", "press-quality", "alice"]) == 0
    capsys.readouterr()
    assert cli.main(["--json", "projects", "show", "press-quality"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["members"] == ["alice"] and shown["images"] == ["notebook"]
    assert Registry().check_password("alice", "a long enough password")


def test_errors_are_one_clear_line_and_change_nothing(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["members", "add", "nope", "alice"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "cleanroom: error: there is no project 'nope'"
    assert cli.main(["projects", "create", "Bad Name", "--title", "x"]) == 2
    assert "invalid name" in capsys.readouterr().err
    assert Registry().list_projects() == []


def test_register_shows_progress(state: Path, tmp_path: Path) -> None:
    src = tmp_path / "data.csv"
    src.write_text("a,b\n" + "1,2\n" * 1000)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cleanroom.cli.main",
            "datasets",
            "register",
            str(src),
            "--name",
            "tiny",
            "--version",
            "v1",
            "--provider",
            "Acme",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr
    assert "registered tiny v1: 1 files" in done.stdout
