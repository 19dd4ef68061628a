"""JupyterHub configuration of the baseline: stock ``dockerspawner.DockerSpawner``.

Started by the benchmarks (``jupyterhub -f benchmarks/plain_hub_config.py``) beside a
cleanroom hub on the same machine. To make the comparison about the spawner and nothing
else, everything hub-side is the same as cleanroom's (``cleanroom.hub.config``): ports and
state folder from the same ``CLEANROOM_*`` variables, SQLite, the same proxy, named
servers, the same start/HTTP timeouts and poll interval, and the same service token for
the benchmark driver. What differs is exactly what a stock DockerSpawner does:

- the same image (``cleanroom/notebook:latest``) run as it is: the image's own user
  (1000), no capability drop, no pid, memory or CPU limit, no mounts;
- Docker's default bridge network, the container's port published on 127.0.0.1;
- ``remove=True``, as cleanroom: every start creates a fresh container. DockerSpawner's
  default (``False``: restart the stopped container) failed every restart on this
  JupyterHub: the restarted server carries the API token JupyterHub revoked when it
  stopped (a 500 after 11 s in our runs; see jupyterhub/jupyterhub#901 and #1343);
- the dummy authenticator (the benchmarks authenticate with API tokens only).

The only addition is a label on each container (``cleanroom.bench=<instance>``) so the
benchmark can remove everything it created.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import docker
from cleanroom.hub.config import configure_hub_process
from cleanroom.settings import Settings, image_repository

IMAGE = f"{image_repository()}/notebook:latest"
# On every container this hub creates (value: the instance), so the benchmark removes them.
LABEL = "cleanroom.bench"


def _docker0_gateway() -> str:
    """The host's address on Docker's default bridge (where containers reach the hub)."""
    cfg = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]
    if cfg.get("Gateway"):
        return str(cfg["Gateway"])
    # The default bridge often lists only its subnet; the gateway is its first address.
    return str(next(ipaddress.ip_network(cfg["Subnet"]).hosts()))


def configure(c: Any) -> None:
    """Fill the traitlets config ``c`` of the plain hub."""
    settings = Settings.from_env()
    # Named servers, timeouts and the benchmark driver's service token as cleanroom's.
    configure_hub_process(c, settings)
    # Plain containers sit on docker0 and reach the hub through its gateway.
    c.JupyterHub.hub_connect_url = f"http://{_docker0_gateway()}:{settings.hub_port}"
    c.JupyterHub.authenticator_class = "dummy"
    c.Authenticator.allow_all = True

    c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
    c.DockerSpawner.image = IMAGE
    c.DockerSpawner.remove = True
    c.DockerSpawner.prefix = f"cleanroom-plain-{settings.instance}"
    c.DockerSpawner.extra_create_kwargs = {"labels": {LABEL: settings.instance}}


configure(get_config())  # type: ignore[name-defined]  # noqa: F821  (injected by JupyterHub)
