"""The gateway's client towards workspace servers (cleanroom.gateway.upstream): connections
kept and replaced when the server closed them, the answer cap kept as the answer arrives;
and the server's own XSRF cookie, kept by the gateway and never passed to a browser.

A real gateway (its public handlers, policy, budgets and upstream client) in front of a
real tornado server that answers like a workspace's (the proof header on every answer),
both on loopback; only the hub's login is stood in for, since who may pass is not what
is tested here (tests/gateway/test_walls.py tests that through the real hub).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cleanroom import paths
from cleanroom.gateway.app import Gateway, api_handlers
from cleanroom.gateway.front import Front
from cleanroom.gateway.policy import load_policy
from cleanroom.gateway.proxy import public_handlers
from cleanroom.gateway.routes import Backend
from cleanroom.gateway.upstream import NoAnswer
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer

from tests.gateway.standins import PROJECT, SECRET, TOKEN, USER, gateway_to, prove
from tests.integration.harness import free_port

CAP = 200_000


class _Owner:
    """The hub's answer for the workspace's owner with a token (stands in for HubOAuth)."""

    async def get_user(self, handler: Any, sync: bool = False) -> dict[str, str]:
        handler._token_authenticated = True
        return {"kind": "user", "name": USER}

    def check_scopes(self, wanted: set[str], user: Any) -> set[str]:
        return wanted


class _Server(HTTPServer):
    """Counts the connections it accepts (and keeps the latest server started)."""

    accepted = 0
    latest: _Server | None = None

    def handle_stream(self, stream: Any, address: Any) -> None:
        type(self).accepted += 1
        super().handle_stream(stream, address)


class _Contents(web.RequestHandler):
    def get(self, size: str) -> None:
        prove(self)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"type": "file", "content": "x" * int(size)}))

    def delete(self, size: str) -> None:
        prove(self)
        self.set_status(204)
        self.finish()


class _Page(web.RequestHandler):
    """A page that sets the server's XSRF cookie when the request lacks it, as
    JupyterHub's single-user server does; records the Cookie header of each request."""

    seen: list[str] = []
    token = "c2lnbmVkLXRva2Vu"

    def get(self) -> None:
        cookie = self.request.headers.get("Cookie", "")
        type(self).seen.append(cookie)
        if f"_xsrf={self.token}" not in cookie:
            self.set_cookie("_xsrf", self.token, path=f"/user/{USER}/{PROJECT}/")
        self.set_cookie("other", "not-kept")
        prove(self)
        self.set_header("Content-Type", "text/html")
        self.finish("<html>lab</html>")


class _Slow(web.RequestHandler):
    """An answer that takes a second."""

    async def get(self) -> None:
        await asyncio.sleep(1)
        prove(self)
        self.finish("late")


class _Chunked(web.RequestHandler):
    """An answer without a Content-Length: chunked, in pieces of 50 kB."""

    async def get(self, size: str) -> None:
        prove(self)
        self.set_header("Content-Type", "application/json")
        body = json.dumps({"type": "file", "content": "x" * int(size)}).encode()
        for start in range(0, len(body), 50_000):
            self.write(body[start : start + 50_000])
            await self.flush()
        self.finish()


@pytest.fixture(params=["front", "handler"])
async def gateway(tmp_path: Path, request: Any) -> AsyncIterator[tuple[str, Gateway]]:
    """The gateway's public URL of the workspace (and the gateway), with the workspace
    server behind it: through the lean front as deployed, and through the full handler
    alone (what the front passes everything else to)."""
    upstream_port, public_port = free_port(), free_port()
    prefix = f"/user/{USER}/{PROJECT}"
    upstream = _Server(
        web.Application(
            [
                (prefix + r"/api/contents/(\d+)", _Contents),
                (prefix + r"/api/contents/chunked/(\d+)", _Chunked),
                (prefix + r"/slow", _Slow),
                (prefix + r"/lab", _Page),
            ]
        )
    )
    upstream.listen(upstream_port, "127.0.0.1")
    _Server.latest = upstream
    _Server.accepted = 0
    _Page.seen = []
    policy = load_policy(paths.policies_dir())
    policy = dataclasses.replace(
        policy, http=dataclasses.replace(policy.http, max_response_bytes=CAP)
    )
    gw = gateway_to(upstream_port, tmp_path, _Owner(), policy)
    app = web.Application(public_handlers(gw), cookie_secret=b"k" * 32)
    public = HTTPServer(app)
    front = Front(gw, app)
    if request.param == "front":
        front.listen(public_port, "127.0.0.1")
    else:
        public.listen(public_port, "127.0.0.1")
    yield f"http://127.0.0.1:{public_port}{prefix}", gw
    front.close()
    public.stop()
    upstream.stop()
    gw.client.close()


