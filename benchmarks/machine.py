"""What the numbers were measured on: cores, memory, versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import docker
import psutil


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "-"


def _proxy_version() -> str:
    tool = shutil.which("configurable-http-proxy")
    if tool is None:
        return "-"
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "-"


def _source() -> str:
    """The commit measured, and whether the working tree differed from it."""
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return f"{head or '-'}{' + uncommitted changes' if dirty else ''}"


def describe(image: str) -> dict[str, Any]:
    """The machine and software versions, for the report."""
    client = docker.from_env()
    engine = client.version()
    try:
        image_id = str(client.images.get(image).id)[7:19]
    except docker.errors.ImageNotFound:
        image_id = "-"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": cores,
        "cpu": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "jupyterhub": _version("jupyterhub"),
        "dockerspawner": _version("dockerspawner"),
        "docker_engine": engine.get("Version", "-"),
        "cgroup": client.info().get("CgroupVersion", "-"),
        "configurable_http_proxy": _proxy_version(),
        "image": f"{image} ({image_id})",
        "source": _source(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
