"""A workspace's host folders: its work folder, the project's shared and incoming folders.

Where a quota tier sets a size, a folder is a volume of an ext4 filesystem of that size
(``storage_quota``), so a full workspace gets ENOSPC instead of filling the host. With a
keyring (encryption at rest, the default: ``docs/lifecycle.md``) each new filesystem is
encrypted with a key derived from its project's key, and a folder whose tier sets no size
gets a sparse filesystem of ``UNSIZED_ENCRYPTED`` bytes: a plain host folder would hold the
files in clear.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker

from cleanroom.lifecycle import fscrypt
from cleanroom.lifecycle.keys import Keyring
from cleanroom.registry import ProjectInfo
from cleanroom.workspace import encrypted_fs, quotas, storage_quota
from cleanroom.workspace.containers import workspace_containers
from cleanroom.workspace.labels import LABEL_PROJECT

WORKSPACE_HOME = "/home/researcher"
Mounts = dict[str, dict[str, str]]
UNSIZED_ENCRYPTED = 64 * 2**30  # sparse: takes only what is written


def _ro(source: str) -> str:
    """Read-only; for a volume also ``nocopy`` (as ``_rw``)."""
    return "ro" if source.startswith("/") else "ro,nocopy"


def _rw(source: str) -> str:
    """Read-write; for a volume also ``nocopy``: at a volume's first mount Docker copies
    the image's folder at the mount point into it (its files, owner and mode) when the
    volume is empty, as a new encrypted folder is, and would give it to root."""
    return "rw" if source.startswith("/") else "rw,nocopy"


@dataclass(frozen=True)
class WorkspaceFolders:
    """The folders under ``root`` (``<project>/users/<user>``, ``<project>/shared``,
    ``<project>/incoming``), owned by the workspace's ``uid``."""

    root: Path
    uid: int
    instance: str
    engine: Callable[[], docker.DockerClient]
    keyring: Keyring | None = None

    def mounts(self, plan: ProjectInfo, user: str, tier: quotas.QuotaTier | None = None) -> Mounts:
        """Create what is missing and say where each folder goes in the container."""
        work_size = tier.storage_bytes if tier else None
        shared_size = tier.project_storage_bytes if tier else None
        work = self.folder(work_size, plan.name, "users", user, mode=0o700)
        shared = self.folder(shared_size, plan.name, "shared", mode=0o770)
        # Files an operator or provider let in (ingress), read-only in every workspace;
        # encrypted like the shared folder (cleanroom.workspace.incoming).
        incoming = self.folder(None, plan.name, "incoming", mode=0o755)
        unlocked = encrypted_fs.mountpoint(Path(self.root, plan.name, "incoming.ext4"))
        if not incoming.startswith("/") and os.path.ismount(unlocked):
            # Read by the server (uid 1001) as well as the kernels: the plain folder's mode.
            os.chmod(unlocked / encrypted_fs.DATA_DIR, 0o755)
        mounts = {
            work: {"bind": f"{WORKSPACE_HOME}/work", "mode": _rw(work)},
            shared: {"bind": "/project", "mode": _rw(shared)},
            incoming: {"bind": "/project/incoming", "mode": _ro(incoming)},
        }
        # Imported here: the library's module builds on this package's storage modules.
        from cleanroom.library import at_rest

        for ds in plan.datasets:
            source = ds.location
            if at_rest.is_encrypted(ds.location):
                # Unlocked read-only for as long as a workspace uses it (at_rest).
                source = at_rest.workspace_volume(
                    self.engine(), instance=self.instance, location=ds.location,
                    name=ds.name, version=ds.version, keyring=self.keyring,
                )  # fmt: skip
            mounts[source] = {"bind": f"/data/{ds.name}", "mode": _ro(source)}
        return mounts

    def work_filesystem(self, project: str, user: str) -> Path:
        """The file holding a work folder's filesystem, when it has one."""
        return Path(self.root, project, "users", f"{user}.ext4")

    def host_dir(self, *parts: str, mode: int) -> str:
        """A plain folder, created when missing, owned by the workspace's uid."""
        path = Path(self.root, *parts)
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.uid)
        return str(path)

    def folder(self, size: int | None, *parts: str, mode: int) -> str:
        """A plain host folder, or (with a size) a volume of a filesystem of that size.

        Files are never stranded: a folder that has a filesystem keeps it even if the
        tier drops its size, and a plain folder another running workspace still mounts
        is not migrated now (its later writes would land beside the copy).
        """
        folder = Path(self.root, *parts)
        image_file = folder.with_name(folder.name + ".ext4")
        if image_file.exists():
            size = max(size or 0, image_file.stat().st_size)
        elif (size is None and self.keyring is None) or self._mounted_elsewhere(folder):
            return self.host_dir(*parts, mode=mode)
        elif size is None:
            size = UNSIZED_ENCRYPTED
        return storage_quota.ensure_folder_volume(
            self.engine(),
            image_file=image_file,
            size=size,
            uid=self.uid,
            instance=self.instance,
            labels={LABEL_PROJECT: parts[0]},
            legacy=folder,
            key=self.folder_key(image_file),
        )

    def folder_key(self, image_file: Path) -> bytes | None:
        """The fscrypt key of a folder's filesystem: derived from its project's key and
        its place under the root (no two folders share one); None when encryption is
        off or the filesystem is an old plain one (it stays plain, and says so in the
        docs: re-create it to encrypt it)."""
        if self.keyring is None:
            return None
        if image_file.exists() and not encrypted_fs.is_encrypted(image_file):
            return None
        relative = image_file.relative_to(self.root)
        project = relative.parts[0]
        return self.keyring.derive(project, f"fscrypt:{relative}", fscrypt.KEY_SIZE)

    def _mounted_elsewhere(self, folder: Path) -> bool:
        if not folder.is_dir():
            return False
        running = workspace_containers(instance=self.instance, client=self.engine())
        sources = {m.get("Source", "") for c in running for m in c.attrs.get("Mounts") or []}
        return str(folder.resolve()) in sources
