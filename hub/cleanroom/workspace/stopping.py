"""Stopping one person's workspace of one project, on either backend: the one act the
command line (``members remove``), the enforcer and the operators' console share.

The hub is asked first (so its record of the server ends cleanly); whatever it answers,
every container (Docker) or pod (Kubernetes) of that pair is then stopped by its labels,
so that a hub that is down or out of step cannot leave a workspace running.
"""

from __future__ import annotations

from cleanroom.errors import CleanroomError


def stop_by_label(user: str, project: str, instance: str) -> int:
    """Stop every workspace of ``user`` on ``project`` by its labels, without the hub;
    how many were running."""
    from cleanroom.kubernetes.hub_config import backend

    if backend() == "kubernetes":
        from cleanroom.kubernetes.workloads import stop_workspace_pods

        return stop_workspace_pods(user, project, instance)
    from cleanroom.workspace.containers import stop_workspace_containers

    return stop_workspace_containers(user, project, instance)


def stop_workspace(user: str, project: str, instance: str | None = None) -> bool:
    """Stop ``user``'s workspace of ``project`` through the hub, then by label; True when
    one was running (for the hub or on the engine)."""
    from cleanroom.hub.api import HubAPI
    from cleanroom.settings import Settings

    try:
        stopped = HubAPI().stop_server(user, project)
    except CleanroomError:
        stopped = False
    instance = instance or Settings.from_env().instance
    return stop_by_label(user, project, instance) > 0 or stopped
