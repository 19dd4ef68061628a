"""A real JupyterHub with the data library's pages as a managed service, on loopback.

People log in through the hub's real login form (the dummy authenticator: the library
takes identity from the hub's OAuth and everything else from the registry, which the
test seeds through the domain). Nothing outside loopback is touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests
from cleanroom.library.hub_config import access_scope, library_service_config

from tests.airlock.hub import free_port, launch_hub, loopback_hub_config, stop_group, wait_http

INSTANCE = os.environ.get("CLEANROOM_TEST_INSTANCE", "test")[:8] + "lib"
"""The instance the library's hub runs as (1-12 letters and digits)."""


@dataclass
class LibraryHub:
    """A running hub with the library service."""

    root: Path
    url: str
    registry_url: str
    proc: subprocess.Popen
    log_path: Path
    # The service's own listener, behind the proxy (fuzzing sends it URLs the proxy would
    # refuse before the service sees them).
    service_url: str = ""

    @property
    def library(self) -> str:
        """The library's pages, through the hub's proxy."""
        return f"{self.url}/services/library/"

    def session(self, user: str) -> requests.Session:
        """A session logged in to the hub (its login form), then to the library (OAuth)."""
        s = requests.Session()
        s.headers["Origin"] = self.url  # like a browser on our pages
        page = s.get(f"{self.url}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        data = {"username": user, "password": "any"}
        if xsrf:
            data["_xsrf"] = xsrf.group(1)
        r = s.post(f"{self.url}/hub/login", data=data, timeout=30, allow_redirects=False)
        assert r.status_code == 302, r.text[:500]
        r = s.get(self.library, timeout=30)
        r.raise_for_status()
        assert "cleanroom data library" in r.text, r.text[:500]
        return s

    def log_tail(self) -> str:
        """The end of the hub's log (hub, proxy and the library service)."""
        return self.log_path.read_text(errors="replace")[-6000:]


def start_library_hub(root: Path, state: Path, registry_url: str) -> LibraryHub:
    """Start JupyterHub with the library service over the registry at ``registry_url``."""
    if shutil.which("configurable-http-proxy") is None:
        raise RuntimeError("configurable-http-proxy is not installed")
    root.mkdir(parents=True, exist_ok=True)
    public, hub_port, proxy_api, port = (free_port() for _ in range(4))
    service = library_service_config(
        port=port,
        environment={
            "CLEANROOM_STATE_DIR": str(state),
            "CLEANROOM_REGISTRY_URL": registry_url,
            "CLEANROOM_PUBLIC_URL": f"http://127.0.0.1:{public}",
            # The console's running workspaces: this hub's own instance, never another's.
            "CLEANROOM_INSTANCE": INSTANCE,
        },
    )
    config = {"public": public, "hub_port": hub_port, "proxy_api": proxy_api,
              "root": str(root), "service": service, "scope": access_scope()}  # fmt: skip
    (root / "config.json").write_text(json.dumps(config))
    (root / "jupyterhub_config.py").write_text(
        loopback_hub_config(root) + "c.JupyterHub.default_url = '/services/library/'\n"
        "c.JupyterHub.services = [cfg['service']]\n"
        "c.JupyterHub.load_roles = [{'name': 'user', 'scopes': ['self', cfg['scope']]}]\n"
    )
    proc, log_path = launch_hub(root)
    hub = LibraryHub(
        root, f"http://127.0.0.1:{public}", registry_url, proc, log_path,
        service_url=f"http://127.0.0.1:{port}",
    )  # fmt: skip
    try:
        wait_http(f"{hub.url}/hub/api/", timeout=60, proc=proc)
        wait_http(f"{hub.library}health", timeout=60, proc=proc)
    except Exception:
        stop_library_hub(hub)
        raise RuntimeError("hub did not start:\n" + hub.log_tail()) from None
    return hub


def stop_library_hub(hub: LibraryHub) -> None:
    """Stop the hub and everything it started: its process group."""
    stop_group(hub.proc)
