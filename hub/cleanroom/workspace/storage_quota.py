"""Folders with a size limit that code inside a workspace cannot lift.

Each quota'd folder (a member's work folder, a project's shared folder) is an ext4
filesystem in a file of the tier's size, attached to a loop device (``losetup``) and
mounted by the Docker engine through a ``local`` volume (``type=ext4, device=/dev/loopN``).
The engine's local driver calls mount(2) itself, which knows no ``loop`` option (that is
mount(8)'s), so we attach the loop device and the volume names it; the device number can
change after a reboot, so the volume is checked and re-pointed at every start. A full
folder refuses writes with "No space left on device": the limit is a property of the
filesystem, not a report.

Why a filesystem per folder rather than project quotas on the host filesystem: it needs
nothing of the host's filesystem (no ``prjquota`` mount option, works on overlay and
tmpfs hosts), the file is sparse (it takes only what is written), and it moves with the
state folder. The cost: growing a folder is an offline ``resize2fs`` (done at the next
start), and shrinking is never done automatically (it could lose files).

A plain folder from before quotas is migrated once: its files are copied into the new
filesystem and the old folder is kept beside it, renamed, never deleted.

With a ``key`` a folder is encrypted at rest (``encrypted_fs``: ext4 ``-O encrypt`` and an
fscrypt policy on its ``data`` directory); its volume then binds the unlocked ``data``
directory instead of mounting the device, and it is locked again once no workspace uses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from docker.errors import NotFound as DockerNotFound

from cleanroom.errors import CleanroomError
from cleanroom.workspace import encrypted_fs


class StorageError(CleanroomError):
    """A quota'd folder could not be prepared; nothing of the member's files was lost."""

    status = 500


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StorageError(f"{' '.join(cmd)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def volume_name(instance: str, image_file: Path) -> str:
    """A stable volume name for one filesystem file (another state folder, another name)."""
    digest = hashlib.sha256(str(image_file.resolve()).encode()).hexdigest()[:16]
    return f"cleanroom-{instance}-fs-{digest}"


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _make_filesystem(
    target: Path, size: int, uid: int, legacy: Path | None, key: bytes | None = None
) -> None:
    """Create ``target`` (an ext4 file of ``size`` bytes owned by ``uid``), with the
    files of ``legacy`` copied in; on any failure nothing is left behind.

    With a ``key`` the filesystem is made with the ``encrypt`` feature and its ``data``
    directory gets the key's policy here, before the file takes its final name, so an
    encrypted folder never exists half-made."""
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)
    try:
        with part.open("wb") as f:
            f.truncate(size)  # sparse: disk is used only as the folder fills
        # -m 0: no blocks reserved for root, the workspace user gets the whole size.
        features = ["-O", "encrypt"] if key is not None else []
        _run(
            "mkfs.ext4", "-q", "-F", "-m", "0", *features,
            "-E", f"root_owner={uid}:{uid}", str(part),
        )  # fmt: skip
        if key is not None or (legacy is not None and _has_files(legacy)):
            with tempfile.TemporaryDirectory(prefix="cleanroom-migrate-") as mnt:
                _run("mount", "-o", "loop", str(part), mnt)
                try:
                    into = mnt
                    if key is not None:
                        into = str(encrypted_fs.prepare(Path(mnt), key, uid))
                    if legacy is not None and _has_files(legacy):
                        _run("cp", "-a", f"{legacy}/.", into)
                        # cp -a gave the root the legacy folder's owner; the member owns it.
                        os.chown(into, uid, uid)
                finally:
                    _run("umount", mnt)
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _loop_devices(image_file: Path) -> list[str]:
    out = _run("losetup", "-j", str(image_file.resolve()))
    return [line.split(":", 1)[0] for line in out.splitlines() if line.strip()]


def _is_mounted(device: str) -> bool:
    with open("/proc/mounts") as mounts:
        return any(line.split(" ", 1)[0] == device for line in mounts)


def _attach(image_file: Path, read_only: bool = False) -> str:
    """The loop device of ``image_file``, attached now unless it is already."""
    found = _loop_devices(image_file)
    if found:
        return found[0]
    ro = ["--read-only"] if read_only else []
    return _run("losetup", "--find", "--show", *ro, str(image_file.resolve())).strip()


def _grow(image_file: Path, size: int) -> None:
    """Grow an unused filesystem to ``size`` (never shrink: that could lose files)."""
    if image_file.stat().st_size >= size:
        return
    devices = _loop_devices(image_file)
    if any(_is_mounted(d) for d in devices):
        return  # in use by a running workspace (a shared folder): grow at a later start
    for device in devices:
        _run("losetup", "-d", device)
    _run("e2fsck", "-f", "-p", str(image_file))
    with image_file.open("r+b") as f:
        f.truncate(size)
    _run("resize2fs", str(image_file))


@contextmanager
def _locked(image_file: Path) -> Iterator[None]:
    """Serialise every change to one folder's file, loop device and volume.

    Two members starting at once must not each attach the shared folder's file to a
    loop device of their own: two mounts of one ext4 through two devices corrupt it.
    A lock file works across the hub's threads and across processes.
    """
    lock_path = image_file.with_name(image_file.name + ".lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_folder_volume(
    client: docker.DockerClient,
    *,
    image_file: Path,
    size: int,
    uid: int,
    instance: str,
    labels: dict[str, str],
    legacy: Path | None = None,
    key: bytes | None = None,
    read_only: bool = False,
) -> str:
    """The name of a Docker volume holding a ``size``-byte folder; created on first use.

    ``legacy`` is the plain folder this one replaces: its files are copied in once and
    the folder is renamed ``<name>.migrated-<time>``, kept for the operator to remove.
    ``key`` encrypts a new folder and unlocks an encrypted one; an encrypted folder
    without a key is refused (fail closed), a plain one with a key stays plain.
    ``read_only`` (a dataset version: ``cleanroom.library.at_rest``) attaches and mounts
    an existing filesystem read-only and never makes one.
    """
    image_file.parent.mkdir(parents=True, exist_ok=True)
    with _locked(image_file):
        if read_only and not image_file.exists():
            raise StorageError(f"{image_file} does not exist")
        if not image_file.exists():
            _make_filesystem(image_file, size, uid, legacy, key)
            if legacy is not None and legacy.exists():
                stamp = time.strftime("%Y%m%dT%H%M%S")
                legacy.rename(legacy.with_name(f"{legacy.name}.migrated-{stamp}"))
            encrypted = key is not None
        else:
            encrypted = encrypted_fs.is_encrypted(image_file)
            if encrypted and key is None:
                raise StorageError(
                    f"{image_file} is encrypted but no key was given: it stays locked"
                )
            if image_file.stat().st_size < size and encrypted:
                _lock_if_idle(image_file)
            _grow(image_file, size)
        os.chmod(image_file, 0o400 if read_only else 0o600)
        name = volume_name(instance, image_file)
        device = _attach(image_file, read_only)
        opts = {"type": "ext4", "device": device}
        if encrypted and key is not None:
            try:
                data = encrypted_fs.unlock(image_file, device, key, uid, read_only=read_only)
            except BaseException:
                _run("losetup", "-d", device)  # a refused key leaves nothing attached
                raise
            opts = {"type": "none", "o": "bind", "device": str(data)}
        try:
            existing = client.volumes.get(name)
            if (existing.attrs.get("Options") or {}) == opts:
                return name
            existing.remove()
        except DockerNotFound:
            pass
        except docker.errors.APIError as exc:
            raise StorageError(
                f"the volume of {image_file} names another loop device and is in use: {exc}"
            ) from exc
        client.volumes.create(
            name=name,
            driver="local",
            driver_opts=opts,
            labels={**labels, "cleanroom.kind": "folder", "cleanroom.instance": instance},
        )
        return name


def detach_unused(image_file: Path) -> int:
    """Detach the loop devices of ``image_file`` that nothing mounts; how many.

    Called when a member's workspace stops, for their work folder (only that workspace
    mounts it), so loop devices exist only while workspaces run.
    """
    if not image_file.exists():
        return 0
    detached = 0
    with _locked(image_file):
        _lock_if_idle(image_file)
        for device in _loop_devices(image_file):
            if not _is_mounted(device):
                _run("losetup", "-d", device)
                detached += 1
    return detached


def release_folder(client: docker.DockerClient, instance: str, image_file: Path) -> bool:
    """Remove a folder's volume record and detach its loop device (the file stays).

    For tear-downs and for moving a state folder; refused (False) while it is in use.
    """
    try:
        client.volumes.get(volume_name(instance, image_file)).remove()
    except DockerNotFound:
        pass
    except docker.errors.APIError:
        return False
    _lock_if_idle(image_file)
    for device in _loop_devices(image_file):
        if _is_mounted(device):
            return False
        _run("losetup", "-d", device)
    return True


def _lock_if_idle(image_file: Path) -> bool:
    """Lock an unlocked encrypted folder that no workspace mounts any more."""
    if not encrypted_fs.is_unlocked(image_file):
        return False
    if any(encrypted_fs.used_elsewhere(image_file, d) for d in _loop_devices(image_file)):
        return False
    return encrypted_fs.lock(image_file)


# For the library's read-only filesystems (cleanroom.library.at_rest), which share
# this file's locking and loop-device handling.
locked = _locked
loop_devices = _loop_devices
attach = _attach
is_mounted = _is_mounted


def loop_detach(device: str) -> None:
    """Detach one loop device."""
    _run("losetup", "-d", device)


def folder_usage(image_file: Path) -> tuple[int, int]:
    """(bytes of disk the folder's file takes, its size limit)."""
    st = image_file.stat()
    return st.st_blocks * 512, st.st_size


def release_all(client: docker.DockerClient, instance: str, root: Path) -> int:
    """Release every quota'd folder under ``root`` (a tear-down); how many were released."""
    released = 0
    for image_file in sorted(root.rglob("*.ext4")):
        released += release_folder(client, instance, image_file)
    return released
