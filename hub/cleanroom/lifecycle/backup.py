"""Backups that restore: consistent, incremental, encrypted, checksummed.

A backup *repository* (``$CLEANROOM_BACKUP_DIR``, default ``<state>/../backups``: never
inside the state folder it saves) holds

- ``chunks/<id[:2]>/<id>``: pieces of files (4 MiB), each compressed and sealed with
  AES-256-GCM under the backup key; ``id`` is an HMAC-SHA256 of the plaintext under that
  key (a plain hash would let anyone holding the repository confirm a guessed file). A
  chunk already in the repository is never written again: a second backup of a mostly
  unchanged deployment writes only what changed (incremental for the large parts: the
  work and project filesystems, the library, the blob store).
- ``snapshots/<id>.snap``: the sealed manifest of one backup: every file's path, mode,
  size, sha256 and chunk ids, and every database's dump.

What a backup holds: everything under the state folder (registry, hub and airlock
databases with the journal and audit chains, the airlock's blobs, the library and its
indexes, the work and project filesystems, the wrapped project keys), except
``secrets/`` (the master key must never sit beside what it opens; the other secrets
are made afresh), lock files and files being written. Databases are copied with SQLite's
online backup API, or ``pg_dump`` for PostgreSQL URLs, *before* the files: the airlock
writes a request's blobs before its rows, so every request in the copy finds its files.
A filesystem in use by a workspace is frozen (``fsfreeze``) while it is copied, so its
copy is what the disk held at one instant, never a half-written block.

The backup key is derived from the master key (``keys.KeySource``): restoring on a fresh
machine needs the same key source, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cleanroom import paths
from cleanroom.errors import CleanroomError, Conflict, InvalidInput, NotFound
from cleanroom.lifecycle.keys import KeySource
from cleanroom.workspace import encrypted_fs

CHUNK = 4 * 2**20
SKIPPED_DIRS = {"secrets"}
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
SKIPPED_SUFFIXES = (".lock", ".part", "-wal", "-shm", "-journal")
Progress = Callable[[int, int, str], None]
DATABASE_URLS = {"registry": "CLEANROOM_REGISTRY_URL", "airlock": "CLEANROOM_AIRLOCK_DB_URL"}


class BackupError(CleanroomError):
    """A backup could not be made, read or restored; nothing was changed."""

    status = 500


def _quiet(done: int, total: int, name: str) -> None:
    return None


def default_repository() -> Path:
    """``$CLEANROOM_BACKUP_DIR`` or ``backups/`` beside the state folder."""
    env = os.environ.get("CLEANROOM_BACKUP_DIR")
    return Path(env).resolve() if env else paths.state_dir().parent / "backups"


@dataclass(frozen=True)
class Database:
    """One database of the deployment: its name in the backup and its URL."""

    name: str
    url: str


def deployment_databases(state: Path) -> list[Database]:
    """The registry, hub and airlock databases, wherever their URLs put them."""
    found = [Database(name, os.environ.get(var) or "") for name, var in DATABASE_URLS.items()]
    # SQLite files in the state folder are found by the walk; only the others are named.
    return [db for db in found if db.url.startswith("postgresql")]


# -- keys and sealing -------------------------------------------------------------------
class _Sealer:
    def __init__(self, master: bytes) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=None, info=b"cleanroom:backup"
        ).derive(master)
        self._aead = AESGCM(derived[:32])
        self._mac = derived[32:]

    def chunk_id(self, data: bytes) -> str:
        return hmac.new(self._mac, data, hashlib.sha256).hexdigest()

    def seal(self, data: bytes, aad: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return b"CRK1" + nonce + self._aead.encrypt(nonce, _pack(data), aad.encode())

    def open(self, blob: bytes, aad: str) -> bytes:
        if not blob.startswith(b"CRK1"):
            raise BackupError(f"{aad}: not a cleanroom backup object")
        try:
            return _unpack(self._aead.decrypt(blob[4:16], blob[16:], aad.encode()))
        except InvalidTag as exc:
            raise BackupError(
                f"{aad} does not open with the backup key: a wrong key source (the master "
                "key differs from the one the backup was made with) or a damaged repository"
            ) from exc


def _pack(data: bytes) -> bytes:
    """Compressed when that pays: most of a deployment's bytes (encrypted filesystems,
    sealed blobs) are incompressible, and zlib on them costs more than the copy itself,
    so a 64 KiB sample decides."""
    sample = data[: 64 * 1024]
    if sample and len(zlib.compress(sample, 1)) < 0.9 * len(sample):
        return b"\x01" + zlib.compress(data, 1)
    return b"\x00" + data


def _unpack(packed: bytes) -> bytes:
    if packed[:1] == b"\x01":
        return zlib.decompress(packed[1:])
    if packed[:1] == b"\x00":
        return packed[1:]
    raise BackupError("a backup object of an unknown format")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Snapshot:
    """What one backup holds (the manifest, once opened)."""

    id: str
    created: float
    state: str
    label: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    databases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Bytes of the state it restores."""
        return sum(int(f["size"]) for f in self.files) + sum(int(d["size"]) for d in self.databases)


