"""The label fallback that stops a removed member's workspace (whatever the hub says)
takes the session's viewer with it; other sessions' viewers stay."""

from __future__ import annotations

import contextlib

import docker
import pytest
from cleanroom.settings import image_repository
from cleanroom.workspace.containers import stop_workspace_containers

from tests.integration.harness import INSTANCE

pytestmark = pytest.mark.docker


def _fake_viewer(client: docker.DockerClient, user: str) -> str:
    container = client.containers.run(
        f"{image_repository()}/base:latest",
        ["sleep", "300"],
        detach=True,
        labels={
            "cleanroom.kind": "viewer",
            "cleanroom.instance": INSTANCE,
            "cleanroom.user": user,
            "cleanroom.project": "p-cleanup",
        },
        network_mode="none",
    )
    return str(container.id)


def test_stopping_a_session_by_its_labels_removes_its_viewer(workspace_images: list[str]) -> None:
    client = docker.from_env()
    mine, other = _fake_viewer(client, "vic"), _fake_viewer(client, "walt")
    try:
        assert stop_workspace_containers("vic", "p-cleanup", INSTANCE) == 0  # no workspace
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(mine)
        assert client.containers.get(other).status == "running"
    finally:
        for container_id in (mine, other):
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(container_id).remove(force=True)
