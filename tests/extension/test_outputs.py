"""Kernel output: one output over the policy's cap never reaches the browser."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from .conftest import Workspace

BIG = (
    "from IPython.display import display\n"
    "display({'text/plain': 'x' * (3 * 1024 * 1024)}, raw=True)"
)
SMALL = "print('hello from the kernel')"


def _execute_request(code: str, session: str) -> tuple[str, str]:
    msg_id = uuid.uuid4().hex
    msg = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "ada",
            "session": session,
            "version": "5.3",
            "date": "2026-11-21T20:00:00Z",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }
    return msg_id, json.dumps(msg)


async def _run(jp_fetch: Any, jp_ws_fetch: Any, code: str) -> list[dict[str, Any]]:
    """Run ``code`` in a new kernel through the websocket; return the IOPub messages."""
    reply = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(reply.body)["id"]
    session = uuid.uuid4().hex
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels", params={"session_id": session})
    msg_id, request = _execute_request(code, session)
    await ws.write_message(request)
    seen: list[dict[str, Any]] = []
    try:
        while True:
            raw = await asyncio.wait_for(ws.read_message(), timeout=60)
            assert raw is not None, "websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["channel"] == "iopub":
                seen.append(msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return seen
    finally:
        ws.close()
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")


def test_large_output_is_withheld(
    jp_fetch: Any, jp_ws_fetch: Any, jp_asyncio_loop: Any, workspace: Workspace
) -> None:
    messages = jp_asyncio_loop.run_until_complete(_run(jp_fetch, jp_ws_fetch, BIG))
    assert not [m for m in messages if m["msg_type"] == "display_data"]
    notices = [
        m["content"]["text"]
        for m in messages
        if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
    ]
    assert any("was withheld" in text and "2097152 bytes" in text for text in notices), notices


def test_small_output_arrives(
    jp_fetch: Any, jp_ws_fetch: Any, jp_asyncio_loop: Any, workspace: Workspace
) -> None:
    messages = jp_asyncio_loop.run_until_complete(_run(jp_fetch, jp_ws_fetch, SMALL))
    texts = [m["content"]["text"] for m in messages if m["msg_type"] == "stream"]
    assert "hello from the kernel\n" in texts
