"""The gateway's rules as pure functions: policy, budget, proof, content, messages."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cleanroom.errors import InvalidInput
from cleanroom.gateway import proof
from cleanroom.gateway.budget import Budgets
from cleanroom.gateway.content import image_problem, sanitize_bundle, sanitize_notebook
from cleanroom.gateway.messages import KernelRules, TokenBucket
from cleanroom.gateway.policy import load_policy, parse_policy
from cleanroom.paths import repo_root

POLICY = yaml.safe_load((repo_root() / "policies" / "egress.yaml").read_text())


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    raw = zlib.compress(b"\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


# -- policy ------------------------------------------------------------------------------
def test_the_shipped_policy_loads() -> None:
    policy = load_policy()
    assert policy.budget.bytes_per_hour <= policy.budget.bytes_per_day
    assert policy.route_for("GET", "api/contents/work/a.ipynb") is not None
    assert policy.route_for("GET", "lab/tree/work") is not None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "files/work/a.csv"),
        ("GET", "lab/api/build"),
        ("POST", "lab/api/extensions"),
        ("GET", "nbconvert/html/a.ipynb"),
        ("GET", "proxy/8888/"),
        ("GET", "api/spec.yaml"),
        ("POST", "lab/api/plugins"),
        ("GET", "view/a.html"),
    ],
)
def test_unknown_routes_are_refused(method: str, path: str) -> None:
    assert load_policy().route_for(method, path) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budget": {**POLICY["budget"], "bytes_per_hour": -1}}, "budget.bytes_per_hour"),
        ({"budget": {**POLICY["budget"], "bytes_per_day": 1}}, "must not exceed"),
        ({"budget": {**POLICY["budget"], "alert_at_fraction": 2}}, "alert_at_fraction"),
        ({"routes": [{"methods": ["GET"], "path": "("}]}, "not a regular expression"),
        ({"routes": [{"methods": ["FETCH"], "path": "api"}]}, "methods"),
        ({"routes": [{"methods": ["GET"], "path": "/api"}]}, "without leading"),
        ({"routes": []}, "non-empty"),
        ({"surprise": 1}, "unknown keys"),
        ({"websocket": {**POLICY["websocket"], "rate_burst_bytes": 10}}, "rate_burst_bytes"),
    ],
)
def test_bad_policies_are_refused_clearly(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_policy({**POLICY, **change})


def test_a_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="egress policy is missing"):
        load_policy(tmp_path)


# -- budget ----------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # a fixed instant: 2027-01-15T08:00:00Z

    def __call__(self) -> float:
        return self.now


def _budgets(clock: Clock) -> Budgets:
    policy = parse_policy(
        {**POLICY, "budget": {**POLICY["budget"], "bytes_per_hour": 1000, "bytes_per_day": 2500}}
    )
    return Budgets(policy.budget, clock)


def test_budget_refuses_what_does_not_fit_and_counts_nothing_of_it() -> None:
    clock = Clock()
    b = _budgets(clock)
    assert b.spend("ada", "p", 900, "contents")
    assert not b.spend("ada", "p", 200, "contents")
    s = b.status("ada", "p")
    assert s["hour_bytes"] == 900 and s["by_kind"] == {"contents": 900}
    message = b.exhausted_message("ada", "p")
    assert "refills at" in message and "officer" in message


def test_budget_refills_each_hour_until_the_day_is_spent() -> None:
    clock = Clock()
    b = _budgets(clock)
    for _ in range(2):
        assert b.spend("ada", "p", 1000, "kernel")
        clock.now += 3600
    assert b.spend("ada", "p", 500, "kernel")
    assert not b.spend("ada", "p", 1, "kernel")  # the day's 2500 are spent
    assert "midnight UTC" in b.exhausted_message("ada", "p")
    closed = b.take_closed()
    assert [t.bytes for t in closed] == [1000, 1000]
    clock.now += 86400
    assert b.spend("ada", "p", 1000, "kernel")


def test_grants_raise_the_allowance_and_alerts_fire_once() -> None:
    clock = Clock()
    b = _budgets(clock)
    assert b.spend("ada", "p", 1000, "contents")
    assert not b.spend("ada", "p", 100, "contents")
    b.grant("ada", "p", 500)
    assert b.spend("ada", "p", 400, "contents")
    clock.now += 3600
    assert b.spend("ada", "p", 1000, "contents")
    assert len(b.take_alerts()) == 1  # 75 % of the day passed once
    assert b.take_alerts() == []


def test_budget_survives_a_restart() -> None:
    clock = Clock()
    b = _budgets(clock)
    b.spend("ada", "p", 700, "contents")
    again = _budgets(clock)
    again.load_json(json.loads(json.dumps(b.to_json())))
    assert again.remaining("ada", "p") == 300


# -- proof -----------------------------------------------------------------------------
def test_gateway_and_extension_agree_on_the_proof() -> None:
    from cleanroom_workspace.proof import proof_of

    secret, nonce = proof.new_secret(), proof.new_nonce()
    assert proof.is_valid(secret, nonce, proof_of(secret.encode(), nonce))
    assert not proof.is_valid(secret, nonce, proof_of(b"another secret", nonce))
    assert not proof.is_valid(secret, proof.new_nonce(), proof_of(secret.encode(), nonce))
    assert not proof.is_valid(secret, nonce, None)


def test_the_extension_takes_the_secret_out_of_the_environment() -> None:
    from cleanroom_workspace.proof import SECRET_ENV, take_secret

    env = {SECRET_ENV: "s3cret-for-this-start", "OTHER": "x"}
    assert take_secret(env) == b"s3cret-for-this-start"
    assert env == {"OTHER": "x"}  # kernels started later do not inherit it


# -- content -----------------------------------------------------------------------------
BLOCKED = frozenset({"application/javascript"})


def test_code_running_mime_types_and_markup_are_withheld() -> None:
    data = {
        "application/javascript": "fetch('/x')",
        "text/html": "<table><tr><td>1</td></tr></table><img src=x onerror=alert(1)>",
        "image/svg+xml": "<svg><script>alert(1)</script></svg>",
        "text/markdown": "<iframe src='x'></iframe>",
        "text/plain": "ok",
    }
    withheld = sanitize_bundle(data, BLOCKED, 1 << 20)
    assert set(data) == {"text/html", "text/plain"}
    assert "onerror" not in data["text/html"] and "<td>1</td>" in data["text/html"]
    assert len(withheld) == 4


def test_images_must_be_what_they_say() -> None:
    assert image_problem("image/png", _png(), 1 << 20) is None
    fake = b"\x89PNG\r\n\x1a\n" + b"a,b,c\n" * 100
    assert "well-formed" in str(image_problem("image/png", fake, 1 << 20))
    assert "over the cap" in str(image_problem("image/png", _png(), 10))
    data = {"image/png": base64.b64encode(fake).decode()}
    assert sanitize_bundle(data, BLOCKED, 1 << 20)
    assert "image/png" not in data and "withheld" in data["text/plain"]


def test_notebooks_lose_script_outputs_and_trust() -> None:
    model = {
        "type": "notebook",
        "content": {
            "cells": [
                {
                    "cell_type": "code",
                    "metadata": {"trusted": True},
                    "outputs": [{"data": {"application/javascript": "x()"}}],
                },
                {"cell_type": "markdown", "metadata": {}, "source": "<script>x()</script>hi"},
            ]
        },
    }
    assert sanitize_notebook(model, BLOCKED, 1 << 20) == 2
    cells = model["content"]["cells"]  # type: ignore[index]
    assert cells[0]["metadata"]["trusted"] is False
    assert "application/javascript" not in cells[0]["outputs"][0]["data"]
    assert "<script" not in cells[1]["source"]


# -- output rate -----------------------------------------------------------------------
def test_the_output_rate_lets_a_burst_pass_then_makes_the_rest_wait() -> None:
    bucket = TokenBucket(rate=1000.0, burst=500.0)
    assert bucket.try_take(400) == 0.0
    wait = bucket.try_take(400)  # 100 left: 300 more at 1000 bytes a second (less what
    assert 0.2 < wait <= 0.3  # refilled meanwhile)
    assert bucket.level > 0  # a refused take takes nothing


def test_more_than_a_burst_passes_from_a_full_bucket_and_is_owed() -> None:
    bucket = TokenBucket(rate=1000.0, burst=500.0)
    assert bucket.try_take(2000) == 0.0  # never stuck behind a frame bigger than a burst
    assert bucket.level < -1400  # owed: the next frames wait until it is paid back
    assert bucket.try_take(1) > 1.4


async def test_take_waits_as_long_as_try_take_says() -> None:
    bucket = TokenBucket(rate=10_000.0, burst=1000.0)
    assert await bucket.take(1000) == 0.0
    waited = await bucket.take(500)
    assert 0 < waited <= 0.05
    assert await asyncio.wait_for(bucket.take(5000), 5) > 0  # more than a burst: once full


# -- kernel messages ---------------------------------------------------------------------
def test_skeletons_carry_no_kernel_chosen_text() -> None:
    rules = KernelRules(load_policy().websocket, 1 << 20)
    rules.note_sent(json.dumps({"header": {"msg_id": "browser-1"}}))
    leak = "DATA" * 1000
    status = {
        "header": {"msg_id": leak, "msg_type": "status", "session": leak},
        "parent_header": {"msg_id": leak},
        "content": {"execution_state": "idle", "extra": leak},
        "channel": "iopub",
    }
    skeleton = rules.skeleton(status)
    assert skeleton is not None and "DATADATA" not in json.dumps(skeleton)
    reply = {
        "header": {"msg_id": "k", "msg_type": "execute_reply"},
        "parent_header": {"msg_id": "browser-1"},
        "content": {"status": "ok", "execution_count": 3, "user_expressions": {"x": leak}},
        "channel": "shell",
    }
    skeleton = rules.skeleton(reply)
    assert skeleton is not None
    assert skeleton["parent_header"]["msg_id"] == "browser-1"
    assert skeleton["content"] == {
        "status": "ok",
        "execution_count": 3,
        "user_expressions": {},
        "payload": [],
    }
    stream = {"header": {"msg_type": "stream"}, "content": {"text": leak}}
    assert rules.skeleton(stream) is None
