"""Quota'd folders against the real engine and loop devices (root): one loop device per
file however many starts race, a migrated folder keeps its files, release leaves none."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest
from cleanroom.settings import image_repository
from cleanroom.workspace import storage_quota

from tests.ci import skip_or_fail

pytestmark = pytest.mark.docker

INSTANCE = "testfs"


@pytest.fixture
def client() -> docker.DockerClient:
    if os.geteuid() != 0:
        skip_or_fail("loop devices need root")
    return docker.from_env()


def _loops(image_file: Path) -> list[str]:
    out = subprocess.run(
        ["losetup", "-j", str(image_file)], capture_output=True, text=True, check=True
    ).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line]


def test_racing_starts_share_one_loop_device(
    client: docker.DockerClient, tmp_path: Path, workspace_images: list[str]
) -> None:
    image_file = tmp_path / "shared.ext4"
    legacy = tmp_path / "shared"
    legacy.mkdir()
    (legacy / "notes.txt").write_text("kept\n")

    def ensure(_: int) -> str:
        return storage_quota.ensure_folder_volume(
            client,
            image_file=image_file,
            size=32 * 2**20,
            uid=1000,
            instance=INSTANCE,
            labels={},
            legacy=legacy,
        )

    try:
        with ThreadPoolExecutor(4) as pool:
            names = set(pool.map(ensure, range(4)))
        assert len(names) == 1
        assert len(_loops(image_file)) == 1
        assert not legacy.exists()
        assert [p.name.split("-")[0] for p in tmp_path.glob("shared.migrated-*")] == [
            "shared.migrated"
        ]
        (name,) = names
        out = client.containers.run(
            f"{image_repository()}/notebook:latest",
            ["cat", "/f/notes.txt"],
            entrypoint=[],
            user="1000:1000",
            network_disabled=True,
            volumes={name: {"bind": "/f", "mode": "rw"}},
            remove=True,
            labels={"cleanroom.instance": INSTANCE},
        )
        assert out == b"kept\n"
        assert storage_quota.detach_unused(image_file) == 1
        assert _loops(image_file) == []
        ensure(0)  # attached again, the volume re-pointed at the new device
        assert len(_loops(image_file)) == 1
    finally:
        assert storage_quota.release_all(client, INSTANCE, tmp_path) == 1
    assert _loops(image_file) == []
    assert not client.volumes.list(filters={"label": f"cleanroom.instance={INSTANCE}"})
