"""Content-addressed blob store on local disk, encrypted at rest per project.

Blobs are named by their sha256, written atomically (temporary file, fsync, rename,
fsync of the folder) so a crash leaves either the whole blob or none, and verified
against their name on every read so a changed byte on disk is never served.

With a keyring each blob is sealed with AES-256-GCM under its project's blob key
(``Keyring.derive(project, "airlock-blobs")``), a random 96-bit nonce per write and the
blob's identity (project and sha256) as associated data. Why per blob rather than an
encrypted filesystem: the store is plain files any host filesystem holds (and a backup
copies), GCM authenticates as well as hides (a changed or swapped file fails to open, it
is never served), and a key per project means destroying that one key crypto-shreds the
project's unreleased outputs without touching any other project's. The AAD binds a
ciphertext to its name, so moving one project's blob under another name or project is
detected. Blobs live under ``root/<project>/``, so the same bytes submitted in two
projects are two blobs, each under its own key.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from pathlib import Path

from cleanroom.lifecycle.keys import Keyring
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .exceptions import IntegrityFailure, NotFound

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAGIC = b"CRB1"


class BlobStore:
    """Files under ``root/<first two hex digits>/<sha256>`` (plain), or
    ``root/<project>/<first two hex digits>/<sha256>`` sealed (with a keyring)."""

    def __init__(self, root: Path, keyring: Keyring | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keyring = keyring

    def path_for(self, sha256: str, project: str = "") -> Path:
        """Where the blob with this hash lives (it may not exist)."""
        if not _HEX64.match(sha256):
            raise NotFound(f"not a sha256: {sha256!r}")
        if self.keyring is not None and project:
            return self.root / project / sha256[:2] / sha256
        return self.root / sha256[:2] / sha256

    def _aead(self, project: str) -> AESGCM:
        assert self.keyring is not None
        return AESGCM(self.keyring.derive(project, "airlock-blobs"))

    def _seal(self, data: bytes, digest: str, project: str) -> bytes:
        if self.keyring is None:
            return data
        nonce = secrets.token_bytes(12)
        aad = f"{project}:{digest}".encode()
        return _MAGIC + nonce + self._aead(project).encrypt(nonce, data, aad)

    def _open(self, stored: bytes, digest: str, project: str) -> bytes:
        if self.keyring is None or not stored.startswith(_MAGIC):
            return stored
        nonce, sealed = stored[4:16], stored[16:]
        try:
            return self._aead(project).decrypt(nonce, sealed, f"{project}:{digest}".encode())
        except InvalidTag as exc:
            raise IntegrityFailure(
                f"blob {digest} of project {project!r} does not open with the project's key "
                "(changed on disk, moved from elsewhere, or a wrong key source); refusing "
                "to serve it"
            ) from exc

    def put(self, data: bytes, project: str = "") -> str:
        """Store ``data``; return its sha256. Storing the same bytes twice is a no-op."""
        if self.keyring is not None and not project:
            raise ValueError("an encrypted blob store needs the blob's project")
        digest = hashlib.sha256(data).hexdigest()
        final = self.path_for(digest, project)
        if final.exists() and self._matches(final, digest, project):
            return digest
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._seal(data, digest, project))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # The rename is durable only once the folder entry itself is on disk.
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return digest

    def get(self, sha256: str, project: str = "") -> bytes:
        """The bytes of a blob, decrypted and verified against its hash.

        A blob stored before encryption was switched on (plain, at the old place) is
        still served, verified by its hash.
        """
        path = self.path_for(sha256, project)
        if not path.exists() and project:
            path = self.path_for(sha256)
        try:
            stored = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {sha256} is missing from the store") from exc
        data = self._open(stored, sha256, project)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityFailure(f"blob {sha256} does not match its hash; refusing to serve it")
        return data

    def remove_project(self, project: str, keep: set[str] | frozenset[str] = frozenset()) -> int:
        """Delete a project's blobs but those in ``keep`` (retention); how many went.

        Only sealed stores are per project; blobs stored in clear before encryption was
        switched on may be shared by several projects and are left alone.
        """
        folder = self.root / project
        if self.keyring is None or not folder.is_dir():
            return 0
        removed = 0
        for path in sorted(folder.glob("*/*")):
            if path.is_file() and path.name not in keep:
                path.unlink()
                removed += 1
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()
        return removed

    def _matches(self, path: Path, digest: str, project: str) -> bool:
        try:
            data = self._open(path.read_bytes(), digest, project)
        except IntegrityFailure:
            return False
        return hashlib.sha256(data).hexdigest() == digest
