"""The workspace spawner: "user U works on project P" becomes one hardened container.

Built on DockerSpawner. The named server *is* the project (``/user/<name>/<project>/``).
At every start the registry is read afresh, so membership, project status, datasets and
allowed images are decided on the server, whatever ``user_options`` say.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
from dockerspawner import DockerSpawner
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Bool, Float, Integer, Unicode, default, validate

from cleanroom import paths
from cleanroom.errors import CleanroomError, Conflict, NotFound
from cleanroom.hub import metrics
from cleanroom.isolation.firewall import HostFirewall
from cleanroom.isolation.networks import ProjectNetwork, ProjectNetworks
from cleanroom.library import at_rest
from cleanroom.lifecycle.keys import Keyring
from cleanroom.registry import ProjectInfo, Registry, shared_registry
from cleanroom.registry.access import is_restricted
from cleanroom.registry.people import shared_people
from cleanroom.settings import image_repository
from cleanroom.workspace import (
    culling,
    gateway_routes,
    health,
    interrupted,
    oom,
    quotas,
    spec,
    storage_quota,
    viewer,
)
from cleanroom.workspace.containers import workspace_containers
from cleanroom.workspace.folders import WORKSPACE_HOME, WorkspaceFolders
from cleanroom.workspace.labels import (
    LABEL_IMAGE,
    LABEL_INSTANCE,
    LABEL_KIND,
    LABEL_PROJECT,
    LABEL_USER,
)
from cleanroom.workspace.steps import StepTimer

__all__ = [
    "LABEL_IMAGE",
    "LABEL_INSTANCE",
    "LABEL_KIND",
    "LABEL_PROJECT",
    "LABEL_USER",
    "CleanroomSpawner",
    "http_error",
    "refuse",
]


@functools.cache
def _engine() -> docker.DockerClient:
    return docker.from_env()


_start_queues: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Semaphore] = {}


def _start_queue(slots: int) -> asyncio.Semaphore:
    """The queue of starting workspaces of this hub process (one per event loop)."""
    key = (asyncio.get_running_loop(), slots)
    if key not in _start_queues:
        _start_queues[key] = asyncio.Semaphore(slots)
    return _start_queues[key]


def http_error(status: int, message: str) -> web.HTTPError:
    """An HTTP error whose message JupyterHub shows as is, on pages and in the API."""
    error = web.HTTPError(status, "%s", message)
    # JupyterHub replaces a failed spawn's message with a generic one unless this is set.
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


def requested_project(server_name: str, user_options: dict[str, Any] | None) -> str:
    """The project a named server starts (each workspace is one project's): its name,
    refused when missing or when ``user_options`` asks for another project."""
    if not server_name:
        raise http_error(
            400,
            "Choose a project: each workspace belongs to one project, "
            "started at /hub/spawn/<user>/<project>.",
        )
    asked = (user_options or {}).get("project")
    if asked not in (None, "", server_name):
        raise http_error(
            400,
            f"user_options asks for project {asked!r} but this server is "
            f"{server_name!r}; start the server named after the project",
        )
    return server_name


def refuse(exc: CleanroomError) -> web.HTTPError:
    """Translate a domain refusal into the HTTP error JupyterHub shows the person."""
    return http_error(exc.status, str(exc))


@functools.cache
def _keyring() -> Keyring:
    """The hub's keyring, opened once (the master key is read and checked on first use)."""
    return Keyring()


def check_image_for_tier(
    client: docker.DockerClient, image: str, name: str, tier: quotas.QuotaTier
) -> None:
    """Refuse a GPU tier's workspace whose image cannot use the GPU (its labels say).

    ``image`` is the reference the engine runs, ``name`` the one people know
    (``pytorch``). Other tiers take any allowed image; their starts pay no inspection.
    Raises Forbidden (the rule) or NotFound (no such image on this engine).
    """
    if not tier.gpus:
        return
    try:
        labels = client.images.get(image).labels
    except docker.errors.ImageNotFound as exc:
        raise NotFound(f"image {image!r} is not built on this host") from exc
    quotas.check_image_fits_tier(tier, name, labels)


class CleanroomSpawner(DockerSpawner):
    """DockerSpawner for one user's workspace on one approved project."""

    registry_url = Unicode(
        help="SQLAlchemy URL of the cleanroom registry. Default: the state folder's SQLite file.",
    ).tag(config=True)

    workspaces_root = Unicode(
        help="""Host folder holding work folders (``<project>/users/<user>``) and project
        shared folders (``<project>/shared``). Default: ``<state>/workspaces``.""",
    ).tag(config=True)

    hub_api_port = Integer(
        8081,
        help="""Port of the hub API as workspaces reach it on their network's gateway.
        It must be one of the ports the host firewall allows.""",
    ).tag(config=True)

    airlock_submit_port = Integer(
        0,
        help="""Port of the airlock's submission listener on the gateway (0: no airlock;
        the workspace extension then refuses release requests, clearly).""",
    ).tag(config=True)

    instance = Unicode(
        "main",
        help="""Name of this deployment on the engine. Networks, bridges, firewall chains and
        containers carry it, so a demo and the test suite can share one engine.""",
    ).tag(config=True)

    network_pool = Unicode(
        "10.213.0.0/16",
        help="Address pool that project networks are carved from (one subnet per project).",
    ).tag(config=True)

    network_prefix = Integer(
        24, help="Prefix length of each project's subnet (/24: 256 projects in a /16)."
    ).tag(config=True)

    image_repository = Unicode(
        help="Repository prefix of images: ``notebook`` runs ``cleanroom/notebook:latest``.",
    ).tag(config=True)

    @default("image_repository")
    def _default_image_repository(self) -> str:
        return f"{image_repository()}/"

    workspace_uid = Integer(
        spec.RESEARCHER_UID,
        help="""Numeric user (and group) that owns work folders: the researcher's uid in
        the image (kernels and terminals run as it; the server as 1001); never 0.""",
    ).tag(config=True)

    health_timeout = Float(
        10.0,
        help="""Seconds the hub's poll waits for a running workspace's server to answer
        its health request (without a gateway; with one, the gateway asks the server and
        its own bound applies). A server that does not answer ``health_failures`` polls
        in a row is treated as dead: the hub stops the workspace, logs, counts and
        journals it (a stopped or wedged server must not keep the workspace looking
        healthy).""",
    ).tag(config=True)

    health_failures = Integer(
        2,
        help="Consecutive unanswered health requests after which the server counts as dead.",
    ).tag(config=True)

    require_firewall = Bool(
        True,
        help="""Refuse to start a workspace when the host firewall is not installed.
        Only switch this off for tests that do not touch the network wall.""",
    ).tag(config=True)

    docker_threads = Integer(
        8,
        help="""Threads for calls to the Docker engine, shared by every workspace of the hub.
        DockerSpawner uses one, so each start waited behind every other start's and
        stop's engine calls (a ``docker stop`` alone takes a second or more).""",
    ).tag(config=True)

    max_concurrent_starts = Integer(
        0,
        help="""How many workspace containers may be starting at once (from ``docker
        start`` until their server answers); the others wait their turn, in order.
        0: twice the host's CPUs. JupyterLab's start is CPU-bound, so many at once on a
        small host slow each other (and the hub) towards the start timeout; queued,
        they finish batch after batch.""",
    ).tag(config=True)

    readiness_poll_interval = Float(
        0.05,
        help="""Seconds between checks whether a starting server answers. JupyterHub's own
        check backs off exponentially with jitter (up to 5 s between tries) and found
        servers 0.1-3 s after they answered; this check is one local HTTP request, so the
        hub's own check that follows succeeds at its first try.""",
    ).tag(config=True)

    encrypt_folders = Bool(
        help="""Encrypt work and project folders at rest (fscrypt, keys from the key source;
        see docs/lifecycle.md). Default: on, unless $CLEANROOM_ENCRYPTION is ``off``.
        Off only for hosts whose kernel lacks fscrypt: the files then lie in clear.""",
    ).tag(config=True)

    @default("encrypt_folders")
    def _default_encrypt_folders(self) -> bool:
        return os.environ.get("CLEANROOM_ENCRYPTION", "on") != "off"

    gateway_url = Unicode(
        "",
        help="""Address of the egress gateway's public listener (``http://127.0.0.1:8003``).
        When set, ``start`` returns it instead of the container's address, so the proxy
        and the hub reach the workspace only through the gateway, and registers where
        the server really lives with the gateway. Empty: the proxy goes straight to the
        container (only the benchmarks' plain hub does that).""",
    ).tag(config=True)

    gateway_api_port = Integer(
        8004, help="Port of the gateway's internal API on 127.0.0.1 (route registration)."
    ).tag(config=True)

    viewer_image = Unicode(
        help="""Image of the restricted mode's viewer (Chromium, Xvfb, x11vnc, noVNC), one
        container per workspace session of a restricted project. Default:
        ``<image_repository>viewer:latest`` (built by ``cleanroom images build viewer``).""",
    ).tag(config=True)

    @default("viewer_image")
    def _default_viewer_image(self) -> str:
        return f"{self.image_repository}viewer:latest"

    viewer_network_pool = Unicode(
        viewer.DEFAULT_LINK_POOL,
        help="""Address pool of the restricted mode's link networks (one internal /29 per
        session joins a workspace and its viewer). It must not overlap network_pool.""",
    ).tag(config=True)

    viewer_geometry = Unicode(
        viewer.DEFAULT_GEOMETRY,
        help="Size of the viewer's virtual screen (WIDTHxHEIGHT) in restricted mode.",
    ).tag(config=True)

    viewer_memory = Integer(
        viewer.DEFAULT_MEMORY_BYTES,
        help="""Memory limit of each viewer container in bytes (swap included): Chromium
        with JupyterLab, the virtual screen and its tmpfs.""",
    ).tag(config=True)

    @validate("viewer_geometry")
    def _valid_geometry(self, proposal: Any) -> str:
        return viewer.check_geometry(proposal.value)

    @validate("viewer_memory")
    def _enough_memory(self, proposal: Any) -> int:
        if proposal.value < 256 * 1024**2:
            raise ValueError("CleanroomSpawner.viewer_memory must be at least 256 MiB")
        return int(proposal.value)

    @default("registry_url")
    def _default_registry_url(self) -> str:
        return paths.registry_url()

    @default("workspaces_root")
    def _default_workspaces_root(self) -> str:
        return str(paths.workspaces_dir())

    @default("remove")
    def _default_remove(self) -> bool:
        return True

    @validate("remove")
    def _always_remove(self, proposal: Any) -> bool:
        # A stopped workspace must never come back with an old mount or network.
        if not proposal.value:
            raise ValueError("CleanroomSpawner.remove must stay True")
        return True

    @validate("docker_threads", "readiness_poll_interval", "health_timeout", "health_failures")
    def _positive(self, proposal: Any) -> Any:
        if proposal.value <= 0:
            raise ValueError(f"CleanroomSpawner.{proposal.trait.name} must be > 0")
        return proposal.value

    @validate("max_concurrent_starts")
    def _not_negative(self, proposal: Any) -> int:
        if proposal.value < 0:
            raise ValueError("CleanroomSpawner.max_concurrent_starts must be >= 0 (0: automatic)")
        return int(proposal.value)

    @validate("workspace_uid")
    def _never_root(self, proposal: Any) -> int:
        if proposal.value <= 0:
            raise ValueError("workspaces never run as root: workspace_uid must be > 0")
        return int(proposal.value)

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return list(spec.SERVER_COMMAND)

    @default("prefix")
    def _default_prefix(self) -> str:
        return "cleanroom-ws"

    @default("notebook_dir")
    def _default_notebook_dir(self) -> str:
        return WORKSPACE_HOME

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    @property
    def registry(self) -> Registry:
        """The registry, shared by all spawners of this hub."""
        return shared_registry(self.registry_url)

    # -- engine calls and start-up speed -----------------------------------------------
    _docker_pool: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The threads for engine calls, shared by all workspaces (see docker_threads)."""
        cls = type(self)
        if cls._docker_pool is None:
            cls._docker_pool = ThreadPoolExecutor(
                self.docker_threads, thread_name_prefix="cleanroom-docker"
            )
        return cls._docker_pool

    def start_slots(self) -> int:
        """How many containers may be starting at once (see max_concurrent_starts)."""
        if self.max_concurrent_starts:
            return int(self.max_concurrent_starts)
        return 2 * len(os.sched_getaffinity(0))

    async def start_object(self) -> None:
        """Start the container when its turn comes, and return once its server answers."""
        async with _start_queue(self.start_slots()):
            self._steps.done("queue")
            await super().start_object()
            ip, port = await self.get_ip_and_port()
            self._steps.done("container")
            if self.gateway_url and getattr(self, "_restricted", False):
                # Restricted mode: the session's viewer, then a route to it alone.
                session = await asyncio.get_running_loop().run_in_executor(
                    None, self._start_viewer, port
                )
                await gateway_routes.register(
                    self, ip, port, viewer=session.target, viewer_image=self.viewer_image
                )
            elif self.gateway_url:
                # The firewall lets only the gateway reach the server: register the
                # route, then wait until the real server answers through the gateway.
                await gateway_routes.register(self, ip, port)
            elif not self.internal_ssl:
                await self._wait_until_answering(ip, port)
            self._steps.done("answering")

    async def _wait_until_answering(self, ip: str, port: int) -> None:
        base = self.server.base_url if self.server is not None else "/"
        url = f"http://{ip}:{port}{base}api"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        client = AsyncHTTPClient()
        checks = 0
        while loop.time() < deadline:
            try:
                reply = await client.fetch(
                    url, raise_error=False, follow_redirects=False, request_timeout=5
                )
                if reply.code < 500:
                    return
            except (OSError, HTTPClientError):
                pass  # not listening yet
            checks += 1
            # A server that died while starting never answers: leave it to the hub.
            if checks % 20 == 0 and await self.poll() is not None:
                return
            await asyncio.sleep(self.readiness_poll_interval)

    # -- start ---------------------------------------------------------------------
    async def start(self) -> Any:
        """Decide on the server what this workspace may be, then start it."""
        project = self._requested_project()
        self._unfinished_start = False  # this start is the hub's own, not a leftover
        self._steps = StepTimer()
        loop = asyncio.get_running_loop()
        try:
            # Registry, firewall and engine calls block: keep them off the hub's event
            # loop. The checks only read, so they run side by side; all of them pass
            # before anything is made for this start.
            plan = await loop.run_in_executor(None, self._plan_for, project)
            tier = quotas.tier(plan.quota_tier)
            self._choose_image(plan)
            await asyncio.gather(
                loop.run_in_executor(None, self._check_firewall),
                loop.run_in_executor(None, _check_engine_seccomp),
                loop.run_in_executor(None, self._check_concurrency, project, tier),
                loop.run_in_executor(None, self._check_image, tier),
                loop.run_in_executor(None, self._check_restricted, plan),
            )
        except CleanroomError as exc:
            self.log.warning("Refused workspace %s/%s: %s", self.user.name, project, exc)
            metrics.SPAWN_REFUSALS.labels(metrics.refusal_reason(exc)).inc()
            raise refuse(exc) from exc
        self._steps.done("checks")
        # From unlocking the datasets until the container mounts them, no stop of
        # another workspace may lock them (cleanroom.library.at_rest).
        with at_rest.starting():
            try:
                # The project's network and the workspace's folders (losetup, the
                # engine) do not depend on each other: made at the same time.
                network, self.volumes = await asyncio.gather(
                    loop.run_in_executor(None, self._ensure_network, project),
                    loop.run_in_executor(None, self.folders.mounts, plan, self.user.name, tier),
                )
            except CleanroomError as exc:
                self.log.error("Workspace %s/%s: %s", self.user.name, project, exc)
                raise refuse(exc) from exc
            self._steps.done("network_and_folders")
            started = await self._start_container(plan, tier, network)
        await loop.run_in_executor(None, self._record_run, plan)
        self._steps.done("record")
        # One line per start: where its time went (read by benchmarks/spawns.py).
        self.log.info("Workspace %s/%s start steps: %s", self.user.name, project, self._steps)
        self._health = health.HealthCheck(self.health_timeout, self.health_failures)
        if self.gateway_url:
            return gateway_routes.public_address(self.gateway_url)
        return started

    async def _start_container(
        self, plan: ProjectInfo, tier: quotas.QuotaTier, network: ProjectNetwork
    ) -> Any:
        """DockerSpawner's start of the container this plan allows, and nothing more."""
        project = plan.name
        self._network = network
        self._plan = plan
        self._tier = tier
        # Decided at every start from the registry (cleanroom.registry.access).
        self._restricted = is_restricted(plan)
        # Restricted mode: the session's viewer (a browser beside the server, the only
        # client the gateway lets through) logs in with ?token= and JupyterLab's page
        # token, which cleanroom-workspace-server never admits: there the stock server.
        self.cmd = ["jupyterhub-singleuser"] if self._restricted else list(spec.SERVER_COMMAND)
        self._oom_seen = 0
        self._health = None
        workspace = spec.WorkspacePlan(
            user=self.user.name,
            project=plan,
            tier=tier,
            network=network,
            image=self._image_name(),
            instance=self.instance,
        )
        self._workspace = workspace
        host_config = spec.host_config(workspace)
        try:
            # Fail closed: no container without our seccomp profile and the rest.
            spec.check_host_config(host_config)
        except spec.SpecError as exc:
            self.log.error("Workspace %s/%s: %s", self.user.name, project, exc)
            raise refuse(exc) from exc
        # Proof of the real server: see the gateway. Fresh at every start, kept in the
        # spawner's state (the hub database), never in a label.
        self.server_secret = secrets.token_urlsafe(32)
        self.network_name = network.name
        self.use_internal_ip = True
        self.mem_limit = tier.memory_bytes
        self.cpu_limit = tier.cpu
        self.extra_create_kwargs = spec.create_kwargs(workspace)
        self.extra_host_config = host_config
        return await super().start()

    def _plan_for(self, project: str) -> ProjectInfo:
        # Verified, trained, active (cleanroom.registry.people): the refusal says why.
        shared_people(self.registry).check_may_start(self.user.name)
        return self.registry.workspace_plan(self.user.name, project)

    def _ensure_network(self, project: str) -> ProjectNetwork:
        return ProjectNetworks(
            _engine(),
            instance=self.instance,
            pool=self.network_pool,
            prefix=self.network_prefix,
        ).ensure(project)

    def _check_concurrency(self, project: str, tier: quotas.QuotaTier) -> None:
        """Refuse a start beyond the tier's concurrent workspaces (project, user).

        Counted from the engine's running containers, the ground truth. Two starts at
        the same instant may both pass; the limit is for fair sharing, not a wall.
        """
        running = workspace_containers(instance=self.instance, client=_engine())
        me = self.user.name
        pairs = {(c.labels.get(LABEL_USER), c.labels.get(LABEL_PROJECT)) for c in running}
        pairs.discard((me, project))
        in_project = sum(1 for _, p in pairs if p == project)
        of_user = sum(1 for u, _ in pairs if u == me)
        if tier.max_workspaces is not None and in_project >= tier.max_workspaces:
            raise Conflict(
                f"project {project!r} runs {in_project} workspaces, the most its quota tier "
                f"{tier.name!r} allows at once; try again when one stops"
            )
        if tier.max_workspaces_per_user is not None and of_user >= tier.max_workspaces_per_user:
            raise Conflict(
                f"{me!r} runs {of_user} workspaces in other projects, the most quota tier "
                f"{tier.name!r} allows at once; stop one first"
            )

    def _requested_project(self) -> str:
        return requested_project(self.name, self.user_options)

    def _check_firewall(self) -> None:
        if not self.require_firewall:
            return
        ports = [self.hub_api_port] + (
            [self.airlock_submit_port] if self.airlock_submit_port else []
        )
        guard = gateway_routes.SERVER_PORT if self.gateway_url else None
        if not HostFirewall(ports, self.instance, guard_server_port=guard).is_installed():
            raise CleanroomError(
                "the host firewall that isolates workspaces is not installed; "
                "an operator must run `cleanroom firewall install` (make up does)"
            )

    def _choose_image(self, plan: ProjectInfo) -> None:
        if not plan.images:
            raise refuse(CleanroomError(f"project {plan.name!r} allows no image"))
        # DockerSpawner maps user_options["image"] through this dict and refuses the rest.
        self.allowed_images = {
            name: f"{self.image_repository}{name}:latest" for name in plan.images
        }
        self.image = self.allowed_images[plan.images[0]]
        asked = (self.user_options or {}).get("image")
        if asked and asked not in self.allowed_images:
            raise http_error(
                403,
                f"image {asked!r} is not allowed for project {plan.name!r}; "
                f"allowed: {', '.join(plan.images)}",
            )
        if asked:
            # DockerSpawner makes the same choice in its start(); made here too, the
            # tier's image check (_check_image) sees the image that will run.
            self.image = self.allowed_images[asked]

    def _check_image(self, tier: quotas.QuotaTier) -> None:
        check_image_for_tier(_engine(), self.image, self._image_name(), tier)

    def _check_restricted(self, plan: ProjectInfo) -> None:
        """A restricted project needs the gateway and the viewer image (fail closed)."""
        if not is_restricted(plan):
            return
        if not self.gateway_url:
            raise CleanroomError(
                f"project {plan.name!r} runs in restricted mode, which needs the egress "
                "gateway (CleanroomSpawner.gateway_url)"
            )
        try:
            _engine().images.get(self.viewer_image)
        except docker.errors.ImageNotFound as exc:
            raise NotFound(
                f"project {plan.name!r} runs in restricted mode and the viewer image "
                f"{self.viewer_image!r} is not built here (cleanroom images build viewer)"
            ) from exc

    @property
    def viewers(self) -> viewer.Viewers:
        """The restricted mode's viewers of this deployment."""
        return viewer.Viewers(_engine(), instance=self.instance, pool=self.viewer_network_pool)

    def _start_viewer(self, port: int) -> viewer.ViewerSession:
        """Join the workspace and a new viewer on the session's link network."""
        viewers = self.viewers
        network = viewers.link_network(self.user.name, self.name)
        workspace_ip = viewers.connect_workspace(network, self.container_id)
        base = self.server.base_url if self.server is not None else f"/user/{self.user.name}/"
        lab_url, ready_url = viewer.lab_urls(workspace_ip, port, base, self.api_token)
        config = (network.attrs.get("IPAM") or {}).get("Config") or [{}]
        plan = viewer.ViewerPlan(
            user=self.user.name,
            project=self.name,
            instance=self.instance,
            image=self.viewer_image,
            network=network.name,
            dns=str(config[0].get("Gateway", "")),
            lab_url=lab_url,
            ready_url=ready_url,
            geometry=self.viewer_geometry,
            memory_bytes=self.viewer_memory,
        )
        return viewers.start(plan)

    def _image_name(self) -> str:
        for name, tag in self.allowed_images.items():
            if tag == self.image:
                return name
        return self.image

    @property
    def folders(self) -> WorkspaceFolders:
        """This hub's workspace folders (see workspaces_root)."""
        return WorkspaceFolders(
            Path(self.workspaces_root),
            self.workspace_uid,
            self.instance,
            _engine,
            keyring=_keyring() if self.encrypt_folders else None,
        )

    # -- after the start: reproducibility, health -----------------------------------
    def _record_run(self, plan: ProjectInfo) -> None:
        """Record the exact image (content digest) this workspace runs."""
        from cleanroom.registry.governance import Governance

        try:
            container = _engine().containers.get(self.container_id)
            image = container.attrs.get("Image", "")
            tag = self.image
            digests = _engine().images.get(image).attrs.get("RepoDigests") or []
            Governance(self.registry).record_run(
                actor=self.user.name,
                user=self.user.name,
                project=plan.name,
                image=tag,
                image_digest=digests[0] if digests else image,
                datasets=tuple(f"{d.name}@{d.version}" for d in plan.datasets),
                container_id=self.container_id,
            )
        except Exception:
            # The workspace runs; a missing record must be seen, not stop the researcher.
            self.log.exception("Could not record the image of %s/%s", self.user.name, plan.name)

    async def stop(self, now: bool = False) -> None:
        """Stop the workspace, then detach its work folder's loop device if it had one
        (only this workspace mounts it; the next start attaches it again)."""
        self._health = None  # a stop the hub asked for is not a lost server
        await super().stop(now=now)
        await self._release()

    async def _release(self) -> None:
        """What a stopped workspace leaves: its route, viewer, attached work folder and
        the datasets no other workspace uses."""
        if self.gateway_url:
            await gateway_routes.unregister(self)
            # Whatever the mode was: a viewer left of this session must not outlive it.
            await asyncio.get_running_loop().run_in_executor(
                None, self.viewers.stop, self.user.name, self.name
            )
        work = self.folders.work_filesystem(self.name, self.user.name)
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, storage_quota.detach_unused, work
            )
        except CleanroomError as exc:
            self.log.warning(
                "Work folder of %s/%s stays attached: %s", self.user.name, self.name, exc
            )
        try:
            # Datasets no running workspace uses any more are locked again.
            await asyncio.get_running_loop().run_in_executor(None, at_rest.lock_unused)
        except CleanroomError as exc:
            self.log.warning(
                "Datasets stay unlocked after %s/%s: %s", self.user.name, self.name, exc
            )

    async def _undo_unfinished_start(self) -> None:
        """Undo a start the hub's death cut short (cleanroom.workspace.interrupted)."""
        if await self.get_object() is not None:  # found by its name; sets object_id
            await self.stop(now=True)
        else:
            await self._release()  # no container yet; its folders may be attached

    async def get_object(self) -> Any:
        """DockerSpawner's inspection of the container (what ``poll`` reads), plus: say so
        when the memory limit killed something, from the same inspection."""
        container = await super().get_object()
        if container:
            self._note_oom(container)
        return container

    def _note_oom(self, container: dict[str, Any]) -> None:
        """Log and journal each process the kernel's OOM killer ended at the memory limit.

        The usual victim is the kernel that grew, while the server keeps running; the
        count comes from the container's memory cgroup (``State.OOMKilled`` alone only
        covers the main process).
        """
        self._oom_seen = oom.report_new_kills(
            container,
            getattr(self, "_oom_seen", 0),
            self.registry,
            self.log,
            user=self.user.name if self.user else "",
            project=self.name,
        )

    def get_args(self) -> list[str]:
        """The server's arguments, plus kernel culling from the culling policy."""
        return [*super().get_args(), *culling.kernel_args(culling.load_policy())]

    # -- state: the server secret survives a hub restart ---------------------------
    server_secret: str = ""
    _health: health.HealthCheck | None = None
    _unfinished_start = False

    def get_state(self) -> dict[str, Any]:
        """DockerSpawner's state, plus this start's server secret (for the gateway)."""
        state = dict(super().get_state())
        if self.server_secret:
            state["server_secret"] = self.server_secret
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """DockerSpawner's state, plus the server secret of the running start."""
        super().load_state(state)
        self.server_secret = state.get("server_secret", "")
        self._unfinished_start = interrupted.unfinished(state)
        if self.object_id:
            # A workspace that ran before the hub restarted is checked like a new one.
            self._health = health.HealthCheck(self.health_timeout, self.health_failures)

    def clear_state(self) -> None:
        """Forget the container and its server secret (the next start makes a new one)."""
        super().clear_state()
        self.server_secret = ""

    # -- poll: a lost server is noticed ------------------------------------------
    async def poll(self) -> Any:
        """DockerSpawner's poll (is the container running?), plus a health request to
        the server of a running workspace; either way a lost server is recorded. A
        record of a start the hub's death cut short is undone (``interrupted``)."""
        if self._unfinished_start and self.server is not None:
            self._unfinished_start = False
            return await interrupted.undo(self, self._undo_unfinished_start)
        status = await super().poll()
        checker: health.HealthCheck | None = getattr(self, "_health", None)
        if status is not None:
            if checker is not None:
                self._health = None
                self._record_lost("exited", status)
            return status
        if checker is None:
            return None  # starting (the start waits for it), or state from before a restart
        if self.gateway_url:
            # Only the gateway reaches the server's port (the host firewall): it asks
            # the server itself and checks this start's proof.
            answered = await gateway_routes.answers(self)
            if answered is None:
                return None  # the gateway is down: nothing known of the server
        else:
            base = self.server.base_url if self.server is not None else "/"
            ip, port = await self.get_ip_and_port()
            answered = await checker.answers(f"http://{ip}:{port}{base}api")
        if checker.record(answered):
            self._health = None
            self._record_lost("unresponsive", health.UNRESPONSIVE_STATUS)
            return health.UNRESPONSIVE_STATUS
        return None

    def _record_lost(self, reason: str, status: object) -> None:
        health.record_lost(
            self.registry,
            self.log,
            user=self.user.name if self.user else "",
            project=self.name,
            reason=reason,
            status=status,
        )

    # -- environment ---------------------------------------------------------------
    def get_env(self) -> dict[str, str]:
        """The server's environment: JupyterHub's, the hub API on the project gateway,
        our settings and the per-start server secret (see ``spec.server_environment``)."""
        env = super().get_env()
        workspace: spec.WorkspacePlan | None = getattr(self, "_workspace", None)
        if workspace is not None:
            env.update(
                spec.server_environment(
                    workspace,
                    hub_api_port=self.hub_api_port,
                    hub_base_url=self.hub.base_url,
                    airlock_submit_port=self.airlock_submit_port,
                    server_secret=self.server_secret,
                )
            )
        else:
            env["CLEANROOM_USER"] = self.user.name
        if getattr(self, "_restricted", False):
            env.update(viewer.server_environment())
        tier: quotas.QuotaTier | None = getattr(self, "_tier", None)
        if tier is not None and not tier.gpus:
            # A host whose default runtime is nvidia would otherwise hand GPUs to any
            # container that asks through its environment; the tier decides, hub-side.
            env["NVIDIA_VISIBLE_DEVICES"] = "void"
        return env


@functools.cache
def _engine_has_seccomp() -> bool:
    options = _engine().info().get("SecurityOptions") or []
    return any("name=seccomp" in option for option in options)


def _check_engine_seccomp() -> None:
    """Refuse to start workspaces on an engine without seccomp (fail closed)."""
    if not _engine_has_seccomp():
        raise CleanroomError(
            "the container engine does not support seccomp; workspaces need the "
            "cleanroom seccomp profile, so none can start on this host"
        )
