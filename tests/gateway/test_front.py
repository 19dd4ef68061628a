"""The gateway's lean front (cleanroom.gateway.front): what it answers itself, and that it
answers only when the full handler would answer the same.

A real front and full handler (the gateway's policy, budgets, upstream client) before a
real tornado server answering like a workspace's (the proof header on every answer,
a websocket), on loopback. The hub is stood in for (it counts how often it is asked), since
what is tested is when the front asks it, not the hub's login; tests/gateway/test_walls.py
goes through the real hub, proxy and container.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cleanroom.gateway.app import Gateway
from cleanroom.gateway.front import Admissions, Front, credential_key
from cleanroom.gateway.proxy import public_handlers
from tornado import web, websocket
from tornado.httpserver import HTTPServer

from tests.gateway.standins import (
    GOOD,
    PREFIX,
    PROJECT,
    TOKEN,
    USER,
    StandInHub,
    gateway_to,
    prove,
)
from tests.integration.harness import free_port


class _Api(web.RequestHandler):
    """Echoes what reached the server: method, body, headers."""

    def _answer(self) -> None:
        prove(self)
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "method": self.request.method,
                    "body": self.request.body.decode(),
                    "cookie": self.request.headers.get("Cookie", ""),
                    "authorization": self.request.headers.get("Authorization", ""),
                }
            )
        )

    get = post = put = delete = patch = _answer

    def head(self) -> None:
        prove(self)
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Length", "1000")
        self.finish()


class _Terminal(websocket.WebSocketHandler):
    """A terminal's websocket that echoes, as the real server proves itself."""

    def prepare(self) -> None:
        prove(self)

    def on_message(self, message: str | bytes) -> None:
        self.write_message(json.dumps(["stdout", f"echo:{json.loads(message)[1]}"]))


@dataclasses.dataclass
class Rig:
    port: int
    gw: Gateway
    hub: StandInHub


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    upstream_port, public_port = free_port(), free_port()
    upstream = HTTPServer(
        web.Application(
            [(PREFIX + r"/api/contents/.*", _Api), (PREFIX + r"/terminals/websocket/1", _Terminal)]
        )
    )
    upstream.listen(upstream_port, "127.0.0.1")
    hub = StandInHub()
    gw = gateway_to(upstream_port, tmp_path, hub)
    app = web.Application(public_handlers(gw), cookie_secret=b"k" * 32)
    front = Front(gw, app)
    front.listen(public_port, "127.0.0.1")
    yield Rig(public_port, gw, hub)
    front.close()
    upstream.stop()
    gw.client.close()