async def _get(url: str) -> Any:
    client = AsyncHTTPClient(force_instance=True)
    try:
        return await client.fetch(url, raise_error=False, headers={"Authorization": "token x"})
    finally:
        client.close()


async def test_requests_to_a_workspace_reuse_one_connection(
    gateway: tuple[str, Gateway],
) -> None:
    url, _ = gateway
    for _ in range(5):
        reply = await _get(f"{url}/api/contents/1000")
        assert reply.code == 200, reply.body
        assert json.loads(reply.body)["content"] == "x" * 1000
    assert _Server.accepted == 1


async def test_an_answer_over_the_cap_is_refused_and_recorded(
    gateway: tuple[str, Gateway],
) -> None:
    url, gw = gateway
    reply = await _get(f"{url}/api/contents/{CAP}")
    assert reply.code == 403
    assert str(CAP) in json.loads(reply.body)["message"]
    assert b"xxxx" not in reply.body
    assert gw.budgets.status(USER, PROJECT)["day_bytes"] == 0
    reasons = [detail["reason"] for _, _, detail in gw.ledger.take()]
    assert reasons == ["too_large"]
    # The gateway answers again after a refused answer (the connection was dropped).
    reply = await _get(f"{url}/api/contents/10")
    assert reply.code == 200


async def test_a_chunked_answer_is_capped_as_it_arrives(gateway: tuple[str, Gateway]) -> None:
    url, gw = gateway
    reply = await _get(f"{url}/api/contents/chunked/120000")
    assert reply.code == 200, reply.body
    assert json.loads(reply.body)["content"] == "x" * 120_000
    reply = await _get(f"{url}/api/contents/chunked/{CAP}")
    assert reply.code == 403
    assert b"xxxx" not in reply.body
    reasons = [detail["reason"] for _, _, detail in gw.ledger.take()]
    assert reasons == ["too_large"]
    counted = gw.budgets.status(USER, PROJECT)["by_kind"]["contents"]
    assert 120_000 < counted < CAP  # the first answer only


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    gateway: tuple[str, Gateway],
) -> None:
    url, _ = gateway
    assert (await _get(f"{url}/api/contents/10")).code == 200
    assert _Server.latest is not None
    await _Server.latest.close_all_connections()
    reply = await _get(f"{url}/api/contents/20")
    assert reply.code == 200, reply.body
    assert json.loads(reply.body)["content"] == "x" * 20
    assert _Server.accepted == 2


async def test_an_answer_without_a_body_leaves_the_connection_usable(
    gateway: tuple[str, Gateway],
) -> None:
    url, _ = gateway
    client = AsyncHTTPClient(force_instance=True)
    try:
        reply = await client.fetch(
            f"{url}/api/contents/5",
            method="DELETE",
            raise_error=False,
            headers={"Authorization": "token x"},
        )
    finally:
        client.close()
    assert reply.code == 204, reply.body
    reply = await _get(f"{url}/api/contents/5")
    assert reply.code == 200
    assert _Server.accepted == 1


