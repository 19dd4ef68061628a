"""What a workspace container is, as pure functions of a plan (no engine, no hub).

The spawner decides a :class:`WorkspacePlan` (who, which project, which tier, which
network) and hands these functions' results to Docker; tests call them directly. Like
KubeSpawner's ``objects.py``: everything here can be read and tested without a container.

The container wall (see docs/architecture.md, "Hardening"):

- **uids**: the container starts as root only so that the image's entry point can start
  the Jupyter server as uid :data:`SERVER_UID` with the five :data:`SERVER_CAPABILITIES`
  (ambient); the server starts every kernel and terminal as :data:`RESEARCHER_UID` with
  none. tini (PID 1) stays root. Researcher code can signal, trace or read neither.
- **seccomp**: our own profile (``cleanroom.isolation.seccomp``), never Docker's default
  and never unconfined; :func:`check_host_config` refuses a host config without it.
- **no-new-privileges**, every other capability dropped, a pid limit.
- **disks**: a read-only root filesystem; every writable path is a size-limited tmpfs
  (:func:`tmpfs_mounts`, sizes from the quota tier) or a size-limited folder volume.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cleanroom.errors import CleanroomError
from cleanroom.isolation import seccomp
from cleanroom.isolation.networks import ProjectNetwork
from cleanroom.registry import ProjectInfo
from cleanroom.workspace.folders import WORKSPACE_HOME
from cleanroom.workspace.labels import (
    LABEL_IMAGE,
    LABEL_INSTANCE,
    LABEL_KIND,
    LABEL_PROJECT,
    LABEL_USER,
)
from cleanroom.workspace.quotas import QuotaTier

RESEARCHER_UID = 1000
SERVER_UID = 1001
# The workspace's server: the cleanroom extension's own launcher of jupyter_server, which
# admits only the server's token (the gateway's) and starts without importing the hub
# (extensions/cleanroom_workspace/server.py). The images keep jupyterhub-singleuser as CMD.
SERVER_COMMAND = ["cleanroom-workspace-server"]
# What the server needs, and only the server (kernels and terminals get none):
# SETUID/SETGID/SETPCAP to start kernels and terminals as the researcher with an empty
# bounding set, KILL to interrupt and stop them (another uid), DAC_OVERRIDE to save
# files the researcher's processes wrote whatever their mode.
SERVER_CAPABILITIES = ("SETUID", "SETGID", "SETPCAP", "KILL", "DAC_OVERRIDE")
# The server's own tmpfs: its runtime folder (cookie secret) and kernel connection files.
SERVER_RUN_DIR = "/run/cleanroom"
SERVER_RUN_SIZE = 16 * 1024**2
LABEL_DATASETS = "cleanroom.datasets"
SERVER_SECRET_ENV = "CLEANROOM_SERVER_SECRET"


class SpecError(CleanroomError):
    """A container configuration that would not hold the wall; nothing is started."""

    status = 500


@dataclass(frozen=True)
class WorkspacePlan:
    """Everything the container of one workspace is decided from."""

    user: str
    project: ProjectInfo
    tier: QuotaTier
    network: ProjectNetwork
    image: str
    instance: str


def labels(plan: WorkspacePlan) -> dict[str, str]:
    """The container's labels: how the hub, the CLI and the enforcer find it.

    Never a secret: labels are readable by anyone who may list containers.
    """
    return {
        LABEL_USER: plan.user,
        LABEL_PROJECT: plan.project.name,
        LABEL_IMAGE: plan.image,
        LABEL_KIND: "workspace",
        LABEL_INSTANCE: plan.instance,
        LABEL_DATASETS: ",".join(f"{d.name}@{d.version}" for d in plan.project.datasets),
    }


def create_kwargs(plan: WorkspacePlan) -> dict[str, Any]:
    """Arguments of the container's creation besides its host config.

    ``user`` is root: only the image's entry point runs as root (with the capabilities
    of :func:`host_config`), and it starts the server as :data:`SERVER_UID`.
    """
    return {"user": "0:0", "labels": labels(plan)}


def tmpfs_mounts(tier: QuotaTier) -> dict[str, str]:
    """Every writable path of the container besides its folder volumes, size-limited.

    The home folder holds ``~/.local``, ``~/.cache``, ``~/.ipython`` (the work folder is
    mounted inside it); a tmpfs counts against the container's memory limit as well.
    """
    home = tier.home_bytes
    tmp = tier.tmp_bytes
    return {
        WORKSPACE_HOME: f"size={home},mode=0775,uid={RESEARCHER_UID},gid={RESEARCHER_UID}",
        "/tmp": f"size={tmp},mode=1777",
        "/var/tmp": f"size={tmp},mode=1777",
        # Owned by the server, readable by the researcher's group: kernels read their
        # connection files in /run/cleanroom/kernels; the runtime folder is 0700.
        SERVER_RUN_DIR: f"size={SERVER_RUN_SIZE},mode=0750,uid={SERVER_UID},gid={RESEARCHER_UID}",
    }


def security_options(profile_json: str | None = None) -> list[str]:
    """``no-new-privileges`` and our seccomp profile (its JSON, as the engine API takes it)."""
    return [
        "no-new-privileges:true",
        f"seccomp={profile_json if profile_json is not None else seccomp.profile_json()}",
    ]


def host_config(plan: WorkspacePlan) -> dict[str, Any]:
    """The container's host config: limits, capabilities, seccomp, disks, DNS.

    Memory, CPU and binds are set through DockerSpawner's own options (``mem_limit``,
    ``cpu_limit``, ``volumes``); everything else is here.
    """
    tier = plan.tier
    host: dict[str, Any] = {
        # Swap counts against the limit: a hog is stopped, not left thrashing the host.
        "memswap_limit": tier.memory_bytes,
        "cap_drop": ["ALL"],
        "cap_add": list(SERVER_CAPABILITIES),
        "security_opt": security_options(),
        "pids_limit": tier.pids,
        "read_only": True,
        "tmpfs": tmpfs_mounts(tier),
        # /dev/shm is a tmpfs of Docker's own (64 MiB unless told): the tier's tmp size.
        "shm_size": tier.tmp_bytes,
        # The embedded resolver forwards to these servers from inside the workspace:
        # the gateway, where the host firewall refuses port 53. No name leaves.
        "dns": [plan.network.gateway],
        "dns_search": ["."],
        "dns_opt": ["timeout:1", "attempts:1"],
        # No IPv6: link-local addresses would be a second way to the host.
        "sysctls": {"net.ipv6.conf.all.disable_ipv6": "1"},
        # The image's tini is PID 1; Docker's own init would put itself in between.
        "init": False,
    }
    if tier.gpus:
        host["device_requests"] = [{"count": tier.gpus, "capabilities": [["gpu"]]}]
    return host


def check_host_config(host: dict[str, Any]) -> None:
    """Raise :class:`SpecError` unless ``host`` holds the wall: our seccomp profile (and
    it refuses what it must), no-new-privileges, every capability dropped but the
    server's, a pid limit, a read-only root with size-limited tmpfs mounts."""
    options = host.get("security_opt") or []
    profiles = [o.split("=", 1)[1] for o in options if o.startswith("seccomp=")]
    if len(profiles) != 1 or profiles[0] in ("unconfined", ""):
        raise SpecError("a workspace needs exactly one seccomp profile of its own")
    try:
        seccomp.check(json.loads(profiles[0]))
    except (ValueError, seccomp.ProfileError) as exc:
        raise SpecError(f"the workspace's seccomp profile is unfit: {exc}") from exc
    if "no-new-privileges:true" not in options:
        raise SpecError("a workspace needs no-new-privileges")
    if host.get("cap_drop") != ["ALL"]:
        raise SpecError("a workspace drops every capability (cap_drop ALL)")
    extra = set(host.get("cap_add") or []) - set(SERVER_CAPABILITIES)
    if extra:
        raise SpecError(f"capabilities a workspace never gets: {', '.join(sorted(extra))}")
    if not host.get("pids_limit"):
        raise SpecError("a workspace needs a pid limit")
    if host.get("read_only") is not True:
        raise SpecError("a workspace's root filesystem is read-only")
    mounts = host.get("tmpfs") or {}
    unsized = [path for path, options in mounts.items() if "size=" not in options]
    if unsized or not mounts:
        raise SpecError(f"tmpfs without a size: {', '.join(unsized) or '(none at all)'}")
    if not host.get("shm_size"):
        raise SpecError("a workspace's /dev/shm needs a size (shm_size)")


