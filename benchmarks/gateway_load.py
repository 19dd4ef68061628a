"""The gateway's own cost with many active workspaces: its CPU seconds and memory (RSS).

Real workspaces of cleanroom's deployment (started through the hub, as researchers do,
in projects of at most 10 members), each made active through the proxy and the gateway
for a fixed window: a kernel websocket open, and about once a second a small execute
(request to reply and idle) and a contents GET of a small notebook. The gateway's
process is sampled with psutil: CPU seconds (user + system) over the window, RSS with
its routes registered and no traffic (before), and the highest RSS seen while active.
What was measured is reported as it was: how many workspaces started, how many took
part, how many actions each did.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psutil

from benchmarks import spawns
from benchmarks.deployments import Deployment
from benchmarks.gateway import Workspace, notebook

PROJECT_SIZE = 10
NOTEBOOK_BYTES = 20_000


def _pairs(n: int) -> dict[str, str]:
    return {f"gwl{i}": f"bench-gwl{i // PROJECT_SIZE}" for i in range(n)}


def gateway_process(dep: Deployment) -> psutil.Process:
    """The deployment's gateway (a managed service of its hub)."""
    return psutil.Process(dep.process_ids()["gateway"])


def _sample(proc: psutil.Process) -> tuple[float, int]:
    t = proc.cpu_times()
    return t.user + t.system, int(proc.memory_info().rss)


class _Active:
    """One workspace kept active: its actions counted, its failures noted."""

    def __init__(self, space: Workspace) -> None:
        self.space = space
        self.actions = 0
        self.error = ""

    async def prepare(self) -> None:
        body = {"type": "notebook", "format": "json", "content": notebook(NOTEBOOK_BYTES)}
        space = self.space
        reply = await space.client.put(
            f"{space.base}/api/contents/small.ipynb", headers=space._h(), json=body, timeout=120
        )
        if reply.status_code not in (200, 201):
            raise RuntimeError(f"writing the notebook: {reply.status_code}")
        reply = await space.client.post(
            f"{space.base}/api/kernels", headers=space._h(), json={"name": "python3"}, timeout=180
        )
        if reply.status_code != 201:
            raise RuntimeError(f"starting a kernel: {reply.status_code}")
        space.kernel = str(reply.json()["id"])

    async def run(self, until: float) -> None:
        space = self.space
        try:
            sock = await space.socket()
            while time.monotonic() < until:
                await space.execute(sock, "1 + 1")
                reply = await space.client.get(
                    f"{space.base}/api/contents/small.ipynb", headers=space._h(), timeout=120
                )
                if reply.status_code != 200:
                    raise RuntimeError(f"contents GET: {reply.status_code}")
                self.actions += 2
                await asyncio.sleep(1)
            sock.close()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:200]


async def _measure(dep: Deployment, pairs: dict[str, str], seconds: float) -> dict[str, Any]:
    proc = gateway_process(dep)
    limits = httpx.Limits(max_connections=4 * len(pairs) + 10)
    async with httpx.AsyncClient(limits=limits) as client:
        actives = [_Active(Workspace(dep, client, u, p)) for u, p in pairs.items()]
        gate = asyncio.Semaphore(8)  # kernels start a few at a time on two cores

        async def prepare(active: _Active) -> None:
            async with gate:
                try:
                    await active.prepare()
                except Exception as exc:
                    active.error = f"{type(exc).__name__}: {exc}"[:200]

        await asyncio.gather(*(prepare(a) for a in actives))
        ready = [a for a in actives if not a.error]
        await asyncio.sleep(2)
        cpu0, rss_idle = _sample(proc)
        peak = rss_idle
        began = time.monotonic()
        until = began + seconds
        runs = asyncio.gather(*(a.run(until) for a in ready))
        while not runs.done():
            peak = max(peak, _sample(proc)[1])
            await asyncio.wait([runs], timeout=0.5)
        wall = time.monotonic() - began
        cpu1, rss_end = _sample(proc)
    actions = sum(a.actions for a in ready)
    cpu = cpu1 - cpu0
    return {
        "workspaces_active": len([a for a in ready if not a.error]),
        "errors": sorted({a.error for a in actives if a.error})[:5],
        "window_seconds": wall,
        "actions": actions,
        "gateway_cpu_seconds": cpu,
        "gateway_cpu_share": cpu / wall if wall else None,
        "gateway_cpu_ms_per_action": 1000 * cpu / actions if actions else None,
        "gateway_rss_idle_mib": rss_idle / 2**20,
        "gateway_rss_peak_mib": peak / 2**20,
        "gateway_rss_end_mib": rss_end / 2**20,
    }


def run(dep: Deployment, n: int, seconds: float) -> dict[str, Any]:
    """Start ``n`` workspaces on cleanroom's deployment, keep them active, measure."""
    pairs = _pairs(n)
    for project in sorted(set(pairs.values())):
        dep.add_users([u for u, p in pairs.items() if p == project], project)
    firsts = {p: u for u, p in reversed(pairs.items())}
    asyncio.run(spawns.prime(dep, [(u, p) for p, u in firsts.items()]))

    async def start_all() -> list[spawns.Spawn]:
        async with spawns._client(4 * n + 10) as client:
            return list(
                await asyncio.gather(*(spawns.spawn(client, dep, u, p) for u, p in pairs.items()))
            )

    async def stop_all() -> None:
        async with spawns._client(4 * n + 10) as client:
            await asyncio.gather(*(spawns.stop(client, dep, u, p) for u, p in pairs.items()))

    _, rss_before = _sample(gateway_process(dep))
    started = asyncio.run(start_all())
    try:
        running = {s.user: pairs[s.user] for s in started if s.ok}
        out = asyncio.run(_measure(dep, running, seconds))
    finally:
        asyncio.run(stop_all())
    out["workspaces_asked"] = n
    out["workspaces_started"] = len(running)
    out["gateway_rss_before_mib"] = rss_before / 2**20
    return out
