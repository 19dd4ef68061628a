"""Stop every running workspace that would no longer be allowed to start.

A workspace runs only while it could start: its project approved and not past its end
date, its user a current member, each mounted dataset version approved by its provider.
The spawner refuses starts; this stops what is already running when one of those ends.
It runs as a hub-managed service (``cleanroom enforce --every 60``) and can be run by
hand. Each stop is journaled with its reason, logged, and the reason is what the
person sees when they try to start the workspace again.

Each round also applies the retention policy (``cleanroom.lifecycle.retention``): the
data of ended projects is deleted once its period has passed.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from cleanroom.errors import CleanroomError, Forbidden, NotFound
from cleanroom.hub.lifeline import HubWatch
from cleanroom.registry import Registry
from cleanroom.registry.events import WorkspaceStopped
from cleanroom.registry.governance import Governance


@dataclass(frozen=True)
class Stopped:
    """One workspace stopped, and why."""

    user: str
    project: str
    reason: str


def overdue(registry: Registry, instance: str) -> list[tuple[str, str, str]]:
    """(user, project, reason) for every running workspace that may no longer run."""
    found: dict[tuple[str, str], str] = {}
    for user, project in _running_pairs(instance):
        try:
            registry.workspace_plan(user, project)
        except (Forbidden, NotFound) as exc:
            found[(user, project)] = str(exc)
    return [(u, p, r) for (u, p), r in sorted(found.items())]


def _running_pairs(instance: str) -> list[tuple[str, str]]:
    """(user, project) of every running workspace, from the backend's ground truth."""
    from cleanroom.kubernetes.hub_config import backend

    if backend() == "kubernetes":
        from cleanroom.kubernetes.workloads import workspace_pods

        return [(p.user, p.project) for p in workspace_pods(instance=instance)]
    from cleanroom.workspace.containers import workspace_containers
    from cleanroom.workspace.labels import LABEL_PROJECT, LABEL_USER

    return [
        (c.labels.get(LABEL_USER, ""), c.labels.get(LABEL_PROJECT, ""))
        for c in workspace_containers(instance=instance)
    ]


def _stop_everywhere(user: str, project: str, instance: str) -> None:
    from cleanroom.workspace.stopping import stop_by_label

    stop_by_label(user, project, instance)


def enforce_once(registry: Registry, instance: str) -> list[Stopped]:
    """Stop every overdue workspace through the hub and, whatever it says, by label."""
    from cleanroom.hub.api import HubAPI

    governance = Governance(registry)
    stopped = []
    for user, project, reason in overdue(registry, instance):
        try:
            HubAPI().stop_server(user, project)
        except CleanroomError as exc:
            print(f"cleanroom enforce: hub did not stop {user}/{project}: {exc}", file=sys.stderr)
        _stop_everywhere(user, project, instance)
        governance.record(
            WorkspaceStopped(actor="enforcer", project=project, user=user, reason=reason),
            actor="enforcer",
        )
        print(
            f"cleanroom enforce: stopped workspace {user}/{project}: {reason}",
            file=sys.stderr,
            flush=True,
        )
        stopped.append(Stopped(user, project, reason))
    return stopped


def enforce_forever(registry: Registry, instance: str, every: float) -> None:
    """Enforce every ``every`` seconds until interrupted; one failed round is logged.

    As a hub-managed service it ends with its hub: a hub killed outright (``kill -9``)
    leaves its services behind, and an orphaned enforcer would go on stopping, by label,
    the workspaces of whatever hub of this instance starts next, which it knows nothing
    about."""
    from cleanroom.lifecycle.retention import enforce_deployment

    watch = HubWatch()
    while True:
        if watch.hub_gone():
            print("cleanroom enforce: the hub is gone; stopping", file=sys.stderr, flush=True)
            return
        try:
            enforce_once(registry, instance)
            enforce_deployment(registry, instance)
        except CleanroomError as exc:
            print(f"cleanroom enforce: round failed: {exc}", file=sys.stderr, flush=True)
        except Exception as exc:  # the engine or database hiccuped: try again next round
            print(f"cleanroom enforce: round failed: {exc!r}", file=sys.stderr, flush=True)
        time.sleep(every)
