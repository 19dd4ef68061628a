"""The airlock's blob store sealed per project: the bytes on disk are not the plaintext,
a blob opens only under its own key and name, a wrong key fails closed, the airlock's
whole flow (submit, review, release, download) works unchanged on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cleanroom.airlock.blobs import BlobStore
from cleanroom.airlock.database import open_storage
from cleanroom.airlock.domain import Decision, FileUpload, State
from cleanroom.airlock.exceptions import IntegrityFailure
from cleanroom.airlock.membership import StaticMembership
from cleanroom.airlock.policy import Policy
from cleanroom.airlock.service import Airlock
from cleanroom.lifecycle.keys import Keyring, KeyShredded, KeyUnavailable

from tests.airlock.conftest import Clock, fake_checks
from tests.airlock.factories import MEMBERS, PROJECT, actor, review, submit

MARKER = b"MARKER-7f3a-plaintext-row,42\n"


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_sealed_on_disk_and_read_back(keyring: Keyring, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", keyring)
    data = MARKER * 50
    sha = store.put(data, "p-alpha")
    assert store.put(data, "p-alpha") == sha  # idempotent
    assert MARKER not in _all_bytes(tmp_path / "blobs")
    assert store.get(sha, "p-alpha") == data
    # The same bytes in another project are another blob, under another key.
    store.put(data, "p-beta")
    a, b = store.path_for(sha, "p-alpha"), store.path_for(sha, "p-beta")
    assert a.read_bytes() != b.read_bytes()


def test_a_blob_moved_to_another_project_does_not_open(keyring: Keyring, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", keyring)
    sha = store.put(MARKER, "p-alpha")
    other = store.path_for(sha, "p-beta")
    other.parent.mkdir(parents=True)
    other.write_bytes(store.path_for(sha, "p-alpha").read_bytes())
    with pytest.raises(IntegrityFailure, match="does not open"):
        store.get(sha, "p-beta")


def test_a_changed_byte_is_never_served(keyring: Keyring, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", keyring)
    sha = store.put(MARKER, "p-alpha")
    path = store.path_for(sha, "p-alpha")
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityFailure, match="does not open"):
        store.get(sha, "p-alpha")


def test_a_wrong_master_key_fails_closed(keyring: Keyring, tmp_path: Path) -> None:
    sha = BlobStore(tmp_path / "blobs", keyring).put(MARKER, "p-alpha")
    keyring.source.file.write_text("11" * 32)
    with pytest.raises(KeyUnavailable, match="not the key"):
        BlobStore(tmp_path / "blobs", Keyring(tmp_path / "keys", keyring.source)).get(
            sha, "p-alpha"
        )


def test_shredded_project_blobs_cannot_be_read(keyring: Keyring, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", keyring)
    sha = store.put(MARKER, "p-alpha")
    keep = store.put(MARKER, "p-beta")
    keyring.shred("p-alpha")
    with pytest.raises(KeyShredded):
        store.get(sha, "p-alpha")
    assert store.get(keep, "p-beta") == MARKER


def test_plain_blobs_from_before_encryption_are_still_served(
    keyring: Keyring, tmp_path: Path
) -> None:
    sha = BlobStore(tmp_path / "blobs").put(MARKER)
    assert BlobStore(tmp_path / "blobs", keyring).get(sha, "p-alpha") == MARKER


def test_the_airlock_flow_on_a_sealed_store(keyring: Keyring, tmp_path: Path) -> None:
    airlock = Airlock(
        storage=open_storage(f"sqlite:///{tmp_path / 'airlock.sqlite'}", clock=Clock()),
        blobs=BlobStore(tmp_path / "sealed", keyring),
        membership=StaticMembership(MEMBERS),
        policy=Policy(),
        checks=fake_checks,
        clock=Clock(),
    )
    body = b"group,count\n" + MARKER
    request = submit(airlock, files=[FileUpload(path="out/t.csv", data=body, description="d")])
    assert MARKER not in _all_bytes(tmp_path / "sealed")
    _, seen = airlock.file_content(actor(airlock, "olga"), request.id, "out/t.csv")
    assert seen == body
    review(airlock, request.id, "olga", Decision.APPROVE)
    review(airlock, request.id, "oscar", Decision.APPROVE)
    assert airlock.release(actor(airlock, "olga"), request.id).state is State.RELEASED
    _, got = airlock.download(actor(airlock, "alice", PROJECT), request.id, "out/t.csv")
    assert got == body