async def test_an_answer_later_than_the_timeout_is_no_answer(
    gateway: tuple[str, Gateway],
) -> None:
    _, gw = gateway
    target = gw.routes.get(USER, PROJECT)
    assert target is not None
    with pytest.raises(NoAnswer, match=r"no answer within 0\.2 s"):
        await gw.client.fetch(f"{target.target}{target.prefix}slow", timeout=0.2)
    # The timed-out connection is not kept; the next request gets a fresh one.
    reply = await gw.client.fetch(f"{target.target}{target.prefix}api/contents/3", timeout=5)
    assert reply.code == 200
    assert _Server.accepted == 2


async def test_the_servers_xsrf_cookie_is_kept_by_the_gateway_and_never_sent_on(
    gateway: tuple[str, Gateway],
) -> None:
    url, gw = gateway
    client = AsyncHTTPClient(force_instance=True)
    try:
        replies = [
            await client.fetch(
                f"{url}/lab",
                raise_error=False,
                # A browser's own cookies never reach the server.
                headers={"Authorization": "token x", "Cookie": "_xsrf=browsers; session=s"},
            )
            for _ in range(3)
        ]
    finally:
        client.close()
    assert [r.code for r in replies] == [200, 200, 200]
    for reply in replies:
        assert not [c for c in reply.headers.get_list("Set-Cookie") if "_xsrf=" + _Page.token in c]
        assert "not-kept" not in str(reply.headers)
    # The first page had no cookie of the server's; the later ones carry only its own.
    assert _Page.seen == ["", f"_xsrf={_Page.token}", f"_xsrf={_Page.token}"]
    # A new start of the server (a new secret) does not get the old start's cookie.
    backend = gw.routes.get(USER, PROJECT)
    assert backend is not None
    gw.routes.put(dataclasses.replace(backend, secret="n" * 64))
    reply = await _get(f"{url}/lab")
    assert reply.code == 502  # this test's server proves with the old secret
    assert _Page.seen[-1] == ""


class _Api(web.RequestHandler):
    """A workspace server's ``/api``, proving with this test's secret."""

    def get(self) -> None:
        prove(self)
        self.finish({"version": "test"})


async def test_readiness_is_waited_for_in_the_gateway_with_one_api_request(
    gateway: tuple[str, Gateway],
) -> None:
    """The spawner's one ``GET /api/routes/..?wait=`` answers once the server is up (the
    gateway checks every 50 ms itself); bad waits are refused, and an unknown route."""
    _, gw = gateway
    gw.api_token = "api-token"
    api_port, late_port = free_port(), free_port()
    api = HTTPServer(web.Application(api_handlers(gw)))
    api.listen(api_port, "127.0.0.1")
    gw.routes.put(Backend("erin", PROJECT, f"http://127.0.0.1:{late_port}", TOKEN, SECRET))
    late = HTTPServer(web.Application([(rf"/user/erin/{PROJECT}/api", _Api)]))
    client = AsyncHTTPClient(force_instance=True)

    async def ask(query: str, who: str = "erin") -> Any:
        return await client.fetch(
            f"http://127.0.0.1:{api_port}/api/routes/{who}/{PROJECT}{query}",
            raise_error=False,
            headers={"Authorization": "token api-token"},
            request_timeout=20,
        )

    try:
        for bad in ("?wait=abc", "?wait=-1", "?wait=11", "?wait=nan"):
            assert (await ask(bad)).code == 400, bad
        assert (await ask("?wait=1", who="nobody")).code == 404
        assert (await ask("")).code == 503  # nothing listens yet: at once
        waited = asyncio.ensure_future(ask("?wait=8"))
        await asyncio.sleep(0.5)
        assert not waited.done()
        late.listen(late_port, "127.0.0.1")
        reply = await asyncio.wait_for(waited, 5)
        assert reply.code == 200 and json.loads(reply.body) == {"ready": True}
        # A route that goes ends the wait at once.
        gw.routes.put(Backend("fay", PROJECT, f"http://127.0.0.1:{free_port()}", TOKEN, SECRET))
        waiting = asyncio.ensure_future(ask("?wait=8", who="fay"))
        await asyncio.sleep(0.3)
        gw.routes.remove("fay", PROJECT)
        assert (await asyncio.wait_for(waiting, 2)).code == 503
    finally:
        client.close()
        late.stop()
        api.stop()
