"""The gateway's websocket relay (cleanroom.gateway.relay), frame by frame.

A real front, full handler and relay before a real tornado websocket server that proves
itself as a workspace's does, on loopback and uvloop. The browser side is spoken by hand,
so a test can send what no browser would (unmasked, reserved bits, bad UTF-8, a header
announcing a huge message, fragments with a ping between them). The hub is stood in for
as in tests/gateway/test_front.py; tests/gateway/test_walls.py drives the same relay
through the real hub, proxy and a workspace container.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cleanroom import paths
from cleanroom.gateway import relay, wire
from cleanroom.gateway.app import Gateway
from cleanroom.gateway.front import Front
from cleanroom.gateway.policy import load_policy
from cleanroom.gateway.proxy import public_handlers
from tornado import web, websocket
from tornado.httpserver import HTTPServer

from tests.gateway.standins import (
    GOOD,
    PREFIX,
    PROJECT,
    SECRET,
    TOKEN,
    USER,
    StandInHub,
    gateway_to,
    prove,
)
from tests.integration.harness import free_port

MAX_REQUEST = 65_536
MAX_RESPONSE = 262_144
RATE, BURST = 65_536, 131_072


@dataclasses.dataclass
class Kernel:
    """What the stand-in kernel's server received, and how it answers."""

    received: list[str | bytes] = dataclasses.field(default_factory=list)
    answer: Callable[[Any, str | bytes], None] | None = None
    sockets: list[Any] = dataclasses.field(default_factory=list)
    close_code: list[int | None] = dataclasses.field(default_factory=list)


class _Channels(websocket.WebSocketHandler):
    """A kernel's channels socket that proves itself (unless ``proves`` is off)."""

    def initialize(self, kernel: Kernel, proves: bool = True) -> None:
        self.kernel = kernel
        self.proves = proves

    def prepare(self) -> None:
        if self.proves:
            prove(self)

    def open(self, *args: str) -> None:
        self.kernel.sockets.append(self)

    def on_message(self, message: str | bytes) -> None:
        self.kernel.received.append(message)
        if self.kernel.answer is not None:
            self.kernel.answer(self, message)

    def on_close(self) -> None:
        self.kernel.close_code.append(self.close_code)


def msg(msg_type: str, content: dict[str, Any], parent: str = "p1") -> dict[str, Any]:
    return {
        "header": {"msg_id": os.urandom(4).hex(), "msg_type": msg_type, "session": "s"},
        "parent_header": {"msg_id": parent, "msg_type": "execute_request"},
        "metadata": {},
        "content": content,
        "channel": "iopub",
    }


@dataclasses.dataclass
class Rig:
    port: int
    gw: Gateway
    kernel: Kernel


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    upstream_port, public_port = free_port(), free_port()
    kernel = Kernel()
    unproven = {"kernel": kernel, "proves": False}
    upstream = HTTPServer(
        web.Application(
            [
                (PREFIX + r"/api/kernels/k1/channels", _Channels, {"kernel": kernel}),
                (PREFIX + r"/api/kernels/fake/channels", _Channels, unproven),
                (PREFIX + r"/terminals/websocket/1", _Channels, {"kernel": kernel}),
            ]
        )
    )
    upstream.listen(upstream_port, "127.0.0.1")
    policy = load_policy(paths.policies_dir())
    policy = dataclasses.replace(
        policy,
        http=dataclasses.replace(
            policy.http, max_request_bytes=MAX_REQUEST, max_response_bytes=MAX_RESPONSE
        ),
        websocket=dataclasses.replace(
            policy.websocket,
            max_message_bytes=100_000,
            rate_bytes_per_second=RATE,
            rate_burst_bytes=BURST,
        ),
    )
    gw = gateway_to(upstream_port, tmp_path, StandInHub(), policy)
    front = Front(gw, web.Application(public_handlers(gw), cookie_secret=b"k" * 32))
    front.listen(public_port, "127.0.0.1")
    yield Rig(public_port, gw, kernel)
    front.close()
    upstream.stop()
    gw.client.close()


