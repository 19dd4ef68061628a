"""The kernel's filesystem encryption (fscrypt, v2 policies) driven by ioctl.

Why fscrypt and not dm-crypt/LUKS: the hosts we run on do not all have device-mapper
(this project's CI host has none), while every ext4 since Linux 5.4 has fscrypt v2. An
ext4 made with ``-O encrypt`` stores the contents *and names* of files under an
encrypted directory as AES-256-XTS / AES-256-CTS ciphertext; what stays in clear is
metadata: sizes (rounded up to 32 bytes), timestamps, ownership, the directory tree's
shape. A host with dm-crypt can put the whole image file under LUKS instead (see
``docs/lifecycle.md``); the work/project folders then need no policy of their own.

Only a v2 policy is used: its key lives in the filesystem's own keyring (not a
process's session keyring), so the Docker engine's mount of the same filesystem sees
it, and removing it locks the files for every user at once.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from pathlib import Path

from cleanroom.errors import CleanroomError


class FscryptError(CleanroomError):
    """The kernel refused an fscrypt operation (or the key does not open the folder)."""

    status = 500


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("f") << 8) | nr


def _ior(nr: int, size: int) -> int:
    return (2 << 30) | (size << 16) | (ord("f") << 8) | nr


_KEY_SPEC_TYPE_IDENTIFIER = 2
_POLICY_V2 = 2
_MODE_AES_256_XTS = 1
_MODE_AES_256_CTS = 4
_FLAGS_PAD_32 = 0x03
KEY_SIZE = 64  # AES-256-XTS needs 64 bytes of master key; v2 derives per-file keys by HKDF


class _KeySpec(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("identifier", ctypes.c_uint8 * 16),
        ("pad", ctypes.c_uint8 * 16),
    ]


class _PolicyV2(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint8),
        ("contents_mode", ctypes.c_uint8),
        ("filenames_mode", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 4),
        ("identifier", ctypes.c_uint8 * 16),
    ]


class _AddKey(ctypes.Structure):
    _fields_ = [
        ("spec", _KeySpec),
        ("raw_size", ctypes.c_uint32),
        ("key_id", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 8),
        ("raw", ctypes.c_uint8 * KEY_SIZE),
    ]


class _RemoveKey(ctypes.Structure):
    _fields_ = [
        ("spec", _KeySpec),
        ("status_flags", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 5),
    ]


class _PolicyEx(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint64), ("policy", _PolicyV2)]


class _KeyStatus(ctypes.Structure):
    _fields_ = [
        ("spec", _KeySpec),
        ("reserved", ctypes.c_uint32 * 6),
        ("status", ctypes.c_uint32),
        ("status_flags", ctypes.c_uint32),
        ("user_count", ctypes.c_uint32),
        ("out_reserved", ctypes.c_uint32 * 13),
    ]


# The add-key struct ends in a flexible array; the ioctl number carries the fixed part.
_ADD_KEY = _iowr(23, ctypes.sizeof(_AddKey) - KEY_SIZE)
_REMOVE_KEY = _iowr(24, ctypes.sizeof(_RemoveKey))
_SET_POLICY = _ior(19, 12)  # numbered by the v1 struct; the kernel reads the version byte
_GET_POLICY_EX = _iowr(22, 9)
_KEY_STATUS = _iowr(26, ctypes.sizeof(_KeyStatus))
_STATUS_PRESENT = 2


def _ioctl(path: Path, request: int, arg: ctypes.Structure, what: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, request, arg)
    except OSError as exc:
        hint = {
            errno.EOPNOTSUPP: "the filesystem was not made with -O encrypt, or the kernel "
            "has no fscrypt",
            errno.ENOTTY: "the filesystem does not support encryption",
            errno.EEXIST: "the folder already has another encryption policy",
            errno.ENOTEMPTY: "the folder is not empty",
            errno.ENOKEY: "its key is not present",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise FscryptError(f"fscrypt {what} on {path} failed: {hint}") from exc
    finally:
        os.close(fd)


def add_key(mountpoint: Path, raw: bytes) -> bytes:
    """Add ``raw`` (64 bytes) to the filesystem's keyring; its 16-byte identifier."""
    if len(raw) != KEY_SIZE:
        raise FscryptError(f"an fscrypt key is {KEY_SIZE} bytes, not {len(raw)}")
    arg = _AddKey()
    arg.spec.type = _KEY_SPEC_TYPE_IDENTIFIER
    arg.raw_size = KEY_SIZE
    ctypes.memmove(arg.raw, raw, KEY_SIZE)
    try:
        _ioctl(mountpoint, _ADD_KEY, arg, "add key")
        return bytes(arg.spec.identifier)
    finally:
        ctypes.memset(arg.raw, 0, KEY_SIZE)


def remove_key(mountpoint: Path, identifier: bytes) -> None:
    """Remove a key from the filesystem's keyring: its files lock for every user."""
    arg = _RemoveKey()
    arg.spec.type = _KEY_SPEC_TYPE_IDENTIFIER
    ctypes.memmove(arg.spec.identifier, identifier, 16)
    _ioctl(mountpoint, _REMOVE_KEY, arg, "remove key")


def key_present(mountpoint: Path, identifier: bytes) -> bool:
    """Whether the filesystem's keyring holds the key with this identifier."""
    arg = _KeyStatus()
    arg.spec.type = _KEY_SPEC_TYPE_IDENTIFIER
    ctypes.memmove(arg.spec.identifier, identifier, 16)
    _ioctl(mountpoint, _KEY_STATUS, arg, "key status")
    return arg.status == _STATUS_PRESENT


def set_policy(directory: Path, identifier: bytes) -> None:
    """Encrypt an empty directory (and everything created under it) with this key."""
    policy = _PolicyV2()
    policy.version = _POLICY_V2
    policy.contents_mode = _MODE_AES_256_XTS
    policy.filenames_mode = _MODE_AES_256_CTS
    policy.flags = _FLAGS_PAD_32
    ctypes.memmove(policy.identifier, identifier, 16)
    _ioctl(directory, _SET_POLICY, policy, "set policy")


def policy_identifier(directory: Path) -> bytes | None:
    """The key identifier of a directory's v2 policy; None if it is not encrypted."""
    arg = _PolicyEx()
    arg.size = ctypes.sizeof(_PolicyV2)
    try:
        _ioctl(directory, _GET_POLICY_EX, arg, "get policy")
    except FscryptError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.ENODATA:
            return None
        raise
    if arg.policy.version != _POLICY_V2:
        raise FscryptError(f"{directory} has a v1 fscrypt policy; only v2 is supported")
    return bytes(arg.policy.identifier)
