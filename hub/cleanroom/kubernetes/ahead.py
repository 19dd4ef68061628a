"""Folder claims made ahead: a member's work claim and their project's claim exist, and are
bound, before the member's first start.

A new claim is bound by the cluster's volume controller some tenths of a second after it
is made, and a start cannot create its pod before (the scheduler would back the pod off
for seconds): measured on the test cluster, that bind was most of what a first start
took longer than a repeated one (docs/benchmarks.md). So the hub runs this as a managed
service (``cleanroom kube-ahead --every 2``, :mod:`cleanroom.hub.services`): every round
it reads the registry and makes the folders' node folders, volumes and claims of each
current member of each open project that it has not made yet (one registry read a round;
nothing is asked of the cluster for a pair already done). The spawner still makes
whatever is missing at the start, so a member added a moment before their first start,
or a claim an operator deleted, only costs that start the bind again.

Only folders are made ahead. Dataset volumes stay at the start: an encrypted version's
volume names the node folder it is unlocked at, which exists only while a workspace uses
it. NetworkPolicies stay at the start too: they are replaced there at every start (so
they are exactly as designed), concurrently with the claims, and cost that start nothing.

It reads the same settings as the spawner's defaults (``CLEANROOM_K8S_NAMESPACE``,
``CLEANROOM_K8S_FOLDER_STORAGE``, ``CLEANROOM_K8S_STORAGE_CLASS``, the state folder's
``workspaces``); a deployment that sets the spawner's storage traits in a configuration
file of its own instead turns it off (``CLEANROOM_K8S_AHEAD=off``), since a claim made
with other settings would stay as it is.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date

from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.rest import ApiException

from cleanroom import paths
from cleanroom.errors import CleanroomError
from cleanroom.hub.lifeline import HubWatch
from cleanroom.kubernetes import pods, workloads
from cleanroom.kubernetes.folders import FOLDER_STORAGE, FolderStorage
from cleanroom.registry import ProjectInfo, Registry
from cleanroom.registry.access import is_restricted
from cleanroom.workspace import quotas

AHEAD_ENV = "CLEANROOM_K8S_AHEAD"
# Everything is checked against the cluster again this often (a deleted claim comes back).
RECHECK_SECONDS = 600.0


def enabled() -> bool:
    """Whether the hub runs the service (``$CLEANROOM_K8S_AHEAD``, default on)."""
    value = os.environ.get(AHEAD_ENV, "on").strip().lower()
    if value in ("", "on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise CleanroomError(f"{AHEAD_ENV}={value!r}: use on or off")


def storage_from_env(instance: str) -> FolderStorage:
    """The spawner's folder storage as its defaults read it from the environment."""
    kind = os.environ.get("CLEANROOM_K8S_FOLDER_STORAGE", "").strip() or "dynamic"
    if kind not in FOLDER_STORAGE:
        raise CleanroomError(
            f"CLEANROOM_K8S_FOLDER_STORAGE={kind!r}: use {' or '.join(FOLDER_STORAGE)}"
        )
    return FolderStorage(
        namespace=workloads.namespace(instance),
        folder_storage=kind,
        storage_class=os.environ.get("CLEANROOM_K8S_STORAGE_CLASS", "").strip() or None,
        workspaces_root=str(paths.workspaces_dir()),
    )


def wanted(registry: Registry, today: date | None = None) -> list[tuple[ProjectInfo, str]]:
    """(project, member) of every current member of every open project that can run on
    this backend (restricted projects cannot: their starts are refused)."""
    today = today or date.today()
    out: list[tuple[ProjectInfo, str]] = []
    for info in registry.list_projects():
        if not info.is_open(today) or is_restricted(info):
            continue
        out.extend((info, member) for member in info.members)
    return out


@dataclass
class Ahead:
    """One deployment's folders made ahead; ``done`` remembers what needs no more."""

    registry: Registry
    instance: str
    storage: FolderStorage
    done: set[tuple[str, str, str]] = field(default_factory=set)
    ended: set[tuple[str, str, str]] = field(default_factory=set)
    _namespace_ready: bool = False

    async def round(self, api: CoreV1Api) -> int:
        """Make what the registry's current members lack; how many claims were made."""
        loop = asyncio.get_running_loop()
        pairs = await loop.run_in_executor(None, wanted, self.registry)
        todo = []
        tiers: dict[str, quotas.QuotaTier] | None = None
        for info, user in pairs:
            key = (info.name, user, info.quota_tier)
            if key in self.done or key in self.ended:
                continue
            # Ended memberships are still listed; the spawner's own check, read fresh
            # (and not again for this pair until the next full check).
            if not await loop.run_in_executor(None, self.registry.is_member, user, info.name):
                self.ended.add(key)
                continue
            if tiers is None:
                tiers = quotas.load_tiers()  # the policy file, read once a round
            tier = tiers.get(info.quota_tier)
            if tier is None:
                print(
                    f"cleanroom kube-ahead: {info.name}: no quota tier {info.quota_tier!r}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            todo.append((key, self._plan(info, user, tier)))
        if not todo:
            return 0
        if not self._namespace_ready:
            # The spawner makes the namespace (and waits for its service account).
            if not await _namespace_exists(api, self.storage.namespace):
                return 0
            self._namespace_ready = True
        made = 0
        for key, plan in todo:
            made += await self.storage.ensure(api, plan)
            self.done.add(key)
        return made

    def _plan(self, info: ProjectInfo, user: str, tier: quotas.QuotaTier) -> pods.PodPlan:
        # Folders depend on the project, the member, the tier and the instance only.
        return pods.PodPlan(
            user=user, project=info, tier=tier, image="", image_ref="", instance=self.instance
        )

    def forget(self) -> None:
        """Check everything against the cluster again at the next round."""
        self.done.clear()
        self.ended.clear()
        self._namespace_ready = False


async def _namespace_exists(api: CoreV1Api, name: str) -> bool:
    try:
        await api.read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


async def run_forever(ahead: Ahead, every: float) -> None:
    """A round every ``every`` seconds until the hub that started it is gone; a failed
    round (the cluster or the database hiccuped) is logged and tried again."""
    watch = HubWatch()
    checked = time.monotonic()
    async with ApiClient(await workloads.client_config()) as client:
        api = CoreV1Api(client)
        while True:
            if watch.hub_gone():
                print("cleanroom kube-ahead: the hub is gone; stopping", file=sys.stderr)
                return
            if time.monotonic() - checked > RECHECK_SECONDS:
                ahead.forget()
                checked = time.monotonic()
            try:
                made = await ahead.round(api)
                if made:
                    print(f"cleanroom kube-ahead: made {made} claims", flush=True)
            except Exception as exc:  # logged, tried again next round
                print(f"cleanroom kube-ahead: round failed: {exc!r}", file=sys.stderr, flush=True)
            await asyncio.sleep(every)


async def run_once(ahead: Ahead) -> int:
    """One round (``cleanroom kube-ahead`` without ``--every``)."""
    async with ApiClient(await workloads.client_config()) as client:
        return await ahead.round(CoreV1Api(client))
