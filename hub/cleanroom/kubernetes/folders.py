"""A workspace's work and project folders on the cluster: node folders, volumes, claims.

Made by the spawner at every start (:mod:`cleanroom.kubernetes.spawner`) and, before a
member's first start, by :mod:`cleanroom.kubernetes.ahead`: the same objects either way,
each created when missing and otherwise left as it is (a claim keeps its files, and its
spec cannot change once bound).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.rest import ApiException

from cleanroom.kubernetes import pods
from cleanroom.workspace.spec import RESEARCHER_UID

FOLDER_STORAGE = ("dynamic", "hostpath")


async def create_or_keep(create: Callable[..., Awaitable[Any]], *args: Any) -> bool:
    """Create an object; one that exists already is kept as it is. True when made."""
    try:
        await create(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise
        return False
    return True


def make_node_folders(root: str, project: str, user: str) -> None:
    """The node folders of a hostpath workspace, owned by the researcher's uid: the
    Docker backend's layout (``<root>/<project>/users/<user>``, ``<root>/<project>/shared``)."""
    base = Path(root, project)
    for folder, mode in ((base / "users" / user, 0o700), (base / "shared", 0o770)):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, mode)
        if os.geteuid() == 0:
            os.chown(folder, RESEARCHER_UID, RESEARCHER_UID)


@dataclass(frozen=True)
class FolderStorage:
    """How this deployment's work and project folders are stored (the spawner's
    ``folder_storage``, ``storage_class``, ``workspaces_root`` and namespace)."""

    namespace: str
    folder_storage: str  # one of FOLDER_STORAGE
    storage_class: str | None
    workspaces_root: str

    @property
    def static(self) -> bool:
        """Volumes of the node's own folders, no provisioner (the test cluster)."""
        return self.folder_storage == "hostpath"

    def claims(self, plan: pods.PodPlan) -> list[dict[str, Any]]:
        """The work and project claims of ``plan``."""
        return pods.folder_claims(plan, self.namespace, self.storage_class, static=self.static)

    async def ensure_volumes(self, api: CoreV1Api, plan: pods.PodPlan) -> None:
        """For hostpath storage, the node folders and the volumes the claims name."""
        if not self.static:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, make_node_folders, self.workspaces_root, plan.project.name, plan.user
        )
        volumes = pods.folder_volumes(plan, self.workspaces_root)
        await asyncio.gather(*(create_or_keep(api.create_persistent_volume, v) for v in volumes))

    async def ensure(self, api: CoreV1Api, plan: pods.PodPlan) -> int:
        """Volumes (hostpath), then the claims naming them; how many claims were made."""
        await self.ensure_volumes(api, plan)
        create = api.create_namespaced_persistent_volume_claim
        made = await asyncio.gather(
            *(create_or_keep(create, self.namespace, claim) for claim in self.claims(plan))
        )
        return sum(made)
