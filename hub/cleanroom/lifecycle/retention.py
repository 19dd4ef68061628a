"""Retention: what of an ended project is deleted when (``policies/retention.yaml``).

A project *ends* when it is closed or its end date passes. From then each kind of data
has its own period; once it has passed, the enforcer (``enforce_retention``, run by the
enforcer service every round) deletes that data and journals each deletion. Rounds are
idempotent: what is due is worked out from what still exists, so a round that crashed
half-way is finished by the next one, and nothing is ever deleted early.

Deleting is by kind: the members' work filesystems, the shared and incoming folders,
the airlock's blobs (unreleased ones first; the request rows stay, so the audit trail
still says what was asked and decided, and the content is reported missing), and
finally the project's key, which crypto-shreds whatever copy is left (archives too).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from cleanroom import paths
from cleanroom.errors import CleanroomError, InvalidInput
from cleanroom.registry.events import RetentionDeleted

KINDS = (
    "work_folders",
    "project_folders",
    "unreleased_blobs",
    "released_blobs",
    "project_key",
    "journal",
    "audit",
)
KEPT_FOREVER = ("journal", "audit")
_DURATION = re.compile(r"^(\d+)\s*([dwy])$")
_UNIT_DAYS = {"d": 1, "w": 7, "y": 365}


class PolicyError(InvalidInput):
    """The retention policy file is malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class RetentionPolicy:
    """Periods after a project's end, by kind (None: forever)."""

    periods: dict[str, timedelta | None]
    archive: bool = True

    def due(self, kind: str, ended: datetime, now: datetime) -> bool:
        """Whether ``kind`` of a project that ended at ``ended`` is due for deletion."""
        period = self.periods.get(kind)
        return period is not None and now >= ended + period


def _duration(value: Any, where: str) -> timedelta | None:
    if isinstance(value, str) and value.strip() == "forever":
        return None
    match = _DURATION.match(str(value).strip()) if isinstance(value, str | int) else None
    if not match:
        raise PolicyError(f"{where}: {value!r} is not a duration (like 30d, 12w, 1y or forever)")
    return timedelta(days=int(match.group(1)) * _UNIT_DAYS[match.group(2)])


def default_policy_path() -> Path:
    """``$CLEANROOM_RETENTION_POLICY`` or ``retention.yaml`` in the policies folder."""
    import os

    env = os.environ.get("CLEANROOM_RETENTION_POLICY")
    return Path(env) if env else paths.policies_dir() / "retention.yaml"


