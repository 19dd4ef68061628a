"""Finding and stopping workspace pods by their labels, without the hub (the command line
and the enforcer on the Kubernetes backend; the twin of ``cleanroom.workspace.containers``).

The cluster is reached with ``$KUBECONFIG`` (or the default kubeconfig), or with the pod's
own service account when the command runs in the cluster (the chart's hub pod).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api
from kubernetes_asyncio.client.rest import ApiException

from cleanroom.errors import CleanroomError
from cleanroom.kubernetes.pods import ANNOTATION_PREFIX, LABEL_KIND, label_value
from cleanroom.workspace.labels import LABEL_INSTANCE, LABEL_PROJECT, LABEL_USER

T = TypeVar("T")


@dataclass(frozen=True)
class WorkspacePod:
    """One workspace pod: who, which project, which image, and its state."""

    name: str
    user: str
    project: str
    image: str
    phase: str
    started_at: str
    cpu_limit: str
    memory_limit: str
    datasets: str


def namespace(instance: str) -> str:
    """The deployment's namespace: ``$CLEANROOM_K8S_NAMESPACE`` or ``cleanroom-<instance>``."""
    return os.environ.get("CLEANROOM_K8S_NAMESPACE", f"cleanroom-{instance}")


async def client_config() -> Configuration:
    """The API client settings: the pod's service account in the cluster, else the
    kubeconfig (``$KUBECONFIG``)."""
    cfg = Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)
    except config.ConfigException:
        try:
            await config.load_kube_config(client_configuration=cfg)
        except (config.ConfigException, OSError) as exc:
            raise CleanroomError(f"no Kubernetes cluster configured (KUBECONFIG): {exc}") from exc
    return cfg


def _run(call: Callable[[CoreV1Api], Awaitable[T]]) -> T:
    async def run() -> T:
        async with ApiClient(await client_config()) as api:
            return await call(CoreV1Api(api))

    return asyncio.run(run())


def _selector(instance: str, user: str | None, project: str | None) -> str:
    labels = {LABEL_KIND: "workspace", LABEL_INSTANCE: label_value(instance)}
    if user:
        labels[LABEL_USER] = label_value(user)
    if project:
        labels[LABEL_PROJECT] = label_value(project)
    return ",".join(f"{k}={v}" for k, v in labels.items())


def workspace_pods(
    user: str | None = None, project: str | None = None, instance: str = "main"
) -> list[WorkspacePod]:
    """The deployment's workspace pods, optionally of one user and/or project."""

    async def call(api: CoreV1Api) -> list[WorkspacePod]:
        found = await api.list_namespaced_pod(
            namespace(instance), label_selector=_selector(instance, user, project)
        )
        out = []
        for pod in found.items:
            notes = pod.metadata.annotations or {}
            container = pod.spec.containers[0]
            limits = (container.resources.limits if container.resources else None) or {}
            start = pod.status.start_time
            out.append(
                WorkspacePod(
                    name=pod.metadata.name,
                    user=notes.get(f"{ANNOTATION_PREFIX}user", ""),
                    project=notes.get(f"{ANNOTATION_PREFIX}project", ""),
                    image=notes.get(f"{ANNOTATION_PREFIX}image", ""),
                    phase=pod.status.phase or "",
                    started_at=start.isoformat() if start else "",
                    cpu_limit=str(limits.get("cpu", "")),
                    memory_limit=str(limits.get("memory", "")),
                    datasets=notes.get(f"{ANNOTATION_PREFIX}datasets", ""),
                )
            )
        # Exact match on the annotations: labels of odd names are hashed, never merged.
        return [
            p
            for p in out
            if (user is None or p.user == user) and (project is None or p.project == project)
        ]

    return _run(call)


def stop_workspace_pods(user: str, project: str, instance: str = "main") -> int:
    """Delete every pod of ``user`` on ``project`` (their claims and files stay); how many."""
    pods = workspace_pods(user, project, instance)

    async def call(api: CoreV1Api) -> int:
        stopped = 0
        for pod in pods:
            try:
                await api.delete_namespaced_pod(
                    pod.name, namespace(instance), grace_period_seconds=1
                )
                stopped += 1
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return stopped

    return _run(call) if pods else 0
