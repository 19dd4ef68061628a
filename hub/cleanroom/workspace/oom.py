"""How many processes of a container the kernel's OOM killer ended.

Docker's ``State.OOMKilled`` covers the container's main process only (on cgroup v1 an
``exec``'d or child process killed for memory leaves it false), yet the usual victim is a
notebook kernel, a child of the server. The kernel counts every kill in the container's
memory cgroup, so we read that: ``memory.oom_control`` (cgroup v1) or ``memory.events``
(cgroup v2), under the engine's cgroupfs or systemd layout.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cleanroom.hub import metrics
from cleanroom.registry import Registry
from cleanroom.registry.events import WorkspaceOutOfMemory
from cleanroom.registry.governance import Governance
from cleanroom.workspace.labels import LABEL_PROJECT, LABEL_USER

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _candidates(container_id: str, root: Path) -> list[Path]:
    return [
        root / "memory" / "docker" / container_id / "memory.oom_control",
        root / "memory" / "system.slice" / f"docker-{container_id}.scope" / "memory.oom_control",
        root / "docker" / container_id / "memory.events",
        root / "system.slice" / f"docker-{container_id}.scope" / "memory.events",
    ]


def oom_kills(container_id: str, root: Path = CGROUP_ROOT) -> int | None:
    """The container's OOM kill count, or None when no cgroup file is readable."""
    if not container_id:
        return None
    for path in _candidates(container_id, root):
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def out_of_memory_message(user: str, project: str, limit: int, processes: int = 1) -> str:
    """What the hub says when a workspace hit its memory limit."""
    what = "a process" if processes == 1 else f"{processes} processes"
    return (
        f"workspace {user}/{project}: out of memory: the kernel's OOM killer ended {what} "
        f"at the workspace's memory limit of {limit // 2**20} MiB (quota tier); "
        "use less memory or ask an operator for a larger tier"
    )


def report_new_kills(
    container: dict[str, Any],
    seen: int,
    registry: Registry,
    log: logging.Logger,
    *,
    user: str,
    project: str,
) -> int:
    """Log, count and journal the OOM kills of ``container`` beyond the ``seen`` ones.

    ``container`` is the engine's inspect data; its labels name the user and project
    (``user`` and ``project`` when they do not). Returns the kills seen now.
    """
    kills = oom_kills(container.get("Id", ""))
    if kills is None:
        kills = 1 if container.get("State", {}).get("OOMKilled") else 0
    if kills <= seen:
        return seen
    new = kills - seen
    limit = container.get("HostConfig", {}).get("Memory") or 0
    labels = (container.get("Config") or {}).get("Labels") or {}
    user = labels.get(LABEL_USER) or user
    project = labels.get(LABEL_PROJECT) or project
    log.warning("%s", out_of_memory_message(user, project, limit, new))
    metrics.OOM_KILLS.labels(project).inc(new)
    try:
        Governance(registry).record(
            WorkspaceOutOfMemory(
                actor="hub",
                project=project,
                user=user,
                memory_limit=str(limit),
                processes_killed=new,
            ),
            actor="hub",
        )
    except Exception:  # the warning above is what matters; the journal may be busy
        log.exception("Could not journal the out-of-memory event")
    return kills
