"""Malformed input never gets a 5xx from the workspace: a seeded fuzz of the release API
and of the contents paths the guard sees, on the real in-process Jupyter server.

Refusals stay refusals: no request of the fuzz may read a data file's bytes or write
into a data folder, and the workspace still serves and releases normally afterwards.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.fuzzing import NASTY_BYTES, NASTY_TEXT, SEED, nasty_json_value, query

from .conftest import Settings, Workspace

ROUNDS = 1000

Raw = Callable[..., Any]


@pytest.fixture
def settings(airlock: Any) -> Settings:
    """Point the extension at the fake airlock."""
    return Settings(airlock_url=airlock.url)


@pytest.fixture
def raw(
    jp_fetch: Any, jp_http_port: int, jp_auth_header: dict, jp_base_url: str, jp_asyncio_loop: Any
) -> Raw:
    """``raw(method, path_and_query, body=None)``: the path is sent as it is (no quoting,
    unlike ``jp_fetch``), to the server ``jp_fetch`` starts."""
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url.rstrip('/')}"

    def do(method: str, path: str, body: bytes | None = None) -> Any:
        return jp_asyncio_loop.run_until_complete(
            AsyncHTTPClient().fetch(
                base + path,
                method=method,
                body=body,
                headers={**jp_auth_header, "Content-Type": "application/json"},
                raise_error=False,
                allow_nonstandard_methods=True,
                request_timeout=20,
            )
        )

    return do


def nasty_path(rng: random.Random) -> str:
    """A contents path, percent-encoded (sometimes wrongly)."""
    if rng.random() < 0.15:
        return rng.choice(["%zz", "%", "%ff%fe", "work/%00", "work%2F..%2F..%2Fetc", "%ed%a0%80"])
    text = rng.choice(NASTY_TEXT)
    if rng.random() < 0.5:
        text = rng.choice(["work/", "data/press/", "project/", ""]) + text
    # Cut at 6000 characters: longer request lines are refused by any proxy (414), and
    # tornado closes the connection past 64 KiB; 6000 is still over PATH_MAX.
    return quote(text.encode("utf-8", "surrogatepass"), safe="/")[:6000]


def release_body(rng: random.Random) -> bytes:
    """A mutated release request."""
    if rng.random() < 0.1:
        return rng.choice(NASTY_BYTES)
    body: dict[str, Any] = {
        "paths": ["work/notes.txt"],
        "justification": "fuzzing",
        "descriptions": {"work/notes.txt": "notes"},
    }
    for _ in range(rng.randrange(1, 4)):
        where = rng.randrange(5)
        if where == 0:
            body[rng.choice(["paths", "justification", "descriptions"])] = nasty_json_value(rng)
        elif where == 1:
            path = rng.choice(NASTY_TEXT)
            body["paths"] = [path]
            body["descriptions"] = {path: rng.choice(["x", *NASTY_TEXT])}
        elif where == 2:
            body["paths"] = [rng.choice(NASTY_TEXT) for _ in range(rng.randrange(0, 30))]
        elif where == 3:
            body.pop(rng.choice(["paths", "justification", "descriptions"]), None)
        else:
            return json.dumps(nasty_json_value(rng)).encode("utf-8", "surrogatepass")
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


def contents_model(rng: random.Random) -> bytes:
    """A mutated contents-API model for PUT, POST or PATCH."""
    if rng.random() < 0.1:
        return rng.choice(NASTY_BYTES)
    model: dict[str, Any] = {"type": "file", "format": "text", "content": "hello"}
    for _ in range(rng.randrange(1, 4)):
        key = rng.choice(["type", "format", "content", "chunk", "path", "copy_from", "name"])
        model[key] = nasty_json_value(rng) if rng.random() < 0.7 else rng.choice(NASTY_TEXT)
    return json.dumps(model, allow_nan=True).encode("utf-8", "surrogatepass")


def fuzz_round(rng: random.Random, raw: Raw) -> tuple[str, str, int, bytes]:
    kind = rng.randrange(10)
    if kind < 3:
        method, path = "POST", "/cleanroom/api/releases"
        body: bytes | None = release_body(rng)
    elif kind < 4:
        method, path, body = "GET", "/cleanroom/api/releases" + query(rng, ["x"]), None
    elif kind < 7:
        method, body = "GET", None
        path = (
            "/api/contents/" + nasty_path(rng) + query(rng, ["content", "format", "type", "hash"])
        )
    else:
        method = rng.choice(["PUT", "POST", "PATCH", "DELETE"])
        path = "/api/contents/" + nasty_path(rng)
        body = contents_model(rng) if method != "DELETE" else None
    reply = raw(method, path, body)
    return method, path, reply.code, reply.body or b""


def test_no_malformed_request_gets_a_5xx(raw: Raw, workspace: Workspace, airlock: Any) -> None:
    rng = random.Random(SEED + 2)
    data_before = {p: p.read_bytes() for p in workspace.data.rglob("*") if p.is_file()}
    answers = [fuzz_round(rng, raw) for _ in range(ROUNDS)]
    errors = [
        f"{m} {p[:200]!r} -> {code}: {body[:300]!r}" for m, p, code, body in answers if code >= 500
    ]
    assert not errors, "\n".join(errors[:20])
    statuses = {code for _, _, code, _ in answers}
    assert {200, 400, 403, 404}.issubset(statuses), statuses
    # A data file's bytes never reached the browser, nor was a data file changed.
    secret = (workspace.data / "press" / "cycles.csv").read_bytes()
    leaked = [p for m, p, code, body in answers if code < 300 and secret in body]
    assert not leaked, leaked[:5]
    assert {p: p.read_bytes() for p in workspace.data.rglob("*") if p.is_file()} == data_before
    # The workspace still reads files and releases them afterwards (the fuzz may have
    # deleted or renamed the fixture's files: it is allowed to, in the work folder).
    (workspace.work / "after.csv").write_text("group,mean\na,1\n")
    assert raw("GET", "/api/contents/work/after.csv").code == 200
    done = raw(
        "POST",
        "/cleanroom/api/releases",
        json.dumps(
            {
                "paths": ["work/after.csv"],
                "justification": "after the fuzz",
                "descriptions": {"work/after.csv": "means"},
            }
        ).encode(),
    )
    assert done.code == 201, done.body


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/cleanroom/api/releases", {"paths": ["work/a\x00b"]}, 400, "NUL byte"),
        ("POST", "/cleanroom/api/releases", {"paths": ["work/" + "x" * 300]}, 400, "255"),
        ("POST", "/cleanroom/api/releases", {"paths": ["work/" + "y/" * 2100]}, 400, "4096"),
        ("POST", "/cleanroom/api/releases", b"\xff\xfe", 400, "not UTF-8"),
        ("POST", "/cleanroom/api/releases", b"[" * 100_000, 400, "JSON object"),
        ("GET", "/api/contents/work/%00", None, 400, "NUL byte"),
        ("GET", "/api/contents/work/" + "z" * 300, None, 400, "255"),
        # Tornado itself refuses a path that is not UTF-8 (400), before any handler.
        ("GET", "/api/contents/work/%ed%a0%80", None, 400, "Invalid unicode"),
        (
            "PUT",
            "/api/contents/work/no/such/x.txt",
            {"type": "file", "format": "text", "content": "x"},
            404,
            "no such folder",
        ),
        ("PUT", "/api/contents/work/x.txt", {"type": {}, "content": "x"}, 400, "'type'"),
        ("PUT", "/api/contents/work/x.txt", {"type": "file", "content": 5}, 400, "a string"),
        (
            "PUT",
            "/api/contents/work/x.txt",
            {"type": "file", "chunk": 10**400, "content": "x"},
            400,
            "'chunk'",
        ),
        ("PUT", "/api/contents/work/x.txt", b"\xc3\x28", 400, "not UTF-8"),
        ("PATCH", "/api/contents/work/notes.txt", {"path": 5}, 400, "'path'"),
        ("PATCH", "/api/contents/work/notes.txt", {}, 400, "new 'path'"),
        ("POST", "/api/contents/work", {"copy_from": ["data/press/cycles.csv"]}, 400, "string"),
        ("POST", "/api/contents/work/none-such", {"type": "file"}, 404, "no such folder"),
        ("POST", "/api/contents/work/notes.txt", {"type": "file"}, 400, "not a folder"),
    ],
)
def test_malformed_input_is_named(
    raw: Raw, workspace: Workspace, method: str, path: str, body: Any, status: int, says: str
) -> None:
    """Each kind the fuzz found, with the status and the message it gets."""
    if isinstance(body, dict) and path.startswith("/cleanroom"):
        body = {"justification": "j", "descriptions": {p: "d" for p in body["paths"]}, **body}
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    reply = raw(method, path, data)
    assert reply.code == status, reply.body
    assert says in json.loads(reply.body)["message"], reply.body
