"""The workspace's Jupyter server as cleanroom starts it (``cleanroom-workspace-server``).

JupyterHub's own ``jupyterhub-singleuser`` is built for servers that browsers reach
directly: it logs browsers in with OAuth cookies, accepts any hub token whose scopes
allow the server, and imports most of the hub (its ORM, SQLAlchemy and Alembic) to do
so, which is about a third of a workspace's start. In the clean room no browser reaches
the server: every request comes through the egress gateway, which authenticates the
researcher and forwards with the server's own hub token (``JUPYTERHUB_API_TOKEN``). So
this server accepts that token in the ``Authorization`` header and nothing else (no
cookies, no ``?token=``, no other hub token: a token a kernel might get hold of opens
nothing here), and takes the rest of JupyterHub's contract from the spawner's
environment: where to listen, the URL prefix, the root folder and default URL, and the
activity reports the hub's culling reads.

Everything else is the same Jupyter server with the same configuration (the root-owned
``JUPYTER_CONFIG_DIR`` that loads the cleanroom extension and its authorizer).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import random
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.serverapp import ServerApp
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from traitlets import Unicode, default
from traitlets.config import Config

DEFAULT_ACTIVITY_INTERVAL = 300  # seconds, as jupyterhub-singleuser


class ConfigError(RuntimeError):
    """The environment the spawner gave lacks what the server needs."""


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"${name} is not set: start the workspace from the clean room's hub")
    return value


def _join(*parts: str) -> str:
    """URL path parts joined with single slashes, keeping a trailing one."""
    out = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return "/" + out + ("/" if parts and parts[-1].endswith("/") else "")


class ServerTokenIdentityProvider(IdentityProvider):
    """Only the server's own hub token, sent by the gateway, authenticates a request."""

    server_token = Unicode(help="The server's hub token ($JUPYTERHUB_API_TOKEN).").tag(config=True)
    user_name = Unicode(help="The workspace's owner ($JUPYTERHUB_USER).").tag(config=True)

    @default("token")
    def _token_default(self) -> str:
        # jupyter_server's own token (URL parameter, login form) is never used here;
        # empty, so it is neither generated nor printed in the log.
        return ""

    @default("server_token")
    def _default_server_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("user_name")
    def _default_user_name(self) -> str:
        return os.environ.get("JUPYTERHUB_USER", "")

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False

    @property
    def logout_available(self) -> bool:
        return False

    def get_handlers(self) -> list[Any]:
        # No login or logout pages: there is nothing to log in to here.
        return []

    def get_user(self, handler: Any) -> User | None:
        if not self.server_token:
            return None  # fail closed: without a token nobody is let in
        scheme, _, value = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        if not hmac.compare_digest(value.strip().encode(), self.server_token.encode()):
            return None
        # As jupyter_server's own token login: no XSRF or origin check for these.
        handler._token_authenticated = True
        return User(username=self.user_name, name=self.user_name, display_name=self.user_name)

    def validate_security(self, app: Any, ssl_options: Any = None) -> None:
        if not self.server_token:
            raise ConfigError("$JUPYTERHUB_API_TOKEN is not set: the server would admit nobody")

    def page_config_hook(self, handler: Any, page_config: dict[str, Any]) -> dict[str, Any]:
        """JupyterLab's hub menu (control panel, log out); never a token in the page."""
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        hub_prefix = _join(base, "hub/")
        page_config["hubUser"] = self.user_name
        page_config["hubServerUser"] = self.user_name
        page_config["hubPrefix"] = hub_prefix
        page_config["hubHost"] = os.environ.get("JUPYTERHUB_HOST", "")
        page_config["shareUrl"] = _join(hub_prefix, "user-redirect")
        page_config["hubServerName"] = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        # The browser authenticates to the gateway with its own session, never with
        # the server's token.
        page_config["token"] = ""
        return page_config


