"""Through the real proxy and gateway: the owner gets in, nobody else does."""

from __future__ import annotations

import pytest
import requests

from tests.integration.deployment import PROJECT
from tests.integration.harness import Hub

pytestmark = pytest.mark.docker


def test_owner_reaches_the_workspace_through_the_gateway(hub: Hub) -> None:
    hub.ensure_running("alice", PROJECT)
    reply = hub.server_get("alice", PROJECT, "api/status")
    assert reply.status_code == 200, reply.text
    assert "X-Cleanroom-Proof" not in reply.headers


def test_unauthenticated_requests_are_refused_at_the_gateway(hub: Hub) -> None:
    hub.ensure_running("alice", PROJECT)
    reply = requests.get(f"{hub.public_url}/user/alice/{PROJECT}/api/contents", timeout=30)
    assert reply.status_code == 403
    assert reply.json()["reason"] == "Blocked by the clean room"
