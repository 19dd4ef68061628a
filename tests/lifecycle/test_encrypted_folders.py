"""Encrypted quota'd folders against the real kernel, engine and loop devices (root):
a container writes and reads its folder unchanged, the image file on the host disk holds
neither the contents nor the names, a locked folder has no mount and no loop device, and a
wrong key (or none) fails closed and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import pytest
from cleanroom.lifecycle.fscrypt import KEY_SIZE
from cleanroom.workspace import encrypted_fs, storage_quota

pytestmark = pytest.mark.docker

INSTANCE = os.environ.get("CLEANROOM_TEST_INSTANCE", "test") + "fsc"
MARKER = "MARKER-c0ffee-plaintext"
NAME = "secret-name-4711.csv"


@pytest.fixture
def client() -> docker.DockerClient:
    if os.geteuid() != 0:
        message = "loop devices and fscrypt keys need root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return docker.from_env()


def _loops(image_file: Path) -> list[str]:
    out = subprocess.run(
        ["losetup", "-j", str(image_file)], capture_output=True, text=True, check=True
    ).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line]


def _run(client: docker.DockerClient, image: str, volume: str, script: str) -> bytes:
    out: bytes = client.containers.run(
        image,
        ["sh", "-c", script],
        entrypoint=[],
        user="1000:1000",
        network_disabled=True,
        # /project exists in the image: the spawner's nocopy keeps it from being copied up.
        volumes={volume: {"bind": "/project", "mode": "rw,nocopy"}},
        remove=True,
        labels={"cleanroom.instance": INSTANCE},
    )
    return out


def test_encrypted_folder_round_trip(
    client: docker.DockerClient, tmp_path: Path, base_image: str
) -> None:
    image_file = tmp_path / "work.ext4"
    legacy = tmp_path / "work"
    legacy.mkdir()
    (legacy / "old-notes.txt").write_text(f"{MARKER} from before\n")
    key = os.urandom(KEY_SIZE)

    def ensure(key: bytes | None) -> str:
        return storage_quota.ensure_folder_volume(
            client,
            image_file=image_file,
            size=32 * 2**20,
            uid=1000,
            instance=INSTANCE,
            labels={},
            legacy=legacy,
            key=key,
        )

    try:
        volume = ensure(key)
        assert encrypted_fs.is_encrypted(image_file)
        out = _run(
            client,
            base_image,
            volume,
            f"for i in $(seq 200); do echo {MARKER}-$i; done > /project/{NAME}"
            f" && cat /project/old-notes.txt && wc -l < /project/{NAME} && ls /project",
        )
        assert out.decode().split() == [
            MARKER, "from", "before", "200", "old-notes.txt", NAME,
        ]  # fmt: skip
        assert storage_quota.detach_unused(image_file) == 1
        assert _loops(image_file) == []
        assert not encrypted_fs.mountpoint(image_file).exists()
        on_disk = image_file.read_bytes()
        assert MARKER.encode() not in on_disk
        assert NAME.encode() not in on_disk
        assert b"old-notes" not in on_disk

        # Unlocked again: the same files, unchanged.
        volume = ensure(key)
        assert (
            _run(client, base_image, volume, f"tail -n 1 /project/{NAME}")
            == f"{MARKER}-200\n".encode()
        )
        storage_quota.detach_unused(image_file)

        # A wrong key fails closed: refused, nothing mounted, nothing attached.
        with pytest.raises(encrypted_fs.WrongFolderKey, match="does not open"):
            ensure(os.urandom(KEY_SIZE))
        assert _loops(image_file) == []
        assert not encrypted_fs.is_unlocked(image_file)
        with pytest.raises(storage_quota.StorageError, match="encrypted but no key"):
            ensure(None)
        assert _loops(image_file) == []
    finally:
        storage_quota.release_all(client, INSTANCE, tmp_path)
    assert _loops(image_file) == []
    assert not encrypted_fs.is_unlocked(image_file)
    assert not client.volumes.list(filters={"label": f"cleanroom.instance={INSTANCE}"})
