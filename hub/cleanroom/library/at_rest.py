"""The data library encrypted at rest: each dataset version in a filesystem of its own.

A registered version ``<state>/library/<name>/<version>`` lies on disk as one file,
``<version>.ext4``: an ext4 made with ``-O encrypt`` whose ``data`` directory carries an
fscrypt v2 policy (``cleanroom.lifecycle.fscrypt``), keyed by HKDF of the version's own
key, which the master key wraps (``Keyring.dataset_key``). The registry's ``location`` stays
the folder's path: whether a version is encrypted is read from the disk (its ``.ext4``
file), so clear versions from before keep working until ``cleanroom datasets encrypt``
moves them in, and nothing in the registry or the journal changes at that move.

**When a version is readable.** Locked (no mount, no key in the kernel) except:

- while it is written (registration, ``encrypt``): mounted read-write by that process only;
- while a workspace that uses it runs: the spawner unlocks it *read-only* (loop device
  ``--read-only``, mount ``ro,noexec``) and the workspace's volume binds its ``data``
  directory at ``/data/<name>``, read-only as before; when the last workspace using it
  stops it is locked again (``lock_unused``). Chosen over "while the hub runs" because
  the library holds the most sensitive bytes of all and most versions are idle most of
  the time: an unlocked idle version would show its files to anyone who gets root on a
  running host, for nothing;
- while the hub side reads it (rebuilding the checks' source index, ``encrypt``'s
  verification): ``opened``.

Per-version keys make deletion a crypto-shredding too: ``cleanroom.lifecycle.datasets``
removes the file and destroys the key, so the copies of the file in old backups can no
longer be opened once the backups holding the wrapped key are gone as well.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker

from cleanroom import paths
from cleanroom.errors import CleanroomError
from cleanroom.lifecycle import fscrypt
from cleanroom.lifecycle.keys import Keyring
from cleanroom.workspace import encrypted_fs, storage_quota

if TYPE_CHECKING:
    from cleanroom.registry import DatasetInfo, Registry

IMAGE_SUFFIX = ".ext4"
_CHUNK = 1 << 20
# Room for ext4's own metadata (journal, inode tables, directories) beyond the files.
_OVERHEAD = 64 * 2**20


class LibraryEncryptionError(CleanroomError):
    """A dataset version's encrypted copy could not be made or opened; nothing changed."""

    status = 500


def enabled() -> bool:
    """Whether new versions are encrypted (``$CLEANROOM_ENCRYPTION``, default on)."""
    return os.environ.get("CLEANROOM_ENCRYPTION", "on") != "off"


def library_keyring() -> Keyring | None:
    """The deployment's keyring when encryption is on, else None."""
    return Keyring() if enabled() else None


def image_of(location: str | Path) -> Path:
    """The file holding a version's encrypted filesystem."""
    location = Path(location)
    return location.with_name(location.name + IMAGE_SUFFIX)


def is_encrypted(location: str | Path) -> bool:
    """Whether the version at ``location`` lies in an encrypted filesystem."""
    return image_of(location).exists()


def exists(location: str | Path) -> bool:
    """Whether anything of a version lies at ``location`` (clear folder or encrypted file)."""
    return Path(location).exists() or is_encrypted(location)


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LibraryEncryptionError(
            f"{' '.join(cmd)} failed: {(done.stderr or done.stdout).strip()}"
        )
    return done.stdout


def _key(keyring: Keyring, name: str, version: str, *, create: bool = False) -> bytes:
    return keyring.dataset_key(name, version, fscrypt.KEY_SIZE, create=create)


