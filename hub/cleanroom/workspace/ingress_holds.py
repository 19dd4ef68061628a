"""Files waiting for an ingress decision, held outside every workspace, sealed at rest.

Each held file is AES-256-GCM-sealed under a key derived from its project's key
(``ingress-holds``), with the project and the file's sha256 as associated data, so a held
copy moved to another project's name or changed on disk does not open. Files are small
(``INGRESS_MAX_BYTES``), so a file is sealed whole, in memory. Why sealed and not a
filesystem: holds are few, small and written once, read once at the decision; a blob needs
no mount and no loop device. A file held in clear before this (named by its sha256 only)
is still read; with ``$CLEANROOM_ENCRYPTION=off`` new holds are written in clear as before.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cleanroom.errors import Conflict
from cleanroom.lifecycle.keys import Keyring

_PURPOSE = "ingress-holds"


def _enabled() -> bool:
    return os.environ.get("CLEANROOM_ENCRYPTION", "on") != "off"


def _sealed_path(folder: Path, project: str, sha: str) -> Path:
    return folder / f"{sha}.{project}.sealed"


def _aad(project: str, sha: str) -> bytes:
    return f"ingress:{project}:{sha}".encode()


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o400)
    os.replace(tmp, path)


def hold(folder: Path, project: str, data: bytes, keyring: Keyring | None = None) -> str:
    """Hold ``data`` for review in ``folder``; its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    sha = hashlib.sha256(data).hexdigest()
    if not _enabled():
        _write(folder / sha, data)
        return sha
    aead = AESGCM((keyring or Keyring()).derive(project, _PURPOSE))
    nonce = secrets.token_bytes(12)
    _write(
        _sealed_path(folder, project, sha), nonce + aead.encrypt(nonce, data, _aad(project, sha))
    )
    return sha


def read_held(folder: Path, project: str, sha: str, keyring: Keyring | None = None) -> bytes:
    """The held bytes, checked against ``sha`` (Conflict if they changed or do not open)."""
    sealed = _sealed_path(folder, project, sha)
    if sealed.exists():
        blob = sealed.read_bytes()
        aead = AESGCM((keyring or Keyring()).derive(project, _PURPOSE))
        try:
            data = aead.decrypt(blob[:12], blob[12:], _aad(project, sha))
        except InvalidTag as exc:
            raise Conflict(f"the held copy {sealed.name} does not open; refused") from exc
    else:
        data = (folder / sha).read_bytes()  # held in clear before encryption
    if hashlib.sha256(data).hexdigest() != sha:
        raise Conflict(f"the held copy {sha} changed; refused")
    return data


def clear_holds(folder: Path) -> list[Path]:
    """Held files that lie in clear (from before encryption, or with it off)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and "." not in p.name)