class Browser:
    """A websocket client spoken by hand: frames exactly as a test writes them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(
        cls, port: int, path: str = "/api/kernels/k1/channels", **headers: str
    ) -> tuple[Browser, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        fields = {
            "Host": f"127.0.0.1:{port}",
            "Authorization": GOOD,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        }
        fields.update({k.replace("_", "-"): v for k, v in headers.items()})
        lines = [f"GET {PREFIX}{path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items() if v)]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        browser = cls(reader, writer)
        if head.startswith(b"HTTP/1.1 101"):
            accept = wire.accept_value(fields["Sec-WebSocket-Key"])
            assert f"Sec-WebSocket-Accept: {accept}".encode() in head
        return browser, head

    def send_raw(
        self,
        opcode: int,
        payload: bytes,
        fin: bool = True,
        masked: bool = True,
        rsv: int = 0,
        announce: int | None = None,
    ) -> None:
        n = len(payload) if announce is None else announce
        first = (0x80 if fin else 0) | rsv | opcode
        bit = 0x80 if masked else 0
        if n < 126:
            head = struct.pack("!BB", first, bit | n)
        elif n < 65536:
            head = struct.pack("!BBH", first, bit | 126, n)
        else:
            head = struct.pack("!BBQ", first, bit | 127, n)
        if masked:
            key = os.urandom(4)
            payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + payload)

    def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.send_raw(wire.OP_TEXT, text.encode())

    async def frame(self, timeout: float = 10) -> tuple[int, bytes]:
        """The next frame: (opcode, payload); (-1, b"") when the connection ended."""
        try:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        except asyncio.IncompleteReadError:
            return -1, b""
        assert not second & 0x80, "a server's frames are never masked"
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await asyncio.wait_for(self.reader.readexactly(n), timeout)

    async def message(self) -> dict[str, Any]:
        opcode, payload = await self.frame()
        assert opcode == wire.OP_TEXT, (opcode, payload[:200])
        loaded: dict[str, Any] = json.loads(payload)
        return loaded

    async def closed_with(self, reply: bool = True) -> int | None:
        """The close code the gateway sent (None: a close frame without one), answered
        with a close frame as a browser answers."""
        while True:
            opcode, payload = await self.frame()
            if opcode == wire.OP_CLOSE:
                if reply:
                    self.send_raw(wire.OP_CLOSE, payload[:2])
                return struct.unpack("!H", payload[:2])[0] if payload else None
            assert opcode != -1, "the connection ended without a close frame"

    def close(self) -> None:
        self.writer.close()


async def _eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


# -- the relay carries what the rules let pass ----------------------------------------


async def test_kernel_messages_cross_both_ways_under_the_rules(rig: Rig) -> None:
    def answer(handler: Any, message: str | bytes) -> None:
        request = json.loads(message)
        parent = request["header"]["msg_id"]
        handler.write_message(json.dumps(msg("stream", {"name": "stdout", "text": "2\n"}, parent)))
        script = {"data": {"application/javascript": "steal()", "text/plain": "x"}, "metadata": {}}
        handler.write_message(json.dumps(msg("display_data", script, parent)))

    rig.kernel.answer = answer
    browser, head = await Browser.connect(rig.port)
    assert head.startswith(b"HTTP/1.1 101"), head
    request = msg("execute_request", {"code": "1 + 1"}, parent="")
    browser.send(request)
    first = await browser.message()
    assert first["content"]["text"] == "2\n"
    second = await browser.message()
    assert second["header"]["msg_type"] == "display_data"
    assert "application/javascript" not in second["content"]["data"]
    notice = await browser.message()
    assert "withheld" in json.dumps(notice).lower() or "[clean room]" in json.dumps(notice)
    # What the browser sent reached the server as it was sent.
    assert json.loads(rig.kernel.received[0]) == request
    assert rig.gw.budgets.status(USER, PROJECT)["day_bytes"] > 0
    browser.close()


async def test_a_fragmented_message_is_joined_and_a_ping_between_is_answered(rig: Rig) -> None:
    browser, _ = await Browser.connect(rig.port)
    text = json.dumps(msg("execute_request", {"code": "x" * 300}, parent="")).encode()
    browser.send_raw(wire.OP_TEXT, text[:100], fin=False)
    browser.send_raw(wire.OP_PING, b"are you there")
    assert await browser.frame() == (wire.OP_PONG, b"are you there")
    browser.send_raw(wire.OP_CONTINUATION, text[100:200], fin=False)
    browser.send_raw(wire.OP_CONTINUATION, text[200:])
    await _eventually(lambda: len(rig.kernel.received) == 1)
    assert rig.kernel.received[0] == text.decode()
    browser.close()


async def test_the_server_is_sent_masked_frames_and_its_pings_are_answered(rig: Rig) -> None:
    pongs: list[bytes] = []

    def answer(handler: Any, message: str | bytes) -> None:
        handler.on_pong = pongs.append
        handler.ping(b"server ping")

    rig.kernel.answer = answer
    browser, _ = await Browser.connect(rig.port)
    browser.send(msg("execute_request", {"code": "1"}, parent=""))
    # tornado's server refuses a client frame that is not masked, so this arriving says
    # the relay masked it; the pong is the relay's own.
    await _eventually(lambda: pongs == [b"server ping"])
    browser.close()


async def test_a_binary_kernel_frame_passes_rebuilt_and_another_binary_frame_does_not(
    rig: Rig,
) -> None:
    from jupyter_server.services.kernels.connection.base import serialize_binary_message

    browser, _ = await Browser.connect(rig.port)
    good = msg("comm_msg", {"comm_id": "c", "data": {}})
    good["buffers"] = [b"\x00\x01\x02"]
    browser.send_raw(wire.OP_BINARY, bytes(serialize_binary_message(good)))
    browser.send_raw(wire.OP_BINARY, b"\xff" * 40)  # not jupyter_server's layout
    browser.send(msg("execute_request", {"code": "marker"}, parent=""))
    await _eventually(lambda: len(rig.kernel.received) == 2)
    assert isinstance(rig.kernel.received[0], bytes)
    assert rig.kernel.received[0].endswith(b"\x00\x01\x02")
    assert "marker" in str(rig.kernel.received[1])
    browser.close()


async def test_a_terminal_socket_takes_no_binary_frames(rig: Rig) -> None:
    rig.kernel.answer = lambda handler, m: handler.write_message(b"\x00binary", binary=True)
    browser, _ = await Browser.connect(rig.port, "/terminals/websocket/1")
    browser.send_raw(wire.OP_BINARY, b"binary from the browser")
    browser.send(json.dumps(["stdin", "ls\r"]))
    await _eventually(lambda: len(rig.kernel.received) == 1)
    assert rig.kernel.received == ['["stdin", "ls\\r"]']
    rig.kernel.sockets[0].write_message(json.dumps(["stdout", "after"]))
    # The server's binary frame was withheld: the next frame is its text.
    assert await browser.message() == ["stdout", "after"]
    browser.close()


# -- what breaks the protocol ends the socket -------------------------------------------


@pytest.mark.parametrize(
    ("send", "code"),
    [
        (lambda b: b.send_raw(wire.OP_TEXT, b"{}", masked=False), wire.CLOSE_PROTOCOL_ERROR),
        (lambda b: b.send_raw(wire.OP_TEXT, b"{}", rsv=0x40), wire.CLOSE_PROTOCOL_ERROR),
        (lambda b: b.send_raw(0x3, b"{}"), wire.CLOSE_PROTOCOL_ERROR),
        (lambda b: b.send_raw(wire.OP_CONTINUATION, b"{}"), wire.CLOSE_PROTOCOL_ERROR),
        (lambda b: b.send_raw(wire.OP_PING, b"p", fin=False), wire.CLOSE_PROTOCOL_ERROR),
        (lambda b: b.send_raw(wire.OP_TEXT, b'{"a": "\xff\xfe"}'), wire.CLOSE_INVALID_DATA),
        # Only the header of a 1 GiB message: refused before any payload is kept.
        (lambda b: b.send_raw(wire.OP_BINARY, b"", announce=2**30), wire.CLOSE_TOO_BIG),
        (
            lambda b: (
                b.send_raw(wire.OP_TEXT, b"[" * 40_000, fin=False),
                b.send_raw(wire.OP_CONTINUATION, b"[" * 40_000),
            ),
            wire.CLOSE_TOO_BIG,
        ),
        (lambda b: b.send_raw(wire.OP_CLOSE, struct.pack("!H", 1005)), wire.CLOSE_PROTOCOL_ERROR),
    ],
    ids=[
        "unmasked",
        "reserved-bit",
        "unknown-opcode",
        "continuation-of-nothing",
        "fragmented-ping",
        "bad-utf8",
        "huge-header",
        "fragments-over-the-cap",
        "reserved-close-code",
    ],
)
async def test_a_frame_that_breaks_the_protocol_closes_both_sides(
    rig: Rig, send: Callable[[Browser], None], code: int
) -> None:
    browser, _ = await Browser.connect(rig.port)
    await _eventually(lambda: len(rig.kernel.sockets) == 1)
    send(browser)
    assert await browser.closed_with() == code
    # The server is told the socket went away; nothing of the bad frame reached it.
    await _eventually(lambda: rig.kernel.close_code == [wire.CLOSE_GOING_AWAY])
    assert rig.kernel.received == []
    await _eventually(lambda: not rig.gw.relays)
    assert await browser.frame() == (-1, b"")


async def test_a_server_message_over_the_response_cap_ends_the_socket(rig: Rig) -> None:
    rig.kernel.answer = lambda handler, m: handler.write_message("x" * (MAX_RESPONSE + 1))
    browser, _ = await Browser.connect(rig.port)
    browser.send(msg("execute_request", {"code": "big"}, parent=""))
    assert await browser.closed_with() == wire.CLOSE_GOING_AWAY
    await _eventually(lambda: rig.kernel.close_code == [wire.CLOSE_TOO_BIG])


async def test_a_close_from_either_side_closes_both(rig: Rig) -> None:
    browser, _ = await Browser.connect(rig.port)
    await _eventually(lambda: len(rig.kernel.sockets) == 1)
    browser.send_raw(wire.OP_CLOSE, struct.pack("!H", 4000) + b"bye")
    assert await browser.closed_with(reply=False) == 4000  # echoed
    assert await browser.frame() == (-1, b"")  # then the gateway ends the connection
    await _eventually(lambda: rig.kernel.close_code == [4000])
    await _eventually(lambda: not rig.gw.relays)

    browser, _ = await Browser.connect(rig.port)
    await _eventually(lambda: len(rig.kernel.sockets) == 2)
    rig.kernel.sockets[1].close(4001, "a reason of the kernel's choosing")
    # The browser learns nothing of the server's choosing: not its code, not its reason.
    opcode, payload = await browser.frame()
    assert (opcode, payload) == (wire.OP_CLOSE, struct.pack("!H", wire.CLOSE_GOING_AWAY))
    browser.send_raw(wire.OP_CLOSE, payload)
    await _eventually(lambda: not rig.gw.relays)


async def test_a_server_that_drops_the_connection_gets_the_browser_a_close(rig: Rig) -> None:
    browser, _ = await Browser.connect(rig.port)
    await _eventually(lambda: len(rig.kernel.sockets) == 1)
    rig.kernel.sockets[0].ws_connection.stream.close()  # no close frame
    assert await browser.closed_with() is None
    await _eventually(lambda: not rig.gw.relays)


async def test_a_browser_that_vanishes_leaves_nothing_open(rig: Rig) -> None:
    browser, _ = await Browser.connect(rig.port)
    await _eventually(lambda: len(rig.kernel.sockets) == 1)
    browser.writer.transport.abort()
    await _eventually(lambda: len(rig.kernel.close_code) == 1)
    await _eventually(lambda: not rig.gw.relays)


# -- the handshake ----------------------------------------------------------------------


async def test_a_server_that_cannot_prove_itself_gets_no_socket(rig: Rig) -> None:
    browser, head = await Browser.connect(rig.port, "/api/kernels/fake/channels")
    assert head.startswith(b"HTTP/1.1 502"), head
    assert b"Connection: close" in head
    assert rig.gw.relays == set()
    browser.close()


async def test_a_server_that_refuses_the_upgrade_gets_a_502(rig: Rig) -> None:
    browser, head = await Browser.connect(rig.port, "/api/kernels/gone/channels")
    assert head.startswith(b"HTTP/1.1 502"), head
    browser.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec_WebSocket_Version": "8"},
        {"Sec_WebSocket_Key": ""},
        {"Connection": "keep-alive"},
    ],
    ids=["old-version", "no-key", "no-connection-upgrade"],
)
async def test_a_malformed_handshake_is_refused(rig: Rig, headers: dict[str, str]) -> None:
    browser, head = await Browser.connect(rig.port, **headers)
    assert head.startswith(b"HTTP/1.1 400"), head
    assert rig.kernel.sockets == []
    browser.close()


async def test_a_browser_session_from_another_site_is_refused(rig: Rig) -> None:
    browser, head = await Browser.connect(
        rig.port, Authorization="", Cookie="hub=good", Origin="http://elsewhere.example"
    )
    assert head.startswith(b"HTTP/1.1 403"), head
    assert rig.kernel.sockets == []
    browser.close()
    browser, head = await Browser.connect(
        rig.port, Authorization="", Cookie="hub=good", Origin=f"http://127.0.0.1:{rig.port}"
    )
    assert head.startswith(b"HTTP/1.1 101"), head
    browser.close()


async def test_frames_sent_with_the_handshake_are_not_lost(rig: Rig) -> None:
    """A client may write its first frame right behind the upgrade request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {PREFIX}/api/kernels/k1/channels HTTP/1.1\r\nHost: x\r\nAuthorization: {GOOD}\r\n"
        f"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\n\r\n"
    ).encode()
    browser = Browser(reader, writer)
    writer.write(request)
    browser.send(msg("execute_request", {"code": "early"}, parent=""))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101")
    await _eventually(lambda: len(rig.kernel.received) == 1)
    assert "early" in str(rig.kernel.received[0])
    browser.close()


