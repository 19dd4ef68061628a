"""The gateway's part of the hub configuration (called from ``cleanroom.hub.config``)."""

from __future__ import annotations

import os
import sys
from typing import Any

from cleanroom import paths
from cleanroom.gateway.app import SERVICE_NAME
from cleanroom.isolation.firewall import HostFirewall
from cleanroom.settings import Settings

# DockerSpawner's default port of the Jupyter server in a workspace container.
SERVER_PORT = 8888


def host_firewall(settings: Settings) -> HostFirewall:
    """The deployment's firewall, with the guard of workspace server ports."""
    return HostFirewall(settings.firewall_ports, settings.instance, guard_server_port=SERVER_PORT)


def add_gateway(c: Any, settings: Settings, *, kubernetes: bool = False) -> None:
    """Run the gateway as a managed service and send workspaces through it.

    ``kubernetes``: the workspaces are pods (``CleanroomKubeSpawner``); no host firewall
    matches the gateway's system group there (the pods' NetworkPolicies let only the
    gateway's peer in), so the gateway keeps the hub's group."""
    env = {k: v for k, v in os.environ.items() if k.startswith("CLEANROOM_")}
    env.update(
        {
            "CLEANROOM_STATE_DIR": str(paths.state_dir()),
            "CLEANROOM_ROOT": str(paths.repo_root()),
            "CLEANROOM_POLICIES_DIR": str(paths.policies_dir()),
            "CLEANROOM_GATEWAY_PORT": str(settings.gateway_port),
            "CLEANROOM_GATEWAY_API_PORT": str(settings.gateway_api_port),
        }
    )
    services = list(c.JupyterHub.services or [])
    services.append(
        {
            "name": SERVICE_NAME,
            # The proxy routes the service prefix (its OAuth callback) here; workspace
            # routes come from each spawner's start, which returns this address too.
            "url": f"http://127.0.0.1:{settings.gateway_port}",
            "command": [
                sys.executable,
                "-m",
                "cleanroom.gateway",
                *(["--GatewayApp.group="] if kubernetes else []),
            ],
            "environment": env,
            "display": False,
            "oauth_no_confirm": True,
        }
    )
    c.JupyterHub.services = services
    url = f"http://127.0.0.1:{settings.gateway_port}"
    if kubernetes:
        c.CleanroomKubeSpawner.gateway_url = url
        return
    c.CleanroomSpawner.gateway_url = url
    c.CleanroomSpawner.gateway_api_port = settings.gateway_api_port
