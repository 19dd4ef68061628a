"""Teardown removes what the deployment made on the host, found by its instance label
(containers, volumes, networks, loop devices and unlocked encrypted folders), leaves
what belongs to other deployments, and reports what it left (the state folder)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import pytest
from cleanroom.lifecycle.closure import teardown
from cleanroom.lifecycle.fscrypt import KEY_SIZE
from cleanroom.workspace import encrypted_fs, storage_quota

pytestmark = pytest.mark.docker

INSTANCE = os.environ.get("CLEANROOM_TEST_INSTANCE", "test")[:8] + "td"
OTHER = os.environ.get("CLEANROOM_TEST_INSTANCE", "test")[:8] + "tx"


@pytest.fixture
def client() -> docker.DockerClient:
    if os.geteuid() != 0:
        message = "loop devices need root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return docker.from_env()


def test_teardown_removes_what_the_deployment_made(
    client: docker.DockerClient, tmp_path: Path, base_image: str
) -> None:
    state = tmp_path / "state"
    image_file = state / "workspaces" / "p-one" / "users" / "ann.ext4"
    image_file.parent.mkdir(parents=True)
    mine = {"cleanroom.instance": INSTANCE}
    others = {"cleanroom.instance": OTHER}
    volume = storage_quota.ensure_folder_volume(
        client, image_file=image_file, size=16 * 2**20, uid=1000, instance=INSTANCE,
        labels={}, key=os.urandom(KEY_SIZE),
    )  # fmt: skip
    network = client.networks.create(f"cleanroom-{INSTANCE}-p-one", internal=True, labels=mine)
    theirs = client.networks.create(f"cleanroom-{OTHER}-p-one", internal=True, labels=others)
    container = client.containers.create(
        base_image, ["sleep", "300"], entrypoint=[], labels=mine,
        volumes={volume: {"bind": "/project", "mode": "rw,nocopy"}},
    )  # fmt: skip
    try:
        report = teardown(INSTANCE, state=state)
        assert report.removed["containers"] == [container.name]
        assert report.removed["filesystems released"] == ["workspaces/p-one/users/ann.ext4"]
        assert report.removed["networks"] == [network.name]
        assert any("state folder" in line for line in report.left)
        for kind in ("containers", "volumes", "networks"):
            assert not getattr(client, kind).list(
                filters={"label": f"cleanroom.instance={INSTANCE}"}
            )
        assert not encrypted_fs.is_unlocked(image_file)
        loops = subprocess.run(
            ["losetup", "-j", str(image_file)], capture_output=True, text=True, check=True
        ).stdout
        assert loops == ""
        assert image_file.exists()  # data is never removed by a teardown
        client.networks.get(theirs.id)  # another deployment's network stays
        again = teardown(INSTANCE, state=state)
        assert "containers" not in again.removed and "networks" not in again.removed
    finally:
        theirs.remove()
        for c in client.containers.list(
            all=True, filters={"label": f"cleanroom.instance={INSTANCE}"}
        ):
            c.remove(force=True)
        storage_quota.release_all(client, INSTANCE, state)
