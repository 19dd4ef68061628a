"""What of a deployment's data still lies in clear on disk, and moving it in.

``cleanroom datasets encrypt --check`` (and a warning of ``cleanroom status``) lists it;
``cleanroom datasets encrypt`` moves the library's clear versions and the projects' plain
incoming folders into encrypted filesystems, never losing a file: each file is checked
(against its registered sha256, or byte for byte against the plain folder) in the new
filesystem before the clear copy is removed.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cleanroom import paths
from cleanroom.errors import CleanroomError
from cleanroom.library import at_rest
from cleanroom.lifecycle.keys import Keyring
from cleanroom.registry import Registry
from cleanroom.workspace import incoming, ingress_holds, storage_quota

FIX_ENCRYPT = "cleanroom datasets encrypt"


@dataclass(frozen=True)
class ClearItem:
    """One thing in clear at rest: what, where, and how it gets encrypted."""

    kind: str
    path: str
    fix: str


def _legacy_folders(root: Path) -> list[ClearItem]:
    found: list[ClearItem] = []
    if not root.is_dir():
        return found
    for project in sorted(p for p in root.iterdir() if p.is_dir()):
        plain = project / incoming.FOLDER
        if plain.is_dir():
            found.append(ClearItem("incoming folder", str(plain), FIX_ENCRYPT))
        for kept in sorted(project.glob("*.migrated-*")) + sorted(
            (project / "users").glob("*.migrated-*")
        ):
            found.append(
                ClearItem(
                    "copy kept after a folder was moved into its filesystem",
                    str(kept),
                    "check the folder's files in the workspace, then remove this copy",
                )
            )
        for name in ("shared",):
            if (project / name).is_dir() and not (project / f"{name}.ext4").exists():
                found.append(
                    ClearItem("project folder", str(project / name), "the next workspace start")
                )
        users = project / "users"
        for work in sorted(users.iterdir()) if users.is_dir() else []:
            if (
                work.is_dir()
                and ".migrated-" not in work.name
                and not work.with_name(work.name + ".ext4").exists()
            ):
                found.append(
                    ClearItem("work folder", str(work), "the member's next workspace start")
                )
    return found


def clear_at_rest(registry: Registry, *, workspaces: Path | None = None) -> list[ClearItem]:
    """Everything of the deployment that still lies in clear on disk."""
    items = [
        ClearItem("dataset version", f"{location} ({name} {version})", FIX_ENCRYPT)
        for name, version, location in at_rest.clear_versions(registry)
    ]
    items += _legacy_folders(Path(workspaces or paths.workspaces_dir()))
    items += [
        ClearItem("ingress file held in clear", str(p), "decide on its request")
        for p in ingress_holds.clear_holds(paths.state_dir() / "ingress")
    ]
    return items


@dataclass(frozen=True)
class Moved:
    """One thing moved into an encrypted filesystem (or why not)."""

    kind: str
    what: str
    done: bool
    note: str = ""


def _mounted_by_a_workspace(folder: Path, instance: str) -> bool:
    """Whether a running workspace binds the plain folder (it is moved at a later run)."""
    from cleanroom.workspace.containers import workspace_containers

    try:
        running = workspace_containers(instance=instance)
    except Exception:  # no engine reachable: nothing of ours can run either
        return False
    sources = {m.get("Source", "") for c in running for m in c.attrs.get("Mounts") or []}
    return str(folder.resolve()) in sources


def _same_tree(a: Path, b: Path) -> bool:
    """Every file under ``a`` is under ``b`` with the same bytes."""
    for path in a.rglob("*"):
        if path.is_file() and not (
            (b / path.relative_to(a)).is_file()
            and filecmp.cmp(path, b / path.relative_to(a), shallow=False)
        ):
            return False
    return True


def encrypt_incoming(project: str, root: Path, keyring: Keyring, instance: str) -> Moved:
    """Move a project's plain incoming folder into its encrypted filesystem."""
    from cleanroom.workspace.folders import UNSIZED_ENCRYPTED
    from cleanroom.workspace.spec import RESEARCHER_UID

    plain = root / project / incoming.FOLDER
    image = incoming.image_file(project, root)
    if _mounted_by_a_workspace(plain, instance):
        return Moved("incoming folder", project, False, "a running workspace mounts it: later")
    key = incoming.folder_key(keyring, root, image)
    image.parent.mkdir(parents=True, exist_ok=True)
    with storage_quota.locked(image):
        if not image.exists():
            storage_quota._make_filesystem(image, UNSIZED_ENCRYPTED, RESEARCHER_UID, plain, key)
            os.chmod(image, 0o600)
    with incoming.opened(project, root=root, keyring=keyring) as data:
        if not _same_tree(plain, data):
            raise CleanroomError(
                f"{image} does not hold every file of {plain} (was it changed during the "
                "move?): the plain folder is kept; run the command again"
            )
    for p in [plain, *plain.rglob("*")]:
        if p.is_dir():
            os.chmod(p, 0o700)
    shutil.rmtree(plain)
    return Moved("incoming folder", project, True)


def encrypt_all(
    registry: Registry,
    *,
    instance: str,
    keyring: Keyring | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Moved]:
    """Move every clear dataset version and plain incoming folder in; what was done."""
    if not at_rest.enabled():
        raise CleanroomError("encryption is off ($CLEANROOM_ENCRYPTION=off): nothing to do")
    keyring = keyring or Keyring()
    keyring.master()  # a wrong key fails here, before anything is touched
    done: list[Moved] = []
    for name, version, _ in at_rest.clear_versions(registry):
        info = registry.get_dataset(name, version)
        at_rest.encrypt_version(info, keyring, progress)
        done.append(Moved("dataset version", f"{name} {version}", True))
    root = paths.workspaces_dir()
    for project in sorted(p.name for p in root.iterdir()) if root.is_dir() else []:
        if (root / project / incoming.FOLDER).is_dir():
            done.append(encrypt_incoming(project, root, keyring, instance))
    return done
