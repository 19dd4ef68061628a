"""Deleting a dataset version: only its provider or an operator may ask; it waits while an
open project uses it; once its uses end it is gone from the library, its index and every
project, the journal says so, and the request survives a crash between the steps."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from cleanroom.errors import Forbidden, NotFound
from cleanroom.library import at_rest
from cleanroom.lifecycle import datasets
from cleanroom.lifecycle.keys import Keyring, KeyShredded
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance

from tests.lifecycle.deployment import run
from tests.people import Authenticator, in_standing, personal_token


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(state))
    monkeypatch.delenv("CLEANROOM_REGISTRY_URL", raising=False)
    monkeypatch.setenv("TEST_PASSWORD", "lifecycle-password")
    source = tmp_path / "source"
    source.mkdir()
    (source / "rows.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(50)))
    for step in (
        ["users", "add", "pat", "--role", "provider", "--password-env", "TEST_PASSWORD"],
        ["users", "add", "mallory", "--password-env", "TEST_PASSWORD"],
        ["users", "add", "oscar", "--role", "operator", "--password-env", "TEST_PASSWORD"],
        ["sign-in", "oscar"],  # decisions are the signed-in operator's (identity, #14)
        ["providers", "add-user", "Acme", "pat"],
        ["projects", "create", "p-open", "--title", "Open"],
        ["projects", "create", "p-ending", "--title", "Ending",
         "--ends", (date.today() + timedelta(days=3)).isoformat()],
        ["datasets", "register", str(source), "--name", "press", "--version", "v1",
         "--provider", "Acme"],
        ["datasets", "register", str(source), "--name", "press", "--version", "v2",
         "--provider", "Acme"],
        ["datasets", "attach", "p-ending", "press", "--version", "v1"],
        ["datasets", "attach", "p-open", "press", "--version", "v2"],
    ):  # fmt: skip
        if step[0] == "sign-in":
            monkeypatch.setenv(
                "CLEANROOM_TOKEN", personal_token(Registry(), step[1], Authenticator())
            )
        else:
            run(*step)
    in_standing(Registry(), "pat")  # a deletion is a decision: by a provider in standing
    return Registry()


def test_only_the_provider_or_an_operator_may_ask(reg: Registry) -> None:
    before = len(Governance(reg).journal_entries())
    with pytest.raises(Forbidden, match="only an operator or an account of its provider"):
        datasets.request_deletion(reg, "press", "v1", actor="mallory")
    with pytest.raises(NotFound):
        datasets.request_deletion(reg, "press", "v9", actor="pat")
    assert len(Governance(reg).journal_entries()) == before
    assert reg.dataset_exists("press", "v1")


def test_a_deletion_is_the_signed_in_persons(
    reg: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No typed name: --by is gone; a researcher's, a foreign or an expired credential,
    or a provider out of standing, change nothing; the operator's credential deletes."""
    from cleanroom.cli.main import main
    from cleanroom.registry.people import People

    mallory = personal_token(reg, "mallory", Authenticator(), "lifecycle-password")
    People(reg).set_disabled("pat", True, actor="oscar", reason="left Acme")
    before = len(Governance(reg).journal_entries())
    with pytest.raises(SystemExit):
        main(["datasets", "delete", "press", "--version", "v1", "--by", "pat"])
    assert "unrecognized arguments: --by pat" in capsys.readouterr().err
    assert main(["datasets", "delete", "press", "--version", "v1", "--token", mallory]) == 2
    assert "only an operator or an account of its provider" in capsys.readouterr().err
    assert main(["datasets", "delete", "press", "--version", "v1", "--token", "forged"]) == 2
    assert "unknown or expired" in capsys.readouterr().err
    with pytest.raises(Forbidden, match="disabled"):  # pat's account is out of standing
        datasets.request_deletion(reg, "press", "v1", actor="pat")
    assert len(Governance(reg).journal_entries()) == before
    assert reg.dataset_exists("press", "v1")
    # oscar's credential is $CLEANROOM_TOKEN (the fixture signed him in).
    monkeypatch.setenv("CLEANROOM_TOKEN_FILE", "/nonexistent/token")
    assert main(["datasets", "delete", "press", "--version", "v1"]) == 0
    assert "once these projects end: p-ending" in capsys.readouterr().out
    asked = Governance(reg).journal_entries("dataset:press@v1")[-1]
    assert (asked.action, asked.actor) == (datasets.REQUESTED, "oscar")


def test_deletion_waits_for_the_uses_to_end(reg: Registry) -> None:
    v1 = reg.get_dataset("press", "v1")
    # Encrypted at rest: one filesystem file per version, with a key of its own.
    assert at_rest.is_encrypted(v1.location) and v1.index_location
    assert Keyring().has_dataset_key("press", "v1")
    pending = datasets.request_deletion(reg, "press", "v1", actor="pat")
    assert pending.waiting_for == ["p-ending"]
    assert reg.dataset_exists("press", "v1") and at_rest.is_encrypted(v1.location)
    # Later rounds before the end change nothing; the first after it deletes.
    assert [p.waiting_for for p in datasets.finish_deletions(reg, date.today())] == [["p-ending"]]
    assert datasets.finish_deletions(reg, date.today() + timedelta(days=4)) == []
    assert not reg.dataset_exists("press", "v1")
    assert not at_rest.exists(v1.location)
    assert not Path(v1.index_location).exists()
    # Crypto-shredded: the version's key is destroyed, so no backup of its file opens.
    assert not Keyring().has_dataset_key("press", "v1")
    with pytest.raises(KeyShredded):
        Keyring().dataset_key("press", "v1")
    assert Keyring().has_dataset_key("press", "v2")
    assert all(d.version != "v1" for d in reg.get_project("p-ending").datasets)
    assert reg.dataset_exists("press", "v2")  # the other version is untouched
    # The version's own history: registered, then asked for and done.
    entries = Governance(reg).journal_entries("dataset:press@v1")
    assert [e.action for e in entries] == ["dataset.register", datasets.REQUESTED, datasets.DELETED]
    assert entries[2].detail["detached_from"] == ["p-ending"]
    assert datasets.pending_deletions(reg) == {}
    run("journal", "verify")


def test_an_operator_deletes_an_unused_version_at_once(reg: Registry) -> None:
    run("datasets", "attach", "p-open", "press", "--version", "v2")
    with at_rest.opened(reg.get_dataset("press", "v1").location, "press", "v1") as folder:
        run("datasets", "register", str(folder),
            "--name", "spare", "--version", "v1", "--provider", "Acme")  # fmt: skip
    spare = reg.get_dataset("spare", "v1")
    assert datasets.request_deletion(reg, "spare", "v1", actor="oscar").waiting_for == []
    assert not reg.dataset_exists("spare", "v1") and not at_rest.exists(spare.location)
