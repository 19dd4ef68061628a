"""Defects a review found in the registry and the operators' tools, each pinned by a test."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cleanroom import paths
from cleanroom.cli import main as cli
from cleanroom.errors import Forbidden, InvalidInput
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry.governance import Governance
from cleanroom.workspace.quotas import load_tiers

from tests.people import Authenticator, person, personal_token


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_dataset_version_is_matched_whole_not_by_prefix(writer: Governance) -> None:
    """press-line@v1 is not press-line@v10: a provider's usage counts each version's runs."""
    person(writer.registry, "op", ["operator"])  # provider accounts: by one in standing
    writer.add_user("alice", actor="op")
    writer.add_user("pat", ["provider"], actor="op")
    writer.add_provider_account("Acme", "pat", actor="op")
    for version in ("v1", "v10"):
        writer.add_dataset(
            DatasetInfo("press-line", version, "Acme", f"/lib/{version}", None, 1), actor="op"
        )
    writer.create_project("defects", "Defects", actor="op")
    writer.add_member("defects", "alice", actor="op")
    writer.attach_dataset("defects", "press-line", "v10", actor="op")
    writer.record_run(
        actor="alice",
        user="alice",
        project="defects",
        image="notebook",
        image_digest="sha256:abc",
        datasets=("press-line@v10",),
        container_id="c1",
    )
    usage = {d["version"]: d for d in writer.provider_usage("Acme")["datasets"]}
    assert len(usage["v10"]["runs"]) == 1
    assert usage["v1"]["runs"] == []


def test_an_unknown_tier_is_refused_naming_the_tiers_and_nothing_is_written(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    journal_before = Governance(registry).journal_entries()
    code, _, err = _run(capsys, "projects", "create", "defects", "--title", "D", "--tier", "bogus")
    assert code == 2
    tiers = sorted(load_tiers())
    assert f"unknown quota tier 'bogus'; known tiers: {', '.join(tiers)}" in err
    assert len(err.strip().splitlines()) == 1
    assert registry.list_projects() == []
    assert Governance(registry).journal_entries() == journal_before


def test_a_retired_image_cannot_be_given_to_a_project_by_any_verb(
    registry: Registry, capsys: pytest.CaptureFixture[str], cli_operator: str
) -> None:
    writer = Governance(registry)
    writer.create_project("defects", "Defects", actor="op")
    assert _run(capsys, "images", "retire", "pytorch", "--reason", "CVE")[0] == 0
    journal_before = writer.journal_entries()
    code, _, err = _run(capsys, "projects", "allow-image", "defects", "pytorch")
    assert code == 2 and "image pytorch is retired" in err
    code, _, err = _run(capsys, "images", "allow", "pytorch", "--project", "defects")
    assert code == 2 and "image pytorch is retired" in err
    code, _, err = _run(capsys, "projects", "create", "other", "--title", "O", "--image", "pytorch")
    assert code == 2 and "image pytorch is retired" in err
    assert registry.get_project("defects").images == ("notebook",)
    assert [p.name for p in registry.list_projects()] == ["defects"]
    assert writer.journal_entries() == journal_before
    with pytest.raises(Forbidden, match="retired"):
        writer.create_project("third", "T", images=("pytorch",), actor="op")


def test_projects_allow_image_refuses_unknown_images(
    registry: Registry, capsys: pytest.CaptureFixture[str], cli_operator: str
) -> None:
    Governance(registry).create_project("defects", "Defects", actor="op")
    code, _, err = _run(capsys, "projects", "allow-image", "defects", "nope")
    assert code == 2 and "unknown image 'nope'" in err
    assert registry.get_project("defects").images == ("notebook",)


def test_short_passwords_are_refused_when_a_user_is_added(writer: Governance) -> None:
    with pytest.raises(InvalidInput, match="at least 8 characters"):
        writer.add_user("alice", password="short", actor="op")
    assert writer.registry.list_users() == []


def test_make_down_stops_only_its_own_instances_workspaces(tmp_path: Path) -> None:
    """``scripts/setup.sh down`` asks the engine for this instance's workspaces only.

    A stand-in ``docker`` on PATH records what it is asked (no real container is touched),
    from a copy of the script whose checkout has no virtual environment (so it leaves the
    host firewall alone).
    """
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(paths.repo_root() / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    fake = bin_dir / "docker"
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\ncase "$1" in info) exit 0 ;; ps) echo c0ffee ;; esac\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CLEANROOM_INSTANCE": "otherone",
        "CLEANROOM_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        ["bash", str(root / "scripts" / "setup.sh"), "down"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    (ps,) = [c for c in calls if c.startswith("ps")]
    assert "label=cleanroom.kind=workspace" in ps
    assert "label=cleanroom.instance=otherone" in ps
    assert [c for c in calls if c.startswith("stop")] == ["stop -t 10 c0ffee"]


def test_an_unknown_image_is_refused_by_every_verb(
    registry: Registry, capsys: pytest.CaptureFixture[str], cli_operator: str
) -> None:
    Governance(registry).create_project("defects", "Defects", actor="op")
    journal_before = Governance(registry).journal_entries()
    for argv in [
        ("projects", "create", "other", "--title", "O", "--image", "nope"),
        ("projects", "allow-image", "defects", "nope"),
        ("images", "allow", "nope", "--project", "defects"),
        ("images", "retire", "nope", "--reason", "x"),
    ]:
        code, _, err = _run(capsys, *argv)
        assert code == 2 and "unknown image 'nope'; known: base, notebook, pytorch" in err, argv
    assert [p.name for p in registry.list_projects()] == ["defects"]
    assert Governance(registry).journal_entries() == journal_before


def test_users_roles_replaces_the_roles_journaled(
    registry: Registry,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Granting a role is a decision: the signed-in operator's, never a typed name."""
    monkeypatch.setenv("CLEANROOM_TOKEN_FILE", str(tmp_path / "no-saved-token"))
    monkeypatch.delenv("CLEANROOM_TOKEN", raising=False)
    Governance(registry).add_user("alice", actor="op")
    Governance(registry).add_user("olga", ["operator"], actor="op")
    olga = personal_token(registry, "olga", Authenticator())
    with pytest.raises(SystemExit):
        _run(capsys, "users", "roles", "alice", "--role", "officer", "--by", "olga")
    assert "unrecognized arguments: --by olga" in capsys.readouterr().err
    code, _, err = _run(capsys, "users", "roles", "alice", "--role", "officer")
    assert code == 2 and "run `cleanroom login` first" in err  # an operator is in standing
    assert registry.get_user("alice").roles == frozenset({"researcher"})
    monkeypatch.setenv("CLEANROOM_TOKEN", olga)
    code, out, _ = _run(capsys, "users", "roles", "alice", "--role", "officer")
    assert code == 0 and "officer" in out
    assert registry.get_user("alice").roles == frozenset({"officer"})
    last = Governance(registry).journal_entries("user:alice")[-1]
    assert (last.actor, last.action, last.detail["before"], last.detail["after"]) == (
        "olga",
        "user.roles",
        ["researcher"],
        ["officer"],
    )
    code, _, err = _run(capsys, "users", "roles", "alice", "--role", "admin")
    assert code == 2 and "unknown role" in err
    assert registry.get_user("alice").roles == frozenset({"officer"})