def load_policy(path: Path | None = None) -> RetentionPolicy:
    """Read and validate the retention policy; every mistake is a clear PolicyError."""
    path = path or default_policy_path()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: the retention policy is missing") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("version") != 1:
        raise PolicyError(f"{path}: expected a mapping with version: 1")
    unknown = set(raw) - {"version", "archive", "after_project_end"}
    if unknown:
        raise PolicyError(f"{path}: unknown keys {sorted(unknown)}")
    archive = raw.get("archive", True)
    if not isinstance(archive, bool):
        raise PolicyError(f"{path}: archive must be true or false")
    after = raw.get("after_project_end")
    if not isinstance(after, dict):
        raise PolicyError(f"{path}: after_project_end must be a mapping of kind: duration")
    unknown = set(after) - set(KINDS)
    if unknown:
        raise PolicyError(f"{path}: unknown kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    missing = set(KINDS) - set(after)
    if missing:
        raise PolicyError(f"{path}: say how long to keep {', '.join(sorted(missing))}")
    periods = {kind: _duration(after[kind], f"{path}: {kind}") for kind in KINDS}
    for kind in KEPT_FOREVER:
        if periods[kind] is not None:
            raise PolicyError(
                f"{path}: {kind} must be kept forever: it is a hash chain, and a chain with "
                "its start deleted no longer verifies"
            )
    order = ("work_folders", "project_folders", "unreleased_blobs", "released_blobs")
    key = periods["project_key"]
    for kind in order:
        period = periods[kind]
        if key is not None and (period is None or period > key):
            raise PolicyError(
                f"{path}: project_key ({after['project_key']}) comes before {kind} "
                f"({after[kind]}): destroying the key first would delete {kind} early"
            )
    return RetentionPolicy(periods, archive)


# -- when did a project end -------------------------------------------------------------
def ended_at(project: Any, closures: dict[str, datetime], today: date) -> datetime | None:
    """When a project ended: its closure's time, or the day after its end date."""
    if project.name in closures:
        return closures[project.name]
    if project.status == "closed":
        return datetime.combine(project.ends_on or today, time(), UTC)
    if project.ends_on is not None and project.ends_on < today:
        return datetime.combine(project.ends_on + timedelta(days=1), time(), UTC)
    return None


def closure_times(governance: Any) -> dict[str, datetime]:
    """The time each project was closed (``project.close`` journal records)."""
    found: dict[str, datetime] = {}
    for entry in governance.journal_entries():
        if entry.action == "project.close" and entry.subject.startswith("project:"):
            stamp = entry.time
            if isinstance(stamp, str):
                stamp = datetime.fromisoformat(stamp)
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
            found[entry.subject.split(":", 1)[1]] = stamp
    return found


# -- deleting ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Deleted:
    """One kind of one project's data, deleted."""

    project: str
    kind: str
    items: int


def _remove_filesystems(project_dir: Path, pattern: str, instance: str) -> int:
    import docker

    from cleanroom.workspace import storage_quota

    removed = 0
    client: Any = None
    for image_file in sorted(project_dir.glob(pattern)):
        if image_file.name.endswith(".lock"):
            continue  # goes with its filesystem
        if image_file.suffix == ".ext4":
            client = client or docker.from_env()
            if not storage_quota.release_folder(client, instance, image_file):
                raise CleanroomError(f"{image_file} is still in use by a workspace")
            image_file.unlink()
            image_file.with_name(image_file.name + ".lock").unlink(missing_ok=True)
        elif image_file.is_dir():
            shutil.rmtree(image_file)
        else:
            image_file.unlink(missing_ok=True)
        removed += 1
    return removed


def delete_kind(
    project: str,
    kind: str,
    *,
    instance: str,
    workspaces: Path,
    blobs: Any,
    airlock: Any,
    keyring: Any,
) -> int:
    """Delete one kind of a project's data; how many items went (0: nothing was left)."""
    folder = workspaces / project
    if kind == "work_folders":
        return _remove_filesystems(folder / "users", "*", instance) if folder.is_dir() else 0
    if kind == "project_folders":
        if not folder.is_dir():
            return 0
        n = sum(
            _remove_filesystems(folder, pattern, instance) for pattern in ("shared*", "incoming")
        )
        return n
    if kind in ("unreleased_blobs", "released_blobs"):
        keep: set[str] = set()
        if kind == "unreleased_blobs" and airlock is not None:
            for request in airlock.list_requests(project=project):
                if str(request.state).endswith("released"):
                    keep |= {f.sha256 for f in request.files}
        return blobs.remove_project(project, keep=keep) if blobs is not None else 0
    if kind == "project_key":
        return (
            int(keyring.shred(project)) if keyring is not None and keyring.has_key(project) else 0
        )
    return 0


def enforce_retention(
    registry: Any,
    *,
    instance: str,
    now: datetime | None = None,
    policy: RetentionPolicy | None = None,
    workspaces: Path | None = None,
    blobs: Any = None,
    airlock: Any = None,
    keyring: Any = None,
    only: str | None = None,
    log: Callable[[str], None] = print,
) -> list[Deleted]:
    """One round: delete what the policy says is due; each deletion journaled."""
    from cleanroom.registry.governance import Governance

    policy = policy or load_policy()
    now = now or datetime.now(UTC)
    workspaces = workspaces or paths.workspaces_dir()
    governance = Governance(registry)
    closures = closure_times(governance)
    done: list[Deleted] = []
    for project in registry.list_projects():
        if only is not None and project.name != only:
            continue
        ended = ended_at(project, closures, now.date())
        if ended is None:
            continue
        for kind in KINDS:
            if not policy.due(kind, ended, now):
                continue
            items = delete_kind(
                project.name, kind, instance=instance, workspaces=workspaces,
                blobs=blobs, airlock=airlock, keyring=keyring,
            )  # fmt: skip
            if items:
                governance.record(
                    RetentionDeleted(
                        actor="retention", project=project.name, what=kind, items=items,
                        ended=ended.isoformat(), period=str(policy.periods[kind]),
                    ),
                    actor="retention",
                )  # fmt: skip
                log(f"cleanroom retention: deleted {kind} of {project.name} ({items} items)")
                done.append(Deleted(project.name, kind, items))
    return done


@dataclass
class Stores:
    """The deployment's stores a retention round deletes from (None: not in use)."""

    blobs: Any = None
    airlock: Any = None
    keyring: Any = None


def deployment_stores() -> Stores:
    """The airlock's blob store and database and the keyring, from the settings."""
    import os

    from cleanroom.lifecycle.keys import Keyring

    stores = Stores(keyring=Keyring() if os.environ.get("CLEANROOM_ENCRYPTION") != "off" else None)
    try:
        from cleanroom.airlock.app import AirlockSettings, blob_store
        from cleanroom.airlock.cli import _open_existing

        settings = AirlockSettings()
        stores.airlock = _open_existing(settings.db_url)
        stores.blobs = blob_store(settings)
    except Exception as exc:  # no airlock in this deployment: blobs are not touched
        print(f"cleanroom retention: airlock not reachable, its blobs wait: {exc}")
    return stores


def enforce_deployment(registry: Any, instance: str, now: datetime | None = None) -> list[Deleted]:
    """One retention round over the whole deployment (the enforcer service's call): the
    data of ended projects, then the dataset versions whose deletion waits for that."""
    from cleanroom.lifecycle.datasets import finish_deletions

    stores = deployment_stores()
    done = enforce_retention(
        registry, instance=instance, now=now, blobs=stores.blobs, airlock=stores.airlock,
        keyring=stores.keyring,
    )  # fmt: skip
    finish_deletions(registry, (now or datetime.now(UTC)).date())
    return done
