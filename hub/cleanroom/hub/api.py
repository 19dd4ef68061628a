"""A small client of the hub's REST API for the command line (its own service token)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from cleanroom.errors import CleanroomError, EngineUnavailable, NotFound
from cleanroom.settings import Settings, secret


class HubAPI:
    """Calls the running hub as the ``cleanroom-cli`` service."""

    def __init__(self, settings: Settings | None = None, token: str | None = None) -> None:
        settings = settings or Settings.from_env()
        self.base = f"http://127.0.0.1:{settings.hub_port}/hub/api"
        self.token = token or secret("cli-service-token")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = requests.request(
                method,
                self.base + path,
                timeout=30,
                headers={"Authorization": f"token {self.token}"},
                **kwargs,
            )
        except requests.ConnectionError as exc:
            raise EngineUnavailable(
                f"the hub does not answer at {self.base}; start it with `make up`"
            ) from exc
        if reply.status_code == 404:
            raise NotFound(f"hub: {path} not found")
        if reply.status_code >= 400:
            raise CleanroomError(f"hub refused {method} {path}: {reply.status_code} {reply.text}")
        return reply.json() if reply.content else None

    def ensure_user(self, name: str) -> None:
        """Create the hub's record of a registry user if it has none yet."""
        try:
            self._call("GET", f"/users/{quote(name)}")
        except NotFound:
            self._call("POST", f"/users/{quote(name)}")

    def new_token(self, user: str, note: str, expires_in: int | None) -> str:
        """Issue an API token for ``user``."""
        self.ensure_user(user)
        body: dict[str, Any] = {"note": note}
        if expires_in:
            body["expires_in"] = expires_in
        return str(self._call("POST", f"/users/{quote(user)}/tokens", json=body)["token"])

    def stop_server(self, user: str, server: str) -> bool:
        """Stop a named server now; False when it was not running."""
        try:
            model = self._call("GET", f"/users/{quote(user)}")
        except NotFound:
            return False
        if server not in (model.get("servers") or {}):
            return False
        self._call("DELETE", f"/users/{quote(user)}/servers/{quote(server)}")
        return True