class Repository:
    """A backup repository on a local (or mounted) folder."""

    def __init__(self, root: Path, source: KeySource | None = None) -> None:
        self.root = Path(root)
        self.source = source or KeySource.from_env()
        self._sealer: _Sealer | None = None

    @property
    def sealer(self) -> _Sealer:
        """The backup key, from the master key (never created here)."""
        if self._sealer is None:
            self._sealer = _Sealer(self.source.read(create=False))
        return self._sealer

    def _chunk_path(self, chunk_id: str) -> Path:
        return self.root / "chunks" / chunk_id[:2] / chunk_id

    def put_chunk(self, data: bytes) -> tuple[str, bool]:
        """Store a chunk unless present; (its id, whether it was written now)."""
        chunk_id = self.sealer.chunk_id(data)
        path = self._chunk_path(chunk_id)
        if path.exists():
            return chunk_id, False
        _write_atomic(path, self.sealer.seal(data, f"chunk {chunk_id}"))
        return chunk_id, True

    def get_chunk(self, chunk_id: str) -> bytes:
        """A chunk's bytes, authenticated and checked against its id."""
        path = self._chunk_path(chunk_id)
        try:
            blob = path.read_bytes()
        except FileNotFoundError as exc:
            raise BackupError(f"chunk {chunk_id} is missing from {self.root}") from exc
        data = self.sealer.open(blob, f"chunk {chunk_id}")
        if not hmac.compare_digest(self.sealer.chunk_id(data), chunk_id):
            raise BackupError(f"chunk {chunk_id} does not match its id")
        return data

    def snapshots(self) -> list[Snapshot]:
        """Every backup in the repository, oldest first."""
        folder = self.root / "snapshots"
        if not folder.is_dir():
            return []
        found = [self.snapshot(p.stem) for p in folder.glob("*.snap")]
        return sorted(found, key=lambda s: s.created)

    def snapshot(self, snapshot_id: str) -> Snapshot:
        """One backup's manifest."""
        path = self.root / "snapshots" / f"{snapshot_id}.snap"
        if not snapshot_id or "/" in snapshot_id or not path.exists():
            raise NotFound(f"no backup {snapshot_id!r} in {self.root}")
        record = json.loads(self.sealer.open(path.read_bytes(), f"snapshot {snapshot_id}"))
        return Snapshot(**record)

    def save(self, snap: Snapshot) -> None:
        """Write a manifest (last: a backup exists only once all its chunks do)."""
        data = json.dumps(snap.__dict__).encode()
        _write_atomic(
            self.root / "snapshots" / f"{snap.id}.snap",
            self.sealer.seal(data, f"snapshot {snap.id}"),
        )


# -- making a backup --------------------------------------------------------------------
def _walk(state: Path, repository: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(state):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not (here == state and d in SKIPPED_DIRS)
            and (here / d).resolve() != repository.resolve()
            and not (here / d).is_mount()
        )
        for name in sorted(filenames):
            path = here / name
            if name.endswith(SKIPPED_SUFFIXES) or name.startswith(".tmp-") or path.is_symlink():
                continue
            yield path


