"""Binary websocket frames of kernel channels pass the same rules as text frames.

Against the gateway's real rules, budgets and journal queue, with frames made by
jupyter_server's own serializer (what a workspace's server sends for a message with
buffers): code-running outputs are stripped, the cap counts the whole frame, the budget
counts every byte (buffers included), the browser gets only a frame the gateway rebuilt
from what it read, and anything that is not exactly that layout is withheld and recorded,
in both directions.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cleanroom.gateway.app import Gateway
from cleanroom.gateway.frames import SocketRules, dumps_binary, parse_binary
from cleanroom.gateway.messages import KernelRules
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    serialize_binary_message,
)

from tests.gateway.standins import PROJECT, USER, bare_gateway


@pytest.fixture
async def gw(tmp_path: Path) -> Gateway:
    return bare_gateway(tmp_path)


def _rules(gw: Gateway, kernel: bool = True) -> SocketRules:
    kr = KernelRules(gw.policy.websocket, gw.policy.http.max_image_bytes) if kernel else None
    kind = "kernel" if kernel else "terminal"
    return SocketRules(gw, USER, PROJECT, kind, "api/kernels/k/channels", kr)


def _msg(msg_type: str, content: dict[str, Any], buffers: list[bytes]) -> dict[str, Any]:
    return {
        "header": {"msg_id": "m1", "msg_type": msg_type, "session": "s", "version": "5.3"},
        "parent_header": {"msg_id": "p1", "msg_type": "execute_request"},
        "metadata": {},
        "content": content,
        "channel": "iopub",
        "buffers": buffers,
    }


def _binary(msg_type: str, content: dict[str, Any], buffers: list[bytes]) -> bytes:
    return bytes(serialize_binary_message(_msg(msg_type, content, buffers)))


def _refusals(gw: Gateway) -> dict[str, int]:
    return {detail["reason"]: detail["count"] for _, _, detail in gw.ledger.take()}


def _day_bytes(gw: Gateway) -> int:
    return int(gw.budgets.status(USER, PROJECT)["day_bytes"])


async def test_the_layout_is_jupyter_servers_own(gw: Gateway) -> None:
    frame = _binary("comm_msg", {"comm_id": "c", "data": {"x": 1}}, [b"\x00\x01", b"abc"])
    parsed = parse_binary(frame)
    assert parsed is not None
    msg, buffers = parsed
    assert msg["content"] == {"comm_id": "c", "data": {"x": 1}} and buffers == [b"\x00\x01", b"abc"]
    again = deserialize_binary_message(dumps_binary(msg, buffers))
    assert again["content"] == msg["content"] and again["buffers"] == buffers


async def test_code_running_outputs_are_stripped_from_binary_frames(gw: Gateway) -> None:
    rules = _rules(gw)
    bundle = {
        "application/javascript": "window.leak()",
        "text/html": "<b>table</b><script>window.leak()</script>",
        "text/plain": "table",
    }
    frame = _binary("display_data", {"data": dict(bundle), "metadata": {}}, [b"buffer"])
    out = rules.towards_browser(frame)
    assert isinstance(out[0], bytes) and isinstance(out[1], str)  # the frame, then a notice
    parsed = parse_binary(out[0])
    assert parsed is not None
    data = parsed[0]["content"]["data"]
    assert "application/javascript" not in data and "<script" not in data["text/html"]
    assert parsed[1] == [b"buffer"]
    assert "withheld" in json.loads(out[1])["content"]["text"] or "[clean room]" in out[1]
    assert b"window.leak" not in out[0]
    # The same message as a text frame meets the same rules.
    text = json.dumps(_msg("display_data", {"data": dict(bundle), "metadata": {}}, []))
    as_text = rules.towards_browser(text)
    assert json.loads(str(as_text[0]))["content"]["data"] == data
    assert _refusals(gw) == {"content": 2}


async def test_the_cap_and_the_budget_count_every_byte_of_a_binary_frame(gw: Gateway) -> None:
    rules = _rules(gw)
    cap = gw.policy.websocket.max_message_bytes
    small = _binary("comm_msg", {"comm_id": "c", "data": {}}, [b"y" * 1000])
    out = rules.towards_browser(small)
    assert len(out) == 1 and isinstance(out[0], bytes)
    assert _day_bytes(gw) == len(out[0]) > 1000  # buffers counted, not only the JSON
    # One frame over the cap, though its JSON is tiny: withheld with a notice.
    big = _binary("comm_msg", {"comm_id": "c", "data": {}}, [b"y" * cap])
    before = _day_bytes(gw)
    out = rules.towards_browser(big)
    assert all(isinstance(f, str) for f in out) and "withheld" in str(out[0])
    assert all(b"y" * 1000 not in (f.encode() if isinstance(f, str) else f) for f in out)
    assert _day_bytes(gw) == before
    # Past the budget, binary frames are withheld like text ones.
    left = gw.budgets.remaining(USER, PROJECT)
    chunk = cap // 2
    sent = 0
    for _ in range(left // chunk + 2):
        for frame in rules.towards_browser(
            _binary("comm_msg", {"comm_id": "c", "data": {}}, [b"z" * chunk])
        ):
            if isinstance(frame, bytes):
                sent += len(frame)
    assert sent <= left
    assert _refusals(gw).get("budget", 0) >= 1


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00\x00\x00\x00",  # no parts
        struct.pack("!II", 1, 4) + b"{}",  # first offset not after the header
        struct.pack("!III", 2, 12, 8) + b"{}xx",  # offsets going backwards
        struct.pack("!III", 2, 12, 99) + b"{}xx",  # an offset past the end
        struct.pack("!II", 1, 8) + b"\xff\xfe",  # not UTF-8
        struct.pack("!II", 1, 8) + b"[1, 2]",  # JSON, but not an object
        struct.pack("!I", 10**6) + b"x" * 64,  # too many parts
    ],
)
async def test_frames_that_are_not_the_layout_are_withheld_both_ways(
    gw: Gateway, frame: bytes
) -> None:
    rules = _rules(gw)
    assert parse_binary(frame) is None
    assert rules.towards_browser(frame) == []
    assert rules.towards_workspace(frame) is None
    assert _refusals(gw) == {"content": 2}  # one record, counting both refusals
    assert _day_bytes(gw) == 0


async def test_binary_frames_from_the_browser_are_read_and_rebuilt(gw: Gateway) -> None:
    rules = _rules(gw)
    request = _msg("comm_msg", {"comm_id": "c", "data": {}}, [b"from the browser"])
    request["header"]["msg_id"] = "browser-1"
    passing = rules.towards_workspace(bytes(serialize_binary_message(request)))
    assert isinstance(passing, bytes)
    assert deserialize_binary_message(passing)["buffers"] == [b"from the browser"]
    assert rules.kernel is not None and "browser-1" in rules.kernel.sent


async def test_binary_frames_on_sockets_that_speak_text_are_withheld(gw: Gateway) -> None:
    rules = _rules(gw, kernel=False)
    frame = _binary("stream", {"name": "stdout", "text": "x"}, [])
    assert rules.towards_browser(frame) == []
    assert rules.towards_workspace(frame) is None
    assert rules.towards_browser('["stdout", "ok"]') == ['["stdout", "ok"]']
    assert _refusals(gw) == {"content": 2}
