"""An egress grant is the decision of a person the gateway identifies itself.

The gateway's internal API (a real tornado server on loopback, with its real budgets and
journal writer on a real registry) takes no decider's name from the body: it resolves the
deciding person's own credential, and refuses, granting nothing and journaling nothing,
a person without the officer or operator role, out of standing, with a stale or forged
credential, or granting to themselves.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cleanroom import paths
from cleanroom.gateway.app import Gateway, api_handlers
from cleanroom.gateway.budget import Budgets
from cleanroom.gateway.deciders import GrantDecider
from cleanroom.gateway.ledger import Ledger, journal_writer
from cleanroom.gateway.policy import load_policy
from cleanroom.gateway.routes import RouteTable
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance
from cleanroom.registry.people import People
from tornado import httpserver, web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.people import Authenticator, personal_token

API_TOKEN = "test-gateway-api-token"
PROJECT = "press-quality"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CLEANROOM_REGISTRY_URL", raising=False)
    return Registry()


@pytest.fixture
def tokens(registry: Registry) -> dict[str, str]:
    """Personal credentials of olga (officer), opal (operator), dave (researcher),
    otto (officer) and pat (provider), all in standing."""
    gov = Governance(registry)
    app = Authenticator()
    people = [("olga", "officer"), ("opal", "operator"), ("dave", "researcher"),
              ("otto", "officer"), ("pat", "provider")]  # fmt: skip
    for name, role in people:
        gov.add_user(name, [role], actor="test")
    gov.create_project(PROJECT, "Press quality", actor="test")
    return {name: personal_token(registry, name, app) for name, _ in people}


@pytest.fixture
async def gateway(registry: Registry) -> AsyncIterator[tuple[Gateway, str]]:
    """A gateway's internal API on a free loopback port; its base URL."""
    policy = load_policy(paths.policies_dir())
    gw = Gateway(
        policy,
        RouteTable(None),
        Budgets(policy.budget),
        Ledger(journal_writer(registry.url)),
        hub_auth=None,
        api_token=API_TOKEN,
        decider=GrantDecider(registry.url),
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = httpserver.HTTPServer(web.Application(api_handlers(gw)))
    server.add_sockets([sock])
    yield gw, f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.stop()


async def _grant(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    reply = await AsyncHTTPClient().fetch(
        HTTPRequest(
            f"{url}/api/grants",
            method="POST",
            headers={"Authorization": f"token {API_TOKEN}"},
            body=json.dumps(body),
        ),
        raise_error=False,
    )
    return reply.code, json.loads(reply.body or b"{}")


def _body(**extra: Any) -> dict[str, Any]:
    return {"user": "dave", "project": PROJECT, "bytes": 1 << 20, "reason": "figures", **extra}


def _grants(registry: Registry) -> list[Any]:
    return [e for e in Governance(registry).journal_entries() if e.action == "egress.grant"]


async def test_refused_grants_change_nothing(
    registry: Registry, tokens: dict[str, str], gateway: tuple[Gateway, str]
) -> None:
    gw, url = gateway
    People(registry).set_disabled("otto", True, actor="opal", reason="left")
    refused = [
        (_body(by="olga"), 400, "names no decider"),  # a typed name, even a true one
        (_body(), 403, "needs the deciding person's credential"),
        (_body(cli_token="forged"), 403, "unknown or expired"),
        (_body(cli_token=tokens["dave"]), 403, "holds none of the roles officer or operator"),
        (_body(cli_token=tokens["pat"]), 403, "holds none of the roles"),
        (_body(cli_token=tokens["otto"]), 403, "disabled"),  # out of standing: stale
        (_body(cli_token=tokens["olga"], hub_token="x"), 403, "cli_token or hub_token"),
        (_body(cli_token=tokens["olga"], reason=""), 400, "reason"),
        ({**_body(cli_token=tokens["olga"]), "user": "olga"}, 403, "to themselves"),
    ]
    for body, status, message in refused:
        code, answer = await _grant(url, body)
        assert (code, message in answer.get("message", "")) == (status, True), (body, answer)
    await gw.ledger.flush()
    assert _grants(registry) == []
    assert gw.budgets.status("dave", PROJECT)["granted_today"] == 0
    assert gw.budgets.status("olga", PROJECT)["granted_today"] == 0


async def test_a_grant_is_journaled_as_the_person_behind_the_credential(
    registry: Registry, tokens: dict[str, str], gateway: tuple[Gateway, str]
) -> None:
    gw, url = gateway
    for who in ("olga", "opal"):  # an officer, and an operator
        code, answer = await _grant(url, _body(cli_token=tokens[who]))
        assert code == 200, answer
    assert answer["granted_today"] == 2 << 20
    await gw.ledger.flush()
    grants = _grants(registry)
    assert [(e.actor, e.detail["bytes"], e.detail["reason"]) for e in grants] == [
        ("olga", 1 << 20, "figures"),
        ("opal", 1 << 20, "figures"),
    ]
