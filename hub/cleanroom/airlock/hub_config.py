"""What the hub's configuration merges in to run the airlock as a managed service.

``airlock_service_config`` returns the pieces; the hub config (``cleanroom.hub.config``)
appends ``services``, updates ``custom_scopes``, and either appends ``load_roles`` or, where
roles are managed by the authenticator, merges ``role_scopes()`` into its own roles.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .domain import OFFICER_SCOPE, OPERATOR_SCOPE, RESEARCHER_SCOPE

SERVICE_NAME = "airlock"

CUSTOM_SCOPES: dict[str, dict[str, str]] = {
    RESEARCHER_SCOPE: {
        "description": "Submit release requests from one's workspaces and read the requests "
        "of one's projects in the airlock.",
    },
    OFFICER_SCOPE: {
        "description": "Review release requests in the airlock (never one's own or one's "
        "projects').",
    },
    OPERATOR_SCOPE: {
        "description": "Read every airlock request, verify and export the audit log.",
    },
}


def access_scope(name: str = SERVICE_NAME) -> str:
    """The scope that lets a user log in to the airlock's pages."""
    return f"access:services!service={name}"


def role_scopes(name: str = SERVICE_NAME) -> dict[str, list[str]]:
    """Airlock scopes to add to cleanroom's hub roles, by role name.

    Every user is a researcher as far as the hub goes; project membership (from the
    registry) decides which requests they may submit and read.
    """
    return {
        "user": [access_scope(name), RESEARCHER_SCOPE],
        "cleanroom-officer": [access_scope(name), OFFICER_SCOPE],
        "cleanroom-operator": [access_scope(name), OPERATOR_SCOPE],
    }


def server_token_scopes() -> list[str]:
    """``c.Spawner.server_token_scopes``: the hub's default server scopes plus researcher.

    The workspace's token then carries ``access:servers!server=<user>/<project>``
    (which names its project to the airlock) and the researcher role, and nothing more.
    """
    return ["users:activity!user", "access:servers!server", RESEARCHER_SCOPE]


def airlock_service_config(
    *,
    name: str = SERVICE_NAME,
    port: int = 8090,
    submit_bind: str = "0.0.0.0:8082",
    environment: dict[str, str] | None = None,
    python: str = sys.executable,
    officers: list[str] | None = None,
    operators: list[str] | None = None,
) -> dict[str, Any]:
    """The hub config pieces that run the airlock.

    Returns ``{"services": [...], "custom_scopes": {...}, "load_roles": [...],
    "server_token_scopes": [...]}``. The service gets the hub's ``CLEANROOM_*`` variables;
    ``environment`` adds or overrides settings (database URL, blob folder, policy file,
    membership source, state dir).
    ``officers`` and ``operators`` fill the role members for hubs whose authenticator
    does not manage roles; leave them out when it does.
    """
    # A managed service inherits almost nothing of the hub's environment: forward the
    # hub's CLEANROOM_* settings (state folder, registry URL, policies) explicitly.
    inherited = {k: v for k, v in os.environ.items() if k.startswith("CLEANROOM_")}
    env = {**inherited, "CLEANROOM_AIRLOCK_SUBMIT_BIND": submit_bind, **(environment or {})}
    service = {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": [python, "-m", "cleanroom.airlock"],
        "environment": env,
        "display": True,
        "info": {"description": "Release requests: submit, review, download"},
        # Skip the hub's "authorize access" page: the airlock is part of the deployment.
        "oauth_no_confirm": True,
        # The browser's token may carry the airlock roles, so pages can tell who is who.
        "oauth_client_allowed_scopes": sorted(CUSTOM_SCOPES),
    }
    roles: list[dict[str, Any]] = []
    for role, scopes in role_scopes(name).items():
        entry: dict[str, Any] = {
            "name": role,
            # Redefining the default "user" role replaces its scopes: keep "self".
            "scopes": ["self", *scopes] if role == "user" else scopes,
            "description": f"airlock scopes of hub role {role}",
        }
        if role == "cleanroom-officer" and officers is not None:
            entry["users"] = officers
        if role == "cleanroom-operator" and operators is not None:
            entry["users"] = operators
        roles.append(entry)
    return {
        "services": [service],
        "custom_scopes": dict(CUSTOM_SCOPES),
        "load_roles": roles,
        "server_token_scopes": server_token_scopes(),
    }
