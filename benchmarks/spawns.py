"""Spawn latency: from the REST request until JupyterLab answers through the proxy.

One spawn is timed from just before ``POST /hub/api/users/<u>/servers/<p>`` until
``GET /user/<u>/<p>/api/status`` answers 200 with the server's own JSON, through the
proxy, with the user's token. In between the driver follows the hub's progress event
stream instead of polling the hub, so that measuring 50 spawns at once does not load
the hub it measures. The same code drives both deployments.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from benchmarks.deployments import Deployment
from benchmarks.stats import summary

# Beyond the hub's own start_timeout (180 s) + http_timeout (120 s): the hub gives up first.
GIVE_UP_SECONDS = 330.0


@dataclass
class Spawn:
    """One timed spawn."""

    user: str
    ok: bool
    seconds: float
    error: str = ""
    # Seconds at which the hub said ready (progress stream), before the proxy check.
    hub_ready_seconds: float = 0.0
    # 429 answers ("too many spawns") that the driver waited out and retried.
    retries: int = 0


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def _follow_progress(client: httpx.AsyncClient, url: str, token: str) -> str:
    """Read the hub's progress events until ready or failed; '' on ready, else why."""
    async with client.stream("GET", url, headers=_auth(token), timeout=GIVE_UP_SECONDS) as reply:
        if reply.status_code != 200:
            return f"progress stream answered {reply.status_code}"
        async for line in reply.aiter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("ready"):
                return ""
            if event.get("failed"):
                return str(event.get("message") or "spawn failed")
    return "progress stream ended without ready"


async def _answers(client: httpx.AsyncClient, url: str, token: str) -> bool:
    try:
        reply = await client.get(url, headers=_auth(token), timeout=30)
    except httpx.HTTPError:
        return False
    if reply.status_code != 200:
        return False
    try:
        body = reply.json()
    except ValueError:
        return False
    # The hub's "pending" page is HTML: only the server itself answers this JSON.
    return isinstance(body, dict) and "started" in body


async def spawn(client: httpx.AsyncClient, dep: Deployment, user: str, server: str) -> Spawn:
    """Start ``user``'s server ``server`` and time it until JupyterLab answers."""
    token = dep.tokens[user]
    base = dep.hub.public_url
    began = time.monotonic()
    retries = 0
    while True:
        try:
            reply = await client.post(
                f"{base}/hub/api/users/{user}/servers/{server}",
                headers=_auth(token),
                json={},
                timeout=GIVE_UP_SECONDS,
            )
        except httpx.HTTPError as exc:
            return Spawn(user, False, time.monotonic() - began, f"request failed: {exc!r}")
        if reply.status_code != 429:
            break
        # The hub's concurrent_spawn_limit: wait as it asks and try again (counted).
        retries += 1
        await asyncio.sleep(float(reply.headers.get("Retry-After", "2")))
        if time.monotonic() - began > GIVE_UP_SECONDS:
            return Spawn(user, False, time.monotonic() - began, "429 until giving up", 0, retries)
    if reply.status_code not in (201, 202):
        why = f"{reply.status_code}: {reply.text[:200]}"
        return Spawn(user, False, time.monotonic() - began, why, 0.0, retries)
    if reply.status_code == 202:
        failure = await _follow_progress(
            client, f"{base}/hub/api/users/{user}/servers/{server}/progress", token
        )
        if failure:
            return Spawn(user, False, time.monotonic() - began, failure, 0.0, retries)
    hub_ready = time.monotonic() - began
    status_url = f"{base}/user/{user}/{server}/api/status"
    while not await _answers(client, status_url, token):
        if time.monotonic() - began > GIVE_UP_SECONDS:
            return Spawn(user, False, time.monotonic() - began, "no answer", hub_ready, retries)
        await asyncio.sleep(0.05)
    return Spawn(user, True, time.monotonic() - began, "", hub_ready, retries)


async def stop(client: httpx.AsyncClient, dep: Deployment, user: str, server: str) -> bool:
    """Stop a server and wait until the hub no longer lists it; False if it did not."""
    token = dep.tokens[user]
    url = f"{dep.hub.public_url}/hub/api/users/{user}"
    deadline = time.monotonic() + 180
    try:
        await client.delete(f"{url}/servers/{server}", headers=_auth(token), timeout=180)
        while time.monotonic() < deadline:
            reply = await client.get(url, headers=_auth(token), timeout=30)
            if reply.status_code == 200 and server not in (reply.json().get("servers") or {}):
                return True
            await asyncio.sleep(0.25)
    except httpx.HTTPError as exc:
        print(f"   {dep.kind}: stopping {user}/{server}: {exc!r}", flush=True)
    return False


def _client(connections: int = 200) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits)


async def sequential(
    deps: list[Deployment], pairs: dict[str, list[tuple[str, str]]], *, prime: bool = False
) -> dict[str, list[Spawn]]:
    """Spawn and stop one at a time, alternating deployments so both see the same load.

    ``pairs[kind]`` lists (user, server) in order. With ``prime``, the first pair is
    spawned and stopped once untimed first, so that every timed spawn is a repeat (warm).
    """
    results: dict[str, list[Spawn]] = {d.kind: [] for d in deps}
    count = len(next(iter(pairs.values())))
    async with _client() as client:
        if prime:
            for dep in deps:
                user, server = pairs[dep.kind][0]
                await spawn(client, dep, user, server)
                await stop(client, dep, user, server)
        for i in range(count):
            for dep in deps:
                user, server = pairs[dep.kind][i]
                results[dep.kind].append(await spawn(client, dep, user, server))
                await stop(client, dep, user, server)
    return results


async def prime(dep: Deployment, pairs: list[tuple[str, str]]) -> None:
    """Spawn and stop each (user, server) once, untimed, so its project exists fully."""
    async with _client() as client:
        for user, server in pairs:
            await spawn(client, dep, user, server)
            await stop(client, dep, user, server)


async def concurrent(dep: Deployment, servers: dict[str, str]) -> tuple[float, list[Spawn], float]:
    """Start every user's server at once; (seconds until all ready, spawns, stop seconds).

    ``servers`` maps each user to the server (project) they start.
    """
    async with _client(4 * len(servers) + 10) as client:
        began = time.monotonic()
        spawns = await asyncio.gather(*(spawn(client, dep, u, s) for u, s in servers.items()))
        all_ready = time.monotonic() - began
        began = time.monotonic()
        stops = await asyncio.gather(*(stop(client, dep, u, s) for u, s in servers.items()))
        stopped = time.monotonic() - began
        if not all(stops):
            print(f"   {dep.kind}: {stops.count(False)} servers did not stop", flush=True)
    return all_ready, list(spawns), stopped


def report(spawns: list[Spawn]) -> dict[str, Any]:
    """p50/p95 and failures of a list of spawns (latencies of the successful ones)."""
    ok = [s.seconds for s in spawns if s.ok]
    return {
        "count": len(spawns),
        "failures": len(spawns) - len(ok),
        "errors": sorted({s.error for s in spawns if not s.ok})[:5],
        "retries_429": sum(s.retries for s in spawns),
        **summary(ok),
        "hub_ready": summary([s.hub_ready_seconds for s in spawns if s.ok]),
        "spawns": [asdict(s) for s in spawns],
    }