def server_environment(
    plan: WorkspacePlan,
    *,
    hub_api_port: int,
    hub_base_url: str,
    airlock_submit_port: int,
    server_secret: str,
) -> dict[str, str]:
    """What the spawner adds to JupyterHub's environment of the server.

    The hub API on the project's gateway (the only address a workspace reaches), the
    project, its datasets and the person, and the per-start server secret.
    """
    gateway = plan.network.gateway
    hub = f"http://{gateway}:{hub_api_port}"
    env = {
        "JUPYTERHUB_API_URL": f"{hub}{hub_base_url}api",
        "JUPYTERHUB_ACTIVITY_URL": f"{hub}{hub_base_url}api/users/{plan.user}/activity",
        "CLEANROOM_PROJECT": plan.project.name,
        "CLEANROOM_DATASETS": ",".join(d.name for d in plan.project.datasets),
        "CLEANROOM_USER": plan.user,
        # Proof of the real server: see the gateway. Only the server's uid can read it
        # (the entry point and the server run as other uids than kernels, and the
        # launcher strips it from every kernel's and terminal's environment).
        SERVER_SECRET_ENV: server_secret,
    }
    if airlock_submit_port:
        env["CLEANROOM_AIRLOCK_URL"] = f"http://{gateway}:{airlock_submit_port}"
    return env
