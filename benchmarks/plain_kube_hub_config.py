"""JupyterHub configuration of the Kubernetes baseline: stock ``kubespawner.KubeSpawner``.

Started by ``benchmarks/k8s_spawns.py`` (``jupyterhub -f benchmarks/plain_kube_hub_config.py``)
beside a cleanroom hub with the Kubernetes backend, on the same one-node test cluster
(``scripts/k8s.sh``). As for the Docker baseline (``plain_hub_config.py``), everything
hub-side is cleanroom's (``cleanroom.hub.config.configure_hub_process``: ports, SQLite,
the same proxy, named servers, timeouts, the benchmark driver's service token), and the
start timeout is the Kubernetes backend's (300 s). What differs is what a stock
KubeSpawner does:

- the same image (``<repository>/notebook:latest``, imported into the cluster, never
  pulled) run as it is: the image's own user (1000), no security context, no CPU or
  memory requests or limits, no volumes, the namespace's service-account token mounted;
- no NetworkPolicy, no claims, no dataset volumes, no egress gateway: the proxy goes
  straight to the pod's IP;
- the dummy authenticator (the benchmark authenticates with API tokens only).

The only addition is a label on each pod (``cleanroom.bench=<instance>``), and the pods
live in a namespace of their own (``$CLEANROOM_K8S_NAMESPACE``), which the benchmark
creates and deletes.
"""

from __future__ import annotations

import os
from typing import Any

from cleanroom.hub.config import configure_hub_process
from cleanroom.settings import Settings, image_repository

IMAGE = f"{image_repository()}/notebook:latest"
LABEL = "cleanroom.bench"


def configure(c: Any) -> None:
    """Fill the traitlets config ``c`` of the plain Kubernetes hub."""
    settings = Settings.from_env()
    configure_hub_process(c, settings)
    # Pods reach the hub at the node's address on the cluster's bridge.
    node_ip = os.environ["CLEANROOM_K8S_HUB_IP"]
    c.JupyterHub.hub_connect_url = f"http://{node_ip}:{settings.hub_port}"
    c.JupyterHub.authenticator_class = "dummy"
    c.Authenticator.allow_all = True

    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.KubeSpawner.image = IMAGE
    # The test cluster has no registry: its images are imported (scripts/k8s.sh images).
    c.KubeSpawner.image_pull_policy = "Never"
    c.KubeSpawner.namespace = os.environ["CLEANROOM_K8S_NAMESPACE"]
    c.KubeSpawner.extra_labels = {LABEL: settings.instance}
    # The cleanroom backend's start timeout (cleanroom.kubernetes.hub_config).
    c.KubeSpawner.start_timeout = 300


configure(get_config())  # type: ignore[name-defined]  # noqa: F821  (injected by JupyterHub)
