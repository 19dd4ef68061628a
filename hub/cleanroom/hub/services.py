"""The hub-side services of operations: the enforcer, the idle culler, metrics access.

Called from :func:`cleanroom.hub.config.configure`; kept apart so that the hub config's
other parts (airlock, roles) and these can change independently.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from cleanroom import paths
from cleanroom.settings import Settings, secret
from cleanroom.workspace import culling

ENFORCER_SERVICE = "cleanroom-enforcer"
AHEAD_SERVICE = "cleanroom-kube-ahead"
# Seconds between the folder-ahead service's registry reads (one cheap query each).
AHEAD_EVERY = 2
METRICS_SERVICE = "prometheus"


def _forwarded_env() -> dict[str, str]:
    """Managed services start with a minimal environment: hand them our settings."""
    env = {k: v for k, v in os.environ.items() if k.startswith("CLEANROOM_")}
    # The Kubernetes backend's enforcer reaches the cluster as the hub does.
    env.update(
        {k: v for k, v in os.environ.items() if k == "KUBECONFIG" or k.startswith("KUBERNETES_")}
    )
    env.setdefault("CLEANROOM_STATE_DIR", str(paths.state_dir()))
    return env


def _runs_ahead() -> bool:
    from cleanroom.kubernetes import ahead
    from cleanroom.kubernetes.hub_config import backend

    return backend() == "kubernetes" and ahead.enabled()


def configure_operations(c: Any, settings: Settings) -> None:
    """Add the enforcer, the idle culler and the metrics reader to the hub config ``c``."""
    services = list(c.JupyterHub.services or [])
    roles = list(c.JupyterHub.load_roles or [])

    every = str(settings.enforce_every)
    services.append(
        {
            "name": ENFORCER_SERVICE,
            # The enforcer stops workspaces through the hub with the command line's own
            # service token (read from the state folder), so it needs no role of its own.
            "command": [sys.executable, "-m", "cleanroom.cli.main", "enforce", "--every", every],
            "environment": _forwarded_env(),
        }
    )

    if _runs_ahead():
        # Kubernetes: members' folder claims made before their first start (its module
        # says why); it reaches the cluster as the hub does.
        command = [sys.executable, "-m", "cleanroom.cli.main", "kube-ahead"]
        services.append(
            {
                "name": AHEAD_SERVICE,
                "command": [*command, "--every", str(AHEAD_EVERY)],
                "environment": _forwarded_env(),
            }
        )

    policy = culling.load_policy()
    culler = culling.culler_service(policy)
    if culler is not None:
        services.append(culler)
        roles.append(culling.culler_role())

    # Prometheus scrapes /hub/metrics with this service's token (state/secrets/).
    services.append({"name": METRICS_SERVICE, "api_token": secret("metrics-token")})
    roles.append(
        {"name": METRICS_SERVICE, "scopes": ["read:metrics"], "services": [METRICS_SERVICE]}
    )

    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