# -- rate and backpressure --------------------------------------------------------------


async def test_output_towards_the_browser_keeps_to_the_rate(rig: Rig) -> None:
    chunk = 16_384

    def flood(handler: Any, message: str | bytes) -> None:
        parent = json.loads(message)["header"]["msg_id"]
        for _ in range(12):  # 192 KiB of output: the burst, then the rate
            text = msg("stream", {"name": "stdout", "text": "y" * chunk}, parent)
            handler.write_message(json.dumps(text))

    rig.kernel.answer = flood
    browser, _ = await Browser.connect(rig.port)
    began = time.monotonic()
    browser.send(msg("execute_request", {"code": "flood"}, parent=""))
    arrived = 0
    for _ in range(12):
        opcode, payload = await browser.frame()
        assert opcode == wire.OP_TEXT
        arrived += len(payload)
        # Never more than the burst and what the rate refilled since the first byte.
        assert arrived <= BURST + RATE * (time.monotonic() - began) + 2 * chunk
    assert arrived > 12 * chunk
    browser.close()


async def test_a_browser_that_reads_nothing_holds_the_server_back(rig: Rig) -> None:
    rig.gw.buckets.clear()
    rig.gw.policy = dataclasses.replace(
        rig.gw.policy,
        websocket=dataclasses.replace(
            rig.gw.policy.websocket, rate_bytes_per_second=10**9, rate_burst_bytes=10**9
        ),
    )
    grant = rig.gw.budgets.grant(USER, PROJECT, 10**9)
    assert grant is not None
    rig.kernel.answer = lambda handler, m: None
    browser, _ = await Browser.connect(rig.port)
    browser.send(msg("execute_request", {"code": "x"}, parent=""))
    await _eventually(lambda: len(rig.kernel.sockets) == 1 and rig.gw.relays != set())
    server = rig.kernel.sockets[0]
    text = json.dumps(msg("stream", {"name": "stdout", "text": "z" * 60_000}))
    for _ in range(400):  # 24 MB towards a browser that does not read
        server.write_message(text)
        await asyncio.sleep(0)
    await asyncio.sleep(0.5)
    (one,) = rig.gw.relays
    # The relay stopped reading the server: what waits in the gateway stays bounded.
    assert one.browser.out.queued < relay.HIGH_WATER + 2**18 + 2 * len(text)
    assert not one.upstream.reading
    browser.close()