def image_size(total: int, files: int) -> int:
    """The size of a version's (sparse) filesystem: the files, each rounded up to a
    block, and room for ext4's metadata. Only what is written takes disk."""
    return ((total + files * 4096 + total // 16 + _OVERHEAD) // 4096 + 1) * 4096


@contextlib.contextmanager
def new_version(
    final: Path, name: str, version: str, *, total: int, files: int, keyring: Keyring | None
) -> Iterator[Path]:
    """A staging folder for a new version's files; on a normal exit it becomes the
    version at ``final`` (an encrypted ``final.ext4`` with a keyring, else the plain
    folder ``final``). On any failure nothing is left: not the file, not a new key.

    The filesystem is made under a hidden name and renamed only once it is complete and
    unmounted, so a version is either whole or absent, as before encryption.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if keyring is None:
        staging = Path(tempfile.mkdtemp(prefix=f".incoming-{name}-", dir=final.parent))
        try:
            yield staging
            os.rename(staging, final)
        except BaseException:
            if staging.exists():
                _writable(staging)
                shutil.rmtree(staging, ignore_errors=True)
            raise
        return
    target = image_of(final)
    part = final.parent / f".{target.name}.part"
    had_key = keyring.has_dataset_key(name, version)
    key = _key(keyring, name, version, create=True)
    part.unlink(missing_ok=True)
    mnt = Path(tempfile.mkdtemp(prefix="cleanroom-register-"))
    mounted = False
    try:
        with part.open("wb") as f:
            f.truncate(image_size(total, files))
        _run(
            "mkfs.ext4", "-q", "-F", "-m", "0", "-O", "encrypt",
            "-N", str(files * 2 + 1024), "-E", "root_owner=0:0", str(part),
        )  # fmt: skip
        os.chmod(part, 0o600)
        _run("mount", "-o", "loop,nodev,nosuid,noexec", str(part), str(mnt))
        mounted = True
        data = encrypted_fs.prepare(mnt, key, 0)
        yield data
        os.sync()
        _close(mnt, data)
        mounted = False
        os.replace(part, target)
        os.chmod(target, 0o400)
    except BaseException:
        if mounted:
            with contextlib.suppress(CleanroomError):
                _close(mnt, mnt / encrypted_fs.DATA_DIR)
        part.unlink(missing_ok=True)
        if not had_key and not target.exists():
            # The key never protected anything that was kept: no orphan key is left.
            keyring.forget_dataset_key(name, version)
        raise
    finally:
        with contextlib.suppress(OSError):
            mnt.rmdir()


def _close(mnt: Path, data: Path) -> None:
    """Take the key out of the kernel and unmount (the loop device goes with it)."""
    identifier = fscrypt.policy_identifier(data) if data.is_dir() else None
    if identifier is not None:
        with contextlib.suppress(fscrypt.FscryptError):
            fscrypt.remove_key(mnt, identifier)
    _run("umount", str(mnt))


def _writable(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            os.chmod(p, 0o700)


def discard_version(location: str | Path) -> int:
    """Remove what lies of a version at ``location`` (a failed registration, a
    deletion): its encrypted file, locked and detached first, and any clear folder.
    Bytes of disk freed."""
    location = Path(location)
    freed = 0
    image = image_of(location)
    if image.exists():
        with storage_quota.locked(image):
            encrypted_fs.lock(image)
            for device in storage_quota.loop_devices(image):
                with contextlib.suppress(CleanroomError):
                    _run("losetup", "-d", device)
            freed += image.stat().st_blocks * 512
            image.unlink()
        image.with_name(image.name + ".lock").unlink(missing_ok=True)
    if location.is_dir():
        freed += sum(p.stat().st_size for p in location.rglob("*") if p.is_file())
        _writable(location)
        shutil.rmtree(location)
    return freed


def _unlock(image: Path, keyring: Keyring | None, name: str, version: str) -> tuple[str, Path]:
    if keyring is None:
        raise LibraryEncryptionError(
            f"dataset {name} version {version} is encrypted ({image}) but encryption is "
            "off ($CLEANROOM_ENCRYPTION=off): it stays locked"
        )
    key = _key(keyring, name, version)
    device = storage_quota.attach(image, read_only=True)
    try:
        return device, encrypted_fs.unlock(image, device, key, 0, read_only=True)
    except BaseException:
        if not storage_quota.is_mounted(device):
            _run("losetup", "-d", device)
        raise


@contextlib.contextmanager
def opened(
    location: str | Path, name: str, version: str, keyring: Keyring | None = None
) -> Iterator[Path]:
    """The folder holding a version's files, readable (read-only) inside the ``with``.

    A clear version is its folder as it is; an encrypted one is unlocked read-only and
    locked again afterwards unless a workspace uses it. A wrong key fails closed
    (``KeyUnavailable``, ``WrongFolderKey``) before anything is read.
    """
    data = unlocked_folder(location, name, version, keyring)
    try:
        yield data
    finally:
        if is_encrypted(location) and not _starting.busy():
            storage_quota.detach_unused(image_of(location))


def unlocked_folder(
    location: str | Path, name: str, version: str, keyring: Keyring | None = None
) -> Path:
    """The folder on this host holding a version's files, readable (read-only) until
    :func:`lock_unused` finds nothing using it any more.

    A clear version is its folder as it is. An encrypted one is unlocked read-only (loop
    device ``--read-only``, mount ``ro,noexec``): what a workspace on this host binds at
    ``/data/<name>`` when its volume is a host folder (the Kubernetes backend's
    hostPath). Call it inside ``with starting():`` so no stop locks it before the
    workspace mounts it. A wrong key fails closed, as in :func:`opened`.
    """
    if not is_encrypted(location):
        return Path(location)
    image = image_of(location)
    keyring = keyring if keyring is not None else library_keyring()
    with storage_quota.locked(image):
        _, data = _unlock(image, keyring, name, version)
    return data


def workspace_volume(
    client: docker.DockerClient,
    *,
    instance: str,
    location: str,
    name: str,
    version: str,
    keyring: Keyring | None,
) -> str:
    """The read-only volume of an encrypted version for a workspace's ``/data/<name>``."""
    image = image_of(location)
    if keyring is None:
        raise LibraryEncryptionError(
            f"dataset {name} version {version} is encrypted ({image}) but encryption is "
            "off ($CLEANROOM_ENCRYPTION=off): it stays locked"
        )
    return storage_quota.ensure_folder_volume(
        client,
        image_file=image,
        size=image.stat().st_size,
        uid=0,
        instance=instance,
        labels={"cleanroom.dataset": f"{name}@{version}"},
        key=_key(keyring, name, version),
        read_only=True,
    )


class _Starts:
    """Workspace starts in flight in this process (the hub): between unlocking a version
    and the container mounting its volume nothing may lock it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1

    def busy(self) -> bool:
        with self._lock:
            return self._count > 0


_starting = _Starts()
starting = _starting
"""``with starting():`` around a workspace's start (see ``_Starts``)."""


def lock_unused(library: Path | None = None) -> int:
    """Lock every unlocked version no workspace uses any more; how many were locked.

    Skipped while a start is in flight in this process (the next stop locks them)."""
    if _starting.busy():
        return 0
    library = library or paths.library_dir()
    locked = 0
    for image in sorted(library.glob(f"*/*{IMAGE_SUFFIX}")) if library.is_dir() else []:
        if encrypted_fs.is_unlocked(image):
            storage_quota.detach_unused(image)
            locked += not encrypted_fs.is_unlocked(image)
    return locked


# -- existing clear versions ---------------------------------------------------------------
@dataclass(frozen=True)
class Encrypted:
    """One version moved into its encrypted filesystem."""

    name: str
    version: str
    bytes: int


def _verify(data: Path, records: tuple[tuple[str, int, str], ...]) -> None:
    """Every registered file in ``data`` with its registered size and sha256."""
    for rel, size, sha in records:
        digest = hashlib.sha256()
        with (data / rel).open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha or (data / rel).stat().st_size != size:
            raise LibraryEncryptionError(
                f"{data / rel} does not match its registered sha256: nothing was moved"
            )


def encrypt_version(
    info: DatasetInfo,
    keyring: Keyring,
    progress: Callable[[int, int, str], None] | None = None,
) -> Encrypted | None:
    """Move a clear registered version into an encrypted filesystem; None if it is
    encrypted already.

    Never loses data: every file is checked against its registered sha256 before it is
    copied, the new filesystem is verified file by file after it is complete, and only
    then is the clear folder removed. A crash at any point leaves the clear folder (and
    maybe a complete encrypted file beside it): running it again finishes the move.
    """
    name, version = info.name, info.version
    location = Path(info.location)
    records = info.files
    if is_encrypted(location):
        if location.is_dir():  # a move that crashed after the new file was complete
            with opened(location, name, version, keyring) as data:
                _verify(data, records)
            discard_clear(location)
        return None
    if not location.is_dir():
        raise LibraryEncryptionError(f"dataset {name} {version}: {location} is missing")
    _verify(location, records)
    total = sum(size for _, size, _ in records)
    done = 0
    with new_version(
        location, name, version, total=total, files=len(records), keyring=keyring
    ) as data:
        for rel, _size, _ in records:
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            with (location / rel).open("rb") as fin, (data / rel).open("xb") as fout:
                while chunk := fin.read(_CHUNK):
                    fout.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total, rel)
        for p in sorted(data.rglob("*"), reverse=True):
            os.chmod(p, 0o555 if p.is_dir() else 0o444)
        os.chmod(data, 0o555)
    with opened(location, name, version, keyring) as data:
        _verify(data, records)
    discard_clear(location)
    return Encrypted(name, version, total)


def discard_clear(location: Path) -> None:
    """Remove a clear version's folder (its encrypted copy verified already)."""
    if location.is_dir():
        _writable(location)
        shutil.rmtree(location)


def clear_versions(registry: Registry) -> list[tuple[str, str, str]]:
    """(name, version, location) of registered versions still in clear on disk."""
    found = []
    for d in registry.list_datasets():
        if Path(d.location).is_dir():
            found.append((d.name, d.version, d.location))
    return found
