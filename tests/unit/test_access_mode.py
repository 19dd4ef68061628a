"""A project's access mode: set by an operator through the one writer, journaled, read by
the spawner through one function; bad input is refused and changes nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cleanroom.cli import main as cli
from cleanroom.errors import Forbidden, InvalidInput, NotFound
from cleanroom.registry import Registry
from cleanroom.registry.access import (
    RESTRICTED,
    STANDARD,
    access_mode_of,
    is_restricted,
    project_access_mode,
)
from cleanroom.registry.governance import Governance

from tests.people import Authenticator, in_standing, personal_token

APP = Authenticator()


@pytest.fixture
def gov(registry: Registry) -> Governance:
    """olga (operator, in standing), alice (researcher, in standing), one project."""
    g = Governance(registry)
    g.add_user("olga", ["operator"], actor="op")
    g.add_user("alice", ["researcher"], actor="op")
    secret = in_standing(registry, "olga")
    assert secret is not None
    APP.secrets.pop("olga", None)
    APP.add("olga", secret)
    in_standing(registry, "alice")
    g.create_project("defects", "Defect drivers", actor="op")
    return g


def test_new_projects_are_standard(gov: Governance, registry: Registry) -> None:
    assert registry.get_project("defects").access_mode == STANDARD
    assert project_access_mode(registry, "defects") == STANDARD
    assert not is_restricted(registry.get_project("defects"))


def test_an_operator_restricts_a_project_on_the_record(gov: Governance, registry: Registry) -> None:
    gov.set_access_mode("defects", RESTRICTED, actor="olga")
    assert project_access_mode(registry, "defects") == RESTRICTED
    entry = gov.journal_entries("project:defects")[-1]
    assert entry.action == "project.access_mode"
    assert entry.actor == "olga"
    assert entry.detail["before"] == STANDARD and entry.detail["after"] == RESTRICTED
    gov.set_access_mode("defects", STANDARD, actor="olga")
    assert project_access_mode(registry, "defects") == STANDARD


@pytest.mark.parametrize(
    ("project", "mode", "actor", "error"),
    [
        ("defects", "pixels", "olga", InvalidInput),
        ("defects", "", "olga", InvalidInput),
        ("nope", RESTRICTED, "olga", NotFound),
        ("defects", RESTRICTED, "alice", Forbidden),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(
    gov: Governance,
    registry: Registry,
    project: str,
    mode: str,
    actor: str,
    error: type[Exception],
) -> None:
    before = len(gov.journal_entries())
    with pytest.raises(error):
        gov.set_access_mode(project, mode, actor=actor)
    assert project_access_mode(registry, "defects") == STANDARD
    assert len(gov.journal_entries()) == before


def test_an_unknown_stored_mode_counts_as_restricted(gov: Governance, registry: Registry) -> None:
    # Fail closed: a value this code does not know never opens JupyterLab to a browser.
    project = registry.get_project("defects")
    odd = type(project)(**{**project.__dict__, "access_mode": "future-mode"})
    assert access_mode_of(odd) == RESTRICTED


def test_an_older_registry_gains_the_column_as_standard(
    gov: Governance, registry: Registry, state: Path
) -> None:
    database = state / "registry.sqlite"
    with sqlite3.connect(database) as conn:
        conn.execute("ALTER TABLE projects DROP COLUMN access_mode")
    reopened = Registry()
    assert reopened.get_project("defects").access_mode == STANDARD
    Governance(reopened).set_access_mode("defects", RESTRICTED, actor="olga")
    assert project_access_mode(reopened, "defects") == RESTRICTED


def test_the_command_sets_and_shows_the_mode(
    gov: Governance,
    registry: Registry,
    state: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLEANROOM_TOKEN_FILE", str(state / "no-saved-token"))
    monkeypatch.setenv("CLEANROOM_TOKEN", personal_token(registry, "olga", APP))
    assert cli.main(["--json", "projects", "mode", "defects", "restricted"]) == 0
    assert json.loads(capsys.readouterr().out)["access_mode"] == RESTRICTED
    assert cli.main(["projects", "show", "defects"]) == 0
    assert "mode:     restricted" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["projects", "mode", "defects", "pixels"])
    assert "invalid choice" in capsys.readouterr().err
    assert project_access_mode(registry, "defects") == RESTRICTED
