"""A project's incoming folder (``/project/incoming``, files let in by ingress), encrypted
at rest the same way as its shared folder.

The folder is an ext4 filesystem of its own, ``<workspaces>/<project>/incoming.ext4``
(sparse, ``folders.UNSIZED_ENCRYPTED`` bytes), whose ``data`` directory has an fscrypt
policy keyed by HKDF of the project's key (the same derivation as
``WorkspaceFolders.folder_key``, so the workspace and the ingress side open the same
filesystem). Workspaces mount it read-only; the ingress decision (run by an operator's or
a provider's ``cleanroom ingress approve``) unlocks it to deliver a file and locks it
again unless a workspace uses it. With encryption off, or while a plain folder from
before encryption exists (a workspace's next start moves it in, see
``WorkspaceFolders.folder``), it is the plain folder ``<project>/incoming``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from cleanroom import paths
from cleanroom.lifecycle import fscrypt
from cleanroom.lifecycle.keys import Keyring
from cleanroom.workspace import encrypted_fs, spec, storage_quota

FOLDER = "incoming"
MODE = 0o755  # read by the server (uid 1001) and the researcher's kernels (1000)


def _enabled() -> bool:
    return os.environ.get("CLEANROOM_ENCRYPTION", "on") != "off"


def image_file(project: str, root: Path | None = None) -> Path:
    """The file of the project's encrypted incoming folder."""
    return Path(root or paths.workspaces_dir(), project, f"{FOLDER}.ext4")


def folder_key(keyring: Keyring, root: Path, image: Path) -> bytes:
    """The folder's fscrypt key (as ``WorkspaceFolders.folder_key``)."""
    relative = image.relative_to(root)
    return keyring.derive(relative.parts[0], f"fscrypt:{relative}", fscrypt.KEY_SIZE)


@contextlib.contextmanager
def opened(
    project: str,
    *,
    root: Path | None = None,
    keyring: Keyring | None = None,
    uid: int = spec.RESEARCHER_UID,
) -> Iterator[Path]:
    """The project's incoming folder, unlocked and writable inside the ``with``.

    Made (encrypted) when it does not exist yet; locked again afterwards unless a
    workspace mounts it. A wrong key fails closed before anything is written.
    """
    root = Path(root or paths.workspaces_dir())
    plain = root / project / FOLDER
    image = image_file(project, root)
    if not image.exists() and (plain.is_dir() or not _enabled()):
        plain.mkdir(parents=True, exist_ok=True)
        yield plain
        return
    if not _enabled():
        raise storage_quota.StorageError(
            f"{image} is encrypted but encryption is off ($CLEANROOM_ENCRYPTION=off): "
            "it stays locked"
        )
    keyring = keyring or Keyring()
    key = folder_key(keyring, root, image)
    from cleanroom.workspace.folders import UNSIZED_ENCRYPTED

    image.parent.mkdir(parents=True, exist_ok=True)
    with storage_quota.locked(image):
        if not image.exists():
            storage_quota._make_filesystem(image, UNSIZED_ENCRYPTED, uid, None, key)
            os.chmod(image, 0o600)
        device = storage_quota.attach(image)
        try:
            data = encrypted_fs.unlock(image, device, key, uid)
        except BaseException:
            if not storage_quota.is_mounted(device):
                storage_quota.loop_detach(device)
            raise
        os.chmod(data, MODE)
    try:
        yield data
    finally:
        os.sync()
        storage_quota.detach_unused(image)


def read_bytes(project: str, name: str, *, root: Path | None = None) -> bytes | None:
    """A delivered file's bytes (None if absent): for tests and operators' checks."""
    with opened(project, root=root) as folder:
        path = folder / name
        return path.read_bytes() if path.is_file() else None
