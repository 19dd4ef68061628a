"""The Kubernetes workspace spawner: "user U works on project P" becomes one hardened pod.

Built on KubeSpawner (``jupyterhub-kubespawner``). Like the Docker spawner
(:mod:`cleanroom.workspace.spawner`), the named server *is* the project, and at every
start the registry is read afresh: membership, the person's standing, project status,
datasets and allowed images are decided on the server, whatever ``user_options`` say.
What the pod is comes from :mod:`cleanroom.kubernetes.pods` (checked by
:func:`~cleanroom.kubernetes.pods.check_pod` before it is created: fail closed) and the
project's NetworkPolicies from :mod:`cleanroom.kubernetes.policies`.

As on Docker, the proxy reaches a workspace only through the hub-side egress gateway
(:mod:`cleanroom.workspace.gateway_routes`: the pod's address, the server's token, a fresh
proof secret and the image's static manifest are registered at every start), and
encrypted dataset versions are unlocked read-only on the node while a pod uses them
(:func:`cleanroom.library.at_rest.unlocked_folder`).
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any, cast
from urllib.parse import urlparse

from kubernetes_asyncio.client import ApiClient, NetworkingV1Api
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Dict, Float, Integer, Unicode, default, validate

from cleanroom import paths
from cleanroom.errors import CleanroomError, Conflict
from cleanroom.gateway import proof
from cleanroom.hub import metrics
from cleanroom.kubernetes import pods, policies, workloads
from cleanroom.kubernetes.folders import FOLDER_STORAGE, FolderStorage, create_or_keep
from cleanroom.library import at_rest
from cleanroom.registry import ProjectInfo, Registry, shared_registry
from cleanroom.registry.access import is_restricted
from cleanroom.registry.people import shared_people
from cleanroom.settings import image_repository
from cleanroom.workspace import culling, gateway_routes, interrupted, quotas
from cleanroom.workspace.folders import WORKSPACE_HOME
from cleanroom.workspace.spawner import http_error, refuse, requested_project
from cleanroom.workspace.spec import RESEARCHER_UID, SERVER_COMMAND
from cleanroom.workspace.steps import StepTimer

# How often a start checks whether its claims are bound, and nudges one that is not.
BIND_CHECK_SECONDS = 0.05
BIND_NUDGE_SECONDS = 0.25
# A pod's port that drops a connect attempt this long is out of this hub's reach.
CONNECT_TIMEOUT_SECONDS = 1.0


class CleanroomKubeSpawner(KubeSpawner):
    """KubeSpawner for one user's workspace on one approved project."""

    registry_url = Unicode(
        help="SQLAlchemy URL of the cleanroom registry. Default: the state folder's SQLite file.",
    ).tag(config=True)

    instance = Unicode(
        "main",
        help="""Name of this deployment. Pods, claims, volumes and policies carry it as a
        label, and the default namespace is ``cleanroom-<instance>``.""",
    ).tag(config=True)

    hub_api_port = Integer(
        8081, help="Port of the hub API at ``hub_ip``, as workspace pods reach it."
    ).tag(config=True)

    airlock_submit_port = Integer(
        0,
        help="""Port of the airlock's submission listener at ``hub_ip`` (0: no airlock;
        the workspace extension then refuses release requests, clearly).""",
    ).tag(config=True)

    image_repository = Unicode(
        help="Repository prefix of images: ``notebook`` runs ``cleanroom/notebook:latest``.",
    ).tag(config=True)

    hub_ip = Unicode(
        help="""Address at which workspace pods reach the hub API and the airlock's
        submission listener ($CLEANROOM_K8S_HUB_IP). On the one-node test cluster the
        node's bridge address; in the chart the hub pod's own address.""",
    ).tag(config=True)

    hub_pod_labels = Dict(
        help="""Labels of the hub's pods when the hub runs in the cluster: the project's
        egress policy then selects those pods instead of the address block ``hub_ip/32``.""",
    ).tag(config=True)

    gateway_cidr = Unicode(
        help="""Address block the proxy's requests to workspaces come from, the only
        ingress a workspace's policy allows (default ``hub_ip/32``: the proxy runs with
        the hub).""",
    ).tag(config=True)

    gateway_pod_labels = Dict(
        help="Labels of the proxy's pods in the cluster (instead of ``gateway_cidr``).",
    ).tag(config=True)

    folder_storage = Unicode(
        "dynamic",
        help="""How work and project folders get their volumes: ``dynamic`` (claims of
        ``storage_class``, provisioned by the cluster) or ``hostpath`` (volumes on the
        node's folders under ``workspaces_root``: a one-node cluster without a
        provisioner, such as the test cluster; sizes are then not enforced).""",
    ).tag(config=True)

    workspaces_root = Unicode(
        help="Node folder of work and project folders for ``folder_storage = hostpath``.",
    ).tag(config=True)

    dataset_volume_source = Dict(
        {"hostPath": {"path": "{location}"}},
        help="""The PersistentVolume source of a dataset version, ``{location}`` standing
        for the data library's folder of it: hostPath on one node; on a cluster the
        library's share (``{"nfs": {"server": "library.example", "path": "{location}"}}``)
        or a CSI volume. Always mounted read-only.""",
    ).tag(config=True)

    gateway_url = Unicode(
        "",
        help="""Address of the egress gateway's public listener (``http://127.0.0.1:8003``).
        When set, ``start`` registers the pod's server with the gateway and returns the
        gateway's address, so the proxy reaches the workspace only through it. Empty: the
        proxy goes straight to the pod (no budget, no route or content rules).""",
    ).tag(config=True)

    readiness_poll_interval = Float(
        0.05,
        help="Seconds between checks whether a started server answers through the gateway.",
    ).tag(config=True)

    pod_check_interval = Float(
        0.05,
        help="""Seconds between checks whether a starting pod runs, in the pod reflector's
        copy of it (no request to the cluster's API).""",
    ).tag(config=True)

    bind_timeout = Float(
        20,
        help="""Seconds a start waits for its work and project claims to bind to the node's
        volumes (``folder_storage = hostpath``) before it creates the pod anyway.""",
    ).tag(config=True)

    @validate("folder_storage")
    def _known_storage(self, proposal: Any) -> str:
        if proposal.value not in FOLDER_STORAGE:
            raise ValueError(
                f"CleanroomKubeSpawner.folder_storage={proposal.value!r}: "
                f"use {' or '.join(FOLDER_STORAGE)}"
            )
        return str(proposal.value)

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return list(SERVER_COMMAND)

    @default("registry_url")
    def _default_registry_url(self) -> str:
        return paths.registry_url()

    @default("workspaces_root")
    def _default_workspaces_root(self) -> str:
        return str(paths.workspaces_dir())

    @default("image_repository")
    def _default_image_repository(self) -> str:
        return f"{image_repository()}/"

    @default("hub_ip")
    def _default_hub_ip(self) -> str:
        return os.environ.get("CLEANROOM_K8S_HUB_IP", "")

    @default("namespace")
    def _default_namespace(self) -> str:
        # One rule for the hub, the command line and the kube-ahead service.
        return workloads.namespace(self.instance)

    @default("image_pull_policy")
    def _default_pull_policy(self) -> str:
        # The test cluster has no registry: its images are imported (scripts/k8s.sh).
        return os.environ.get("CLEANROOM_K8S_IMAGE_PULL_POLICY", "IfNotPresent")

    @default("automount_service_account_token")
    def _default_no_token(self) -> bool:
        # Code in a workspace must never hold a credential of the cluster's API.
        return False

    @default("delete_stopped_pods")
    def _default_delete_stopped(self) -> bool:
        return True

    @default("storage_pvc_ensure")
    def _default_no_kubespawner_pvc(self) -> bool:
        return False  # our claims are per project and per user (ensure_storage)

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    @default("working_dir")
    def _default_working_dir(self) -> str:
        return WORKSPACE_HOME

    @property
    def registry(self) -> Registry:
        """The registry, shared by all spawners of this hub."""
        return shared_registry(self.registry_url)

    # -- start ---------------------------------------------------------------------
    async def start(self) -> Any:
        """Decide on the server what this workspace may be, then start its pod."""
        project = self._requested_project()
        self._unfinished_start = False  # this start is the hub's own, not a leftover
        loop = asyncio.get_running_loop()
        steps = StepTimer()
        try:
            # Registry reads block: keep them off the hub's event loop.
            info, tier = await loop.run_in_executor(None, self._decide, project)
            steps.done("registry")
            await self._check_concurrency(project, tier)
            steps.done("concurrency")
        except CleanroomError as exc:
            self.log.warning("Refused workspace %s/%s: %s", self.user.name, project, exc)
            metrics.SPAWN_REFUSALS.labels(metrics.refusal_reason(exc)).inc()
            raise refuse(exc) from exc
        name = self._choose_image(info)
        plan = pods.PodPlan(
            user=self.user.name,
            project=info,
            tier=tier,
            image=name,
            image_ref=self.image,
            instance=self.instance,
        )
        self._pod_plan = plan
        self._apply(plan)
        # Proof of the real server (see the gateway): fresh at every start, kept in the
        # spawner's state (the hub database), never in a label.
        self.server_secret = proof.new_secret()
        # From unlocking the datasets until the pod mounts them, no stop of another
        # workspace may lock them (cleanroom.library.at_rest).
        with at_rest.starting():
            try:
                folders = await loop.run_in_executor(None, self._dataset_folders, info)
            except CleanroomError as exc:
                self.log.error("Datasets of %s/%s: %s", self.user.name, project, exc)
                raise refuse(exc) from exc
            steps.done("datasets")
            # Independent objects: the policies are made while the claims bind (both in
            # the namespace, made first when missing).
            self._namespace_seen = ""  # looked at once per start
            await self.ensure_namespace()
            policies_made = asyncio.ensure_future(self.ensure_policies(project))
            try:
                await self.ensure_storage(plan, folders)
                steps.done("storage")
            finally:
                await policies_made
            steps.done("policies")
            self._starting_pod = True
            try:
                url: Any = await self._start_pod()
            finally:
                self._starting_pod = False
            steps.done("pod")
        if self.gateway_url:
            # The pod's policy lets only the gateway reach the server: register the
            # route, then wait until the server answers through the gateway.
            address = urlparse(url)
            host, port = address.hostname or "", address.port or pods.SERVER_PORT
            await self._await_listening(host, port)
            await gateway_routes.register(self, host, port)
            url = gateway_routes.public_address(self.gateway_url)
            steps.done("gateway")
        # One line per start: where its time went (read by benchmarks/k8s_spawns.py).
        self.log.info("Workspace %s/%s start steps: %s", self.user.name, project, steps)
        return url

    async def _start_pod(self) -> str:
        """KubeSpawner's start, done as soon as this start's pod runs.

        KubeSpawner waits for a running pod with JupyterHub's exponential backoff (checks
        0.2, 0.4, 0.8, 1.6 s ... apart, with jitter): measured on the test cluster, its
        wait ended up to 0.6 s after the server had already reported to the hub. Its pod
        reflector (a watch of the namespace's pods) already holds the pod's state, so
        that copy is checked here every ``pod_check_interval`` instead; KubeSpawner's
        wait, when it has not ended yet, is then cancelled (nothing of its start is left
        after it but returning the address). Its errors and its timeout stand as they are.
        """
        kube = asyncio.ensure_future(super().start())
        watch = asyncio.ensure_future(self._running_pod())
        try:
            await asyncio.wait({kube, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (kube, watch):
                if not task.done():
                    task.cancel()
        if kube.done() and not kube.cancelled():
            return str(kube.result())  # KubeSpawner's own end (or its error)
        pod = watch.result()
        self.pod_id = pod["metadata"]["uid"]
        return str(self._get_pod_url(pod))

    async def _await_listening(self, host: str, port: int) -> None:
        """Wait until the pod's server port takes a connection, or is out of reach.

        A pod runs a second or more before its server listens. The gateway's readiness
        check (an HTTP request to the gateway, which asks the server for its proof) is
        then repeated all that time, taking CPU the booting server needs on a small node;
        a bare connect attempt costs next to nothing. Only the TCP handshake: no byte is
        sent, so the pod still gets its requests only through the gateway. Where this
        hub's address cannot reach the pod (its ingress policy admits a gateway elsewhere:
        the connect times out), or the pod is gone, the gateway's own wait decides."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        while loop.time() < deadline:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT_SECONDS
                )
            except TimeoutError:
                return  # dropped, not refused: out of this hub's reach
            except OSError:
                if not self._pod_may_listen():
                    return
                await asyncio.sleep(self.pod_check_interval)
                continue
            writer.close()
            return

    def _pod_may_listen(self) -> bool:
        """Whether this start's pod is still there and not terminated (reflector's copy)."""
        reflector = self.pod_reflector
        pod = reflector.pods.get(f"{self.namespace}/{self.pod_name}") if reflector else None
        return pod is not None and self.is_pod_running(pod)

    async def _running_pod(self) -> dict[str, Any]:
        """This start's pod, once the pod reflector shows it running (as KubeSpawner's
        ``is_pod_running`` decides). Another pod of the same name (an old one being
        replaced) is never taken for it: only this start's pod holds this start's
        server secret."""
        key = f"{self.namespace}/{self.pod_name}"
        while True:
            reflector = self.pod_reflector  # made by KubeSpawner's start
            pod = reflector.pods.get(key) if reflector is not None else None
            if pod is not None and self._is_this_start(pod) and self.is_pod_running(pod):
                return cast(dict[str, Any], pod)
            await asyncio.sleep(self.pod_check_interval)

    def _is_this_start(self, pod: dict[str, Any]) -> bool:
        """Whether ``pod`` (as the reflector holds it) was made by this start."""
        for container in (pod.get("spec") or {}).get("containers") or []:
            for var in container.get("env") or []:
                if var.get("name") == proof.SECRET_ENV:
                    return bool(self.server_secret) and var.get("value") == self.server_secret
        return False

    # True only while KubeSpawner's own start runs: it then asks ``_get_pod_url`` for the
    # pod's address, which the gateway's route is made from.
    _starting_pod = False

    def _get_pod_url(self, pod: dict[str, Any]) -> str:
        """The pod's address while KubeSpawner starts it; after that, with a gateway, the
        gateway's. KubeSpawner's ``poll`` compares this with the hub's record of the server
        and rewrites the record when they differ: with the pod's address it pointed the
        record, and the proxy's route at the next sync, straight at the pod, past the
        gateway (found by benchmarks/k8s_spawns.py: "url changed!" at the first poll)."""
        if self.gateway_url and not self._starting_pod:
            host, port = gateway_routes.public_address(self.gateway_url)
            return f"http://{host}:{port}"
        return str(super()._get_pod_url(pod))

    def _dataset_folders(self, info: ProjectInfo) -> dict[str, str]:
        """The node folders of the project's encrypted versions, unlocked read-only now
        (by :func:`pods.dataset_key`); clear versions keep their registered folder."""
        source = dict(self.dataset_volume_source)
        folders: dict[str, str] = {}
        for ds in info.datasets:
            if not at_rest.is_encrypted(ds.location):
                continue
            if not pods.is_node_folder(source):
                # Unlocked on this host, it would not be on the share the volume names.
                raise CleanroomError(
                    f"dataset {ds.name} {ds.version} is encrypted at rest by the clean room, "
                    "which only a hostPath dataset volume source (one node) can serve; on a "
                    "cluster the library's share must be encrypted by its storage layer "
                    "(docs/kubernetes.md)"
                )
            folder = at_rest.unlocked_folder(ds.location, ds.name, ds.version)
            folders[pods.dataset_key(ds.name, ds.version)] = str(folder)
        return folders

    async def stop(self, now: bool = False) -> None:
        """Stop the pod, drop its gateway route, and lock the dataset versions that no
        workspace on this node mounts any more."""
        await super().stop(now=now)
        if self.gateway_url:
            await gateway_routes.unregister(self)
        try:
            await asyncio.get_running_loop().run_in_executor(None, at_rest.lock_unused)
        except CleanroomError as exc:
            self.log.warning(
                "Datasets stay unlocked after %s/%s: %s", self.user.name, self.name, exc
            )

    # -- state: the server secret survives a hub restart ---------------------------
    server_secret: str = ""
    _unfinished_start = False

    def get_state(self) -> dict[str, Any]:
        """KubeSpawner's state, plus this start's server secret (for the gateway)."""
        state = dict(super().get_state())
        if self.server_secret:
            state["server_secret"] = self.server_secret
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """KubeSpawner's state, plus the server secret of the running start."""
        super().load_state(state)
        self.server_secret = state.get("server_secret", "")
        self._unfinished_start = interrupted.unfinished(state)

    async def poll(self) -> Any:
        """KubeSpawner's poll; a record of a start the hub's death cut short is undone
        first (``cleanroom.workspace.interrupted``): its pod is deleted by name."""
        if self._unfinished_start and self.server is not None:
            self._unfinished_start = False
            return await interrupted.undo(self, functools.partial(self.stop, now=True))
        return await super().poll()

    def clear_state(self) -> None:
        """Forget the pod's server secret (the next start makes a new one)."""
        super().clear_state()
        self.server_secret = ""

    def _decide(self, project: str) -> tuple[ProjectInfo, quotas.QuotaTier]:
        # Verified, trained, active (cleanroom.registry.people): the refusal says why.
        shared_people(self.registry).check_may_start(self.user.name)
        info = self.registry.workspace_plan(self.user.name, project)
        if is_restricted(info):
            # Fail closed: the viewer that sends only pixels runs on Docker only.
            raise CleanroomError(
                f"project {info.name!r} runs in restricted mode (the researcher sees "
                "pixels only), which the Kubernetes backend does not offer"
            )
        if not self.hub_ip:
            raise CleanroomError(
                "CleanroomKubeSpawner.hub_ip ($CLEANROOM_K8S_HUB_IP) is not set: "
                "workspaces would not find the hub"
            )
        return info, quotas.tier(info.quota_tier)

    def _requested_project(self) -> str:
        return requested_project(self.name, self.user_options)

    def _choose_image(self, info: ProjectInfo) -> str:
        """Set ``image`` to the asked image if the project allows it (else refuse)."""
        if not info.images:
            raise refuse(CleanroomError(f"project {info.name!r} allows no image"))
        self._allowed_images = {n: f"{self.image_repository}{n}:latest" for n in info.images}
        asked = (self.user_options or {}).get("image") or info.images[0]
        if asked not in self._allowed_images:
            raise http_error(
                403,
                f"image {asked!r} is not allowed for project {info.name!r}; "
                f"allowed: {', '.join(info.images)}",
            )
        self.image = self._allowed_images[asked]
        return str(asked)

    def _apply(self, plan: pods.PodPlan) -> None:
        """Hand the pod settings of :mod:`cleanroom.kubernetes.pods` to KubeSpawner."""
        tier = plan.tier
        self.extra_labels = pods.labels(plan)
        self.extra_annotations = pods.pod_annotations(plan)
        self.uid = RESEARCHER_UID
        self.gid = RESEARCHER_UID
        self.fs_gid = RESEARCHER_UID
        self.privileged = False
        self.allow_privilege_escalation = False
        self.pod_security_context = pods.pod_security_context()
        self.container_security_context = pods.container_security_context()
        self.volumes = pods.volumes(plan)
        self.volume_mounts = pods.volume_mounts(plan)
        # No postStart hook: the image's entry point makes the home folder's links
        # before the server starts (a hook delayed "running" by its own exec).
        limits = pods.resources(tier)["limits"]
        self.cpu_limit = self.cpu_guarantee = tier.cpu
        self.mem_limit = self.mem_guarantee = tier.memory_bytes
        gpus = {k: v for k, v in limits.items() if k == pods.GPU_RESOURCE}
        self.extra_resource_limits = dict(gpus)
        self.extra_resource_guarantees = dict(gpus)

    async def get_pod_manifest(self) -> Any:
        """KubeSpawner's pod, refused unless it holds the wall (:func:`pods.check_pod`)."""
        pod = await super().get_pod_manifest()
        manifest = ApiClient().sanitize_for_serialization(pod)
        allowed = set(getattr(self, "_allowed_images", {}).values())
        try:
            pods.check_pod(manifest, allowed_images=allowed)
        except pods.PodSpecError as exc:
            self.log.error("Workspace %s/%s: %s", self.user.name, self.name, exc)
            raise refuse(exc) from exc
        return pod

    async def _check_concurrency(self, project: str, tier: quotas.QuotaTier) -> None:
        """Refuse a start beyond the tier's concurrent workspaces (project, user), counted
        from the cluster's workspace pods of this deployment."""
        if tier.max_workspaces is None and tier.max_workspaces_per_user is None:
            return
        selector = (
            f"{pods.LABEL_KIND}=workspace,{pods.LABEL_INSTANCE}={pods.label_value(self.instance)}"
        )
        found = await self.api.list_namespaced_pod(self.namespace, label_selector=selector)
        pairs = set()
        for pod in found.items:
            notes = pod.metadata.annotations or {}
            pairs.add((notes.get("cleanroom/user"), notes.get("cleanroom/project")))
        me = self.user.name
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

    # -- cluster objects besides the pod -------------------------------------------
    _namespace_seen = ""

    async def ensure_namespace(self) -> None:
        """The deployment's namespace, created when missing (the chart's namespace exists)."""
        if self._namespace_seen == self.namespace:
            return  # seen at an earlier step of this start
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        try:
            await self.api.read_namespace(self.namespace)
            self._namespace_seen = self.namespace
        except ApiException as exc:
            if exc.status != 404:
                raise
            await create_or_keep(self.api.create_namespace, body)
            # Pods are refused until the controller has made the namespace's default
            # service account (the pod gets no token of it, but admission needs it).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while True:
                try:
                    await self.api.read_namespaced_service_account("default", self.namespace)
                    self._namespace_seen = self.namespace
                    return
                except ApiException as missing:
                    if missing.status != 404 or loop.time() > deadline:
                        raise
                await asyncio.sleep(0.2)

    async def ensure_storage(
        self, plan: pods.PodPlan, folders: dict[str, str] | None = None
    ) -> None:
        """The workspace's claims, and the volumes they bind to (datasets always; work and
        project folders only for ``folder_storage = hostpath``). ``folders``: where
        encrypted dataset versions are unlocked (see ``_dataset_folders``)."""
        await self.ensure_namespace()
        storage = self.folder_storage_plan()
        datasets = pods.dataset_volumes(plan, dict(self.dataset_volume_source), folders)
        # Each volume, then each claim, is its own request: made at once, not in turn.
        await asyncio.gather(
            *(self._ensure_dataset_volume(volume) for volume in datasets),
            storage.ensure_volumes(self.api, plan),
        )
        made = pods.claims(plan, self.namespace, storage.storage_class, static=storage.static)
        create = self.api.create_namespaced_persistent_volume_claim
        await asyncio.gather(*(create_or_keep(create, self.namespace, claim) for claim in made))
        if storage.static:
            await self._await_bound([c["metadata"]["name"] for c in made])

    def folder_storage_plan(self) -> FolderStorage:
        """How this spawner stores work and project folders (what ``cleanroom.kubernetes.
        ahead`` must make the same way)."""
        return FolderStorage(
            namespace=self.namespace,
            folder_storage=self.folder_storage,
            storage_class=self.storage_class or None,
            workspaces_root=self.workspaces_root,
        )

    async def _await_bound(self, names: list[str]) -> None:
        """Wait until the claims (each naming its volume) are bound, nudging the cluster's
        volume controller with an annotation while one is not.

        The controller binds a new claim to the volume it names when it sees the claim,
        but a write of its own that conflicts (its cache of the just-made volume is stale)
        leaves the claim pending until its next full sync, 15 s later: measured on the
        test cluster, half of the cold starts waited 12-15 s. Any change of the claim
        makes it try again at once. Past ``bind_timeout`` the start goes on (the pod then
        waits for the controller as before)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bind_timeout
        nudges = 0
        next_nudge = loop.time() + BIND_NUDGE_SECONDS
        pending = list(names)
        read = self.api.read_namespaced_persistent_volume_claim
        while pending:
            found = await asyncio.gather(*(read(name, self.namespace) for name in pending))
            pending = [
                name
                for name, claim in zip(pending, found, strict=True)
                if claim.status is None or claim.status.phase != "Bound"
            ]
            if not pending or loop.time() > deadline:
                break
            await asyncio.sleep(BIND_CHECK_SECONDS)
            if loop.time() < next_nudge:
                continue
            # A claim still pending now most likely waits for a failed bind's retry (in
            # the second run a nudge at 0.5 s made cold binds 0.6-1.1 s): nudge it.
            nudges += 1
            next_nudge = loop.time() + BIND_NUDGE_SECONDS
            patch = {"metadata": {"annotations": {"cleanroom/bind-nudge": str(nudges)}}}
            nudge = self.api.patch_namespaced_persistent_volume_claim
            await asyncio.gather(*(nudge(name, self.namespace, patch) for name in pending))
        if pending:
            self.log.warning("Claims not bound yet, the pod waits for them: %s", pending)

    async def _ensure_dataset_volume(self, volume: dict[str, Any]) -> None:
        """A dataset version's volume; one made before with another source is refused
        (a pod would mount a folder that is no longer the version's)."""
        name = volume["metadata"]["name"]
        try:
            await self.api.create_persistent_volume(volume)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        found = await self.api.read_persistent_volume(name)
        existing = self.api.api_client.sanitize_for_serialization(found)
        if not pods.same_volume_source(volume, existing):
            raise refuse(
                CleanroomError(
                    f"the PersistentVolume {name} of a dataset names a folder that is no "
                    "longer the version's (encrypted at rest since?): an operator deletes "
                    "it and its claims once no workspace uses them"
                )
            )

    def policy_plan(self, project: str) -> policies.PolicyPlan:
        """What ``project``'s NetworkPolicies are made from (this hub's settings)."""
        hub = (
            policies.Peer(pod_labels=dict(self.hub_pod_labels))
            if self.hub_pod_labels
            else policies.Peer(cidr=f"{self.hub_ip}/32")
        )
        gateway = (
            policies.Peer(pod_labels=dict(self.gateway_pod_labels))
            if self.gateway_pod_labels
            else policies.Peer(cidr=self.gateway_cidr or f"{self.hub_ip}/32")
        )
        return policies.PolicyPlan(
            project=project,
            instance=self.instance,
            namespace=self.namespace,
            hub=hub,
            hub_port=self.hub_api_port,
            gateway=gateway,
            airlock=hub if self.airlock_submit_port else None,
            airlock_port=self.airlock_submit_port,
            server_port=self.port or pods.SERVER_PORT,
        )

    async def ensure_policies(self, project: str) -> None:
        """Create or replace ``project``'s NetworkPolicies, so they are exactly as designed
        at every start (an edited or deleted policy is put back)."""
        api = NetworkingV1Api(self.api.api_client)

        async def put(policy: dict[str, Any]) -> None:
            try:
                await api.create_namespaced_network_policy(self.namespace, cast(Any, policy))
            except ApiException as exc:
                if exc.status != 409:
                    raise
                name = policy["metadata"]["name"]
                await api.replace_namespaced_network_policy(name, self.namespace, cast(Any, policy))

        made = policies.network_policies(self.policy_plan(project))
        await asyncio.gather(*(put(policy) for policy in made))

    # -- environment ---------------------------------------------------------------
    def get_env(self) -> dict[str, str]:
        """KubeSpawner's environment, with the hub API and the airlock at ``hub_ip`` and
        the project, its datasets and the person."""
        env: dict[str, str] = super().get_env()
        base = self.hub.base_url if self.hub is not None else "/hub/"
        hub = f"http://{self.hub_ip}:{self.hub_api_port}"
        env["JUPYTERHUB_API_URL"] = f"{hub}{base}api"
        env["JUPYTERHUB_ACTIVITY_URL"] = f"{hub}{base}api/users/{self.user.name}/activity"
        env["CLEANROOM_USER"] = self.user.name
        plan: pods.PodPlan | None = getattr(self, "_pod_plan", None)
        if plan is not None:
            env["CLEANROOM_PROJECT"] = plan.project.name
            env["CLEANROOM_DATASETS"] = ",".join(d.name for d in plan.project.datasets)
            if not plan.tier.gpus:
                env["NVIDIA_VISIBLE_DEVICES"] = "void"
        if self.airlock_submit_port:
            env["CLEANROOM_AIRLOCK_URL"] = f"http://{self.hub_ip}:{self.airlock_submit_port}"
        if self.server_secret:
            # The workspace extension signs every answer with it (cleanroom_workspace.proof).
            env[proof.SECRET_ENV] = self.server_secret
        return env

    def get_args(self) -> list[str]:
        """The server's arguments, plus kernel culling from the culling policy."""
        return [*super().get_args(), *culling.kernel_args(culling.load_policy())]
