"""A small deployment built through the real verbs and the real airlock (no rows written
by hand): users, projects, a registered dataset, release requests in several states, a
sparse work filesystem. Used by the backup and retention tests."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanroom.airlock.blobs import BlobStore
from cleanroom.airlock.database import open_storage
from cleanroom.airlock.domain import Decision, FileUpload
from cleanroom.airlock.membership import StaticMembership
from cleanroom.airlock.policy import Policy
from cleanroom.airlock.service import Airlock
from cleanroom.cli.main import main as cleanroom
from cleanroom.lifecycle.keys import Keyring

from tests.airlock.conftest import fake_checks
from tests.airlock.factories import MEMBERS, PROJECT, actor, review, submit

MARKER = b"MARKER-backup-5e1d"


def run(*argv: str) -> None:
    """One ``cleanroom`` verb, in this process; it must succeed."""
    assert cleanroom(list(argv)) == 0, argv


@dataclass
class Deployment:
    """What was made, to compare a restore against."""

    state: Path
    airlock: Airlock
    released: str
    work_file: Path


def airlock_of(state: Path, policy: Policy | None = None) -> Airlock:
    """The airlock on this state folder's database and sealed blob store."""
    return Airlock(
        storage=open_storage(f"sqlite:///{state / 'airlock' / 'airlock.sqlite'}"),
        blobs=BlobStore(state / "airlock" / "blobs", Keyring()),
        membership=StaticMembership(MEMBERS),
        policy=policy or Policy(),
        checks=fake_checks,
    )


def build(state: Path, source_dir: Path) -> Deployment:
    """Make a deployment in ``state`` (CLEANROOM_STATE_DIR must point there)."""
    os.environ["TEST_PASSWORD"] = "lifecycle-password"
    run("users", "add", "alice", "--password-env", "TEST_PASSWORD")
    run("users", "add", "pat", "--role", "provider", "--password-env", "TEST_PASSWORD")
    run("projects", "create", PROJECT, "--title", "Press line study")
    run("members", "add", PROJECT, "alice")
    source_dir.mkdir()
    (source_dir / "rows.csv").write_text("a,b\n" + "".join(f"{i},{i * i}\n" for i in range(500)))
    run("datasets", "register", str(source_dir), "--name", "press", "--version", "v1",
        "--provider", "Acme")  # fmt: skip
    run("datasets", "attach", PROJECT, "press")
    (state / "airlock").mkdir(exist_ok=True)
    airlock = airlock_of(state)
    body = b"group,count\n" + MARKER
    released = submit(airlock, files=[FileUpload("out/t.csv", body, "released table")])
    review(airlock, released.id, "olga", Decision.APPROVE)
    review(airlock, released.id, "oscar", Decision.APPROVE)
    airlock.release(actor(airlock, "olga"), released.id)
    rejected = submit(airlock, files=[FileUpload("out/r.csv", body + b"2", "rejected")])
    review(airlock, rejected.id, "olga", Decision.REJECT)
    submit(airlock, files=[FileUpload("out/w.csv", body + b"3", "waiting")])
    # A sparse work filesystem file: data at the start and far into it, holes between.
    work = state / "workspaces" / PROJECT / "users" / "alice.ext4"
    work.parent.mkdir(parents=True)
    with work.open("wb") as f:
        f.truncate(64 * 2**20)
        f.write(MARKER * 1000)
        f.seek(40 * 2**20 + 123)
        f.write(b"far into the file")
    return Deployment(state, airlock, released.id, work)


def picture(state: Path) -> dict[str, Any]:
    """Everything a restore must bring back, read through the real interfaces."""
    from cleanroom.registry import Registry
    from cleanroom.registry.governance import Governance

    airlock = airlock_of(state)
    reg = Registry()
    requests = [
        (r.id, str(r.state), [(f.path, f.sha256) for f in r.files],
         [(v.officer, v.path, str(v.decision), v.round) for v in r.votes],
         [(v.officer, v.round) for v in r.reviews])
        for r in airlock.storage.list_requests()
    ]  # fmt: skip
    datasets = [(d.name, d.version, d.location) for d in reg.list_datasets()]
    files = {
        str(p.relative_to(state)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(state.rglob("*"))
        if p.is_file() and "secrets" not in p.parts and not p.name.endswith(("-wal", "-shm"))
        and p.suffix != ".sqlite"
    }  # fmt: skip
    return {
        "requests": requests,
        "audit": [(a.seq, a.hash) for a in airlock.storage.audit_records()],
        "journal": Governance(reg).verify_journal().count,
        "projects": [p.name for p in reg.list_projects()],
        "users": [u.name for u in reg.list_users()],
        "datasets": datasets,
        "files": files,
    }
