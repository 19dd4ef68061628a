"""How many processes of a container the kernel's OOM killer ended.

Docker's ``State.OOMKilled`` covers the container's main process only (on cgroup v1 an
``exec``'d or child process killed for memory leaves it false), yet the usual victim is a
notebook kernel, a child of the server. The kernel counts every kill in the container's
memory cgroup, so we read that: ``memory.oom_control`` (cgroup v1) or ``memory.events``
(cgroup v2), under the engine's cgroupfs or systemd layout.
"""

from __future__ import annotations

from pathlib import Path

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
