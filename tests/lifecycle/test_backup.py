"""Backups that restore: make a deployment through the real verbs and airlock, back it up,
destroy the state folder, restore it and find every request, decision, audit entry,
release, dataset and work file back, with both chains verifying. Also: incremental (a
second backup writes almost nothing), encrypted (no plaintext in the repository),
checksummed (a damaged chunk is found), fail closed (wrong key, non-empty target)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cleanroom.airlock.blobs import BlobStore
from cleanroom.airlock.cli import main as audit_cli
from cleanroom.airlock.database import open_storage
from cleanroom.airlock.domain import Decision, FileUpload
from cleanroom.airlock.membership import StaticMembership
from cleanroom.airlock.policy import Policy
from cleanroom.airlock.service import Airlock
from cleanroom.errors import Conflict, InvalidInput
from cleanroom.lifecycle import backup
from cleanroom.lifecycle.keys import Keyring, KeySource

from tests.airlock.conftest import fake_checks
from tests.airlock.factories import MEMBERS, review, submit
from tests.lifecycle.deployment import MARKER, airlock_of, build, picture, run


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state folder of its own; the master key kept outside it (as it must be)."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(state))
    monkeypatch.setenv("CLEANROOM_KEY_FILE", str(tmp_path / "offsite" / "master.key"))
    monkeypatch.setenv("CLEANROOM_BACKUP_DIR", str(tmp_path / "backups"))
    for var in ("CLEANROOM_REGISTRY_URL", "CLEANROOM_AIRLOCK_DB_URL", "CLEANROOM_KEY_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    return state


def _repo_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_a_destroyed_state_comes_back_whole(env: Path, tmp_path: Path) -> None:
    made = build(env, tmp_path / "source")
    before = picture(env)
    assert len(before["requests"]) == 3 and before["audit"] and before["journal"] > 0

    seen: list[tuple[int, int]] = []
    snap, written = backup.create(progress=lambda d, t, _: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]  # progress reached the whole
    assert written > 0
    # Encrypted: neither the released table nor the dataset's rows lie in the repository.
    stored = _repo_bytes(tmp_path / "backups")
    assert MARKER not in stored and b"499,249001" not in stored
    # Incremental: nothing changed, almost nothing new is written (the databases' pages
    # that SQLite rewrote, not the 64 MiB filesystem nor the blobs).
    again, written_again = backup.create()
    assert written_again < written / 4
    assert [s.id for s in backup.Repository(tmp_path / "backups").snapshots()] == [
        snap.id, again.id,
    ]  # fmt: skip
    assert backup.verify() == []

    shutil.rmtree(env)
    backup.restore(snap.id)
    after = picture(env)
    assert after == before
    # The sparse work filesystem is sparse again, byte for byte the same.
    assert made.work_file.stat().st_blocks * 512 <= 2 * backup.CHUNK  # two chunks hold data
    # Both chains verify; the released file decrypts and matches its hash.
    run("journal", "verify")
    assert audit_cli(["verify", "--blobs"]) == 0
    got = airlock_of(env).storage.get_request(made.released)
    assert str(got.state).endswith("released")


def test_a_wrong_key_or_a_full_target_restores_nothing(env: Path, tmp_path: Path) -> None:
    build(env, tmp_path / "source")
    snap, _ = backup.create()
    wrong = tmp_path / "wrong.key"
    wrong.write_text("ab" * 32)
    target = tmp_path / "fresh"
    with pytest.raises(backup.BackupError, match="does not open with the backup key"):
        backup.restore(snap.id, target, source=KeySource(None, wrong))
    assert not target.exists()
    assert not list(tmp_path.glob(".fresh.restoring-*"))
    with pytest.raises(Conflict, match="not empty"):
        backup.restore(snap.id, env)


def test_a_damaged_chunk_is_found(env: Path, tmp_path: Path) -> None:
    build(env, tmp_path / "source")
    snap, _ = backup.create()
    chunk = max((tmp_path / "backups" / "chunks").rglob("*"), key=lambda p: p.stat().st_size)
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    problems = backup.verify()
    assert len(problems) == 1 and "does not open" in problems[0]
    with pytest.raises(backup.BackupError, match="does not open"):
        backup.restore(snap.id, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_a_missing_key_makes_no_backup(env: Path, tmp_path: Path) -> None:
    build(env, tmp_path / "source")
    (tmp_path / "offsite" / "master.key").unlink()
    with pytest.raises(Exception, match="master key is missing"):
        backup.create()
    assert not (tmp_path / "backups").exists()


def test_the_repository_may_not_lie_in_the_state(env: Path) -> None:
    with pytest.raises(Exception, match="must not lie inside"):
        backup.create(env, env / "backups")
    assert not (env / "backups").exists()


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two fresh databases on the test PostgreSQL server: the live one, the restore target."""
    import psycopg

    base = os.environ["CLEANROOM_TEST_POSTGRES_URL"]
    names = [f"life_{secrets.token_hex(4)}" for _ in range(2)]
    with psycopg.connect(base, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{names[0]}", f"{head}/{names[1]}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_a_postgresql_airlock_is_dumped_and_restored(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_databases: tuple[str, str]
) -> None:
    live, target = pg_databases
    monkeypatch.setenv("CLEANROOM_AIRLOCK_DB_URL", live)
    airlock = Airlock(
        storage=open_storage(live),
        blobs=BlobStore(env / "airlock" / "blobs", Keyring()),
        membership=StaticMembership(MEMBERS),
        policy=Policy(),
        checks=fake_checks,
    )
    request = submit(airlock, files=[FileUpload("out/t.csv", b"group,count\n" + MARKER, "d")])
    review(airlock, request.id, "olga", Decision.APPROVE)
    before = [(r.id, str(r.state)) for r in airlock.storage.list_requests()]
    head = airlock.storage.audit_head()
    snap, _ = backup.create()
    assert [d["kind"] for d in snap.databases] == ["postgresql"]
    shutil.rmtree(env)
    with pytest.raises(InvalidInput, match="CLEANROOM_AIRLOCK_DB_URL"):
        backup.restore(snap.id, databases={"airlock": ""})
    assert not env.exists()
    backup.restore(snap.id, databases={"airlock": target})
    restored = open_storage(target)
    assert [(r.id, str(r.state)) for r in restored.list_requests()] == before
    assert restored.audit_head() == head
    assert audit_cli(["--db", target, "verify", "--blobs"]) == 0


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanroom.cli.main", *argv],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )


def test_the_backup_verbs(env: Path, tmp_path: Path) -> None:
    build(env, tmp_path / "source")
    made = _cli("backup", "create", "--json")
    assert made.returncode == 0, made.stderr
    snap_id = json.loads(made.stdout)["id"]
    assert "MiB" in made.stderr  # progress
    listed = _cli("backup", "list", "--json")
    assert [s["id"] for s in json.loads(listed.stdout)] == [snap_id]
    assert _cli("backup", "verify").returncode == 0
    bad = _cli("backup", "restore", "no-such-backup", "--into", str(tmp_path / "x"))
    assert bad.returncode == 2 and "no backup 'no-such-backup'" in bad.stderr
    full = _cli("backup", "restore", snap_id, "--into", str(env))
    assert full.returncode == 2 and "not empty" in full.stderr
    done = _cli("backup", "restore", snap_id, "--into", str(tmp_path / "fresh"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "fresh" / "registry.sqlite").exists()
