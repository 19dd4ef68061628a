"""The audit command line and the pieces the hub config merges in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cleanroom.airlock.cli import main as audit_main
from cleanroom.airlock.domain import OFFICER_SCOPE, OPERATOR_SCOPE, RESEARCHER_SCOPE, State
from cleanroom.airlock.hub_config import airlock_service_config, role_scopes
from cleanroom.airlock.service import Airlock
from sqlalchemy import text

from .factories import engine_of, request_in


@pytest.fixture
def db(airlock: Airlock, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    request_in(airlock, State.RELEASED)
    monkeypatch.setenv("CLEANROOM_AIRLOCK_DB_URL", sqlite_url)
    return sqlite_url


def test_verify_ok(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_main(["audit", "verify"]) == 0
    assert "audit chain verifies" in capsys.readouterr().out


def test_verify_finds_tampering(db: str, airlock: Airlock, capsys) -> None:
    with engine_of(airlock).begin() as conn:
        conn.execute(text("UPDATE airlock_audit SET detail = '{}' WHERE seq = 1"))
    assert audit_main(["verify"]) == 1
    err = capsys.readouterr().err
    assert "BROKEN" in err and "entry 1: content does not match its hash (edited)" in err


def test_verify_names_a_deleted_last_entry(db: str, airlock: Airlock, capsys) -> None:
    last = airlock.verify_audit().count
    with engine_of(airlock).begin() as conn:
        conn.execute(text(f"DELETE FROM airlock_audit WHERE seq = {last}"))
    assert audit_main(["verify"]) == 1
    err = capsys.readouterr().err
    assert (
        f"entry {last}: the head names entry {last} but the chain ends at entry {last - 1}" in err
    )
    assert "(truncated)" in err


def test_verify_blobs(db: str, airlock: Airlock, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CLEANROOM_AIRLOCK_BLOB_DIR", str(airlock.blobs.root))
    assert audit_main(["verify", "--blobs"]) == 0
    f = airlock.storage.list_requests()[0].files[0]
    airlock.blobs.path_for(f.sha256).write_bytes(b"changed")
    assert audit_main(["verify", "--blobs"]) == 1
    assert "does not match its hash" in capsys.readouterr().err


def test_export_to_file(db: str, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    assert audit_main(["audit", "export", "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["seq"] == 1 and lines[-1]["action"] == "release"


def test_service_config_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANROOM_REGISTRY_URL", "sqlite:////srv/registry.sqlite")
    pieces = airlock_service_config(port=9000, submit_bind="0.0.0.0:9001", officers=["olga"])
    (service,) = pieces["services"]
    assert service["url"] == "http://127.0.0.1:9000"
    assert service["command"][1:] == ["-m", "cleanroom.airlock"]
    assert service["environment"]["CLEANROOM_AIRLOCK_SUBMIT_BIND"] == "0.0.0.0:9001"
    assert service["environment"]["CLEANROOM_REGISTRY_URL"] == "sqlite:////srv/registry.sqlite"
    assert set(service["oauth_client_allowed_scopes"]) == {
        OFFICER_SCOPE,
        OPERATOR_SCOPE,
        RESEARCHER_SCOPE,
    }
    assert set(pieces["custom_scopes"]) == {OFFICER_SCOPE, OPERATOR_SCOPE, RESEARCHER_SCOPE}
    roles = {r["name"]: r for r in pieces["load_roles"]}
    assert "self" in roles["user"]["scopes"]  # redefining "user" must keep its own scopes
    assert roles["cleanroom-officer"]["users"] == ["olga"]
    assert "users" not in roles["cleanroom-operator"]
    assert RESEARCHER_SCOPE in pieces["server_token_scopes"]
    assert "access:servers!server" in pieces["server_token_scopes"]


def test_role_scopes_for_managed_roles() -> None:
    scopes = role_scopes()
    assert OFFICER_SCOPE in scopes["cleanroom-officer"]
    assert OPERATOR_SCOPE in scopes["cleanroom-operator"]
    assert "access:services!service=airlock" in scopes["user"]


def test_verify_refuses_a_missing_database(tmp_path: Path, capsys) -> None:
    missing = f"sqlite:///{tmp_path / 'nope.sqlite'}"
    assert audit_main(["--db", missing, "verify"]) == 2
    assert "no airlock database" in capsys.readouterr().err
    assert not (tmp_path / "nope.sqlite").exists()


def test_verify_refuses_a_foreign_database(tmp_path: Path, capsys) -> None:
    import sqlite3

    sqlite3.connect(tmp_path / "other.sqlite").execute("CREATE TABLE x (a)").connection.commit()
    assert audit_main(["--db", f"sqlite:///{tmp_path / 'other.sqlite'}", "verify"]) == 2
    assert "not an airlock database" in capsys.readouterr().err