class WorkspaceServerApp(ServerApp):
    """jupyter_server configured from the spawner's environment."""

    activity_url = Unicode(help="Where activity is reported ($JUPYTERHUB_ACTIVITY_URL).").tag(
        config=True
    )

    @default("contents_manager_class")
    def _default_contents_manager_class(self) -> type:
        # No notebook is trusted in the clean room (cleanroom_workspace.untrusted).
        from cleanroom_workspace.untrusted import UntrustedLargeFileManager

        return UntrustedLargeFileManager

    @default("activity_url")
    def _default_activity_url(self) -> str:
        return os.environ.get("JUPYTERHUB_ACTIVITY_URL", "")

    def load_config_file(self, suppress_errors: bool = True) -> None:  # type: ignore[override]
        super().load_config_file(suppress_errors)
        # Above the config files: the spawner's word on where and how to serve wins.
        self.update_config(Config(environment_config()))

    def initialize(self, argv: Any = None, *args: Any, **kwargs: Any) -> None:
        super().initialize(argv, *args, **kwargs)
        settings = self.web_app.settings
        provider = self.identity_provider
        if isinstance(provider, ServerTokenIdentityProvider):
            settings["page_config_hook"] = provider.page_config_hook
        headers = settings.setdefault("headers", {})
        headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")

    def start_app(self) -> None:
        super().start_app()
        self._activity = ActivityReporter(self)
        self.io_loop.add_callback(self._activity.run)


def environment_config() -> dict[str, Any]:
    """The ServerApp settings JupyterHub's spawner passes in the environment."""
    url = urlparse(_env("JUPYTERHUB_SERVICE_URL"))
    server: dict[str, Any] = {
        "identity_provider_class": ServerTokenIdentityProvider,
        "ip": url.hostname or "",
        "port": url.port or (443 if url.scheme == "https" else 80),
        "port_retries": 0,
        "base_url": os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/",
        "allow_remote_access": True,
        "open_browser": False,
        "trust_xheaders": True,
        "quit_button": False,
        "answer_yes": True,
    }
    if root := os.environ.get("JUPYTERHUB_ROOT_DIR"):
        server["root_dir"] = os.path.expanduser(root)
    if default_url := os.environ.get("JUPYTERHUB_DEFAULT_URL"):
        server["default_url"] = default_url
    return {"ServerApp": server, "FileContentsManager": {"delete_to_trash": False}}


class ActivityReporter:
    """Tells the hub when the server was last used, as jupyterhub-singleuser does:
    at start, then about every ``$JUPYTERHUB_ACTIVITY_INTERVAL`` seconds."""

    def __init__(self, app: WorkspaceServerApp) -> None:
        self.app = app
        self.url = app.activity_url
        self.interval = int(os.environ.get("JUPYTERHUB_ACTIVITY_INTERVAL") or 0) or (
            DEFAULT_ACTIVITY_INTERVAL
        )
        self.server_name = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        provider = app.identity_provider
        # The token the server admits is the one it reports with: read in one place.
        self.token = (
            provider.server_token if isinstance(provider, ServerTokenIdentityProvider) else ""
        )
        self.sent: datetime | None = None

    def _last_activity(self) -> datetime:
        last = self.app.web_app.last_activity() if self.app.web_app else None
        if last is None:
            return datetime.now(UTC)
        return last if last.tzinfo else last.replace(tzinfo=UTC)

    async def report(self) -> bool:
        """One report; False when the hub could not be told (tried again next time)."""
        last = self._last_activity()
        if self.sent is not None and last <= self.sent:
            return True
        stamp = last.isoformat().replace("+00:00", "Z")
        body = {"servers": {self.server_name: {"last_activity": stamp}}, "last_activity": stamp}
        request = HTTPRequest(
            self.url,
            method="POST",
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=json.dumps(body),
            request_timeout=20,
        )
        try:
            await AsyncHTTPClient().fetch(request)
        except Exception as exc:  # the hub restarting must not stop the server
            self.app.log.warning("Could not report activity to the hub: %s", exc)
            return False
        self.sent = last
        return True

    async def run(self) -> None:
        if not self.url:
            self.app.log.warning("No $JUPYTERHUB_ACTIVITY_URL: activity is not reported")
            return
        while True:
            ok = await self.report()
            # Jitter keeps many workspaces' reports apart; a failed one is retried soon.
            wait = self.interval * (1 + 0.2 * (random.random() - 0.5)) if ok else 15
            await asyncio.sleep(wait)


def main(argv: list[str] | None = None) -> None:
    """Run the workspace's server (the console script ``cleanroom-workspace-server``)."""
    try:
        WorkspaceServerApp.launch_instance(argv)
    except ConfigError as exc:
        raise SystemExit(f"cleanroom-workspace-server: {exc}") from None


if __name__ == "__main__":
    main()
