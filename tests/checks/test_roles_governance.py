"""A provider confirms or corrects column roles after registration, journaled, and the
index follows; bad roles change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from cleanroom.checks import load_source_index
from cleanroom.errors import Forbidden, InvalidInput
from cleanroom.library.register import register_dataset, roles_card, set_column_roles
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance

from tests.checks.packaging import generate_deliveries
from tests.people import Authenticator, in_standing, person, personal_token

SECRETS: dict[str, str] = {}


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Registry, str]:
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CLEANROOM_REGISTRY_URL", raising=False)
    source = tmp_path / "films"
    source.mkdir()
    generate_deliveries().to_csv(source / "deliveries.csv", index=False)
    reg = Registry()
    Governance(reg).add_user("pia", roles=("provider",), actor="operator")
    Governance(reg).add_user("rob", roles=("provider",), actor="operator")
    person(reg, "opal", ["operator"])  # an operator in standing grants provider accounts
    Governance(reg).add_provider_account("FilmCo", "pia", actor="opal")
    # Setting roles is a provider's decision: one in standing (their TOTP secret kept).
    SECRETS["pia"] = in_standing(reg, "pia") or ""
    register_dataset(reg, source, name="films", version="1", provider="FilmCo", actor="operator")
    return reg, "pia"


def test_provider_sets_roles_and_the_index_follows(registered: tuple[Registry, str]) -> None:
    reg, provider = registered
    gov = Governance(reg)
    index = Path(reg.get_dataset("films", "1").index_location or "")
    assert load_source_index(index).roles["film_supplier"] == "contributor"  # inferred
    roles = set_column_roles(reg, "films", "1", {"film_supplier": "label"}, actor=provider)
    assert roles["film_supplier"] == "label"
    assert load_source_index(index).roles["film_supplier"] == "label"
    assert roles_card("films", "1").is_file()
    entry = gov.journal_entries("dataset:films")[-1]
    assert entry.action == "dataset.roles" and entry.actor == provider
    assert entry.detail["changed"] == {"film_supplier": "label"}
    assert entry.detail["before"] == {"film_supplier": "contributor"}


def test_bad_roles_change_nothing(registered: tuple[Registry, str]) -> None:
    reg, provider = registered
    gov = Governance(reg)
    index = Path(reg.get_dataset("films", "1").index_location or "")
    before = load_source_index(index).roles
    with pytest.raises(InvalidInput, match="unknown role 'boss'"):
        set_column_roles(reg, "films", "1", {"film_supplier": "boss"}, actor=provider)
    with pytest.raises(InvalidInput, match="has no such column"):
        set_column_roles(reg, "films", "1", {"resin": "label"}, actor=provider)
    with pytest.raises(Forbidden, match="does not act for 'FilmCo'"):
        set_column_roles(reg, "films", "1", {"film_supplier": "label"}, actor="rob")
    assert load_source_index(index).roles == before
    assert not roles_card("films", "1").exists()
    assert not [e for e in gov.journal_entries("dataset:films") if e.action == "dataset.roles"]


def test_command_line(
    registered: tuple[Registry, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Setting roles is the signed-in provider's decision: no --by, no typed name."""
    from cleanroom.cli.main import main

    reg, _ = registered
    monkeypatch.setenv("CLEANROOM_TOKEN_FILE", str(tmp_path / "no-saved-token"))
    monkeypatch.delenv("CLEANROOM_TOKEN", raising=False)
    assert main(["datasets", "roles", "films"]) == 0
    assert "film_supplier\tcontributor" in capsys.readouterr().out
    assert main(["datasets", "roles", "films", "film_supplier=label"]) == 2  # not signed in
    assert "cleanroom login" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["datasets", "roles", "films", "film_supplier=label", "--by", "pia"])
    assert "unrecognized arguments: --by pia" in capsys.readouterr().err
    app = Authenticator()
    # An operator in standing is not the provider's account: refused, nothing changes.
    secret = person(reg, "olaf", ["operator"])
    assert secret is not None
    app.add("olaf", secret)
    olaf = personal_token(reg, "olaf", app)
    assert main(["datasets", "roles", "films", "film_supplier=label", "--token", olaf]) == 2
    assert "does not act for 'FilmCo'" in capsys.readouterr().err
    assert not roles_card("films", "1").exists()
    app.add("pia", SECRETS["pia"])
    pia = personal_token(reg, "pia", app)
    assert main(["datasets", "roles", "films", "film_supplier=label", "--token", pia]) == 0
    assert "film_supplier\tlabel" in capsys.readouterr().out
    assert Governance(reg).journal_entries("dataset:films")[-1].actor == "pia"


def test_a_provider_out_of_standing_sets_no_roles(registered: tuple[Registry, str]) -> None:
    """A provider whose account is disabled takes no decision, and is told why."""
    from cleanroom.registry.people import People

    reg, provider = registered
    People(reg).set_disabled(provider, True, actor="opal", reason="left FilmCo")
    with pytest.raises(Forbidden, match="disabled"):
        set_column_roles(reg, "films", "1", {"film_supplier": "label"}, actor=provider)
    assert not roles_card("films", "1").exists()
