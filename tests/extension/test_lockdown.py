"""The researcher cannot switch the workspace's rules off with configuration."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cleanroom_workspace.authorizer import CleanroomAuthorizer
from cleanroom_workspace.channels import CleanroomChannelsConnection
from jupyter_core.paths import jupyter_config_path
from jupyter_server.extension.config import ExtensionConfigManager

from .conftest import Settings, Workspace

EXTENSIONS = Path(__file__).parents[2] / "extensions"
SERVER_CONFIG = EXTENSIONS / "jupyter-config" / "server" / "cleanroom_workspace.json"
PAGE_CONFIG = EXTENSIONS / "jupyter-config" / "labconfig" / "cleanroom_workspace.json"


class TestConfigCannotLoosen:
    """A config that picks other classes and looser limits changes nothing."""

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(
            server={
                "authorizer_class": "jupyter_server.auth.authorizer.AllowAllAuthorizer",
                "kernel_websocket_connection_class": (
                    "jupyter_server.services.kernels.connection.channels."
                    "ZMQChannelsWebsocketConnection"
                ),
                "iopub_data_rate_limit": 1e12,
            }
        )

    def test_rules_still_apply(self, fetch: Any, workspace: Workspace, jp_serverapp: Any) -> None:
        assert isinstance(jp_serverapp.authorizer, CleanroomAuthorizer)
        assert jp_serverapp.web_app.settings["authorizer"] is jp_serverapp.authorizer
        connection = jp_serverapp.web_app.settings["kernel_websocket_connection_class"]
        assert connection is CleanroomChannelsConnection
        assert jp_serverapp.iopub_data_rate_limit == 250000
        assert fetch("files", "work", "notes.txt").code == 403
        assert fetch("api", "contents", "data", "press", "cycles.csv").code == 403


def test_jupyterlab_is_locked_down(jp_serverapp: Any, jp_data_dir: Path) -> None:
    lab = jp_serverapp.config.LabApp
    assert lab.extension_manager == "readonly"
    assert lab.lock_all_plugins is True
    user_dir = os.path.realpath(jp_data_dir)
    assert lab.labextensions_path, "the system labextension folders are kept"
    assert not [p for p in lab.labextensions_path if os.path.realpath(p).startswith(user_dir)]


def test_authorizer_fails_closed_without_the_rules() -> None:
    from tornado.web import HTTPError

    handler = SimpleNamespace(settings={}, request=SimpleNamespace(method="GET", path="/x"))
    authorizer = CleanroomAuthorizer()
    with pytest.raises(HTTPError) as error:
        authorizer.is_authorized(handler, None, "read", "contents")  # type: ignore[arg-type]
    assert error.value.status_code == 503


def test_identity_endpoint_still_answers(fetch: Any, workspace: Workspace) -> None:
    response = fetch("api", "me", params={"permissions": json.dumps({"contents": ["read"]})})
    assert response.code == 200
    assert json.loads(response.body)["permissions"]["contents"] == ["read"]


def test_server_config_enables_the_extension_and_fails_closed() -> None:
    config = json.loads(SERVER_CONFIG.read_text())
    server = config["ServerApp"]
    assert server["jpserver_extensions"] == {"cleanroom_workspace": True}
    assert server["authorizer_class"] == "cleanroom_workspace.authorizer.CleanroomAuthorizer"
    # A broken policy or extension stops the server instead of serving without rules.
    assert server["reraise_server_extension_failures"] is True
    assert config["LabApp"]["extension_manager"] == "readonly"
    assert config["LabApp"]["lock_all_plugins"] is True


DOWNLOAD_PLUGINS = {
    "@jupyterlab/filebrowser-extension:download",  # Download, Copy Download Link
    "@jupyterlab/filebrowser-extension:open-browser-tab",
    "@jupyterlab/filebrowser-extension:share-file",
    "@jupyterlab/docmanager-extension:download",  # File > Download
    "@jupyterlab/notebook-extension:export",  # File > Save and Export Notebook As
}


def test_page_config_disables_and_locks_download_plugins() -> None:
    page = json.loads(PAGE_CONFIG.read_text())
    disabled = {k for k, v in page["disabledExtensions"].items() if v}
    locked = {k for k, v in page["lockedExtensions"].items() if v}
    assert disabled >= DOWNLOAD_PLUGINS
    assert locked >= disabled
    assert "cleanroom-workspace:plugin" in locked


def test_disabled_plugin_ids_exist_in_this_jupyterlab() -> None:
    """A renamed plugin would silently come back: every id must be in JupyterLab's build."""
    import jupyterlab

    static = Path(jupyterlab.__file__).parent / "static"
    if not static.exists():
        static = Path(sys.prefix) / "share" / "jupyter" / "lab" / "static"
    core = "".join(Path(p).read_text(errors="replace") for p in glob.glob(str(static / "*.js")))
    page = json.loads(PAGE_CONFIG.read_text())
    for plugin in page["disabledExtensions"]:
        assert f'"{plugin}"' in core or f"'{plugin}'" in core, plugin


