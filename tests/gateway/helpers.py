"""Helpers of the gateway's tests: the gateway's internal API and a kernel client."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import requests
from jupyter_server.services.kernels.connection.base import deserialize_binary_message
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.integration.harness import Hub


def api(hub: Hub, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Call the gateway's internal API with its token (as the spawner and CLI do)."""
    token = (hub.state / "secrets" / "gateway-api-token").read_text().strip()
    port = hub.env["CLEANROOM_GATEWAY_API_PORT"]
    return requests.request(
        method,
        f"http://127.0.0.1:{port}{path}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        **kwargs,
    )


def usage(hub: Hub, user: str, project: str) -> dict[str, Any]:
    """The gateway's usage record of ``user`` x ``project``."""
    reply = api(hub, "GET", f"/api/usage?user={user}&project={project}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json()[0])


def metric(hub: Hub, name: str, **labels: str) -> float:
    """One sample of the gateway's Prometheus metrics (0 when absent)."""
    text = api(hub, "GET", "/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if got == want:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(condition: Any, timeout: float = 30) -> Any:
    """Wait until ``condition()`` is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s")


def start_kernel(hub: Hub, user: str, project: str) -> str:
    """Start a kernel through the gateway; its id."""
    reply = requests.post(
        f"{hub.public_url}/user/{user}/{project}/api/kernels",
        headers={"Authorization": f"token {hub.token(user)}"},
        json={"name": "python3"},
        timeout=60,
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def execute(
    hub: Hub, user: str, project: str, kernel: str, code: str, timeout: float = 120
) -> list[dict[str, Any]]:
    """Run ``code`` over the kernel websocket through the gateway; every message until
    the kernel is idle again and the execute_reply came (a binary frame's message has
    its ``buffers`` and ``binary_frame_bytes``)."""

    async def run() -> list[dict[str, Any]]:
        url = hub.public_url.replace("http", "ws", 1)
        request = HTTPRequest(
            f"{url}/user/{user}/{project}/api/kernels/{kernel}/channels",
            headers={
                "Authorization": f"token {hub.token(user)}",
                "Sec-WebSocket-Protocol": "v1.kernel.websocket.jupyter.org",
            },
        )
        ws = await websocket_connect(request, max_message_size=64 * 1024 * 1024)
        msg_id = uuid.uuid4().hex
        ws.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": uuid.uuid4().hex,
                        "username": user,
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        got: list[dict[str, Any]] = []
        idle = replied = False
        deadline = asyncio.get_running_loop().time() + timeout
        while not (idle and replied):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no idle/reply within {timeout} s: {got[-5:]}")
            raw = await asyncio.wait_for(ws.read_message(), left)
            if raw is None:
                break
            if isinstance(raw, bytes):
                # A message with buffers, in jupyter_server's binary layout (the gateway
                # rebuilt it after its rules): marked so tests can tell.
                msg = deserialize_binary_message(raw)
                msg["binary_frame_bytes"] = len(raw)
            else:
                msg = json.loads(raw)
            got.append(msg)
            if (msg.get("parent_header") or {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "status" and msg["content"].get("execution_state") == "idle":
                idle = True
            if kind == "execute_reply":
                replied = True
        assert ws.selected_subprotocol is None  # JSON protocol forced
        ws.close()
        return got

    return asyncio.run(run())
