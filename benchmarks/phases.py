"""Where a spawn's time goes, read from the hub's own log.

For every spawn the hub logs, in order: creating the server's OAuth client (the spawn
begins), starting the container, the new server's first activity report to the hub (it
is up), and "took N seconds to start" (the hub declares it ready). The differences are
the phases compared between the two hubs:

- ``prepare``: hub-side work before ``docker start`` (for cleanroom: registry, firewall
  check, network, folders; for both: creating the container);
- ``boot``: the container and JupyterLab starting until the server reports to the hub;
- ``detect``: until the hub notices the server answers and declares it ready.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.stats import summary

PHASES = ("prepare", "boot", "detect")

_LINE = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) JupyterHub [^\]]*\] (.*)$")
_BEGIN = re.compile(
    r"Creating oauth client jupyterhub-user-(.+)$|Updating oauth client jupyterhub-user-(.+)$"
)
# DockerSpawner's; the Kubernetes benchmark passes KubeSpawner's "Attempting to create pod".
_START = re.compile(r"Starting container (\S+)")
_UP = re.compile(r"POST /hub/api/users/([^/]+)/activity")
_READY = re.compile(r"User ([^:]+):(\S+) took [\d.]+ seconds to start")


def _time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def spawn_phases(text: str, start: re.Pattern[str] = _START) -> list[dict[str, float]]:
    """One ``{prepare, boot, detect}`` per completed spawn in a hub log's ``text``;
    ``start`` matches the line that ends *prepare* (its group: the container's name)."""
    open_spawns: dict[str, dict[str, float]] = {}
    done: list[dict[str, float]] = []
    for raw in text.splitlines():
        line = _LINE.match(raw)
        if not line:
            continue
        when, text = _time(line.group(1)), line.group(2)
        if m := _BEGIN.search(text):
            # "<user>-<server>"; benchmark user names hold no dash.
            open_spawns[(m.group(1) or m.group(2)).strip()] = {"begin": when}
        elif m := start.search(text):
            for key, spawn in open_spawns.items():
                user = key.split("-", 1)[0]
                if f"-{user}--" in m.group(1) and "start" not in spawn:
                    spawn["start"] = when
        elif m := _UP.search(text):
            for key, spawn in open_spawns.items():
                if key.split("-", 1)[0] == m.group(1) and "up" not in spawn:
                    spawn["up"] = when
        elif m := _READY.search(text):
            spawn = open_spawns.pop(f"{m.group(1)}-{m.group(2)}", {})
            if {"start", "up"} <= spawn.keys():
                done.append(
                    {
                        "prepare": spawn["start"] - spawn["begin"],
                        "boot": spawn["up"] - spawn["start"],
                        "detect": when - spawn["up"],
                    }
                )
    return done


def log_size(log: Path) -> int:
    """Where the log ends now (to read only what a later step adds)."""
    return log.stat().st_size if log.exists() else 0


def report(log: Path, since: int = 0) -> dict[str, Any]:
    """p50/p95 of each phase over the spawns logged after byte ``since``."""
    with log.open("rb") as f:
        f.seek(since)
        found = spawn_phases(f.read().decode(errors="replace"))
    return {phase: summary([p[phase] for p in found]) for phase in PHASES}
