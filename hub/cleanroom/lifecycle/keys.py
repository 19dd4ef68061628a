"""Keys for data at rest: one master key from the operator's key source, one data key
per project (wrapped by the master key), keys for each use derived from it.

- **Key source** (``CLEANROOM_KEY_COMMAND`` / ``CLEANROOM_KEY_FILE``): an external command
  whose standard output is the master key (a KMS or HSM client: the key never lies on this
  disk), or else a key file, by default ``<state>/secrets/master.key`` (created on first use
  only while the deployment holds no encrypted data). Either gives 32 bytes as 64 hex digits.
- **Project keys** (``<state>/keys/projects/<project>.key``): 32 random bytes each,
  AES-256-GCM-wrapped by the master key with the project's name as associated data (a
  wrapped key copied under another project's name does not open). Destroying that file
  *crypto-shreds* the project: its work and shared filesystems and its airlock blobs can no
  longer be read by anyone, including from old backups once the file is gone from them.
- **Dataset keys** (``<state>/keys/datasets/<name>@<version>.key``): one per registered
  dataset version, made and wrapped the same way (associated data ``dataset:<name>@<version>``).
  One per *version*, not per dataset or provider, because deletion is per version: shredding
  one version's key must leave its other versions readable.
- **Derived keys**: HKDF-SHA256 of the project key with the use as ``info`` (one per
  filesystem, one for the blob store), so no two stores share a key.

A wrong master key fails closed: ``<state>/keys/check`` holds a value encrypted under the
master key, and every opening of the keyring decrypts it first, so a changed key file or a
KMS answering with another key is refused with a message before any data is touched.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cleanroom import paths
from cleanroom.errors import CleanroomError, Conflict

_CHECK_PLAINTEXT = b"cleanroom keyring v1"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class KeyUnavailable(CleanroomError):
    """The key source gives no key, a malformed one, or one that does not open the data.

    Fail closed: nothing is decrypted, nothing is created, and the message names the fix.
    """

    status = 500


class KeyShredded(Conflict):
    """The project's key was destroyed: its encrypted data can never be read again."""


@dataclass(frozen=True)
class KeySource:
    """Where the master key comes from: a command (KMS/HSM) or a key file."""

    command: str | None
    file: Path

    @classmethod
    def from_env(cls) -> KeySource:
        """``CLEANROOM_KEY_COMMAND`` if set, else ``CLEANROOM_KEY_FILE`` or the default file."""
        command = os.environ.get("CLEANROOM_KEY_COMMAND") or None
        file = os.environ.get("CLEANROOM_KEY_FILE")
        return cls(command, Path(file) if file else paths.secrets_dir() / "master.key")

    def describe(self) -> str:
        """Where the key comes from, for messages (never the key)."""
        return f"the command {self.command!r}" if self.command else f"the key file {self.file}"

    def read(self, *, create: bool) -> bytes:
        """The 32-byte master key; a new key file is written only when ``create``."""
        if self.command:
            done = subprocess.run(
                shlex.split(self.command), capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise KeyUnavailable(
                    f"the key command {self.command!r} failed ({done.returncode}): "
                    f"{done.stderr.strip()[:200]}"
                )
            return _parse(done.stdout, self.describe())
        if not self.file.exists():
            if not create:
                raise KeyUnavailable(
                    f"the master key is missing ({self.file}) but this deployment holds "
                    "encrypted data: restore the key file (or set CLEANROOM_KEY_COMMAND). "
                    "Without it the data cannot be read; see docs/lifecycle.md"
                )
            self.file.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.file.parent, 0o700)
            fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        return _parse(self.file.read_text(), self.describe())


