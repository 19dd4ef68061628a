"""Where each workspace server really lives, as the spawner told the gateway.

Keyed by (owner, server name). Persisted in the gateway's state file (mode 0600), so a
restarted gateway (or hub, which restarts its managed services) routes to the servers
that kept running; the spawner registers its route again at every start.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cleanroom.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_TARGET = re.compile(r"^http://\d{1,3}(\.\d{1,3}){3}:\d{1,5}$")


@dataclass
class Backend:
    """One workspace server: its address, the token the gateway uses, its proof secret.

    ``viewer`` (restricted mode, ``cleanroom.gateway.viewer``): the address of the
    session's viewer; the researcher then reaches only its page and VNC stream, whose
    static files must hash to ``viewer_manifest``.
    """

    owner: str
    server: str
    target: str
    token: str
    secret: str
    manifest: list[str] = field(default_factory=list)
    viewer: str = ""
    viewer_manifest: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        """The server's URL prefix: ``/user/<owner>/<server>/``."""
        return f"/user/{self.owner}/{self.server}/"


def backend_from(owner: str, server: str, body: Any) -> Backend:
    """Validate a registration body into a :class:`Backend` (clear errors)."""
    if not _NAME.match(owner) or not _NAME.match(server):
        raise InvalidInput(f"not a user/server name: {owner!r}/{server!r}")
    if not isinstance(body, dict):
        raise InvalidInput("the route must be a JSON object")
    target, token, secret = body.get("target"), body.get("token"), body.get("secret")
    if not isinstance(target, str) or not _TARGET.match(target):
        raise InvalidInput(f"target {target!r} must be http://<IPv4>:<port>")
    for name, value in (("token", token), ("secret", secret)):
        if not isinstance(value, str) or len(value) < 16:
            raise InvalidInput(f"{name} must be a string of at least 16 characters")
    manifest = body.get("manifest", [])
    viewer_manifest = body.get("viewer_manifest", [])
    for name, value in (("manifest", manifest), ("viewer_manifest", viewer_manifest)):
        if not isinstance(value, list) or any(not isinstance(h, str) for h in value):
            raise InvalidInput(f"{name} must be a list of sha256 hex digests")
    viewer = body.get("viewer", "")
    if viewer != "" and (not isinstance(viewer, str) or not _TARGET.match(viewer)):
        raise InvalidInput(f"viewer {viewer!r} must be http://<IPv4>:<port> (or absent)")
    assert isinstance(token, str) and isinstance(secret, str)
    return Backend(owner, server, target, token, secret, manifest, viewer, viewer_manifest)


class RouteTable:
    """The gateway's routes, persisted in ``path``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.routes: dict[tuple[str, str], Backend] = {}
        self.manifests: dict[tuple[str, str], frozenset[str]] = {}
        self.viewer_manifests: dict[tuple[str, str], frozenset[str]] = {}
        if path is not None and path.exists():
            for item in json.loads(path.read_text() or "[]"):
                b = Backend(**item)
                self._put(b)

    def _put(self, backend: Backend) -> None:
        key = (backend.owner, backend.server)
        self.routes[key] = backend
        self.manifests[key] = frozenset(backend.manifest)
        self.viewer_manifests[key] = frozenset(backend.viewer_manifest)

    def get(self, owner: str, server: str) -> Backend | None:
        """The backend of ``owner``'s ``server``, or None."""
        return self.routes.get((owner, server))

    def manifest(self, owner: str, server: str) -> frozenset[str]:
        """Hashes of the image's root-owned static files for this server."""
        return self.manifests.get((owner, server), frozenset())

    def viewer_manifest(self, owner: str, server: str) -> frozenset[str]:
        """Hashes of the viewer image's root-owned page files (restricted mode)."""
        return self.viewer_manifests.get((owner, server), frozenset())

    def put(self, backend: Backend) -> None:
        """Add or replace a route and save."""
        self._put(backend)
        self.save()

    def remove(self, owner: str, server: str) -> bool:
        """Drop a route and save; False when there was none."""
        found = self.routes.pop((owner, server), None)
        self.manifests.pop((owner, server), None)
        self.viewer_manifests.pop((owner, server), None)
        self.save()
        return found is not None

    def save(self) -> None:
        """Write the table atomically, readable by its owner only."""
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump([asdict(b) for b in self.routes.values()], f)
        os.replace(tmp, self.path)
