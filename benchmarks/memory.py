"""Memory of an idle workspace container and of the hub-side processes."""

from __future__ import annotations

from typing import Any

import docker
import psutil
from cleanroom.workspace.status import used_memory

MIB = 1024 * 1024


def container_memory(container_id: str) -> dict[str, float]:
    """A container's memory in MiB, as ``docker stats`` shows it, and its resident part.

    ``used`` is the cgroup's usage less inactive page cache (what ``docker stats`` and
    the kernel's OOM decisions count); ``rss`` is anonymous memory only.
    """
    stats = docker.from_env().api.stats(container_id, stream=False)
    detail = (stats.get("memory_stats") or {}).get("stats") or {}
    rss = float(detail.get("total_rss", detail.get("anon", 0)))
    return {"used_mib": used_memory(stats) / MIB, "rss_mib": rss / MIB}


def process_memory(pid: int) -> dict[str, float]:
    """Resident and unique memory (MiB) of one process."""
    proc = psutil.Process(pid)
    info = proc.memory_full_info()
    return {"rss_mib": info.rss / MIB, "uss_mib": info.uss / MIB}


def containers_of(label: str) -> list[Any]:
    """Running containers carrying ``label`` (``key=value``)."""
    return list(docker.from_env().containers.list(filters={"label": label}))