def _chunks(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(length, bytes) of each chunk; None for a chunk that is all hole (sparse files)."""
    with path.open("rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        offset = 0
        while offset < size:
            length = min(CHUNK, size - offset)
            try:
                data_at = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:
                data_at = size  # ENXIO: nothing but hole from here on
            if data_at >= offset + length:
                yield length, None
            else:
                f.seek(offset)
                yield length, f.read(length)
            offset += length


def _digest(d: Any, length: int, data: bytes | None) -> None:
    """A file's checksum: its data, and each hole by its length (zeros by definition, so
    a 2 GiB sparse filesystem is not hashed as 2 GiB of zeros)."""
    d.update(data if data is not None else b"\0hole:%d\0" % length)


@contextlib.contextmanager
def _frozen(path: Path) -> Iterator[None]:
    """Freeze an unlocked encrypted filesystem while its file is copied."""
    mnt = encrypted_fs.mountpoint(path) if path.suffix == ".ext4" else None
    if mnt is None or not os.path.ismount(mnt):
        yield
        return
    subprocess.run(["fsfreeze", "-f", str(mnt)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["fsfreeze", "-u", str(mnt)], check=True, capture_output=True)


def _sqlite_copy(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API)."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _pg_dump(url: str, dst: Path) -> None:
    done = subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", f"--file={dst}", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[:300]}")


class _Writer:
    def __init__(self, repo: Repository, progress: Progress, total: int) -> None:
        self.repo, self.progress, self.total = repo, progress, total
        self.done = 0
        self.written = 0

    def store(self, path: Path, name: str) -> dict[str, Any]:
        digest = hashlib.sha256()
        chunks: list[list[Any]] = []  # [length, id or None]
        for length, data in _chunks(path):
            _digest(digest, length, data)
            if data is None:
                chunks.append([length, None])
            else:
                chunk_id, new = self.repo.put_chunk(data)
                self.written += length if new else 0
                chunks.append([length, chunk_id])
            self.done += length
            self.progress(min(self.done, self.total), self.total, name)
        size = sum(length for length, _ in chunks)
        return {"size": size, "sha256": digest.hexdigest(), "chunks": chunks}


def _pieces(repo: Repository, entry: dict[str, Any]) -> Iterator[tuple[int, bytes | None]]:
    for length, chunk_id in entry["chunks"]:
        if chunk_id is None:
            yield length, None
            continue
        data = repo.get_chunk(chunk_id)
        if len(data) != length:
            raise BackupError(f"chunk {chunk_id} has {len(data)} bytes, not {length}")
        yield length, data


def create(
    state: Path | None = None,
    repository: Path | None = None,
    *,
    source: KeySource | None = None,
    progress: Progress = _quiet,
    only: list[Path] | None = None,
    label: str = "",
) -> tuple[Snapshot, int]:
    """Back up ``state`` into ``repository``; (the snapshot, bytes of new chunks written).

    ``only`` limits the backup to some folders of the state (a project's archive, made
    at its closure: its files and blobs, no databases: those stay in the deployment).
    """
    state = Path(state or paths.state_dir()).resolve()
    repo = Repository(Path(repository or default_repository()).resolve(), source)
    if not state.is_dir():
        raise InvalidInput(f"no state folder at {state}")
    if repo.root == state or state in repo.root.parents:
        raise InvalidInput(f"the backup repository {repo.root} must not lie inside {state}")
    repo.sealer  # noqa: B018 - the key first: a missing key changes nothing
    repo.root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    snap = Snapshot(
        id=f"{stamp}-{secrets.token_hex(3)}", created=time.time(), state=str(state), label=label
    )
    files = list(_walk(state, repo.root))
    if only is not None:
        roots = [Path(p).resolve() for p in only]
        files = [p for p in files if any(p == r or r in p.parents for r in roots)]
        files = [p for p in files if p.suffix not in SQLITE_SUFFIXES]
    sqlite_files = [p for p in files if p.suffix in SQLITE_SUFFIXES]
    total = sum(p.stat().st_size for p in files)
    writer = _Writer(repo, progress, total)
    with tempfile.TemporaryDirectory(prefix="cleanroom-backup-") as tmp:
        # Databases first (see the module's docstring): rows never outrun their blobs.
        for db_file in sqlite_files:
            rel = str(db_file.relative_to(state))
            copy = Path(tmp) / "db"
            _sqlite_copy(db_file, copy)
            entry = writer.store(copy, rel)
            snap.databases.append({"name": rel, "kind": "sqlite", **entry})
            copy.unlink()
        for db in deployment_databases(state) if only is None else []:
            copy = Path(tmp) / f"{db.name}.pgdump"
            _pg_dump(db.url, copy)
            entry = writer.store(copy, db.name)
            snap.databases.append({"name": db.name, "kind": "postgresql", **entry})
            copy.unlink()
    for path in files:
        if path in sqlite_files:
            continue
        rel = str(path.relative_to(state))
        with _frozen(path):
            entry = writer.store(path, rel)
        snap.files.append({"path": rel, "mode": path.stat().st_mode & 0o7777, **entry})
    repo.save(snap)
    return snap, writer.written


# -- verifying and restoring ------------------------------------------------------------
def verify(
    repository: Path | None = None,
    snapshot_id: str | None = None,
    *,
    source: KeySource | None = None,
    progress: Progress = _quiet,
) -> list[str]:
    """Problems found re-reading a backup (every chunk opened, every file re-hashed)."""
    repo = Repository(Path(repository or default_repository()), source)
    snaps = [repo.snapshot(snapshot_id)] if snapshot_id else repo.snapshots()
    if not snaps:
        raise NotFound(f"no backups in {repo.root}")
    problems: list[str] = []
    for snap in snaps:
        total, done = snap.size, 0
        for entry in [*snap.databases, *snap.files]:
            name = entry.get("path") or entry["name"]
            digest = hashlib.sha256()
            try:
                for length, data in _pieces(repo, entry):
                    _digest(digest, length, data)
            except BackupError as exc:
                problems.append(f"{snap.id} {name}: {exc}")
                continue
            if digest.hexdigest() != entry["sha256"]:
                problems.append(f"{snap.id} {name}: does not match its checksum")
            done += int(entry["size"])
            progress(done, total, name)
    return problems


def _write_file(repo: Repository, entry: dict[str, Any], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with target.open("wb") as f:
        for length, data in _pieces(repo, entry):
            _digest(digest, length, data)
            if data is None:
                f.seek(length, os.SEEK_CUR)  # keep the hole: the restored file stays sparse
            else:
                f.write(data)
        f.truncate(int(entry["size"]))
        f.flush()
        os.fsync(f.fileno())
    if digest.hexdigest() != entry["sha256"]:
        raise BackupError(f"{target}: restored bytes do not match the backup's checksum")


def _pg_restore(url: str, dump: Path) -> None:
    done = subprocess.run(
        ["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={url}", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()[:300]}")


def restore(
    snapshot_id: str,
    state: Path | None = None,
    repository: Path | None = None,
    *,
    source: KeySource | None = None,
    progress: Progress = _quiet,
    databases: dict[str, str] | None = None,
) -> Snapshot:
    """Restore a backup into an empty (or absent) state folder.

    Everything is written into a hidden folder beside it and moved into place only once
    every file matched its checksum, so a failed restore leaves the target as it was.
    ``databases`` maps a PostgreSQL database's name (``registry``, ``airlock``) to the
    URL to restore it into (default: the deployment's own URL from the environment).
    """
    state = Path(state or paths.state_dir()).resolve()
    repo = Repository(Path(repository or default_repository()), source)
    snap = repo.snapshot(snapshot_id)
    if state.exists() and any(state.iterdir()):
        raise Conflict(f"{state} is not empty: restore into a fresh state folder")
    targets = {db.name: db.url for db in deployment_databases(state)} | (databases or {})
    for db in snap.databases:
        if db["kind"] == "postgresql" and not targets.get(db["name"]):
            raise InvalidInput(
                f"the backup holds the PostgreSQL database {db['name']!r}: say where to "
                f"restore it ({DATABASE_URLS.get(db['name'], 'its URL')})"
            )
    state.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{state.name}.restoring-", dir=state.parent))
    try:
        total, done = snap.size, 0
        dumps = []
        for entry in [*snap.databases, *snap.files]:
            name = entry.get("path") or entry["name"]
            if entry.get("kind") == "postgresql":
                dump = staging / f".{name}.pgdump"
                _write_file(repo, entry, dump)
                dumps.append((targets[name], dump))
            else:
                target = staging / name
                _write_file(repo, entry, target)
                if "mode" in entry:
                    os.chmod(target, int(entry["mode"]))
            done += int(entry["size"])
            progress(done, total, name)
        for url, dump in dumps:
            _pg_restore(url, dump)
            dump.unlink()
        state.mkdir(exist_ok=True)
        for child in staging.iterdir():
            os.replace(child, state / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return snap
