"""The hub's configuration for the Kubernetes backend (``CLEANROOM_BACKEND=kubernetes``).

The same hub, registry, authenticator, airlock, egress gateway, enforcer and culler as on
Docker; only the spawner differs. The host firewall belongs to the Docker backend (it
guards Docker bridges); on Kubernetes the project's NetworkPolicies are the network wall
(:mod:`cleanroom.kubernetes.policies`), enforced by the cluster's CNI.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cleanroom.settings import Settings

BACKENDS = ("docker", "kubernetes")


def backend() -> str:
    """The workspace backend from ``$CLEANROOM_BACKEND`` (default ``docker``)."""
    choice = os.environ.get("CLEANROOM_BACKEND", "docker").strip().lower() or "docker"
    if choice not in BACKENDS:
        raise SystemExit(
            f"cleanroom hub: CLEANROOM_BACKEND={choice!r}: use {' or '.join(BACKENDS)}"
        )
    return choice


def _labels(name: str) -> dict[str, str]:
    """A JSON object of labels from ``$name`` (empty when unset), or a clear exit."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SystemExit(f"cleanroom hub: {name} is not JSON: {exc}") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SystemExit(f'cleanroom hub: {name} must be a JSON object of strings ({{"a": "b"}})')
    return value


def configure_kubernetes(c: Any, settings: Settings, registry_url: str) -> None:
    """Use :class:`~cleanroom.kubernetes.spawner.CleanroomKubeSpawner` with this
    deployment's settings; the ``CLEANROOM_K8S_*`` variables are read here (and by the
    spawner's defaults), see docs/kubernetes.md."""
    c.JupyterHub.spawner_class = "cleanroom.kubernetes.spawner.CleanroomKubeSpawner"
    spawner = c.CleanroomKubeSpawner
    spawner.registry_url = registry_url
    spawner.instance = settings.instance
    spawner.hub_api_port = settings.hub_port
    spawner.airlock_submit_port = settings.airlock_submit_port
    storage = os.environ.get("CLEANROOM_K8S_FOLDER_STORAGE")
    if storage:
        spawner.folder_storage = storage
    storage_class = os.environ.get("CLEANROOM_K8S_STORAGE_CLASS")
    if storage_class:
        spawner.storage_class = storage_class
    hub_labels = _labels("CLEANROOM_K8S_HUB_POD_LABELS")
    if hub_labels:
        spawner.hub_pod_labels = hub_labels
    gateway_labels = _labels("CLEANROOM_K8S_GATEWAY_POD_LABELS")
    if gateway_labels:
        spawner.gateway_pod_labels = gateway_labels
    gateway_cidr = os.environ.get("CLEANROOM_K8S_GATEWAY_CIDR")
    if gateway_cidr:
        spawner.gateway_cidr = gateway_cidr
    source = os.environ.get("CLEANROOM_K8S_DATASET_VOLUME_SOURCE", "").strip()
    if source:
        try:
            parsed = json.loads(source)
        except ValueError as exc:
            raise SystemExit(f"cleanroom hub: CLEANROOM_K8S_DATASET_VOLUME_SOURCE: {exc}") from exc
        if not isinstance(parsed, dict) or len(parsed) != 1:
            raise SystemExit(
                "cleanroom hub: CLEANROOM_K8S_DATASET_VOLUME_SOURCE must be one volume "
                'source as JSON ({"nfs": {"server": "...", "path": "{location}"}})'
            )
        spawner.dataset_volume_source = parsed
    # A pod takes a while longer than a container the first time (image, volumes).
    spawner.start_timeout = 300
