"""Routes of a restricted workspace: the viewer's noVNC page and VNC stream, nothing else.

A workspace whose route names a viewer (``Backend.viewer``) runs in the restricted
access mode (docs/restricted-mode.md): the researcher's browser gets only

- ``/user/<name>/<project>/``: a redirect to the viewer's page;
- ``/user/<name>/<project>/viewer/<file>`` (GET, HEAD): the noVNC page and its modules,
  forwarded only when their bytes hash to a root-owned file of the viewer image (its
  manifest), so nothing else a viewer might serve reaches the browser;
- ``/user/<name>/<project>/viewer/websockify`` (websocket): the VNC stream, counted
  and rate-limited like every other byte towards the browser.

Every other route (``lab``, ``api/contents``, kernels, terminals, files, ...) answers
403. The one exception is the hub's own health check: ``GET api`` with the server's
own hub token, which no researcher holds.
"""

from __future__ import annotations

import hmac
import re

VIEWER_PREFIX = "viewer/"
WEBSOCKET_PATH = "websockify"
# The roots whose root-owned files make the viewer image's manifest.
MANIFEST_ROOTS = ("/opt/cleanroom/viewer/web", "/usr/share/novnc")
# A file below the viewer's page: no dot segments, no backslashes, no query.
_FILE = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9._-]*$")
# Pages of the viewer may not use the async clipboard API at all (clipboard off in the
# researcher's browser too), nor anything else that reaches the device.
PERMISSIONS_POLICY = (
    "clipboard-read=(), clipboard-write=(), camera=(), microphone=(), geolocation=(), "
    "display-capture=(), usb=(), serial=(), hid=()"
)
RESTRICTED_MESSAGE = (
    "This project runs in restricted mode: JupyterLab is shown only as a picture, in "
    "the viewer at /user/{owner}/{server}/. Nothing else of the workspace reaches "
    "your browser."
)


def upstream_path(method: str, rest: str, websocket: bool) -> str | None:
    """The viewer's path for ``rest`` (the path below the server's prefix), or None
    when the route is not one of the viewer's; ``""`` means "redirect to the page"."""
    if method not in ("GET", "HEAD"):
        return None
    if rest == "":
        return None if websocket else ""
    if not rest.startswith(VIEWER_PREFIX):
        return None
    below = rest[len(VIEWER_PREFIX) :]
    if websocket:
        return "/" + WEBSOCKET_PATH if below == WEBSOCKET_PATH else None
    if below == "":
        return "/index.html"
    if below == WEBSOCKET_PATH or not _FILE.match(below):
        return None
    return "/" + below


def page_url(owner: str, server: str) -> str:
    """Where a restricted workspace's researcher is sent: the viewer's page."""
    return f"/user/{owner}/{server}/{VIEWER_PREFIX}"


def is_server_token(authorization: str, server_token: str) -> bool:
    """Whether an ``Authorization`` header carries the server's own hub token (the hub's
    health check through the gateway); researchers never hold that token."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token or not server_token:
        return False
    return hmac.compare_digest(token.strip().encode(), server_token.encode())


_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".ogg": "audio/ogg",
    ".mp3": "audio/mpeg",
}


def content_type(path: str) -> str:
    """The type the gateway gives a viewer file, by its name (never the viewer's word)."""
    dot = path.rfind(".")
    return _TYPES.get(path[dot:].lower() if dot >= 0 else "", "application/octet-stream")
