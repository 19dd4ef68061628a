"""The spawner's side of the egress gateway: registering where a server really lives.

Kept out of ``spawner.py`` so the spawner's own edits stay small. At every start the
spawner tells the gateway the container's address, the server's hub token (the gateway
forwards with it; the browser's cookies never reach the container), the per-start proof
secret and the manifest of the image's static files; then it waits until the real
server answers through the gateway. At stop the route goes.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any
from urllib.parse import urlparse

import docker

from cleanroom import paths
from cleanroom.errors import CleanroomError, NotFound
from cleanroom.gateway import client, proof
from cleanroom.gateway.hub_config import SERVER_PORT
from cleanroom.gateway.manifest import manifest_for
from cleanroom.gateway.viewer import MANIFEST_ROOTS

__all__ = ["SERVER_PORT", "answers", "new_secret", "public_address", "register", "unregister"]

new_secret = proof.new_secret
# Seconds the gateway may hold one readiness request (the spawner polls the server's
# container between requests, so a server that died is noticed this soon).
READY_WAIT = 2.0


@functools.cache
def _engine() -> docker.DockerClient:
    return docker.from_env()


def public_address(gateway_url: str) -> tuple[str, int]:
    """(host, port) of the gateway, what ``start`` returns to JupyterHub."""
    parsed = urlparse(gateway_url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


def _path(spawner: Any) -> str:
    return f"/api/routes/{spawner.user.name}/{spawner.name}"


async def register(
    spawner: Any, ip: str, port: int, *, viewer: str = "", viewer_image: str = ""
) -> None:
    """Register the started server with the gateway and wait until it answers there.

    ``viewer`` (restricted mode): the address of the session's viewer; the gateway then
    sends the researcher only the viewer's page (files of ``viewer_image``'s manifest)
    and VNC stream, and waits for the viewer too before the route counts as ready.
    """
    loop = asyncio.get_running_loop()
    folder = paths.state_dir() / "manifests"
    try:
        manifest = await loop.run_in_executor(None, manifest_for, _engine(), spawner.image, folder)
    except (docker.errors.DockerException, ValueError) as exc:
        # No manifest: every static byte counts against the budget (fail closed).
        spawner.log.warning("No static manifest for %s: %s", spawner.image, exc)
        manifest = []
    body: dict[str, Any] = {
        "target": f"http://{ip}:{port}",
        "token": spawner.api_token,
        "secret": spawner.server_secret,
        "manifest": manifest,
    }
    if viewer:
        # Without it the viewer's page is refused (fail closed): no fallback here.
        body["viewer"] = viewer
        body["viewer_manifest"] = await loop.run_in_executor(
            None, manifest_for, _engine(), viewer_image, folder, MANIFEST_ROOTS
        )
    await client.call("PUT", _path(spawner), body)
    deadline = loop.time() + spawner.http_timeout
    polled = loop.time()
    while loop.time() < deadline:
        # The gateway checks every 50 ms itself and answers once the server is ready
        # (or after READY_WAIT seconds): one request here instead of one per check.
        wait = min(READY_WAIT, max(0.0, deadline - loop.time()))
        try:
            await client.call("GET", f"{_path(spawner)}?wait={wait:.2f}")
            return
        except CleanroomError:
            pass  # not answering (with a valid proof) yet
        # A server that died while starting never answers: leave it to the hub. (Looked
        # at once a READY_WAIT, also when the gateway refused at once.)
        if loop.time() - polled >= READY_WAIT:
            polled = loop.time()
            if await spawner.poll() is not None:
                return
        await asyncio.sleep(spawner.readiness_poll_interval)


async def answers(spawner: Any) -> bool | None:
    """Whether the running server answers the gateway now, with this start's proof (the
    gateway asks it with the route's own token: a restarted hub knows no server token).
    None when the gateway itself does not answer, which says nothing of the server."""
    try:
        reply = await client.call("GET", _path(spawner), ok=(200, 503))
    except NotFound:
        return False  # no route: nobody reaches this server
    except CleanroomError as exc:
        spawner.log.warning("Health of %s/%s unknown: %s", spawner.user.name, spawner.name, exc)
        return None
    return bool(isinstance(reply, dict) and reply.get("ready"))


async def unregister(spawner: Any) -> None:
    """Drop the route (a stopped server is never reached again)."""
    try:
        await client.call("DELETE", _path(spawner))
    except CleanroomError as exc:
        spawner.log.warning("Gateway route of %s/%s: %s", spawner.user.name, spawner.name, exc)
