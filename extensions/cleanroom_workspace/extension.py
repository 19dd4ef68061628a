"""Linking and loading the extension into a Jupyter server.

Linking runs before the server builds its web application: it fixes the settings that
a researcher's config must not change (authorizer, kernel websocket class, IOPub rates,
JupyterLab's extension manager and plugin locks). Loading installs the rules, the
blocked routes and the release API.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_core.paths import jupyter_data_dir, jupyter_path
from jupyter_server.utils import url_path_join
from traitlets import Unicode, default
from traitlets.config import LoggingConfigurable

from .airlock import AirlockClient, HttpAirlockClient, UnconfiguredAirlock
from .audit import AuditLog
from .authorizer import GUARD_SETTING, CleanroomAuthorizer
from .blocking import BLOCKED_ROUTES, BlockedRouteHandler
from .channels import RULES_SETTING, CleanroomChannelsConnection
from .guard import WorkspaceGuard
from .labpage import install as install_lab_page
from .paths import WorkspacePaths
from .policy import WorkspacePolicy, load_policy
from .process import forbid_tracing
from .proof import install as install_proof
from .releases import RELEASES_PATH, STATE_SETTING, ReleaseService, ReleasesHandler

_POLICY_ATTR = "_cleanroom_workspace_policy"


class CleanroomWorkspace(LoggingConfigurable):
    """Settings of the clean-room workspace extension (defaults come from the spawner's env)."""

    policies_dir = Unicode(
        config=True,
        help="Folder holding workspace.yaml; empty means the policy packaged with the "
        "extension. Defaults to $CLEANROOM_POLICIES_DIR.",
    )
    project = Unicode(
        config=True, help="The project this workspace belongs to. Defaults to $CLEANROOM_PROJECT."
    )
    user = Unicode(
        config=True,
        help="The researcher using this workspace. Defaults to $CLEANROOM_USER, "
        "else $JUPYTERHUB_USER.",
    )
    airlock_url = Unicode(
        config=True,
        help="Base URL of the airlock's submission listener; empty means no airlock "
        "(release requests are refused with 503). Defaults to $CLEANROOM_AIRLOCK_URL.",
    )
    hub_token = Unicode(
        config=True,
        help="The token sent to the airlock. Defaults to $JUPYTERHUB_API_TOKEN.",
    )

    @default("policies_dir")
    def _policies_dir_default(self) -> str:
        return os.environ.get("CLEANROOM_POLICIES_DIR", "")

    @default("project")
    def _project_default(self) -> str:
        return os.environ.get("CLEANROOM_PROJECT", "")

    @default("user")
    def _user_default(self) -> str:
        return os.environ.get("CLEANROOM_USER") or os.environ.get("JUPYTERHUB_USER", "")

    @default("airlock_url")
    def _airlock_url_default(self) -> str:
        return os.environ.get("CLEANROOM_AIRLOCK_URL", "")

    @default("hub_token")
    def _hub_token_default(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def airlock(self) -> AirlockClient:
        """The airlock client for these settings."""
        if not self.airlock_url:
            return UnconfiguredAirlock()
        return HttpAirlockClient(self.airlock_url, self.hub_token)


def _policy(serverapp: Any) -> WorkspacePolicy:
    policy = getattr(serverapp, _POLICY_ATTR, None)
    if policy is None:
        settings = CleanroomWorkspace(parent=serverapp)
        policy = load_policy(settings.policies_dir or None)
        setattr(serverapp, _POLICY_ATTR, policy)
    return policy


def _user_writable(path: str) -> bool:
    """Whether ``path`` (or the folder that would hold it) is under the researcher's home
    or user data dir, where code in the kernel could put files."""
    real = os.path.realpath(path)
    roots = {os.path.realpath(os.path.expanduser("~")), os.path.realpath(jupyter_data_dir())}
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def link_extension(serverapp: Any) -> None:
    """Fix the server settings the workspace depends on, before the web app exists."""
    policy = _policy(serverapp)
    # Written into the server's config as well as onto the app: extensions linked after
    # this one push the server's config back onto the app, and must push these values.
    forced = {
        "authorizer_class": CleanroomAuthorizer,
        "kernel_websocket_connection_class": CleanroomChannelsConnection,
        "iopub_msg_rate_limit": policy.outputs.iopub_msg_rate_limit,
        "iopub_data_rate_limit": policy.outputs.iopub_data_rate_limit,
        "rate_limit_window": policy.outputs.rate_limit_window,
    }
    for name, value in forced.items():
        serverapp.config.ServerApp[name] = value
        setattr(serverapp, name, value)
    # JupyterLab links after this extension and reads these from the server's config.
    lab = serverapp.config.LabApp
    lab.extension_manager = "readonly"
    lab.lock_all_plugins = True
    # Prebuilt extensions under the home folder would be served as static files and run
    # in the page: a way out, and a way round the locked plugins.
    lab.labextensions_path = [p for p in jupyter_path("labextensions") if not _user_writable(p)]


def load_extension(serverapp: Any) -> None:
    """Install the rules, the blocked routes and the release API into the web app."""
    settings = CleanroomWorkspace(parent=serverapp)
    policy = _policy(serverapp)
    paths = WorkspacePaths(serverapp.root_dir, policy.folders.work, policy.folders.data)
    audit = AuditLog(settings.user, settings.project, serverapp.log.getChild("cleanroom.audit"))
    web_app = serverapp.web_app
    web_app.settings[GUARD_SETTING] = WorkspaceGuard(policy, paths, audit)
    web_app.settings[RULES_SETTING] = policy.outputs
    web_app.settings[STATE_SETTING] = ReleaseService(
        project=settings.project,
        rules=policy.releases,
        paths=paths,
        airlock=settings.airlock(),
        audit=audit,
    )
    web_app.settings["kernel_websocket_connection_class"] = CleanroomChannelsConnection
    if not isinstance(serverapp.authorizer, CleanroomAuthorizer):
        # Another authorizer was configured after linking: put ours in front anyway.
        authorizer = CleanroomAuthorizer(
            parent=serverapp, log=serverapp.log, identity_provider=serverapp.identity_provider
        )
        serverapp.authorizer = authorizer
        web_app.settings["authorizer"] = authorizer
    base_url = web_app.settings["base_url"]
    handlers: list[Any] = [
        (url_path_join(base_url, route), BlockedRouteHandler, {"message": message})
        for route, message in BLOCKED_ROUTES
    ]
    handlers.append((url_path_join(base_url, RELEASES_PATH), ReleasesHandler))
    web_app.add_handlers(".*$", handlers)
    if not settings.airlock_url:
        serverapp.log.warning(
            "cleanroom: no airlock configured (CLEANROOM_AIRLOCK_URL is unset); "
            "release requests will be refused with 503"
        )
    if install_proof(web_app, serverapp.log):
        serverapp.log.info("cleanroom: answers carry the server's proof for the gateway")
    if install_lab_page():
        serverapp.log.info("cleanroom: JupyterLab's page config is read once (fixed files)")
    if forbid_tracing():
        serverapp.log.info("cleanroom: server process is not traceable by kernel code")
    serverapp.log.info("cleanroom: workspace policy loaded from %s", policy.source)
