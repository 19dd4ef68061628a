"""A real cleanroom hub (the product's own configuration, CleanroomAuthenticator and
CleanroomSpawner) on loopback ports, served over https with the generated demo
certificate, for the identity tests.

No firewall is installed and no workspace container is started: every start these tests
make is refused by the identity checks before the engine is asked for anything.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONFIG = """\
from cleanroom.hub.config import configure

configure(c, install_firewall=False)  # noqa: F821
"""


@dataclass
class IdentityHub:
    """A running hub: where it is, its state, and the certificate it serves."""

    url: str
    state: Path
    env: dict[str, str]
    proc: subprocess.Popen
    log_path: Path

    @property
    def certificate(self) -> Path:
        """The demo certificate the proxy serves (what clients trust)."""
        return self.state / "secrets" / "demo-tls.crt"

    def cli(self, *argv: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``cleanroom`` against this hub's registry."""
        env = dict(self.env)
        if token:
            env["CLEANROOM_TOKEN"] = token
        return subprocess.run(
            [sys.executable, "-m", "cleanroom.cli.main", *argv],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the hub's log."""
        return self.log_path.read_text(errors="replace")[-chars:]


def start_identity_hub(
    root: Path,
    instance: str,
    extra_env: dict[str, str] | None = None,
    timeout: float = 90,
    *,
    public_port: int | None = None,
    state: Path | None = None,
) -> IdentityHub:
    """Start the hub and wait until it answers over https."""
    state = state or root / "state"
    state.mkdir(parents=True, exist_ok=True)
    public = public_port or free_port()
    env = {
        **os.environ,
        "CLEANROOM_STATE_DIR": str(state),
        "CLEANROOM_ROOT": str(REPO),
        "CLEANROOM_INSTANCE": instance,
        "CLEANROOM_PUBLIC_URL": f"https://127.0.0.1:{public}",
        "CLEANROOM_HUB_PORT": str(free_port()),
        "CLEANROOM_PROXY_API_PORT": str(free_port()),
        "CLEANROOM_AIRLOCK_PORT": str(free_port()),
        "CLEANROOM_AIRLOCK_SUBMIT_PORT": str(free_port()),
        "CLEANROOM_LIBRARY_PORT": str(free_port()),
        "CLEANROOM_ENFORCE_EVERY": "3600",
        "CLEANROOM_TOKEN_FILE": str(root / "cli-token"),
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        **(extra_env or {}),
    }
    for name in (
        "CLEANROOM_REGISTRY_URL",
        "CLEANROOM_TOKEN",
        "CLEANROOM_TLS_CERT",
        "CLEANROOM_TLS_KEY",
    ):
        env.pop(name, None)
    config = root / "jupyterhub_config.py"
    config.write_text(CONFIG)
    log_path = root / "hub.log"
    proc = subprocess.Popen(
        [str(VENV_BIN / "jupyterhub"), "-f", str(config)],
        cwd=state,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    hub = IdentityHub(f"https://127.0.0.1:{public}", state, env, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {proc.returncode}:\n{hub.log_tail()}")
        if hub.certificate.exists():
            try:
                reply = requests.get(f"{hub.url}/hub/api", timeout=2, verify=str(hub.certificate))
                if reply.status_code == 200:
                    return hub
            except (requests.ConnectionError, requests.Timeout):  # still starting (a busy host)
                pass
        time.sleep(0.2)
    stop_identity_hub(hub)
    raise RuntimeError(f"the hub did not answer in {timeout}s:\n{hub.log_tail()}")


def stop_identity_hub(hub: IdentityHub) -> None:
    """Stop the hub and everything it started (its own process group)."""
    if hub.proc.poll() is None:
        os.killpg(hub.proc.pid, signal.SIGTERM)
        try:
            hub.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(hub.proc.pid, signal.SIGKILL)
            hub.proc.wait(timeout=10)
