"""The data library and the incoming folder encrypted at rest (docs/lifecycle.md): a
registered version lies on disk as one filesystem file whose bytes hold neither the
contents nor the names of its files; it opens with its own key and no other; clear
versions from before are moved in without losing a byte; incoming deliveries land
encrypted."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from cleanroom.cli.main import main as cleanroom
from cleanroom.errors import Conflict
from cleanroom.library import at_rest
from cleanroom.library import register as library
from cleanroom.lifecycle import at_rest_status
from cleanroom.lifecycle.keys import Keyring, KeyUnavailable
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.workspace import encrypted_fs, incoming, ingress_holds, storage_quota

MARKER = "MARKER-library-at-rest-5d0e7"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CLEANROOM_REGISTRY_URL", raising=False)
    monkeypatch.delenv("CLEANROOM_ENCRYPTION", raising=False)
    monkeypatch.delenv("CLEANROOM_KEY_COMMAND", raising=False)
    monkeypatch.delenv("CLEANROOM_KEY_FILE", raising=False)
    return Registry()


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "source"
    (src / "sub").mkdir(parents=True, exist_ok=True)
    (src / f"{MARKER}-name.csv").write_text("id,note\n" + f"1,{MARKER}\n" * 2000)
    (src / "sub" / "rows.csv").write_text(
        "a,b\n" + "".join(f"{i},{MARKER}{i}\n" for i in range(99))
    )
    return src


def _holds(path: Path, needle: bytes) -> bool:
    """Whether a (sparse) file's bytes contain ``needle``: holes skipped, read in pieces."""
    piece = 4 * 2**20
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                offset = os.lseek(f.fileno(), offset, os.SEEK_DATA)
            except OSError:
                return False
            f.seek(offset)
            if needle in f.read(piece + len(needle)):
                return True
            offset += piece
    return False


def _register(registry: Registry, src: Path, version: str = "v1") -> DatasetInfo:
    return library.register_dataset(
        registry, src, name="press", version=version, provider="Acme", actor="op",
        build_index=False,
    )  # fmt: skip


def _locked(image: Path) -> bool:
    return not encrypted_fs.is_unlocked(image) and not storage_quota.loop_devices(image)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_registered_version_is_ciphertext_and_reads_back(
    registry: Registry, tmp_path: Path
) -> None:
    src = _source(tmp_path)
    info = _register(registry, src)
    image = at_rest.image_of(info.location)
    assert at_rest.is_encrypted(info.location) and encrypted_fs.is_encrypted(image)
    assert not Path(info.location).exists()  # no clear copy beside it
    assert _locked(image)  # registration leaves nothing unlocked
    assert not [p for p in image.parent.iterdir() if p.name.startswith(".")]
    os.sync()
    # A stolen disk: neither the contents nor the file names are in its bytes.
    assert not _holds(image, MARKER.encode())
    assert _holds(src / "sub" / "rows.csv", MARKER.encode())  # the probe does find it
    with at_rest.opened(info.location, "press", "v1") as folder:
        got = {path: _sha(folder / path) for path, _, _ in info.files}
        assert got == {path: sha for path, _, sha in info.files}
        with pytest.raises(OSError):  # read-only, even for root on the host
            (folder / "new.txt").write_text("x")
    assert _locked(image)


def test_a_wrong_key_fails_closed(registry: Registry, tmp_path: Path) -> None:
    info = _register(registry, _source(tmp_path))
    v2 = _register(registry, _source(tmp_path), version="v2")
    image = at_rest.image_of(info.location)
    keys = Path(os.environ["CLEANROOM_STATE_DIR"]) / "keys" / "datasets"
    # Another version's wrapped key copied over this one's does not open.
    mine = (keys / "press@v1.key").read_bytes()
    (keys / "press@v1.key").write_bytes((keys / "press@v2.key").read_bytes())
    with pytest.raises(KeyUnavailable, match="copied from another"):
        at_rest.opened(info.location, "press", "v1").__enter__()
    assert _locked(image)
    (keys / "press@v1.key").write_bytes(mine)
    # Another master key opens nothing at all.
    key_file = Path(os.environ["CLEANROOM_STATE_DIR"]) / "secrets" / "master.key"
    key_file.write_text("ab" * 32 + "\n")
    with pytest.raises(KeyUnavailable, match="not the key"):
        at_rest.opened(v2.location, "press", "v2").__enter__()
    assert _locked(at_rest.image_of(v2.location))