def test_wheel_installs_the_config_files() -> None:
    project = tomllib.loads((EXTENSIONS / "pyproject.toml").read_text())
    data_files = project["tool"]["setuptools"]["data-files"]
    assert data_files["etc/jupyter/jupyter_server_config.d"] == [
        "jupyter-config/server/cleanroom_workspace.json"
    ]
    assert data_files["etc/jupyter/labconfig/page_config.d"] == [
        "jupyter-config/labconfig/cleanroom_workspace.json"
    ]


def test_no_port_proxy_is_installed() -> None:
    """jupyter-server-proxy (or any proxy extension) must not be in the environment."""
    assert importlib.util.find_spec("jupyter_server_proxy") is None
    enabled = ExtensionConfigManager(
        read_config_path=jupyter_config_path()
    ).get_jpserver_extensions()
    assert not [name for name in enabled if "proxy" in name.lower()]


class _FakeHubAuth:
    """Stands in for JupyterHub's HubOAuth: grants scopes from a fixed set."""

    oauth_scopes = {"access:servers!server=ada/press-line"}

    def __init__(self, granted: set[str]) -> None:
        self.granted = granted

    def check_scopes(self, required: set[str], user: Any) -> set[str]:
        return required & self.granted


@pytest.mark.parametrize("granted,allowed", [(_FakeHubAuth.oauth_scopes, True), (set(), False)])
def test_hub_scopes_are_checked_after_the_rules(granted: set[str], allowed: bool) -> None:
    """Under JupyterHub, a request the rules let through is still JupyterHub's to refuse."""
    from jupyter_server.auth.identity import IdentityProvider, User

    class HubIdentity(IdentityProvider):
        hub_auth = _FakeHubAuth(granted)

    class Guard:
        def check(self, handler: Any, action: str, resource: str) -> None:
            return None

    from cleanroom_workspace.authorizer import GUARD_SETTING

    handler = SimpleNamespace(
        settings={GUARD_SETTING: Guard()}, request=SimpleNamespace(method="GET", path="/x")
    )
    authorizer = CleanroomAuthorizer(identity_provider=HubIdentity())
    user = User(username="ada")
    user.hub_user = {"name": "ada", "scopes": list(granted)}  # type: ignore[attr-defined]
    assert authorizer.is_authorized(handler, user, "read", "contents") is allowed  # type: ignore[arg-type]


def test_image_environment_reads_no_config_from_home(tmp_path: Path) -> None:
    """With the image's variables, no Jupyter config or labextension path is under home."""
    import subprocess

    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": "/etc/cleanroom/jupyter",
        "JUPYTER_PREFER_ENV_PATH": "1",
    }
    code = (
        "import json; from jupyter_core.paths import jupyter_config_path;"
        "print(json.dumps(jupyter_config_path()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    paths = json.loads(done.stdout)
    assert "/etc/cleanroom/jupyter" in paths
    assert not [p for p in paths if p.startswith(str(home))], paths
