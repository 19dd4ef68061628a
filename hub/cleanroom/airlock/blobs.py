"""Content-addressed blob store on local disk.

Blobs are named by their sha256, written atomically (temporary file, fsync, rename,
fsync of the folder) so a crash leaves either the whole blob or none, and verified
against their name on every read so a changed byte on disk is never served.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from .exceptions import IntegrityFailure, NotFound

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    """Files under ``root/<first two hex digits>/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this hash lives (it may not exist)."""
        if not _HEX64.match(sha256):
            raise NotFound(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256. Storing the same bytes twice is a no-op."""
        digest = hashlib.sha256(data).hexdigest()
        final = self.path_for(digest)
        if final.exists() and self._matches(final, digest):
            return digest
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
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

    def get(self, sha256: str) -> bytes:
        """The bytes of a blob, verified against its hash."""
        path = self.path_for(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {sha256} is missing from the store") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityFailure(f"blob {sha256} does not match its hash; refusing to serve it")
        return data

    def _matches(self, path: Path, digest: str) -> bool:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest
