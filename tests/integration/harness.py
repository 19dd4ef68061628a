"""A real clean room for integration tests: hub, proxy, engine, images, registry.

The hub runs as its own process from ``hub/jupyterhub_config.py`` with a throwaway state
folder, free ports and the deployment name ``test``, so it never touches a running demo.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import docker
import requests
from cleanroom.paths import repo_root
from cleanroom.registry import Registry
from docker.models.containers import Container

from tests.people import Authenticator, in_standing, personal_token

# Parallel runs on one engine (two checkouts) each name their own deployment.
INSTANCE = os.environ.get("CLEANROOM_TEST_INSTANCE", "test")


def wait_until(
    condition: Callable[[], object], seconds: float, what: str, step: float = 0.2
) -> None:
    """Return once ``condition()`` is truthy, checked every ``step`` seconds; fail
    naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Hub:
    """A running test hub and the handles tests need."""

    state: Path
    env: dict[str, str]
    public_url: str
    hub_port: int
    airlock_submit_port: int
    process: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    # The test's authenticator app (TOTP secrets of the people it brought into standing)
    # and their command-line credentials.
    app: Authenticator = field(default_factory=Authenticator)
    cli_tokens: dict[str, str] = field(default_factory=dict)
    # The configuration the hub starts from; the benchmarks' plain hub names another.
    config_file: ClassVar[Path] = repo_root() / "hub" / "jupyterhub_config.py"
    docker: docker.DockerClient = field(default_factory=docker.from_env)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the hub (and, through it, the proxy) and wait until it answers."""
        log = open(self.state / "hub.log", "ab")  # noqa: SIM115  (closed with the process)
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(self.config_file)],
            cwd=self.state,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the hub ({self.config_file.name}) exited early:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.public_url}/hub/api", timeout=2).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not up yet, or too busy to answer in 2 s (a loaded CI host)
            time.sleep(0.5)
        raise RuntimeError(
            f"the hub ({self.config_file.name}) did not answer within 90 s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the hub and proxy (workspaces are stopped by the caller first)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 60) -> str:
        """The end of the hub's log, for failure messages."""
        path = self.state / "hub.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    @property
    def registry(self) -> Registry:
        """This deployment's registry (the hub reads the same file)."""
        return Registry(f"sqlite:///{self.state / 'registry.sqlite'}")

    def standing(self, *users: str) -> None:
        """Bring ``users`` into standing (verified, trained, a second factor) through the
        real domain; the harness's authenticator app learns their secrets."""
        for user in users:
            if user not in self.app.secrets:
                secret = in_standing(self.registry, user)
                if secret is not None:
                    self.app.add(user, secret)

    def cli_as(self, user: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``cleanroom`` with ``user``'s personal credential (``cleanroom login``)."""
        if user not in self.cli_tokens:
            self.standing(user)
            self.cli_tokens[user] = personal_token(
                self.registry, user, self.app, self.env["TEST_PASSWORD"]
            )
        return self.cli(*args, token=self.cli_tokens[user])

    def cli(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the ``cleanroom`` command against this deployment."""
        env = {**self.env, "CLEANROOM_TOKEN": token} if token else self.env
        return subprocess.run(
            [sys.executable, "-m", "cleanroom.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    # -- REST API ------------------------------------------------------------------
    def api(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Call the hub's REST API through the proxy."""
        token = token or self.service_token
        return requests.request(
            method,
            f"{self.public_url}/hub/api{path}",
            timeout=60,
            headers={"Authorization": f"token {token}"},
            **kwargs,
        )

    @property
    def service_token(self) -> str:
        """The command line's service token (admin of servers and users)."""
        return (self.state / "secrets" / "cli-service-token").read_text().strip()

    def token(self, user: str) -> str:
        """An API token of ``user`` (issued by the operator's command once per user)."""
        if user not in self.tokens:
            done = self.cli("token", user, "--note", "integration test")
            assert done.returncode == 0, done.stderr
            self.tokens[user] = done.stdout.strip()
        return self.tokens[user]

    def is_ready(self, user: str, project: str) -> bool:
        """True when the hub says the workspace is up."""
        model = self.api("GET", f"/users/{user}", self.token(user)).json()
        return bool(((model.get("servers") or {}).get(project) or {}).get("ready"))

    def ensure_running(self, user: str, project: str) -> None:
        """Start the workspace unless it is running already."""
        if not self.is_ready(user, project):
            reply, seconds = self.spawn(user, project)
            assert reply.status_code in (201, 202), reply.text
            print(f"spawn {user}/{project}: {seconds:.1f} s")

    def spawn(self, user: str, project: str, /, **options: Any) -> tuple[requests.Response, float]:
        """Ask for a workspace and wait until it is ready; (first reply, seconds)."""
        began = time.monotonic()
        reply = self.api("POST", f"/users/{user}/servers/{project}", self.token(user), json=options)
        if reply.status_code not in (201, 202):
            return reply, time.monotonic() - began
        deadline = began + 240
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{user}", self.token(user)).json()
            server = (model.get("servers") or {}).get(project)
            if server and server.get("ready"):
                return reply, time.monotonic() - began
            if not server or (not server.get("pending") and not server.get("ready")):
                raise AssertionError(f"spawn of {user}/{project} failed:\n{self.log_tail()}")
            time.sleep(0.5)
        raise AssertionError(f"spawn of {user}/{project} timed out:\n{self.log_tail()}")

    def stop_server(self, user: str, project: str) -> None:
        """Stop a workspace and wait until the hub says it is gone."""
        reply = self.api("DELETE", f"/users/{user}/servers/{project}", self.token(user))
        assert reply.status_code in (202, 204), reply.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{user}", self.token(user)).json()
            if project not in (model.get("servers") or {}):
                return
            time.sleep(0.5)
        raise AssertionError(f"{user}/{project} did not stop")

    def server_get(self, user: str, project: str, path: str, **kwargs: Any) -> requests.Response:
        """GET a path of a workspace through the proxy, as its user."""
        return requests.get(
            f"{self.public_url}/user/{user}/{project}/{path}",
            timeout=60,
            headers={"Authorization": f"token {self.token(user)}"},
            **kwargs,
        )

    @property
    def airlock_url(self) -> str:
        """The airlock's pages and API behind the proxy."""
        return f"{self.public_url}/services/airlock/"

    def login(self, user: str, retries: int = 3) -> requests.Session:
        """A browser-like session logged in through the hub's real login form."""
        session = requests.Session()
        # Like a browser on our pages: its forms carry the pages' origin (the airlock's
        # decision forms refuse any other).
        session.headers["Origin"] = self.public_url
        page = session.get(f"{self.public_url}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        self.standing(user)
        data = {
            "username": user,
            "password": self.env["TEST_PASSWORD"],
            "otp": self.app.code(user),
        }
        if xsrf:
            data["_xsrf"] = xsrf.group(1)
        # Not following the redirect: it would land on the home page, which is fine, but
        # a 302 is the clear sign the password and code were accepted.
        reply = session.post(
            f"{self.public_url}/hub/login", data=data, timeout=30, allow_redirects=False
        )
        wait = re.search(r"Try again in (\d+) seconds", reply.text)
        if wait and retries:
            # A test just failed this account on purpose: the back-off says how long.
            time.sleep(int(wait.group(1)))
            return self.login(user, retries=retries - 1)
        assert reply.status_code == 302, reply.text[:500]
        return session

    def airlock_session(self, user: str) -> requests.Session:
        """A logged-in session that has also been through the airlock's OAuth."""
        session = self.login(user)
        reply = session.get(self.airlock_url + "requests", timeout=60)
        assert reply.status_code == 200, reply.text[:500]
        return session

    # -- containers ------------------------------------------------------------------
    def container(self, user: str, project: str) -> Container:
        """The running workspace container of ``user`` on ``project``."""
        found = self.docker.containers.list(
            filters={
                "label": [
                    f"cleanroom.instance={INSTANCE}",
                    f"cleanroom.user={user}",
                    f"cleanroom.project={project}",
                    # A restricted session's viewer carries the same user and project.
                    "cleanroom.kind=workspace",
                ]
            }
        )
        assert len(found) == 1, f"expected one workspace of {user}/{project}, found {found}"
        return found[0]


def run_in(container: Container, *cmd: str, user: str = "1000") -> tuple[int, str]:
    """Run a command in a container (as the workspace user); (exit code, output)."""
    result = container.exec_run(list(cmd), user=user, demux=False)
    return result.exit_code, (result.output or b"").decode(errors="replace")


def python_in(container: Container, code: str) -> tuple[int, str]:
    """Run Python code in a workspace container as the workspace user."""
    return run_in(container, "python3", "-c", code)


def host_addresses() -> list[str]:
    """Every IPv4 address of this host except loopback (containers cannot route there)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    found = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    return sorted({a for a in found if not a.startswith("127.")})