def test_a_failed_registration_leaves_nothing(registry: Registry, tmp_path: Path) -> None:
    def fail(done: int, total: int, name: str) -> None:
        if done > 1000:
            raise RuntimeError("the copy broke")

    library_dir = Path(os.environ["CLEANROOM_STATE_DIR"]) / "library"
    with pytest.raises(RuntimeError, match="the copy broke"):
        library.register_dataset(
            registry, _source(tmp_path), name="press", version="v1", provider="Acme",
            actor="op", progress=fail, build_index=False,
        )  # fmt: skip
    assert not registry.dataset_exists("press", "v1")
    assert [p.name for p in (library_dir / "press").iterdir()] == []
    assert not Keyring().has_dataset_key("press", "v1")
    with open("/proc/mounts") as mounts:
        assert "cleanroom-register-" not in mounts.read()
    _register(registry, _source(tmp_path))  # the same version registers afterwards


def test_clear_versions_are_moved_in_without_loss(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLEANROOM_ENCRYPTION", "off")
    info = _register(registry, _source(tmp_path))  # as before encryption: a clear folder
    damaged = _register(registry, _source(tmp_path), version="v2")
    monkeypatch.delenv("CLEANROOM_ENCRYPTION")
    assert Path(info.location).is_dir() and not at_rest.is_encrypted(info.location)
    kinds = [i.kind for i in at_rest_status.clear_at_rest(registry)]
    assert kinds == ["dataset version", "dataset version"]
    assert cleanroom(["datasets", "encrypt", "--check"]) == 1
    assert f"in clear: dataset version: {info.location}" in capsys.readouterr().out
    # A clear file that no longer matches its registered sha256 is refused, and kept.
    rows = Path(damaged.location) / "sub" / "rows.csv"
    rows.chmod(0o644)
    rows.write_text("changed\n")
    with pytest.raises(at_rest.LibraryEncryptionError, match="does not match"):
        at_rest_status.encrypt_all(registry, instance="atrest-test")
    assert Path(damaged.location).is_dir() and not at_rest.is_encrypted(damaged.location)
    assert at_rest.is_encrypted(info.location) and not Path(info.location).exists()
    with at_rest.opened(info.location, "press", "v1") as folder:
        assert {p: _sha(folder / p) for p, _, _ in info.files} == {
            p: sha for p, _, sha in info.files
        }
    os.sync()
    assert not _holds(at_rest.image_of(info.location), MARKER.encode())
    # The hub side still reads it: the checks' index is rebuilt from the encrypted copy.
    rebuilt = library.reindex_dataset(registry, "press", "v1", actor="op")
    assert rebuilt.index_location and Path(rebuilt.index_location).is_dir()
    assert _locked(at_rest.image_of(info.location))


def test_incoming_deliveries_land_encrypted(registry: Registry, tmp_path: Path) -> None:
    root = Path(os.environ["CLEANROOM_STATE_DIR"]) / "workspaces"
    with incoming.opened("p-alpha") as folder:
        (folder / f"{MARKER}.csv").write_text(f"{MARKER}\n" * 50)
    image = incoming.image_file("p-alpha", root)
    assert encrypted_fs.is_encrypted(image) and _locked(image)
    assert not (root / "p-alpha" / "incoming").exists()
    os.sync()
    assert not _holds(image, MARKER.encode())
    assert incoming.read_bytes("p-alpha", f"{MARKER}.csv") == f"{MARKER}\n".encode() * 50
    # A plain incoming folder from before is moved in, file for file, and removed.
    plain = root / "p-beta" / "incoming"
    plain.mkdir(parents=True)
    (plain / "codes.csv").write_text(f"{MARKER}\n")
    assert "incoming folder" in [i.kind for i in at_rest_status.clear_at_rest(registry)]
    moved = at_rest_status.encrypt_all(registry, instance="atrest-test")
    assert [(m.kind, m.what, m.done) for m in moved] == [("incoming folder", "p-beta", True)]
    assert not plain.exists()
    assert incoming.read_bytes("p-beta", "codes.csv") == f"{MARKER}\n".encode()
    assert at_rest_status.clear_at_rest(registry) == []
    done = subprocess.run(["losetup", "-j", str(incoming.image_file("p-beta", root))],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stdout == ""


def test_held_ingress_files_are_sealed(registry: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "state" / "ingress"
    data = f"{MARKER}-held\n".encode() * 30
    sha = ingress_holds.hold(folder, "p-alpha", data)
    assert all(MARKER.encode() not in p.read_bytes() for p in folder.iterdir())
    assert ingress_holds.read_held(folder, "p-alpha", sha) == data
    assert ingress_holds.clear_holds(folder) == []
    # Moved under another project's name it does not open (the project is in the AAD).
    (folder / f"{sha}.p-alpha.sealed").rename(folder / f"{sha}.p-beta.sealed")
    with pytest.raises(Conflict, match="does not open"):
        ingress_holds.read_held(folder, "p-beta", sha)
    # A file held in clear before encryption is still read, and reported as clear.
    old = b"held before encryption\n"
    old_sha = hashlib.sha256(old).hexdigest()
    (folder / old_sha).write_bytes(old)
    assert ingress_holds.read_held(folder, "p-alpha", old_sha) == old
    assert [i.kind for i in at_rest_status.clear_at_rest(registry)] == [
        "ingress file held in clear"
    ]


def test_a_version_unlocked_for_a_node_folder_stays_while_another_namespace_binds_it(
    registry: Registry, tmp_path: Path
) -> None:
    """The Kubernetes backend's hostPath: the version is unlocked read-only on the host
    and bound into a container's own mount namespace, which the host's mount table never
    shows. lock_unused must leave it while that bind lives, and lock it after."""
    src = _source(tmp_path)
    info = _register(registry, src)
    image = at_rest.image_of(info.location)
    with at_rest.starting():
        folder = at_rest.unlocked_folder(info.location, "press", "v1")
    assert folder == encrypted_fs.mountpoint(image) / encrypted_fs.DATA_DIR
    assert {path: _sha(folder / path) for path, _, _ in info.files} == {
        path: sha for path, _, sha in info.files
    }
    # A "container": a process in a mount namespace of its own binding the folder.
    target = tmp_path / "container-data"
    target.mkdir()
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"mount --bind {folder} {target} && echo bound && exec sleep 120"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "bound"
        assert not os.path.ismount(target)  # not in the host's (our) namespace
        assert at_rest.lock_unused() == 0
        assert encrypted_fs.is_unlocked(image)
    finally:
        holder.kill()
        holder.wait()
    assert at_rest.lock_unused() == 1
    assert _locked(image)
    # A clear version is its own folder, nothing to unlock.
    clear = tmp_path / "clear-version"
    clear.mkdir()
    assert at_rest.unlocked_folder(clear, "clear", "v1") == clear


def test_mount_tables_are_searched_by_device_number() -> None:
    line = (
        "1283 1201 7:3 /data /data/press-line ro,nosuid,nodev,noexec,relatime "
        "master:1 - ext4 /dev/loop3 ro,noload"
    )
    assert encrypted_fs.mountinfo_has(f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n{line}\n", "7:3")
    assert not encrypted_fs.mountinfo_has(line, "7:30")
    assert not encrypted_fs.mountinfo_has("", "7:3")