def _parse(text: str, where: str) -> bytes:
    raw = text.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        raise KeyUnavailable(f"{where} does not give a master key (expected 64 hex digits)")
    return bytes.fromhex(raw)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Keyring:
    """The deployment's project keys under ``root`` (default ``<state>/keys``)."""

    def __init__(self, root: Path | None = None, source: KeySource | None = None) -> None:
        self.root = Path(root) if root else paths.state_dir() / "keys"
        self.source = source or KeySource.from_env()
        self._master: bytes | None = None

    # -- the master key -------------------------------------------------------------
    def master(self) -> bytes:
        """The master key, checked against this keyring (fail closed on a wrong one)."""
        if self._master is not None:
            return self._master
        check = self.root / "check"
        key = self.source.read(create=not check.exists() and not self._has_project_keys())
        if check.exists():
            blob = check.read_bytes()
            try:
                if AESGCM(key).decrypt(blob[:12], blob[12:], b"check") != _CHECK_PLAINTEXT:
                    raise InvalidTag
            except (InvalidTag, ValueError) as exc:
                raise KeyUnavailable(
                    f"the master key from {self.source.describe()} is not the key this "
                    f"deployment's data was encrypted with ({self.root}): nothing was opened. "
                    "Restore the original key; see docs/lifecycle.md"
                ) from exc
        else:
            if self._has_project_keys():
                self._check_against_a_project_key(key)
            self.root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
            nonce = secrets.token_bytes(12)
            _write_atomic(check, nonce + AESGCM(key).encrypt(nonce, _CHECK_PLAINTEXT, b"check"))
        self._master = key
        return key

    def _wrapped_keys(self) -> list[tuple[Path, bytes]]:
        """Every wrapped key file with its associated data (projects', then datasets')."""
        found = [(p, f"project:{p.stem}".encode()) for p in sorted(self._folder("projects"))]
        found += [(p, f"dataset:{p.stem}".encode()) for p in sorted(self._folder("datasets"))]
        return found

    def _folder(self, kind: str) -> list[Path]:
        folder = self.root / kind
        return list(folder.glob("*.key")) if folder.is_dir() else []

    def _check_against_a_project_key(self, key: bytes) -> None:
        """With the check file lost, a key is trusted only if it opens a wrapped key."""
        path, aad = self._wrapped_keys()[0]
        record = json.loads(path.read_text())
        try:
            AESGCM(key).decrypt(
                bytes.fromhex(record["nonce"]), bytes.fromhex(record["wrapped"]), aad
            )
        except (InvalidTag, KeyError, ValueError) as exc:
            raise KeyUnavailable(
                f"the master key from {self.source.describe()} does not open {path}: it is "
                "not the key this deployment's data was encrypted with; nothing was opened"
            ) from exc

    def _has_project_keys(self) -> bool:
        """Whether any wrapped key (a project's or a dataset version's) exists: then a
        missing key file is never replaced, and a new key is checked against one."""
        return bool(self._wrapped_keys())

    # -- project keys ---------------------------------------------------------------
    def _path(self, project: str) -> Path:
        if not _NAME.match(project):
            raise KeyUnavailable(f"not a project name: {project!r}")
        return self.root / "projects" / f"{project}.key"

    def project_key(self, project: str, *, create: bool = True) -> bytes:
        """The project's data key; made (and wrapped) on first use when ``create``."""
        path = self._path(project)
        if path.with_suffix(".shredded").exists():
            raise KeyShredded(f"the key of project {project!r} was destroyed (crypto-shredded)")
        return self._unwrap(path, f"project:{project}", f"project {project!r}", create)

    def _unwrap(self, path: Path, aad_text: str, what: str, create: bool) -> bytes:
        """The key wrapped in ``path`` (associated data ``aad_text``); a new one when
        absent and ``create``."""
        master = self.master()
        aad = aad_text.encode()
        if path.exists():
            record = json.loads(path.read_text())
            try:
                return AESGCM(master).decrypt(
                    bytes.fromhex(record["nonce"]), bytes.fromhex(record["wrapped"]), aad
                )
            except (InvalidTag, KeyError, ValueError) as exc:
                raise KeyUnavailable(
                    f"the key of {what} ({path}) does not open with the master key: it "
                    "was changed or copied from another project or dataset version; "
                    "nothing was opened"
                ) from exc
        if not create:
            raise KeyUnavailable(f"{what} has no key ({path})")
        key = secrets.token_bytes(32)
        nonce = secrets.token_bytes(12)
        record = {
            "version": 1,
            "nonce": nonce.hex(),
            "wrapped": AESGCM(master).encrypt(nonce, key, aad).hex(),
        }
        _write_atomic(path, json.dumps(record).encode())
        return key

    def derive(self, project: str, purpose: str, length: int = 32) -> bytes:
        """A key for one use (``purpose``) of the project's data."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=None,
            info=f"cleanroom:{project}:{purpose}".encode(),
        )
        return hkdf.derive(self.project_key(project))

    def has_key(self, project: str) -> bool:
        """Whether a (not shredded) key exists for the project."""
        return self._path(project).exists()

    # -- dataset version keys ---------------------------------------------------------
    def _dataset_path(self, name: str, version: str) -> Path:
        if not (_NAME.match(name) and _VERSION.match(version)):
            raise KeyUnavailable(f"not a dataset version: {name!r} {version!r}")
        return self.root / "datasets" / f"{name}@{version}.key"

    def dataset_key(
        self, name: str, version: str, length: int = 32, *, create: bool = False
    ) -> bytes:
        """A key for a dataset version's library copy: HKDF of its own wrapped key (made
        on first use when ``create``, that is at registration or encryption)."""
        path = self._dataset_path(name, version)
        tombstone = path.with_suffix(".shredded")
        if tombstone.exists() and create and not path.exists():
            # A new registration of a deleted version's name: a new key, which opens
            # nothing of the old one (its key stays destroyed).
            tombstone.unlink()
        if tombstone.exists():
            raise KeyShredded(
                f"the key of dataset {name} version {version} was destroyed (crypto-shredded)"
            )
        base = self._unwrap(path, f"dataset:{name}@{version}", f"dataset {name} {version}", create)
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=None,
            info=f"cleanroom:dataset:{name}@{version}:library".encode(),
        )
        return hkdf.derive(base)

    def has_dataset_key(self, name: str, version: str) -> bool:
        """Whether a (not shredded) key exists for the dataset version."""
        return self._dataset_path(name, version).exists()

    def forget_dataset_key(self, name: str, version: str) -> None:
        """Remove a dataset version's key that never protected anything kept (a failed
        registration); a key that did is shredded instead (``shred_dataset``)."""
        self._dataset_path(name, version).unlink(missing_ok=True)

    def shred_dataset(self, name: str, version: str) -> bool:
        """Destroy a dataset version's key (crypto-shredding, as ``shred``)."""
        return self._shred(self._dataset_path(name, version))

    def shred(self, project: str) -> bool:
        """Destroy the project's key (crypto-shredding); a tombstone says it was done.

        The wrapped key is overwritten before it is unlinked (on a copy-on-write or
        journalling filesystem the old blocks may survive: the key is still wrapped by the
        master key, so a stolen disk without the master key shows nothing either way).
        """
        return self._shred(self._path(project))

    def _shred(self, path: Path) -> bool:
        existed = path.exists()
        if existed:
            size = path.stat().st_size
            with path.open("r+b") as f:
                f.write(secrets.token_bytes(size))
                f.flush()
                os.fsync(f.fileno())
            path.unlink()
        _write_atomic(path.with_suffix(".shredded"), b"")
        return existed
