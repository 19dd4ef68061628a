"""The governance verbs of the cleanroom command: JSON for scripts, one-line errors that
change nothing, and every change journaled with who did it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from cleanroom.cli import main as cli
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry.governance import Governance
from cleanroom.workspace import incoming

from tests.people import Authenticator, personal_token

NEXT_YEAR = (date.today() + timedelta(days=365)).isoformat()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


TOKENS: dict[str, str] = {}


@pytest.fixture
def seeded(state: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """alice (researcher), olga (operator) and pat (provider), each in standing and signed
    in on the command line; olga's credential is the default ($CLEANROOM_TOKEN)."""
    monkeypatch.setenv("CLEANROOM_ACTOR", "olga")
    monkeypatch.setenv("CLEANROOM_TOKEN_FILE", str(state / "no-saved-token"))
    reg = Registry()
    app = Authenticator()
    for name, roles in [("alice", ["researcher"]), ("olga", ["operator"]), ("pat", ["provider"])]:
        Governance(reg).add_user(name, roles, actor="op")
    for name in ("olga", "alice", "pat"):
        TOKENS[name] = personal_token(reg, name, app)
    monkeypatch.setenv("CLEANROOM_TOKEN", TOKENS["olga"])
    Governance(reg).add_dataset(
        DatasetInfo("press-line", "v1", "Acme", "/lib/press-line/v1", None, 3), actor="op"
    )
    return reg


def test_application_to_running_project_through_the_command(
    seeded: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys,
        "--json",
        "applications",
        "submit",
        "--title",
        "Defects",
        "--purpose",
        "Find defect drivers",
        "--member",
        "alice",
        "--assessment",
        "DPIA-1",
        "--dataset",
        "press-line",
        "--ends",
        NEXT_YEAR,
        "--token",
        TOKENS["alice"],
    )
    assert code == 0, err
    app = json.loads(out)
    assert app["status"] == "pending" and app["members"] == ["alice"]
    assert app["assessment_reference"] == "DPIA-1"
    code, out, err = _run(
        capsys, "applications", "sign", str(app["id"]), "--token", TOKENS["alice"]
    )
    assert code == 0 and "alice signed the pledge; waiting for providers" in out, err
    code, _, err = _run(capsys, "applications", "approve", str(app["id"]), "--project", "defects")
    assert code == 2 and "waits for its providers' decisions on: press-line v1 (Acme)" in err
    assert _run(capsys, "providers", "add-user", "Acme", "pat")[0] == 0
    code, out, err = _run(
        capsys, "applications", "approve-use", str(app["id"]), "press-line",
        "--token", TOKENS["pat"],
    )  # fmt: skip
    assert code == 0 and "the use of press-line@v1 is approved" in out, err
    code, _, err = _run(capsys, "applications", "approve", str(app["id"]), "--project", "defects")
    assert code == 2 and "no data processing assessment" in err
    assess = ["assess", str(app["id"]), "--reference", "DPIA-1", "--outcome", "approved"]
    assert _run(capsys, "applications", *assess)[0] == 0
    code, out, err = _run(capsys, "applications", "approve", str(app["id"]), "--project", "defects")
    assert code == 0 and "project defects created" in out, err
    assert [a.approved_by for a in Governance(seeded).approvals("defects")] == ["pat"]
    assert [d.name for d in seeded.workspace_plan("alice", "defects").datasets] == ["press-line"]
    code, out, _ = _run(capsys, "--json", "providers", "usage", "Acme")
    assert json.loads(out)["projects"] == ["defects"]
    code, out, _ = _run(capsys, "--json", "journal", "list")
    actions = [(e["actor"], e["action"]) for e in json.loads(out)]
    assert ("alice", "application.submit") in actions
    assert ("olga", "application.approve") in actions
    assert ("alice", "application.sign") in actions
    assert ("pat", "application.approve_use") in actions
    assert _run(capsys, "journal", "verify")[1].startswith("journal verifies")
    # A credential is never journaled.
    assert all(
        TOKENS["olga"] not in json.dumps(e.detail) for e in Governance(seeded).journal_entries()
    )


def test_decisions_need_a_credential_not_a_name(
    seeded: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLEANROOM_TOKEN")
    code, _, err = _run(capsys, "providers", "add-user", "Acme", "pat")
    assert code == 2 and "run `cleanroom login` first" in err
    with pytest.raises(SystemExit) as typed_name:
        cli.main(["providers", "add-user", "Acme", "pat", "--by", "olga"])
    assert typed_name.value.code == 2
    assert "unrecognized arguments: --by olga" in capsys.readouterr().err
    code, _, err = _run(capsys, "providers", "add-user", "Acme", "pat", "--token", "forged")
    assert code == 2 and "unknown or expired" in err
    # The provider's own credential does not make them an operator.
    code, _, err = _run(capsys, "providers", "add-user", "Acme", "pat", "--token", TOKENS["pat"])
    assert code == 2 and "does not hold the operator role" in err


def test_backbone_verbs_are_journaled_too(
    seeded: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "projects", "create", "defects", "--title", "Defects")[0] == 0
    assert _run(capsys, "members", "add", "defects", "alice")[0] == 0
    entries = Governance(seeded).journal_entries("project:defects")
    assert [(e.actor, e.action) for e in entries] == [
        ("olga", "project.create"),
        ("olga", "member.add"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["applications", "approve", "99", "--project", "x-project"], "no application 99"),
        (["datasets", "approve", "nope", "press-line", "--token", "{pat}"], "no project 'nope'"),
        (["providers", "add-user", "Acme", "alice"], "does not have the provider role"),
        (["projects", "end", "nope", "--never"], "no project 'nope'"),
        (["members", "end", "defects", "alice", "--on", NEXT_YEAR, "--never"], "either --on"),
        (["ingress", "approve", "7"], "no ingress request 7"),
        (["images", "retire", "nope", "--reason", "x"], "unknown image 'nope'"),
        (["images", "allow", "nope"], "unknown image 'nope'"),
        (["applications", "decline", "1", "--reason", "x"], "no application 1"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    seeded: Registry, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = Governance(seeded).journal_entries()
    code, _, err = _run(capsys, *(a.format(**TOKENS) for a in argv))
    assert code == 2
    assert err.startswith("cleanroom: error: ") and message in err and err.count("\n") == 1
    assert Governance(seeded).journal_entries() == before


def test_images_allow_and_retire(seeded: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "projects", "create", "defects", "--title", "D")[0] == 0
    code, out, err = _run(capsys, "images", "retire", "pytorch", "--reason", "old torch", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "retired"
    code, _, err = _run(capsys, "images", "allow", "pytorch", "--project", "defects")
    assert code == 2 and "retired" in err
    assert _run(capsys, "images", "allow", "pytorch")[0] == 0
    assert _run(capsys, "images", "allow", "pytorch", "--project", "defects")[0] == 0
    assert seeded.get_project("defects").images == ("notebook", "pytorch")


def test_ingress_through_the_command(
    seeded: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _run(capsys, "projects", "create", "defects", "--title", "D")[0] == 0
    assert _run(capsys, "members", "add", "defects", "alice")[0] == 0
    table = tmp_path / "codes.csv"
    table.write_text("a,b\n")
    code, out, err = _run(
        capsys,
        "--json",
        "ingress",
        "request",
        "defects",
        str(table),
        "--token",
        TOKENS["alice"],
        "--reason",
        "code list",
    )
    assert code == 0, err
    request_id = str(json.loads(out)["id"])
    code, out, err = _run(capsys, "ingress", "approve", request_id)
    assert code == 0, err
    assert "incoming" in out
    # Delivered into the encrypted incoming folder (cleanroom.workspace.incoming).
    workspaces = Path(seeded.url.removeprefix("sqlite:///")).parent / "workspaces"
    assert incoming.read_bytes("defects", "codes.csv", root=workspaces) == b"a,b\n"


def test_provider_accounts_are_listed_and_removed_and_applications_withdrawn(
    seeded: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "providers", "add-user", "Acme", "pat")[0] == 0
    code, out, _ = _run(capsys, "providers", "accounts", "Acme")
    assert code == 0 and out.startswith("Acme\tpat\tprincipal\tsince ")
    code, _, err = _run(
        capsys, "providers", "remove-user", "Acme", "pat", "--token", TOKENS["alice"]
    )
    assert code == 2 and "provider" in err  # a researcher removes nobody
    code, out, err = _run(capsys, "providers", "remove-user", "Acme", "pat")
    assert code == 0 and "pat no longer acts for Acme" in out, err
    assert json.loads(_run(capsys, "--json", "providers", "accounts")[1]) == []
    code, out, err = _run(
        capsys, "--json", "applications", "submit", "--title", "T", "--purpose", "p",
        "--member", "alice", "--ends", NEXT_YEAR, "--token", TOKENS["alice"],
    )  # fmt: skip
    number = str(json.loads(out)["id"])
    code, _, err = _run(capsys, "applications", "withdraw", number)
    assert code == 2 and "only its applicant withdraws it" in err
    code, out, err = _run(
        capsys, "applications", "withdraw", number, "--reason", "done", "--token", TOKENS["alice"]
    )
    assert code == 0 and f"application {number} withdrawn" in out, err
    code, out, _ = _run(capsys, "--json", "applications", "list", "--status", "withdrawn")
    assert [a["reason"] for a in json.loads(out)] == ["done"]


def test_a_personal_token_is_never_read_as_an_option(
    seeded: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanroom.registry import people

    # One in 32 of token_urlsafe's tokens begins with "-": `--token -x...` was an argparse
    # error ("expected one argument") instead of the person's act.
    monkeypatch.setattr(people.secrets, "token_urlsafe", lambda n: "-" + "x" * 42)
    Governance(seeded).add_user("dina", ["researcher"], actor="op")
    token = personal_token(seeded, "dina", Authenticator())
    assert token.startswith(people.CLI_TOKEN_PREFIX)
    code, _, err = _run(capsys, "applications", "sign", "999", "--token", token)
    assert code == 2 and "there is no application 999" in err
