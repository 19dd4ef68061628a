"""Finding and stopping workspace containers by their labels, without the hub."""

from __future__ import annotations

import contextlib

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from cleanroom.workspace.labels import LABEL_INSTANCE, LABEL_KIND, LABEL_PROJECT, LABEL_USER


def workspace_containers(
    user: str | None = None,
    project: str | None = None,
    instance: str = "main",
    client: docker.DockerClient | None = None,
) -> list[Container]:
    """Running workspace containers of a deployment, optionally of one user and/or project
    (through ``client``, else a new client of the local engine)."""
    filters = [f"{LABEL_KIND}=workspace", f"{LABEL_INSTANCE}={instance}"]
    if user:
        filters.append(f"{LABEL_USER}={user}")
    if project:
        filters.append(f"{LABEL_PROJECT}={project}")
    engine = client or docker.from_env()
    found: list[Container] = engine.containers.list(filters={"label": filters})
    return found


def stop_workspace_containers(user: str, project: str, instance: str = "main") -> int:
    """Stop (and so remove) every workspace container of ``user`` on ``project``, and the
    restricted mode's viewers of that session; how many workspaces."""
    stopped = 0
    engine = docker.from_env()
    for container in workspace_containers(user, project, instance, client=engine):
        try:
            container.stop(timeout=5)
            stopped += 1
        except (NotFound, APIError):
            continue
    viewers = engine.containers.list(
        all=True,
        filters={
            "label": [
                f"{LABEL_KIND}=viewer",
                f"{LABEL_INSTANCE}={instance}",
                f"{LABEL_USER}={user}",
                f"{LABEL_PROJECT}={project}",
            ]
        },
    )
    for container in viewers:
        # Without its workspace a viewer shows nothing; it goes too.
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)
    return stopped
