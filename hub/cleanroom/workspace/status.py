"""What runs now: each workspace with its project, user, image and resource use.

Read from the engine (labels, one ``docker stats`` sample per container), so it shows
what really runs, whatever the hub believes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cleanroom.workspace.labels import LABEL_IMAGE, LABEL_PROJECT, LABEL_USER


@dataclass(frozen=True)
class WorkspaceStatus:
    """One running workspace."""

    user: str
    project: str
    image: str
    image_id: str
    container: str
    started_at: str
    cpu_percent: float
    cpu_limit: float
    memory_bytes: int
    memory_limit: int
    out_of_memory: bool
    oom_kills: int
    datasets: str


def _cpu_percent(stats: dict[str, Any]) -> float:
    """CPU use in percent of one CPU over the sample (as ``docker stats`` computes it)."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
        "total_usage", 0
    )
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
    if used <= 0 or system <= 0:
        return 0.0
    return round(used / system * cpus * 100.0, 1)


def used_memory(stats: dict[str, Any]) -> int:
    """A container's memory in bytes from one engine stats sample, as ``docker stats``
    shows it: the cgroup's usage less inactive page cache (reclaimable)."""
    mem = stats.get("memory_stats") or {}
    inner = mem.get("stats") or {}
    # cgroup v1 names it total_inactive_file, v2 inactive_file.
    cache = inner.get("total_inactive_file", inner.get("inactive_file", 0))
    return max(0, int(mem.get("usage", 0)) - int(cache))


def running_workspaces(instance: str) -> list[WorkspaceStatus]:
    """Every running workspace of the deployment, by project then user."""
    from cleanroom.workspace.containers import workspace_containers
    from cleanroom.workspace.oom import oom_kills

    found = []
    for c in workspace_containers(instance=instance):
        kills = oom_kills(c.id) or 0
        stats = c.stats(stream=False)
        host = c.attrs.get("HostConfig") or {}
        state = c.attrs.get("State") or {}
        found.append(
            WorkspaceStatus(
                user=c.labels.get(LABEL_USER, ""),
                project=c.labels.get(LABEL_PROJECT, ""),
                image=c.labels.get(LABEL_IMAGE, ""),
                image_id=c.attrs.get("Image", ""),
                container=c.name,
                started_at=state.get("StartedAt", ""),
                cpu_percent=_cpu_percent(stats),
                cpu_limit=(host.get("NanoCpus") or 0) / 1e9
                or (host.get("CpuQuota") or 0) / (host.get("CpuPeriod") or 100_000),
                memory_bytes=used_memory(stats),
                memory_limit=int(host.get("Memory") or 0),
                out_of_memory=bool(kills or state.get("OOMKilled")),
                oom_kills=kills,
                datasets=c.labels.get("cleanroom.datasets", ""),
            )
        )
    return sorted(found, key=lambda w: (w.project, w.user))


def describe(rows: list[WorkspaceStatus]) -> str:
    """A table for people."""
    if not rows:
        return "no workspace is running"
    lines = ["PROJECT\tUSER\tIMAGE\tCPU\tMEMORY\tNOTE"]
    for w in rows:
        lines.append(
            f"{w.project}\t{w.user}\t{w.image}\t{w.cpu_percent:.1f}% of {w.cpu_limit:g}\t"
            f"{w.memory_bytes / 2**20:.0f} / {w.memory_limit / 2**20:.0f} MiB\t"
            + (f"out of memory ({w.oom_kills or 1} killed)" if w.out_of_memory else "")
        )
    return "\n".join(lines)
