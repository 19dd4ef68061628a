"""The viewer of a restricted workspace: what its container is, and starting and stopping it.

In the restricted access mode (``cleanroom.registry.access``) the researcher's browser
never talks to JupyterLab. Each workspace session gets a viewer container of its own
(image ``viewer``: Xvfb, a kiosk Chromium, x11vnc, websockify and noVNC; see
``images/viewer/``), and the egress gateway sends the researcher only its noVNC page and
VNC stream.

The wiring: the project network has inter-container traffic off (members cannot reach
each other), so the viewer and its workspace share a **link network** of their own: an
internal /29 from :data:`DEFAULT_LINK_POOL`, with a bridge of the deployment's prefix,
so the host firewall treats it like a project bridge (no route out, no DNS, the host
only on the hub API and airlock ports). The workspace joins it as a second network;
the viewer sits on it alone with the workspace. So only the viewer's Chromium (and the
gateway, for the hub's health check) reaches the JupyterLab server, and the gateway
reaches the viewer's port :data:`VIEWER_PORT` on the link network's bridge.

The viewer is hardened like a workspace: the same seccomp profile, every capability
dropped (it needs none), ``no-new-privileges``, its own uid (:data:`VIEWER_UID`),
a read-only root with size-limited tmpfs mounts, a pid and memory limit, no IPv6.
Like :mod:`cleanroom.workspace.spec`, the container's settings are pure functions of a
:class:`ViewerPlan`; :class:`Viewers` does the engine calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import threading
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import APIError, NotFound

from cleanroom.errors import CleanroomError
from cleanroom.isolation.networks import bridge_prefix, create_in_pool
from cleanroom.workspace import spec
from cleanroom.workspace.labels import LABEL_INSTANCE, LABEL_KIND, LABEL_PROJECT, LABEL_USER

VIEWER_PORT = 6080
VIEWER_UID = 1002
VIEWER_HOME = "/home/viewer"
DEFAULT_LINK_POOL = "10.214.0.0/16"
# A /29 holds the bridge (the host side), the workspace and the viewer: 8192 sessions.
LINK_PREFIX = 29
DEFAULT_GEOMETRY = "1280x800"
# Chromium with JupyterLab, Xvfb's framebuffer and x11vnc: about 450 MiB measured
# (benchmarks/viewer.py); tmpfs counts against this too.
DEFAULT_MEMORY_BYTES = 2 * 1024**3
VIEWER_PIDS = 512
VIEWER_TMP_BYTES = 512 * 1024**2
VIEWER_HOME_BYTES = 64 * 1024**2
KIND_VIEWER = "viewer"
KIND_LINK = "viewer-link"


class ViewerError(CleanroomError):
    """The viewer of a restricted workspace could not be started; nothing is left."""

    status = 503


def _short_hash(value: str, length: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def session_key(instance: str, user: str, project: str) -> str:
    """A short, name-safe key of one user's session of one project in a deployment."""
    return _short_hash(f"{instance}\0{user}\0{project}", 10)


def viewer_name(instance: str, user: str, project: str) -> str:
    """The viewer container's name."""
    return f"cleanroom-viewer-{instance}-{session_key(instance, user, project)}"


def link_network_name(instance: str, user: str, project: str) -> str:
    """The Docker network joining one workspace and its viewer."""
    return f"cleanroom-{instance}-view-{session_key(instance, user, project)}"


def link_bridge_name(instance: str, user: str, project: str) -> str:
    """The link network's bridge: the deployment's prefix, so the host firewall covers it."""
    return bridge_prefix(instance) + "v" + session_key(instance, user, project)[:8]


@dataclass(frozen=True)
class ViewerPlan:
    """Everything one viewer container is decided from."""

    user: str
    project: str
    instance: str
    image: str
    network: str
    dns: str
    lab_url: str
    ready_url: str
    geometry: str = DEFAULT_GEOMETRY
    memory_bytes: int = DEFAULT_MEMORY_BYTES


def check_geometry(value: str) -> str:
    """``WIDTHxHEIGHT`` within 640x480..3840x2160, or a clear error."""
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"viewer geometry {value!r} must be WIDTHxHEIGHT, e.g. 1280x800") from exc
    if not (640 <= width <= 3840 and 480 <= height <= 2160):
        raise ValueError(f"viewer geometry {value!r} must lie within 640x480 and 3840x2160")
    return f"{width}x{height}"


def labels(plan: ViewerPlan) -> dict[str, str]:
    """The viewer's labels (never a secret: anyone who may list containers reads them)."""
    return {
        LABEL_USER: plan.user,
        LABEL_PROJECT: plan.project,
        LABEL_KIND: KIND_VIEWER,
        LABEL_INSTANCE: plan.instance,
    }


def environment(plan: ViewerPlan) -> dict[str, str]:
    """The viewer's settings (``images/viewer/bin/cleanroom-viewer`` reads them).

    The lab URL carries the server's own hub token: the viewer's Chromium is the one
    browser of the session. Nothing of the viewer is reachable by the researcher but
    the picture of its screen.
    """
    return {
        "CLEANROOM_VIEWER_URL": plan.lab_url,
        "CLEANROOM_VIEWER_READY_URL": plan.ready_url,
        "CLEANROOM_VIEWER_GEOMETRY": plan.geometry,
        "CLEANROOM_PROJECT": plan.project,
        "HOME": VIEWER_HOME,
    }


