"""The egress gateway's overhead: a workspace reached through it against one reached directly.

Both deployments run on this machine, side by side, with the same image: cleanroom's,
where the proxy sends ``/user/<name>/<project>/`` to the gateway and the gateway to the
container, and the plain DockerSpawner hub, where the proxy sends it to the container
directly (the firewall stops anything but the gateway reaching a cleanroom workspace, so
the plain hub is the direct path). The same user actions are timed on each, interleaved
so that the machine's load falls on both alike, and reported as ratios
(cleanroom / plain) and differences:

- contents GET of a 1 MB notebook (p50, p95);
- kernel round trip of a small execute (request to ``execute_reply`` and idle);
- output throughput: one execute streaming 512 KiB of ``stream`` output (under every
  output rate limit on both paths, so no policy's limit is what is measured: the rounds
  are paced so that each starts with 512 KiB in the gateway's output bucket; the
  gateway's own limit is reported beside it);
- JupyterLab's first page (``GET lab``, the HTML document).

The gateway's budget would stop a benchmark that reads 1 MB notebooks dozens of times:
an officer of the benchmark's deployment, in standing and signed in, grants the day's
bytes through the gateway's API first, as ``cleanroom egress grant`` does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
from cleanroom.gateway.messages import TokenBucket
from cleanroom.gateway.policy import load_policy
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from benchmarks.deployments import Deployment
from benchmarks.stats import ratio, summary

USER = "gw0"
PROJECT = "bench-gw"
NOTEBOOK = "bench-1mb.ipynb"
NOTEBOOK_BYTES = 1_000_000
# Under every output limit on either path (the workspace policy's 250 kB/s over 3 s,
# Jupyter's default 1 MB/s, the gateway's 4 MiB burst): what is timed is the path.
STREAM_BYTES = 512 * 2**10
# What the gateway also counts of a streaming execute (message framing, status messages).
STREAM_MARGIN = 64 * 2**10
OFFICER = "benchofficer"
GRANT_BYTES = 2**34


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def notebook(size: int = NOTEBOOK_BYTES) -> dict[str, Any]:
    """A notebook of about ``size`` bytes of JSON: markdown and code cells of text."""
    cells: list[dict[str, Any]] = []
    line = "x = sum(i * i for i in range(100))  # a line of analysis code\n"
    per_cell = 40
    for i in range(max(1, size // (len(line) * per_cell + 120))):
        cells.append(
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": line * per_cell,
            }
        )
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def grant_budget(dep: Deployment) -> None:
    """A signed-in officer in standing grants the benchmark user the day's bytes."""
    from cleanroom.registry.governance import Governance

    from tests.people import Authenticator, personal_token

    reg = dep.registry
    if OFFICER not in {u.name for u in reg.list_users()}:
        Governance(reg).add_user(OFFICER, ["officer"], actor="benchmark")
    credential = personal_token(reg, OFFICER, Authenticator())
    api_token = (dep.hub.state / "secrets" / "gateway-api-token").read_text().strip()
    port = dep.hub.env["CLEANROOM_GATEWAY_API_PORT"]
    reply = httpx.post(
        f"http://127.0.0.1:{port}/api/grants",
        headers=_auth(api_token),
        json={
            "user": USER,
            "project": PROJECT,
            "bytes": GRANT_BYTES,
            "reason": "benchmark of the gateway's overhead",
            "cli_token": credential,
        },
        timeout=30,
    )
    if reply.status_code != 200:
        raise RuntimeError(f"the gateway refused the benchmark's grant: {reply.text}")


