"""A real JupyterHub with the airlock as a managed service, on loopback ports.

Started once per test module from the venv's ``jupyterhub`` with a throwaway config;
users are created and tokens issued through the hub's REST API, and browsers log in
through the hub's real login form and OAuth flow. Nothing outside loopback is touched.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cleanroom.airlock.hub_config import airlock_service_config

VENV_BIN = Path(sys.executable).parent
PROJECT = "press-line"
CO_PROJECT = "kiln"
MEMBERS = {PROJECT: ["alice", "bob", "otto"], "furnace": ["eve"], CO_PROJECT: ["alice", "kim"]}
OFFICERS = ["olga", "oscar", "otto"]
OPERATORS = ["pat"]
USERS = ["alice", "bob", "eve", "olga", "oscar", "otto", "pat", "paul", "kim", "nina"]
# kiln's recipes need Acme's vote on releases (paul, or kim, who is a member of kiln and
# so never votes); its sensor logs only tell Boreal (nina).
DATA_OWNERS = {
    "accounts": {"Acme": ["paul", "kim"], "Boreal": ["nina"]},
    "uses": {
        CO_PROJECT: [
            {"dataset": "recipes", "version": "v1", "provider": "Acme", "co_review": "required"},
            {"dataset": "sensors", "version": "v2", "provider": "Boreal", "co_review": "notify"},
        ]
    },
}
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers 200 (the proxy answers 404 until its routes are in)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2, allow_redirects=False).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


@dataclass
class Hub:
    """A running hub: where it is, its admin token, and helpers to act as users."""

    root: Path
    url: str
    hub_api: str
    admin_token: str
    submit_url: str
    members_file: Path
    proc: subprocess.Popen
    log_path: Path
    airlock_env: dict[str, str] = field(default_factory=dict)
    # The airlock's public listener itself, behind the proxy (tests that must send it
    # URLs the proxy would refuse before the airlock sees them).
    airlock_url: str = ""

    @property
    def service_url(self) -> str:
        """The airlock's public pages and API, through the hub's proxy."""
        return f"{self.url}/services/airlock/"

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the hub REST API as the test's admin service."""
        headers = {"Authorization": f"token {self.admin_token}"}
        r = requests.request(method, f"{self.hub_api}{path}", headers=headers, timeout=30, **kwargs)
        r.raise_for_status()
        return r

    def add_user(self, name: str) -> None:
        """Create a hub user (idempotent)."""
        r = requests.get(
            f"{self.hub_api}/users/{name}",
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=30,
        )
        if r.status_code == 404:
            self.api("POST", f"/users/{name}")

    def token(self, user: str, scopes: list[str]) -> str:
        """A token owned by ``user`` with exactly ``scopes`` (issued by the hub)."""
        r = self.api("POST", f"/users/{user}/tokens", json={"scopes": scopes, "note": "test"})
        return str(r.json()["token"])

    def server_token(self, user: str, project: str) -> str:
        """Start the named server ``user/project`` and return the token the hub gave it."""
        path = self.root / f"{user}-{project}.token"
        if not path.exists():
            self.api("POST", f"/users/{user}/servers/{project}", json={})
            deadline = time.monotonic() + 30
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
        return path.read_text()

    def workspace_token(self, user: str, project: str) -> str:
        """A token shaped like a workspace's server token for ``user``/``project``."""
        return self.token(
            user, [f"access:servers!server={user}/{project}", "custom:cleanroom:researcher"]
        )

    def browser(self, user: str) -> requests.Session:
        """A session logged in to the hub (real login form) and then to the airlock (OAuth)."""
        s = requests.Session()
        # Like a browser on our pages: every form it posts carries the pages' origin.
        s.headers["Origin"] = self.url
        page = s.get(f"{self.url}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        data = {"username": user, "password": "any"}
        if xsrf:
            data["_xsrf"] = xsrf.group(1)
        # Not following the hub's redirect: it would try to spawn a server.
        r = s.post(f"{self.url}/hub/login", data=data, timeout=30, allow_redirects=False)
        assert r.status_code == 302, r.text[:500]
        r = s.get(self.service_url + "requests", timeout=30)
        r.raise_for_status()
        assert "cleanroom airlock" in r.text, r.text[:500]
        return s

    def log_tail(self) -> str:
        """The end of the hub's log (hub, proxy and the airlock service)."""
        return self.log_path.read_text(errors="replace")[-6000:]


TEST_POLICY = (
    "approvals_required: 2\nlimits:\n  files_per_request: 3\n  bytes_per_file: 2 MiB\n"
    "  bytes_per_request: 4 MiB\n  requests_per_user_per_day: 50\n"
)


def start_hub(
    root: Path,
    members: dict[str, list[str]],
    officers: list[str],
    operators: list[str],
    *,
    policy: str = TEST_POLICY,
    db_url: str | None = None,
    data_owners: dict | None = None,
    environment: dict[str, str] | None = None,
    timeout: float = 60,
) -> Hub:
    """Start JupyterHub with the airlock as a managed service and wait until both answer.

    ``policy`` is the airlock policy's YAML; ``db_url`` its store (default: a SQLite file
    in ``root``); ``data_owners`` the providers' accounts and the projects' data
    (``StaticDataOwners.from_json``; default: no data asks for co-review); ``environment``
    overrides the airlock's settings (a registry instead of the files). The benchmarks
    start this same hub with their own policy and store.
    """
    if shutil.which("configurable-http-proxy") is None:
        raise RuntimeError("configurable-http-proxy is not installed (npm install -g ...)")
    root.mkdir(parents=True, exist_ok=True)
    public, hub_port, proxy_api, airlock_port, submit_port = (free_port() for _ in range(5))
    admin_token = secrets.token_hex(16)
    members_file = root / "members.json"
    members_file.write_text(json.dumps(members))
    owners_file = root / "data-owners.json"
    owners_file.write_text(json.dumps(data_owners or {}))
    airlock_env = {
        "CLEANROOM_AIRLOCK_DB_URL": db_url or f"sqlite:///{root / 'airlock.sqlite'}",
        "CLEANROOM_AIRLOCK_BLOB_DIR": str(root / "blobs"),
        "CLEANROOM_AIRLOCK_MEMBERSHIP": f"file:{members_file}",
        "CLEANROOM_AIRLOCK_DATA_OWNERS": f"file:{owners_file}",
        "CLEANROOM_AIRLOCK_POLICY": str(root / "airlock.yaml"),
        "CLEANROOM_STATE_DIR": str(root / "state"),
        "CLEANROOM_POLICIES_DIR": str(REPO / "policies"),
        # The origin the airlock's forms must come from (the proxy's public address).
        "CLEANROOM_PUBLIC_URL": f"http://127.0.0.1:{public}",
        "PYTHONPATH": str(REPO / "hub"),
        **(environment or {}),
    }
    (root / "airlock.yaml").write_text(policy)
    pieces = airlock_service_config(
        port=airlock_port,
        submit_bind=f"127.0.0.1:{submit_port}",
        environment=airlock_env,
        officers=officers,
        operators=operators,
    )
    config = {
        "public": public,
        "hub_port": hub_port,
        "proxy_api": proxy_api,
        "root": str(root),
        "admin_token": admin_token,
        "pieces": pieces,
    }
    (root / "config.json").write_text(json.dumps(config))
    (root / "jupyterhub_config.py").write_text(
        loopback_hub_config(root) + "c.JupyterHub.allow_named_servers = True\n"
        # After log-in, go to the airlock: this hub has no spawner worth starting.
        "c.JupyterHub.default_url = '/services/airlock/'\n"
        "c.JupyterHub.custom_scopes = cfg['pieces']['custom_scopes']\n"
        "c.JupyterHub.services = cfg['pieces']['services'] + [\n"
        "    {'name': 'test-admin', 'api_token': cfg['admin_token']}]\n"
        "c.JupyterHub.load_roles = cfg['pieces']['load_roles'] + [{\n"
        "    'name': 'test-admin', 'services': ['test-admin'],\n"
        "    'scopes': ['admin:users', 'admin:servers', 'tokens', 'list:users',"
        " 'read:users']}]\n"
        "c.Spawner.server_token_scopes = cfg['pieces']['server_token_scopes']\n"
        "c.JupyterHub.spawner_class = 'tests.airlock.token_spawner.TokenRecordingSpawner'\n"
        "c.TokenRecordingSpawner.token_dir = cfg['root']\n"
    )
    # The hub imports the test spawner from this checkout.
    proc, log_path = launch_hub(root, {"PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"})
    hub = Hub(
        root=root,
        url=f"http://127.0.0.1:{public}",
        hub_api=f"http://127.0.0.1:{public}/hub/api",
        admin_token=admin_token,
        submit_url=f"http://127.0.0.1:{submit_port}/api/v1/requests",
        members_file=members_file,
        proc=proc,
        log_path=log_path,
        airlock_env=airlock_env,
        airlock_url=f"http://127.0.0.1:{airlock_port}",
    )
    try:
        wait_http(f"{hub.hub_api}/", timeout=timeout, proc=proc)
        wait_http(f"http://127.0.0.1:{submit_port}/health", timeout=timeout, proc=proc)
        wait_http(f"{hub.service_url}health", timeout=timeout, proc=proc)
    except Exception:
        stop_hub(hub)
        raise RuntimeError("hub did not start:\n" + hub.log_tail()) from None
    return hub


def stop_hub(hub: Hub) -> None:
    """Stop the hub and everything it started (proxy, airlock): its process group."""
    stop_group(hub.proc)


def loopback_hub_config(root: Path) -> str:
    """The first lines of a test hub's ``jupyterhub_config.py``: it reads its ports from
    ``root/config.json`` (``public``, ``hub_port``, ``proxy_api``, ``root``), listens on
    loopback only, keeps its state under ``root`` and logs anyone in (dummy)."""
    return (
        "import json\n"
        f"cfg = json.load(open({str(root / 'config.json')!r}))\n"
        "c = get_config()  # noqa: F821\n"
        "c.JupyterHub.bind_url = f\"http://127.0.0.1:{cfg['public']}\"\n"
        "c.JupyterHub.hub_bind_url = f\"http://127.0.0.1:{cfg['hub_port']}\"\n"
        "c.ConfigurableHTTPProxy.api_url = f\"http://127.0.0.1:{cfg['proxy_api']}\"\n"
        "c.JupyterHub.db_url = f\"sqlite:///{cfg['root']}/jupyterhub.sqlite\"\n"
        "c.JupyterHub.cookie_secret_file = f\"{cfg['root']}/cookie_secret\"\n"
        "c.JupyterHub.pid_file = f\"{cfg['root']}/jupyterhub.pid\"\n"
        "c.JupyterHub.authenticator_class = 'dummy'\n"
        "c.Authenticator.allow_all = True\n"
    )


def launch_hub(
    root: Path, environment: dict[str, str] | None = None
) -> tuple[subprocess.Popen, Path]:
    """Start ``jupyterhub -f root/jupyterhub_config.py`` in a process group of its own
    (its proxy and services with it), the venv first on PATH, its output in
    ``root/hub.log``; returns the process and the log's path."""
    log_path = root / "hub.log"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", **(environment or {})}
    proc = subprocess.Popen(
        [str(VENV_BIN / "jupyterhub"), "-f", str(root / "jupyterhub_config.py")],
        cwd=root,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    return proc, log_path


def stop_group(proc: subprocess.Popen) -> None:
    """Stop ``proc`` and its process group: TERM, then KILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