def host_config(plan: ViewerPlan) -> dict[str, Any]:
    """The viewer's host config: the workspace's wall, with no capability at all."""
    return {
        "mem_limit": plan.memory_bytes,
        "memswap_limit": plan.memory_bytes,
        "cap_drop": ["ALL"],
        "security_opt": spec.security_options(),
        "pids_limit": VIEWER_PIDS,
        "read_only": True,
        "tmpfs": {
            "/tmp": f"size={VIEWER_TMP_BYTES},mode=1777",
            VIEWER_HOME: f"size={VIEWER_HOME_BYTES},mode=0700,uid={VIEWER_UID},gid={VIEWER_UID}",
        },
        "shm_size": VIEWER_TMP_BYTES,
        "dns": [plan.dns],
        "dns_search": ["."],
        "dns_opt": ["timeout:1", "attempts:1"],
        "sysctls": {"net.ipv6.conf.all.disable_ipv6": "1"},
        "init": False,
        "network_mode": plan.network,
    }


def check_host_config(host: dict[str, Any]) -> None:
    """Raise :class:`spec.SpecError` unless ``host`` holds the wall (fail closed): the
    workspace's checks, and no capability added at all."""
    if host.get("cap_add"):
        raise spec.SpecError("the viewer runs without any capability")
    spec.check_host_config(host)


def lab_urls(link_ip: str, port: int, base_url: str, token: str) -> tuple[str, str]:
    """(the page the viewer's Chromium opens, the URL that answers once the server is up)."""
    base = f"http://{link_ip}:{port}{base_url}"
    return f"{base}lab?token={token}", f"{base}api"


@dataclass(frozen=True)
class ViewerSession:
    """A started viewer: where the gateway reaches it, where it reaches the workspace."""

    container_id: str
    target: str
    workspace_ip: str


class Viewers:
    """Starts and stops viewers and their link networks on one Docker engine."""

    _lock = threading.Lock()

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        instance: str,
        pool: str = DEFAULT_LINK_POOL,
    ) -> None:
        self.client = client
        self.instance = instance
        self.pool = ipaddress.ip_network(pool)
        if self.pool.prefixlen > LINK_PREFIX:
            raise CleanroomError(f"the viewer link pool {pool} is smaller than a /{LINK_PREFIX}")

    # -- the link network -----------------------------------------------------------
    def link_network(self, user: str, project: str) -> Any:
        """The session's link network, created (fresh) when missing."""
        name = link_network_name(self.instance, user, project)
        with self._lock:
            try:
                return self.client.networks.get(name)
            except NotFound:
                pass
            net = create_in_pool(
                self.client,
                self.pool,
                LINK_PREFIX,
                name,
                labels={
                    LABEL_USER: user,
                    LABEL_PROJECT: project,
                    LABEL_KIND: KIND_LINK,
                    LABEL_INSTANCE: self.instance,
                },
                options={
                    "com.docker.network.bridge.name": link_bridge_name(
                        self.instance, user, project
                    ),
                    # The two containers of the session talk to each other.
                    "com.docker.network.bridge.enable_icc": "true",
                },
            )
            if net is not None:
                return net
            raise ViewerError(f"the viewer link pool {self.pool} has no free /{LINK_PREFIX} left")

    def connect_workspace(self, network: Any, container_id: str) -> str:
        """Attach the workspace to the link network; its address there."""
        network.reload()
        if container_id not in (network.attrs.get("Containers") or {}):
            network.connect(container_id)
        container = self.client.containers.get(container_id)
        address = (
            container.attrs["NetworkSettings"]["Networks"].get(network.name, {}).get("IPAddress")
        )
        if not address:
            raise ViewerError("the workspace got no address on its viewer link network")
        return str(address)

    # -- the viewer -----------------------------------------------------------------
    def start(self, plan: ViewerPlan) -> ViewerSession:
        """Start the viewer of ``plan`` (replacing a leftover one of the same session)."""
        host = host_config(plan)
        check_host_config(host)
        name = viewer_name(self.instance, plan.user, plan.project)
        self._remove_container(name)
        container = self.client.containers.run(
            plan.image,
            name=name,
            detach=True,
            user=f"{VIEWER_UID}:{VIEWER_UID}",
            environment=environment(plan),
            labels=labels(plan),
            **host,
        )
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"].get(plan.network, {})
        ip = address.get("IPAddress")
        if not ip:
            self._remove_container(name)
            raise ViewerError("the viewer got no address on its link network")
        return ViewerSession(container.id, f"http://{ip}:{VIEWER_PORT}", "")

    def stop(self, user: str, project: str) -> None:
        """Remove the session's viewer and its link network (both may be gone already)."""
        self._remove_container(viewer_name(self.instance, user, project))
        try:
            network = self.client.networks.get(link_network_name(self.instance, user, project))
        except NotFound:
            return
        network.reload()
        for container_id in network.attrs.get("Containers") or {}:
            with contextlib.suppress(NotFound, APIError):
                network.disconnect(container_id, force=True)
        with contextlib.suppress(NotFound, APIError):
            network.remove()

    def _remove_container(self, name: str) -> None:
        try:
            self.client.containers.get(name).remove(force=True)
        except NotFound:
            return


def server_environment() -> dict[str, str]:
    """What a restricted workspace's server gets besides the usual: it accepts its token in
    the URL of the viewer's first page (JupyterHub refuses that by default), and keeps it
    in its own cookie. Only the viewer reaches the server in this mode."""
    return {"JUPYTERHUB_ALLOW_TOKEN_IN_URL": "1"}