async def test_many_small_messages_at_once_arrive_all_and_in_order(rig: Rig) -> None:
    """More frames in one read than one system call can send (Linux: 1024 buffers)."""

    def burst(handler: Any, message: str | bytes) -> None:
        for i in range(1500):
            handler.write_message(json.dumps(["stdout", str(i)]))

    rig.kernel.answer = burst
    browser, _ = await Browser.connect(rig.port, "/terminals/websocket/1")
    browser.send(json.dumps(["stdin", "go"]))
    got = [(await browser.message()) for _ in range(1500)]
    assert got == [["stdout", str(i)] for i in range(1500)]
    browser.close()


async def test_a_workspace_whose_route_goes_loses_its_sockets(rig: Rig) -> None:
    """Stopped, or started again (a new secret): open sockets do not outlive the route."""
    from cleanroom.gateway.app import api_handlers
    from tornado.httpclient import AsyncHTTPClient

    api_port = free_port()
    api = HTTPServer(web.Application(api_handlers(rig.gw)))
    api.listen(api_port, "127.0.0.1")
    client = AsyncHTTPClient()
    url = f"http://127.0.0.1:{api_port}/api/routes/{USER}/{PROJECT}"
    headers = {"Authorization": "token unused", "Content-Type": "application/json"}
    backend = rig.gw.routes.get(USER, PROJECT)
    assert backend is not None
    try:
        browser, _ = await Browser.connect(rig.port)
        await _eventually(lambda: len(rig.gw.relays) == 1)
        # The same start registered again (the hub restarted): the socket stays.
        body = json.dumps({"target": backend.target, "token": TOKEN, "secret": SECRET})
        reply = await client.fetch(url, method="PUT", headers=headers, body=body)
        assert reply.code == 200 and len(rig.gw.relays) == 1
        # Another start of the server: the old start's socket closes.
        body = json.dumps({"target": backend.target, "token": TOKEN, "secret": "n" * 64})
        await client.fetch(url, method="PUT", headers=headers, body=body)
        assert await browser.closed_with() == wire.CLOSE_GOING_AWAY
        await _eventually(lambda: not rig.gw.relays)
        # Stopped: gone.
        rig.gw.routes.put(backend)
        browser, _ = await Browser.connect(rig.port)
        await _eventually(lambda: len(rig.gw.relays) == 1)
        await client.fetch(url, method="DELETE", headers=headers)
        assert await browser.closed_with() == wire.CLOSE_GOING_AWAY
        await _eventually(lambda: not rig.gw.relays)
    finally:
        api.stop()