class Client:
    """One kept-alive connection, spoken by hand (so a test knows which connection)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        lines = [f"{method} {PREFIX}{path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async def answer(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        status = await asyncio.wait_for(self.reader.readline(), 10)
        if not status:
            raise ConnectionError("closed")
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers and not head:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                body += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        return int(status.split()[1]), headers, body

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        self.send(method, path, headers, body)
        return await self.answer(head=method == "HEAD")

    def close(self) -> None:
        self.writer.close()


async def test_the_second_request_of_admitted_credentials_goes_the_lean_way(rig: Rig) -> None:
    client = await Client.open(rig.port)
    first = await client.request("GET", "/api/contents/a", {"Authorization": GOOD})
    second = await client.request("GET", "/api/contents/a", {"Authorization": GOOD})
    client.close()
    assert first[0] == second[0] == 200
    assert rig.hub.asked == 1  # the second was answered without asking the hub
    assert json.loads(first[2]) == json.loads(second[2])
    # The same answer either way: the server saw the gateway's token, never the browser's.
    assert json.loads(second[2])["authorization"] == f"token {TOKEN}"
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert first[1][name] == second[1][name]
    assert first[1]["content-type"] == second[1]["content-type"] == "application/json"
    # Both counted against the budget.
    assert rig.gw.budgets.status(USER, PROJECT)["by_kind"]["contents"] >= 2 * len(first[2])


async def test_other_credentials_are_asked_of_the_hub_and_refused(rig: Rig) -> None:
    client = await Client.open(rig.port)
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    status, _, body = await client.request(
        "GET", "/api/contents/a", {"Authorization": "token stolen"}
    )
    assert status == 403 and b"Log in" in body
    # The admission is of the credentials, not of the connection or the path.
    status, _, _ = await client.request(
        "GET", "/api/contents/a", {"Authorization": GOOD, "Cookie": "jupyterhub-session-id=x"}
    )
    assert status == 200
    client.close()
    assert rig.hub.asked == 3
    reasons = [detail["reason"] for _, _, detail in rig.gw.ledger.take()]
    assert reasons == ["unauthenticated"]


async def test_an_admission_expires(rig: Rig) -> None:
    rig.gw.admissions = Admissions(seconds=0)
    client = await Client.open(rig.port)
    for _ in range(3):
        assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    client.close()
    assert rig.hub.asked == 3


async def test_a_route_off_the_allowlist_is_refused_even_for_admitted_credentials(
    rig: Rig,
) -> None:
    client = await Client.open(rig.port)
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    status, headers, body = await client.request("GET", "/api/nbconvert/x", {"Authorization": GOOD})
    assert status == 403
    assert "not a route the clean room allows" in json.loads(body)["message"]
    assert headers["content-type"] == "application/json"
    # A stopped workspace: its route is gone at once, admission or not.
    rig.gw.routes.remove(USER, PROJECT)
    status, _, body = await client.request("GET", "/api/contents/a", {"Authorization": GOOD})
    assert status == 404 and b"not running" in body
    client.close()
    reasons = [detail["reason"] for _, _, detail in rig.gw.ledger.take()]
    assert reasons == ["not_allowed", "no_route"]


async def test_browser_sessions_are_lean_only_for_safe_requests_from_our_pages(
    rig: Rig,
) -> None:
    client = await Client.open(rig.port)
    status, headers, _ = await client.request("GET", "/api/contents/a", {"Cookie": "hub=good"})
    assert status == 200
    xsrf = headers["set-cookie"].split(";")[0].split("=", 1)[1]  # the gateway's own
    cookie = f"hub=good; _xsrf={xsrf}"
    asked = rig.hub.asked
    assert (await client.request("GET", "/api/contents/a", {"Cookie": cookie}))[0] == 200
    assert (await client.request("GET", "/api/contents/a", {"Cookie": cookie}))[0] == 200
    assert rig.hub.asked == asked + 1  # admitted once for this cookie, then lean
    asked = rig.hub.asked
    # A write goes to the full handler: without the double submit it is refused...
    status, _, _ = await client.request("PUT", "/api/contents/a", {"Cookie": cookie}, b"{}")
    assert status == 403
    # ... with it, it passes.
    status, _, body = await client.request(
        "PUT", "/api/contents/a", {"Cookie": cookie, "X-XSRFToken": xsrf}, b'{"a": 1}'
    )
    assert status == 200 and json.loads(body)["body"] == '{"a": 1}'
    # Another site's request, and the websocket fetch mode, are never lean.
    status, _, _ = await client.request(
        "GET", "/api/contents/a", {"Cookie": cookie, "Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403
    status, _, _ = await client.request(
        "GET", "/api/contents/a", {"Cookie": cookie, "Sec-Fetch-Mode": "websocket"}
    )
    assert rig.hub.asked == asked + 4
    client.close()
    # The browser's cookies never reached the server.
    assert json.loads(body)["cookie"] == ""


async def test_a_token_in_the_url_is_never_lean(rig: Rig) -> None:
    client = await Client.open(rig.port)
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    await client.request("GET", "/api/contents/a?token=other", {"Authorization": GOOD})
    client.close()
    assert rig.hub.asked == 2


async def test_writes_heads_and_pipelined_requests_on_the_lean_path(rig: Rig) -> None:
    client = await Client.open(rig.port)
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    status, _, body = await client.request(
        "POST", "/api/contents/a", {"Authorization": GOOD}, b"x" * 100_000
    )
    assert status == 200 and json.loads(body)["body"] == "x" * 100_000
    status, headers, body = await client.request("HEAD", "/api/contents/a", {"Authorization": GOOD})
    assert status == 200 and body == b""
    assert headers["content-type"] == "application/json"
    # Three requests in one write: three answers, in order.
    for method in ("DELETE", "PATCH", "GET"):
        client.send(
            method, "/api/contents/a", {"Authorization": GOOD}, b"p" if method == "PATCH" else b""
        )
    methods = [json.loads((await client.answer())[2])["method"] for _ in range(3)]
    assert methods == ["DELETE", "PATCH", "GET"]
    client.close()
    assert rig.hub.asked == 1


async def test_a_websocket_after_plain_requests_on_the_same_connection(rig: Rig) -> None:
    client = await Client.open(rig.port)
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    key = base64.b64encode(os.urandom(16)).decode()
    client.send(
        "GET",
        "/terminals/websocket/1",
        {
            "Authorization": GOOD,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": key,
        },
    )
    status = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), 10)
    assert status.startswith(b"HTTP/1.1 101"), status
    payload = json.dumps(["stdin", "hi"]).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    client.writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    frame = await asyncio.wait_for(client.reader.readexactly(2), 10)
    assert frame[0] == 0x81
    text = await client.reader.readexactly(frame[1] & 0x7F)
    assert json.loads(text) == ["stdout", "echo:hi"]
    client.close()


async def test_malformed_and_oversized_requests_get_an_answer_and_a_closed_connection(
    rig: Rig,
) -> None:
    client = await Client.open(rig.port)
    client.writer.write(b"GET /\x01 nonsense\r\n\r\n")
    status, _, _ = await client.answer()
    assert status == 400
    assert await client.reader.read() == b""
    client.close()
    client = await Client.open(rig.port)
    client.send("GET", "/api/contents/a", {"Authorization": GOOD, "X-Big": "y" * 70_000})
    status, _, _ = await client.answer()
    assert status == 431
    client.close()
    # The front still answers.
    client = await Client.open(rig.port)
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    client.close()


async def test_whitespace_around_a_header_value_is_no_part_of_it(rig: Rig) -> None:
    # The parser keeps trailing whitespace, which tornado's headers refuse: before, an
    # empty "token " (a restarted hub's health check) closed the connection unanswered.
    client = await Client.open(rig.port)
    assert (await client.request("GET", "/api/contents/a", {"Authorization": "token "}))[0] == 403
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD + " \t"}))[
        0
    ] == 200
    client.close()


def test_credential_keys_are_the_exact_credentials() -> None:
    assert credential_key("token abc", None, by_token=True) == ("token", "token abc", "")
    assert credential_key("token abc", "jupyterhub-session-id=s1; x=y", by_token=True) == (
        "token",
        "token abc",
        "s1",
    )
    # A cookie session is keyed by the whole Cookie header, and only without a token.
    assert credential_key(None, "a=1; b=2", by_token=False) == ("cookie", "a=1; b=2")
    assert credential_key("token abc", "a=1", by_token=False) is None
    assert credential_key(None, None, by_token=False) is None
    assert credential_key("Basic eHh4", None, by_token=True) is None


async def test_the_tests_run_on_uvloop_as_the_gateway_does() -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")


async def test_a_large_answer_to_a_slow_reader_arrives_whole(rig: Rig) -> None:
    client = await Client.open(rig.port)
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    body = os.urandom(3 * 2**20).hex().encode()  # 6 MiB of text each way
    client.send("PUT", "/api/contents/a", {"Authorization": GOOD}, body)
    await asyncio.sleep(1)  # the front's socket buffer fills; the rest waits for us
    status, _, answer = await client.answer()
    assert status == 200
    assert json.loads(answer)["body"].encode() == body
    # The connection goes on with the next request.
    assert (await client.request("GET", "/api/contents/a", {"Authorization": GOOD}))[0] == 200
    client.close()
    assert rig.hub.asked == 1
