"""Everything the hub's configuration sets, as one function the config file calls.

Keeping it here (not in ``jupyterhub_config.py``) lets tests build a hub with other
ports and folders through the same code.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

from cleanroom import paths
from cleanroom.errors import CleanroomError, NotFound
from cleanroom.gateway.hub_config import add_gateway, host_firewall
from cleanroom.hub import activity
from cleanroom.hub.cookies import cookie_options
from cleanroom.hub.services import configure_operations
from cleanroom.identity import tls
from cleanroom.kubernetes.hub_config import backend, configure_kubernetes
from cleanroom.registry import shared_registry
from cleanroom.settings import Settings, secret, secret_file

CLI_SERVICE = "cleanroom-cli"


def template_projects(user: Any, registry_url: str | None = None) -> list[Any]:
    """The projects a user may start, for the home page (from the hub's registry)."""
    return shared_registry(registry_url).projects_of(user.name) if user is not None else []


def template_roles(user: Any, registry_url: str | None = None) -> frozenset[str]:
    """The registry's roles of a user, for the home page's links to their pages (what
    each page lets them do is checked there, not here)."""
    if user is None:
        return frozenset()
    try:
        return shared_registry(registry_url).get_user(user.name).roles
    except NotFound:
        return frozenset()


def _add_airlock(c: Any, settings: Settings, registry_url: str) -> None:
    """Run the airlock as a hub-managed service, with its scopes and listeners.

    Roles are managed by the authenticator (``cleanroom.hub.auth``), which merges the
    airlock's role scopes itself, so ``load_roles`` from the airlock is not used.
    """
    from cleanroom.airlock.hub_config import airlock_service_config

    pieces = airlock_service_config(
        port=settings.airlock_port,
        submit_bind=f"0.0.0.0:{settings.airlock_submit_port}",
        environment={
            "CLEANROOM_STATE_DIR": str(paths.state_dir()),
            "CLEANROOM_ROOT": str(paths.repo_root()),
            "CLEANROOM_POLICIES_DIR": str(paths.policies_dir()),
            # The only Origin the airlock's forms are accepted from.
            "CLEANROOM_PUBLIC_URL": settings.public_url,
            "CLEANROOM_REGISTRY_URL": registry_url,
        },
        python=sys.executable,
    )
    c.JupyterHub.services.extend(pieces["services"])
    c.JupyterHub.custom_scopes = pieces["custom_scopes"]
    # The workspace's token: what JupyterHub's server role holds (its own server's
    # access, the user's activity: the idle culler reads it) and the researcher's
    # custom scope, to submit release requests for its own user and project. Only the
    # server holds it: kernels and terminals never see it (the image's launcher).
    c.Spawner.server_token_scopes = pieces["server_token_scopes"]


def configure_tls(c: Any, settings: Settings) -> None:
    """https on the proxy (the operator's certificate or the generated demo one), HSTS,
    and Secure, SameSite cookies; a public URL neither https nor loopback stops the hub."""
    try:
        tls.check_public_url(settings.public_url)
        pair = tls.certificate_pair(settings.public_url)
    except CleanroomError as exc:
        raise SystemExit(f"cleanroom hub: {exc}") from None
    headers: dict[str, str] = {}
    if pair is not None:
        c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key = (str(p) for p in pair)
        # One host: the hub's HSTS covers the airlock and gateway paths behind it too.
        headers["Strict-Transport-Security"] = tls.HSTS
    settings_ = dict(c.JupyterHub.tornado_settings) if "tornado_settings" in c.JupyterHub else {}
    # Every cookie the hub sets (log-in, XSRF, and through the spawner the workspaces'
    # own) carries SameSite, and Secure behind https: one rule, cookie_options(), shared
    # with the airlock. (JupyterHub derives its XSRF cookie's attributes from these.)
    settings_["cookie_options"] = {
        **settings_.get("cookie_options", {}),
        **cookie_options(settings.public_url),
    }
    settings_["headers"] = {**settings_.get("headers", {}), **headers}
    c.JupyterHub.tornado_settings = settings_


def configure_hub_process(c: Any, settings: Settings) -> Path:
    """Ports, proxy, database, secrets, named servers, start timeouts and the command
    line's service of a hub process; returns the state folder.

    Shared with the benchmarks' plain DockerSpawner hub, so the two differ only in what
    the comparison is about.
    """
    state = paths.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    configure_tls(c, settings)
    c.JupyterHub.bind_url = settings.public_url
    # Workspaces reach the hub API through their project's gateway, so the hub listens on
    # all addresses; the host firewall lets project bridges reach only this port.
    c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{settings.hub_port}"
    c.JupyterHub.hub_connect_url = f"http://127.0.0.1:{settings.hub_port}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.ConfigurableHTTPProxy.should_start = True
    c.ConfigurableHTTPProxy.auth_token = secret("proxy-auth-token")
    # $CLEANROOM_HUB_DB_URL: the hub's own database elsewhere (PostgreSQL; the chart).
    c.JupyterHub.db_url = os.environ.get("CLEANROOM_HUB_DB_URL") or (
        f"sqlite:///{state / 'jupyterhub.sqlite'}"
    )
    c.JupyterHub.cookie_secret_file = str(secret_file("jupyterhub-cookie-secret"))
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    # Cookies (SameSite, Secure) and HSTS: configure_tls above.
    # One named server per project; the hub page lists them, no redirect to one.
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = 0
    c.JupyterHub.redirect_to_server = False
    c.Spawner.start_timeout = 180
    c.Spawner.http_timeout = 120
    c.Spawner.poll_interval = 15
    # The command line's own service: stop workspaces of removed members, issue tokens.
    c.JupyterHub.services = [{"name": CLI_SERVICE, "api_token": secret("cli-service-token")}]
    c.JupyterHub.load_roles = [
        {
            "name": CLI_SERVICE,
            "scopes": ["admin:servers", "admin:users", "tokens", "list:users", "read:users"],
            "services": [CLI_SERVICE],
        }
    ]
    return state


def configure(c: Any, settings: Settings | None = None, *, install_firewall: bool = True) -> None:
    """Fill the traitlets config ``c`` of a cleanroom hub."""
    settings = settings or Settings.from_env()
    state = configure_hub_process(c, settings)
    # Activity timestamps: never in the future, whole seconds (no covert channel).
    activity.install()
    c.JupyterHub.cleanup_servers = False  # make down keeps state; restarts reconnect
    c.JupyterHub.cleanup_proxy = True

    c.JupyterHub.authenticator_class = "cleanroom.hub.auth.CleanroomAuthenticator"
    # CLEANROOM_AUTHENTICATOR=oidc: an institution's OpenID provider (docs/identity.md).
    choice = os.environ.get("CLEANROOM_AUTHENTICATOR", "password")
    if choice == "oidc":
        from cleanroom.identity.oidc import configure_oidc

        configure_oidc(c, settings.public_url)
    elif choice != "password":
        raise SystemExit(f"cleanroom hub: CLEANROOM_AUTHENTICATOR={choice!r}: use password or oidc")
    c.JupyterHub.spawner_class = "cleanroom.workspace.spawner.CleanroomSpawner"
    c.JupyterHub.template_paths = [str(paths.repo_root() / "hub" / "templates")]
    # The registry URL is resolved here, once, and handed to everything that reads the
    # registry in the hub: the authenticator, the spawner, the home page and the airlock.
    registry_url = paths.registry_url()
    c.CleanroomAuthenticator.registry_url = registry_url
    c.CleanroomSpawner.registry_url = registry_url
    c.JupyterHub.template_vars = {
        "cleanroom_projects": functools.partial(template_projects, registry_url=registry_url),
        "cleanroom_roles": functools.partial(template_roles, registry_url=registry_url),
    }

    c.CleanroomSpawner.instance = settings.instance
    c.CleanroomSpawner.prefix = f"cleanroom-{settings.instance}"
    c.CleanroomSpawner.hub_api_port = settings.hub_port
    c.CleanroomSpawner.airlock_submit_port = settings.airlock_submit_port

    _add_airlock(c, settings, registry_url)
    # The data library's pages (catalogue, cards, providers): cleanroom.library.
    from cleanroom.library.hub_config import library_service_config

    c.JupyterHub.services.append(
        library_service_config(
            port=settings.library_port,
            environment={
                "CLEANROOM_STATE_DIR": str(paths.state_dir()),
                "CLEANROOM_POLICIES_DIR": str(paths.policies_dir()),
                "CLEANROOM_PUBLIC_URL": settings.public_url,
                "CLEANROOM_REGISTRY_URL": registry_url,
            },
        )
    )
    # CLEANROOM_BACKEND=kubernetes: workspaces are pods, walled by NetworkPolicies
    # (docs/kubernetes.md); the host firewall below guards Docker bridges only.
    on_kubernetes = backend() == "kubernetes"
    if on_kubernetes:
        configure_kubernetes(c, settings, registry_url)
    # The egress gateway: every byte between a browser and a workspace passes it.
    add_gateway(c, settings, kubernetes=on_kubernetes)
    # The enforcer of end dates, the idle culler and the metrics reader.
    configure_operations(c, settings)

    if install_firewall and not on_kubernetes:
        host_firewall(settings).install()
    print(f"cleanroom hub: state in {state}", file=sys.stderr)