class Workspace:
    """One deployment's running workspace of the benchmark user, and timed actions on it."""

    def __init__(
        self, dep: Deployment, client: httpx.AsyncClient, user: str = USER, project: str = PROJECT
    ) -> None:
        self.dep = dep
        self.client = client
        self.token = dep.tokens[user]
        self.base = f"{dep.hub.public_url}/user/{user}/{project}"
        self.kernel = ""

    async def prepare(self) -> None:
        """The 1 MB notebook in the work folder and a running kernel."""
        body = {"type": "notebook", "format": "json", "content": notebook()}
        deadline = time.monotonic() + 60
        while True:
            reply = await self.client.put(
                f"{self.base}/api/contents/{NOTEBOOK}", headers=self._h(), json=body, timeout=120
            )
            # A server still settling right after its start answers 502 for a moment.
            if reply.status_code != 502 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        if reply.status_code not in (200, 201):
            raise RuntimeError(f"{self.dep.kind}: writing the notebook: {reply.text[:300]}")
        reply = await self.client.post(
            f"{self.base}/api/kernels", headers=self._h(), json={"name": "python3"}, timeout=120
        )
        if reply.status_code != 201:
            raise RuntimeError(f"{self.dep.kind}: starting a kernel: {reply.text[:300]}")
        self.kernel = str(reply.json()["id"])

    def _h(self) -> dict[str, str]:
        # A token-authenticated client: writes need no XSRF cookie (hub and gateway alike).
        return _auth(self.token)

    async def contents(self) -> float:
        """Seconds for one contents GET of the notebook (its whole JSON body)."""
        began = time.perf_counter()
        reply = await self.client.get(
            f"{self.base}/api/contents/{NOTEBOOK}", headers=self._h(), timeout=120
        )
        spent = time.perf_counter() - began
        if reply.status_code != 200 or len(reply.content) < NOTEBOOK_BYTES // 2:
            raise RuntimeError(f"{self.dep.kind}: contents GET: {reply.status_code}")
        return spent

    async def page(self) -> float:
        """Seconds for JupyterLab's page (the HTML document)."""
        began = time.perf_counter()
        reply = await self.client.get(f"{self.base}/lab", headers=self._h(), timeout=120)
        spent = time.perf_counter() - began
        if reply.status_code != 200 or "<html" not in reply.text.lower():
            raise RuntimeError(f"{self.dep.kind}: lab page: {reply.status_code}")
        return spent

    async def socket(self) -> Any:
        """The kernel's websocket (Jupyter's JSON protocol)."""
        url = self.base.replace("http", "ws", 1)
        request = HTTPRequest(
            f"{url}/api/kernels/{self.kernel}/channels", headers=self._h(), request_timeout=60
        )
        return await websocket_connect(request, max_message_size=64 * 2**20)

    async def execute(self, ws: Any, code: str) -> tuple[float, int]:
        """Seconds from an execute request to its reply and idle; bytes that came."""
        msg_id = uuid.uuid4().hex
        request = {
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": "bench",
                       "username": USER, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False},
        }  # fmt: skip
        began = time.perf_counter()
        ws.write_message(json.dumps(request))
        idle = replied = False
        arrived = 0
        while not (idle and replied):
            raw = await asyncio.wait_for(ws.read_message(), 120)
            if raw is None:
                raise RuntimeError(f"{self.dep.kind}: the kernel socket closed")
            arrived += len(raw)
            msg = json.loads(raw) if isinstance(raw, str) else {}
            if (msg.get("parent_header") or {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            idle = idle or (kind == "status" and msg["content"]["execution_state"] == "idle")
            replied = replied or kind == "execute_reply"
        return time.perf_counter() - began, arrived


async def _measure(deps: list[Deployment], loads: int) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        spaces = [Workspace(d, client) for d in deps]
        for ws in spaces:
            await ws.prepare()
        sockets = [await ws.socket() for ws in spaces]
        times: dict[str, dict[str, list[float]]] = {
            d.kind: {"contents": [], "roundtrip": [], "page": [], "throughput": []} for d in deps
        }
        for space, sock in zip(spaces, sockets, strict=True):
            await space.contents()  # warm: first reads open files, caches
            await space.page()
            await space.execute(sock, "1 + 1")
        for _ in range(loads):  # interleaved: both see the same load of the machine
            for space, sock in zip(spaces, sockets, strict=True):
                t = times[space.dep.kind]
                t["contents"].append(await space.contents())
                t["page"].append(await space.page())
                t["roundtrip"].append((await space.execute(sock, "1 + 1"))[0])
        code = f"import sys\nfor _ in range({STREAM_BYTES // 2**16}): sys.stdout.write('y' * 65536)"
        # The gateway's output bucket, as the gateway keeps it: once the burst is spent,
        # a round waits until 512 KiB have come back, so no round meets the rate limit.
        rules = load_policy().websocket
        paced = TokenBucket(rules.rate_bytes_per_second, rules.rate_burst_bytes)
        for _ in range(max(1, loads // 4)):
            await paced.take(STREAM_BYTES + STREAM_MARGIN)
            for space, sock in zip(spaces, sockets, strict=True):
                spent, arrived = await space.execute(sock, code)
                times[space.dep.kind]["throughput"].append(arrived / spent / 2**20)
        for sock in sockets:
            sock.close()
    out: dict[str, Any] = {
        kind: {name: summary(values) for name, values in found.items()}
        for kind, found in times.items()
    }
    if {"cleanroom", "plain"} <= out.keys():
        cr, pl = out["cleanroom"], out["plain"]
        out["ratios"] = {
            name: ratio(cr[name]["p50"], pl[name]["p50"])
            for name in ("contents", "roundtrip", "page")
        }
        # Throughput: how much of the direct path's rate the gateway keeps.
        out["ratios"]["throughput"] = ratio(cr["throughput"]["p50"], pl["throughput"]["p50"])
        out["overhead_ms"] = {
            name: (cr[name]["p50"] - pl[name]["p50"]) * 1000
            for name in ("contents", "roundtrip", "page")
        }
    return out


def run(deps: list[Deployment], loads: int) -> dict[str, Any]:
    """Start the benchmark user's workspace on each deployment and time the actions."""
    from benchmarks import spawns

    for dep in deps:
        dep.add_users([USER], PROJECT)
    cleanroom = [d for d in deps if d.kind == "cleanroom"]
    for dep in cleanroom:
        grant_budget(dep)

    async def start_all() -> None:
        async with spawns._client() as client:
            for dep in deps:
                done = await spawns.spawn(client, dep, USER, PROJECT)
                if not done.ok:
                    raise RuntimeError(f"{dep.kind}: the workspace did not start: {done.error}")

    async def stop_all() -> None:
        async with spawns._client() as client:
            for dep in deps:
                await spawns.stop(client, dep, USER, PROJECT)

    asyncio.run(start_all())
    try:
        out = asyncio.run(_measure(deps, loads))
    finally:
        asyncio.run(stop_all())
    rules = load_policy().websocket
    out["policy_rate_mib_s"] = rules.rate_bytes_per_second / 2**20
    out["policy_burst_mib"] = rules.rate_burst_bytes / 2**20
    out["loads"] = loads
    return out
