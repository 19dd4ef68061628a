"""Encrypted quota'd folders: an ext4 made with ``-O encrypt`` whose ``data`` directory
carries an fscrypt v2 policy (``cleanroom.lifecycle.fscrypt``).

The root of an ext4 cannot itself be encrypted (e2fsck needs ``lost+found`` in clear), and
Docker 20.10's volumes cannot mount a sub-path of a device, so an encrypted folder is
*unlocked* on the host: its loop device mounted under ``/run/cleanroom/<digest>`` (mode
0700, a tmpfs: nothing of it outlives a reboot), its key added to the filesystem's keyring,
and the workspace's volume binds the ``data`` directory. While no workspace mounts it the
folder is *locked*: key removed, unmounted, loop device detached, and the file on disk is
ciphertext (contents and names).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from pathlib import Path

from cleanroom.errors import CleanroomError
from cleanroom.lifecycle import fscrypt

DATA_DIR = "data"
MOUNT_ROOT = Path(os.environ.get("CLEANROOM_UNLOCK_DIR", "/run/cleanroom"))


class WrongFolderKey(CleanroomError):
    """The key from the key source does not open this folder: it stays locked."""

    status = 500


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CleanroomError(f"{' '.join(cmd)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def mountpoint(image_file: Path) -> Path:
    """Where the folder is unlocked on the host while a workspace uses it."""
    digest = hashlib.sha256(str(image_file.resolve()).encode()).hexdigest()[:24]
    return MOUNT_ROOT / digest


def is_encrypted(image_file: Path) -> bool:
    """Whether the filesystem in ``image_file`` was made with the ``encrypt`` feature."""
    out = _run("dumpe2fs", "-h", str(image_file))
    for line in out.splitlines():
        if line.startswith("Filesystem features:"):
            return "encrypt" in line.split(":", 1)[1].split()
    return False


def mounts_of(device: str) -> list[str]:
    """The mount points of ``device`` in this mount namespace (the engine's included)."""
    found = []
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split(" ")
            if fields[0] == device:
                found.append(fields[1].replace("\\040", " "))
    return found


def is_unlocked(image_file: Path) -> bool:
    """Whether the folder is mounted at its host mount point now."""
    return os.path.ismount(mountpoint(image_file))


def prepare(root: Path, key: bytes, uid: int) -> Path:
    """Add ``key`` to the filesystem mounted at ``root``; make or check ``data``.

    A first use makes ``data`` and sets its policy; later uses refuse a key whose
    identifier differs from the policy's (fail closed: the key is taken out again).
    """
    identifier = fscrypt.add_key(root, key)
    data = root / DATA_DIR
    if not data.exists():
        data.mkdir(mode=0o700)
        fscrypt.set_policy(data, identifier)
        os.chown(data, uid, uid)
        return data
    if fscrypt.policy_identifier(data) != identifier:
        fscrypt.remove_key(root, identifier)
        raise WrongFolderKey(
            f"the key from the key source does not open {root}: it stays locked "
            "(was the master key or the project's key changed? see docs/lifecycle.md)"
        )
    return data


def unlock(image_file: Path, device: str, key: bytes, uid: int, *, read_only: bool = False) -> Path:
    """Mount the folder's device on the host and add its key; the ``data`` directory.

    ``read_only`` (a dataset version of the library) mounts it ``ro,noexec``: nobody on
    the host or in a workspace can change a registered version through this mount."""
    mnt = mountpoint(image_file)
    MOUNT_ROOT.mkdir(parents=True, exist_ok=True)
    os.chmod(MOUNT_ROOT, 0o700)
    mnt.mkdir(exist_ok=True)
    if not os.path.ismount(mnt):
        options = "ro,noload,nodev,nosuid,noexec" if read_only else "nodev,nosuid"
        _run("mount", "-t", "ext4", "-o", options, device, str(mnt))
    try:
        return prepare(mnt, key, uid)
    except BaseException:
        _run("umount", str(mnt))
        mnt.rmdir()
        raise


def lock(image_file: Path) -> bool:
    """Remove the key and unmount the host mount; False if it was not unlocked."""
    mnt = mountpoint(image_file)
    if not os.path.ismount(mnt):
        return False
    data = mnt / DATA_DIR
    identifier = fscrypt.policy_identifier(data) if data.is_dir() else None
    if identifier is not None:
        # Not present (never added, or removed already): the unmount locks it anyway.
        with contextlib.suppress(fscrypt.FscryptError):
            fscrypt.remove_key(mnt, identifier)
    _run("umount", str(mnt))
    mnt.rmdir()
    return True


def used_elsewhere(image_file: Path, device: str) -> bool:
    """Whether anything but our host mount mounts the device (a workspace's volume).

    Docker's volumes mount in this mount namespace; a Kubernetes pod's hostPath volume
    is bound by the container runtime inside the container's own namespace, which this
    one never sees: so every other mount namespace on the host is looked at too.
    """
    ours = str(mountpoint(image_file))
    if any(m != ours for m in mounts_of(device)):
        return True
    return mounted_in_other_namespace(device)


def device_number(device: str) -> str:
    """``major:minor`` of a block device, as ``/proc/<pid>/mountinfo`` names it."""
    rdev = os.stat(device).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def mountinfo_has(mountinfo: str, number: str) -> bool:
    """Whether a ``mountinfo`` text holds a mount of the filesystem on device ``number``
    (its third field; a bind of a sub-folder names the same device)."""
    for line in mountinfo.splitlines():
        fields = line.split(" ", 3)
        if len(fields) > 2 and fields[2] == number:
            return True
    return False


def mounted_in_other_namespace(device: str) -> bool:
    """Whether a process in another mount namespace than ours (a container) has a mount
    of ``device``. Namespaces we may not read (not root) are skipped."""
    number = device_number(device)
    seen = {os.stat("/proc/self/ns/mnt").st_ino}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            namespace = os.stat(f"/proc/{pid}/ns/mnt").st_ino
            if namespace in seen:
                continue
            with open(f"/proc/{pid}/mountinfo") as f:
                text = f.read()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        seen.add(namespace)
        if mountinfo_has(text, number):
            return True
    return False
