"""Retention and closure: the policy is validated with clear errors; closing a project
stops, archives, releases and records; each kind of its data goes when its period has
passed (and not before), each deletion journaled; the key goes last and crypto-shreds
what is left; the audit chain still verifies and the request rows stay."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cleanroom.airlock.cli import main as audit_cli
from cleanroom.airlock.exceptions import NotFound as BlobMissing
from cleanroom.lifecycle import backup, retention
from cleanroom.lifecycle.closure import close_project
from cleanroom.lifecycle.keys import Keyring, KeyShredded
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance

from tests.airlock.factories import PROJECT
from tests.lifecycle.deployment import airlock_of, build, run
from tests.people import person

POLICY = Path(__file__).parents[2] / "policies" / "retention.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "retention.yaml"
    path.write_text(text)
    return path


def test_the_shipped_policy_loads() -> None:
    policy = retention.load_policy(POLICY)
    assert policy.periods["work_folders"] == timedelta(days=30)
    assert policy.periods["journal"] is None and policy.archive is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("work_folders: 30d", "work_folders: soon"), "not a duration"),
        (("journal: forever", "journal: 1y"), "must be kept forever"),
        (("project_key: 1y", "project_key: 10d"), "destroying the key first"),
        (("  audit: forever\n", "  audit: forever\n  logs: 1y\n"), "unknown kinds"),
        (("  audit: forever\n", ""), "say how long to keep audit"),
        (("version: 1", "version: 2"), "version: 1"),
        (("archive: true", "archive: maybe"), "archive must be true or false"),
    ],
)
def test_a_bad_policy_is_refused_clearly(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = POLICY.read_text()
    assert change[0] in text
    with pytest.raises(retention.PolicyError, match=message):
        retention.load_policy(_write(tmp_path, text.replace(change[0], change[1], 1)))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(state))
    monkeypatch.setenv("CLEANROOM_KEY_FILE", str(tmp_path / "offsite" / "master.key"))
    monkeypatch.setenv("CLEANROOM_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("CLEANROOM_RETENTION_POLICY", str(POLICY))
    for var in ("CLEANROOM_REGISTRY_URL", "CLEANROOM_AIRLOCK_DB_URL", "CLEANROOM_KEY_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    return state


@pytest.mark.docker
def test_closure_then_deletion_on_schedule(env: Path, tmp_path: Path) -> None:
    made = build(env, tmp_path / "source")
    airlock = airlock_of(env)
    blobs, storage, keyring = airlock.blobs, airlock.storage, Keyring()
    requests = {str(r.state).rsplit(".", 1)[-1]: r for r in storage.list_requests()}
    released, waiting = requests["released"], requests["submitted"]
    reg = Registry()
    closed_at = datetime.now(UTC)

    person(reg, "olive", ["operator"])  # closing is a decision: an operator in standing
    report = close_project(
        reg, PROJECT, actor="olive", instance="lifeclose", stop_through_hub=False,
        blobs=blobs, airlock=storage, keyring=keyring, now=closed_at,
    )  # fmt: skip
    assert reg.get_project(PROJECT).status == "closed"
    assert report.archive and report.deleted == []  # nothing is kept for 0 days
    archive = backup.Repository(tmp_path / "backups").snapshot(report.archive)
    assert archive.label == f"project:{PROJECT}" and archive.databases == []
    assert {f["path"] for f in archive.files} >= {f"workspaces/{PROJECT}/users/alice.ext4"}
    assert made.work_file.exists()

    def round_at(days: int) -> list[tuple[str, int]]:
        done = retention.enforce_retention(
            reg, instance="lifeclose", now=closed_at + timedelta(days=days),
            blobs=blobs, airlock=storage, keyring=keyring, log=lambda _: None,
        )  # fmt: skip
        return [(d.kind, d.items) for d in done]

    assert round_at(29) == []  # never early
    assert round_at(31) == [("work_folders", 1), ("unreleased_blobs", 2)]
    assert not made.work_file.exists()
    assert round_at(31) == []  # idempotent: a second round finds nothing left
    with pytest.raises(BlobMissing):
        blobs.get(waiting.files[0].sha256, PROJECT)
    assert blobs.get(released.files[0].sha256, PROJECT)  # released files stay longer
    assert round_at(91) == []  # the fixture's project has no shared folder
    assert round_at(366) == [("released_blobs", 1), ("project_key", 1)]
    with pytest.raises(KeyShredded):
        keyring.project_key(PROJECT)

    # The record stays whole: request rows, the audit chain, the journal of each deletion.
    assert len(storage.list_requests()) == 3
    assert audit_cli(["verify"]) == 0
    run("journal", "verify")
    entries = Governance(reg).journal_entries(f"project:{PROJECT}")
    assert "project.close" in [e.action for e in entries]
    assert {e.detail["what"] for e in entries if e.action == "retention.delete"} == {
        "work_folders", "unreleased_blobs", "released_blobs", "project_key",
    }  # fmt: skip
    shutil.rmtree(tmp_path / "backups")
