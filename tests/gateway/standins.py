"""Stand-ins of the gateway's in-process tests (front, relay, upstream client).

A real gateway (policy, budgets, ledger, upstream client) with one route, to a tornado
server on loopback that proves itself as a workspace's server does; only the hub's login
is stood in for, since who may pass is tested through the real hub in
tests/gateway/test_walls.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleanroom import paths
from cleanroom.gateway import proof
from cleanroom.gateway.app import Gateway
from cleanroom.gateway.budget import Budgets
from cleanroom.gateway.deciders import GrantDecider
from cleanroom.gateway.ledger import Ledger
from cleanroom.gateway.policy import EgressPolicy, load_policy
from cleanroom.gateway.routes import Backend, RouteTable
from tornado import web

USER, PROJECT = "dave", "press-quality"
PREFIX = f"/user/{USER}/{PROJECT}"
SECRET = "s" * 64
TOKEN = "t" * 40
GOOD = "token good-token"


class StandInHub:
    """Stands in for HubOAuth: ``token good-token`` and the cookie ``hub=good`` are dave's;
    counts the requests it was asked about."""

    def __init__(self) -> None:
        self.asked = 0

    async def get_user(self, handler: Any, sync: bool = False) -> dict[str, str] | None:
        self.asked += 1
        if handler.request.headers.get("Authorization") == GOOD:
            handler._token_authenticated = True
            return {"kind": "user", "name": USER}
        if handler.get_cookie("hub") == "good":
            return {"kind": "user", "name": USER}
        return None

    def check_scopes(self, wanted: set[str], user: Any) -> set[str]:
        return wanted

    def get_login_url(self) -> str:
        return "/hub/login"


def prove(handler: web.RequestHandler) -> None:
    """Answer as the real server of the route's start does: the proof of its secret."""
    nonce = handler.request.headers.get(proof.NONCE_HEADER, "")
    handler.set_header(proof.PROOF_HEADER, proof.expected_proof(SECRET, nonce))


def bare_gateway(
    tmp_path: Path, hub_auth: Any = None, policy: EgressPolicy | None = None
) -> Gateway:
    """A gateway with no route yet (the repository's policy unless ``policy``)."""
    policy = policy or load_policy(paths.policies_dir())
    return Gateway(
        policy,
        RouteTable(None),
        Budgets(policy.budget),
        Ledger(),
        hub_auth=hub_auth,
        api_token="unused",
        decider=GrantDecider(f"sqlite:///{tmp_path / 'unused.db'}"),
    )


def gateway_to(
    upstream_port: int, tmp_path: Path, hub_auth: Any, policy: EgressPolicy | None = None
) -> Gateway:
    """A gateway (the repository's policy unless ``policy``) whose one route is dave's
    workspace at ``upstream_port``."""
    gw = bare_gateway(tmp_path, hub_auth, policy)
    gw.routes.put(Backend(USER, PROJECT, f"http://127.0.0.1:{upstream_port}", TOKEN, SECRET))
    return gw
