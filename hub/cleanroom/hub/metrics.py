"""Cleanroom's own Prometheus metrics, served by the hub at ``/hub/metrics``.

JupyterHub exposes every metric of the process's default registry, so counters defined
here appear beside its own (spawn durations, running servers, active users).
"""

from __future__ import annotations

from prometheus_client import Counter

from cleanroom.errors import CleanroomError, Conflict, Forbidden, NotFound

SPAWN_REFUSALS = Counter(
    "cleanroom_spawn_refusals",
    "Workspace starts refused by cleanroom's rules, by reason",
    ["reason"],
)
OOM_KILLS = Counter(
    "cleanroom_workspace_oom_kills",
    "Processes the kernel's OOM killer ended in workspaces at their memory limit",
    ["project"],
)


def refusal_reason(exc: CleanroomError) -> str:
    """A small, fixed set of label values (labels must not grow without bound)."""
    if isinstance(exc, Conflict):
        return "quota"
    if isinstance(exc, Forbidden):
        return "forbidden"
    if isinstance(exc, NotFound):
        return "not_found"
    return "other"
