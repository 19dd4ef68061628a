"""What the hub's configuration merges in to run the data library's pages as a managed
service at ``/services/library/``; every signed-in person may open them (the hub's
``user`` role carries :func:`access_scope`, see cleanroom.hub.auth)."""

from __future__ import annotations

import os
import sys
from typing import Any

SERVICE_NAME = "library"
DEFAULT_PORT = 8093


def access_scope(name: str = SERVICE_NAME) -> str:
    """The scope that lets a person open the library's pages."""
    return f"access:services!service={name}"


def library_service_config(
    *,
    port: int = DEFAULT_PORT,
    environment: dict[str, str] | None = None,
    python: str = sys.executable,
    name: str = SERVICE_NAME,
) -> dict[str, Any]:
    """The service entry (``c.JupyterHub.services``) that runs the library's pages on
    ``127.0.0.1:port``, with the hub's ``CLEANROOM_*`` settings plus ``environment``."""
    inherited = {k: v for k, v in os.environ.items() if k.startswith("CLEANROOM_")}
    return {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": [python, "-m", "cleanroom.library"],
        "environment": {**inherited, **(environment or {})},
        "display": True,
        "info": {"description": "Data library: catalogue, dataset cards, providers"},
        "oauth_no_confirm": True,
        # Identity only: what a person may do comes from the registry.
        "oauth_client_allowed_scopes": [],
    }
