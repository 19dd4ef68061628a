"""The library's verbs of the cleanroom command: register with a schema and a
classification, show and export the card, accept a quarantined version as the provider
(by credential), and clear one-line refusals that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cleanroom.cli import main as cli
from cleanroom.library.catalogue import get_card
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance

from tests.people import Authenticator, personal_token


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def tokens(state: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """olga (operator) and pat (provider for Acme), signed in on the command line."""
    monkeypatch.setenv("CLEANROOM_ACTOR", "olga")
    monkeypatch.setenv("CLEANROOM_TOKEN_FILE", str(state / "no-saved-token"))
    reg = Registry()
    app = Authenticator()
    for name, roles in [("olga", ["operator"]), ("pat", ["provider"]), ("alice", ["researcher"])]:
        Governance(reg).add_user(name, roles, actor="op")
    found = {name: personal_token(reg, name, app) for name in ("olga", "pat", "alice")}
    Governance(reg).add_provider_account("Acme", "pat", actor="olga")
    return found


def _files(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "gauges"
    data.mkdir()
    (data / "gauges.csv").write_text("gauge,reading\n1,0.5\n2,0.7\n2,9.9\n")
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        "fields:\n  - {name: gauge, type: integer, constraints: {unique: true}}\n"
        "  - {name: reading, type: number, constraints: {maximum: 1}}\n"
    )
    return data, schema


def test_register_show_export_and_accept(
    tokens: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, schema = _files(tmp_path)
    code, out, err = _run(
        capsys, "datasets", "register", str(data), "--name", "gauges", "--version", "v1",
        "--provider", "Acme", "--schema", str(schema), "--classification", "confidential",
        "--licence", "Acme DUA",
    )  # fmt: skip
    assert code == 0, err
    assert "quality: gauges.csv: 3 rows checked" in err
    code, out, _ = _run(capsys, "datasets", "card", "gauges")
    card = json.loads(out)
    assert (card["status"], card["classification"]) == ("quarantined", "confidential")
    assert [c["name"] for c in card["columns"]] == ["gauge", "reading"]
    code, out, _ = _run(capsys, "datasets", "card", "gauges", "--format", "croissant")
    assert json.loads(out)["conformsTo"].startswith("http://mlcommons.org/croissant")
    code, out, _ = _run(capsys, "datasets", "card", "gauges", "--format", "datapackage")
    assert json.loads(out)["resources"][0]["hash"].startswith("sha256:")
    # Only the provider's user accepts, with a reason; each refusal is one line.
    code, _, err = _run(
        capsys, "datasets", "accept", "gauges", "v1", "--reason", "ok", "--token", tokens["alice"]
    )
    assert code == 2 and "does not hold the provider role" in err and len(err.splitlines()) == 1
    assert get_card(Registry(), "gauges").status == "quarantined"
    code, out, err = _run(
        capsys, "datasets", "accept", "gauges", "v1", "--reason", "known gauge fault",
        "--token", tokens["pat"],
    )  # fmt: skip
    assert code == 0, err
    assert get_card(Registry(), "gauges").status == "accepted"
    code, out, err = _run(
        capsys, "--json", "datasets", "classify", "gauges", "v1", "internal",
        "--token", tokens["pat"],
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["before"] == "confidential"
    code, out, _ = _run(capsys, "datasets", "classifications")
    assert "trade-secret\tmin tier standard\taccess restricted\tco-review required" in out


def test_a_bad_schema_file_is_one_line_and_registers_nothing(
    tokens: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = _files(tmp_path)
    code, _, err = _run(
        capsys, "datasets", "register", str(data), "--name", "gauges", "--version", "v1",
        "--provider", "Acme", "--schema", str(tmp_path / "missing.json"),
    )  # fmt: skip
    assert code == 2 and "the table schema does not exist" in err
    assert Registry().list_datasets() == []
