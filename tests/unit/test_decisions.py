"""Every decision is the signed-in person's whose role is checked, never a typed name.

The command line takes no ``--by`` anywhere; decisions carry the person's own credential
(``cleanroom login``) and refuse, changing nothing, a person without the role, out of
standing, or a stale or forged credential; host administration verbs without a credential
are recorded as the host account, never as a name their caller chose.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from cleanroom.cli import main as cli
from cleanroom.errors import Forbidden
from cleanroom.lifecycle.closure import close_project
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance
from cleanroom.registry.people import People

from tests.people import Authenticator, personal_token

HOST = "host:" + pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def people(registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """olga (operator), otto (officer), alice (researcher), each in standing and signed
    in: their personal credentials. No credential is the default."""
    monkeypatch.setenv("CLEANROOM_TOKEN_FILE", str(tmp_path / "no-saved-token"))
    monkeypatch.delenv("CLEANROOM_TOKEN", raising=False)
    app = Authenticator()
    tokens = {}
    for name, roles in (("olga", ["operator"]), ("otto", ["officer"]), ("alice", [])):
        Governance(registry).add_user(name, roles or ["researcher"], actor="test")
        tokens[name] = personal_token(registry, name, app)
    Governance(registry).create_project("proj", "P", actor="test")
    return tokens


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


VERBS_THAT_TOOK_BY = [
    ("users", "add", "bob"),
    ("users", "roles", "alice", "--role", "officer"),
    ("projects", "create", "qqq", "--title", "Q"),
    ("projects", "status", "proj", "suspended"),
    ("projects", "close", "proj"),
    ("members", "add", "proj", "alice"),
    ("datasets", "delete", "press", "--version", "v1"),
    ("datasets", "roles", "press", "a=label"),
    ("egress", "grant", "alice", "proj", "1MiB", "--reason", "x"),
    ("token", "alice"),
]


@pytest.mark.parametrize("argv", VERBS_THAT_TOOK_BY, ids=lambda a: " ".join(a[:2]))
def test_no_verb_takes_a_typed_actor(
    people: dict[str, str], capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--by", "olga"])
    assert "unrecognized arguments: --by olga" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (("users", "roles", "alice", "--role", "officer"), "change people's roles"),
        (("projects", "status", "proj", "suspended"), "change a project's status"),
        (("projects", "close", "proj"), "close projects"),
    ],
)
def test_operator_decisions_refuse_everyone_else(
    registry: Registry,
    people: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    what: str,
) -> None:
    gov = Governance(registry)
    before = len(gov.journal_entries())
    code, err = _run(capsys, *argv)  # no credential, and an operator is in standing
    assert code == 2 and "cleanroom login" in err
    code, err = _run(capsys, *argv, "--token", people["otto"])  # an officer, not operator
    assert code == 2 and f"does not hold the operator role and may not {what}" in err
    code, err = _run(capsys, *argv, "--token", "a-forged-credential")
    assert code == 2 and "unknown or expired" in err
    People(registry).set_disabled("olga", True, actor="olga", reason="on leave")
    code, err = _run(capsys, *argv, "--token", people["olga"])  # stale: may not sign in
    assert code == 2 and "disabled" in err
    assert len(gov.journal_entries()) == before + 1  # only the disabling
    assert registry.get_user("alice").roles == frozenset({"researcher"})
    assert registry.get_project("proj").status == "approved"


def test_operator_decisions_are_recorded_as_the_signed_in_operator(
    registry: Registry, people: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(capsys, "projects", "status", "proj", "suspended", "--token", people["olga"])
    assert code == 0, out
    code, out = _run(capsys, "users", "roles", "alice", "--role", "officer", "--token",
                     people["olga"])  # fmt: skip
    assert code == 0, out
    gov = Governance(registry)
    assert gov.journal_entries("project:proj")[-1].actor == "olga"
    assert gov.journal_entries("user:alice")[-1].actor == "olga"


def test_closing_a_project_is_an_operators_decision(
    registry: Registry, people: dict[str, str]
) -> None:
    before = len(Governance(registry).journal_entries())
    for who, message in (("otto", "does not hold the operator role"), ("nobody", "registered")):
        with pytest.raises(Forbidden, match=message):
            close_project(registry, "proj", actor=who, instance="decisions-unit")
    assert registry.get_project("proj").status == "approved"
    assert len(Governance(registry).journal_entries()) == before


def test_admin_verbs_record_the_signed_in_operator_or_the_host_account(
    registry: Registry,
    people: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLEANROOM_ACTOR", "mallory")  # no longer read: no free text
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    assert _run(capsys, "projects", "create", "qqq", "--title", "Q")[0] == 0
    assert Governance(registry).journal_entries("project:qqq")[-1].actor == HOST
    code, _ = _run(capsys, "members", "add", "qqq", "alice", "--token", people["olga"])
    assert code == 0
    assert Governance(registry).journal_entries("project:qqq")[-1].actor == "olga"
    # A credential makes the act that person's: it must be an operator in standing.
    code, err = _run(capsys, "members", "add", "qqq", "otto", "--token", people["alice"])
    assert code == 2 and "does not hold the operator role" in err
    assert registry.get_project("qqq").members == ("alice",)
