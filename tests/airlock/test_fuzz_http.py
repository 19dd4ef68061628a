"""Malformed input never gets a 5xx from the airlock: a seeded fuzz of its HTTP edge.

About a thousand mutated submissions and listings go to the submission API, and about
a thousand mutated page requests and forms to the pages, all through the real hub and
its proxy. Every answer must be below 500; every refusal of the API must be a JSON
object with an ``error`` message; afterwards the service still takes a valid submission
and serves its pages.
"""

from __future__ import annotations

import json
import random
import re
import secrets
from urllib.parse import quote, urlsplit

import pytest
import requests

from tests.fuzzing import (
    NASTY_BYTES,
    NASTY_TEXT,
    SEED,
    Answer,
    Client,
    nasty_json_value,
    nasty_query_value,
    query,
    server_errors,
    to_json,
)

from .hub import PROJECT, Hub
from .test_hub_api import TABLE, submit, xsrf

ROUNDS = 1000


def valid_metadata() -> dict:
    return {
        "project": PROJECT,
        "justification": "fuzzing",
        "files": [{"field": "file0", "path": "out/table.csv", "description": "counts"}],
    }


def mutate_metadata(rng: random.Random) -> object:
    """Valid metadata with one to three pieces replaced by nasty values."""
    meta: dict = valid_metadata()
    for _ in range(rng.randrange(1, 4)):
        where = rng.randrange(7)
        if where == 0:
            meta[rng.choice(["project", "justification", "files"])] = nasty_json_value(rng)
        elif where == 1:
            meta.pop(rng.choice(["project", "justification", "files"]), None)
        elif where == 2 and isinstance(meta.get("files"), list) and meta["files"]:
            entry = meta["files"][0]
            if isinstance(entry, dict):
                entry[rng.choice(["field", "path", "description"])] = nasty_json_value(rng)
        elif where == 3:
            meta["files"] = [nasty_json_value(rng) for _ in range(rng.randrange(0, 5))]
        elif where == 4:
            meta["files"] = [dict(valid_metadata()["files"][0]) for _ in range(rng.randrange(50))]
        elif where == 5:
            return nasty_json_value(rng)
        else:
            meta[rng.choice(NASTY_TEXT)] = nasty_json_value(rng)
    return meta


def multipart(parts: list[tuple[bytes, bytes]], boundary: bytes) -> bytes:
    """A multipart body of (headers, content) parts."""
    out = b""
    for headers, content in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def submission(rng: random.Random) -> tuple[dict[str, str], bytes, str]:
    """Headers, body and a note for one mutated submission."""
    boundary = secrets.token_hex(8).encode()
    meta_bytes = (
        to_json(mutate_metadata(rng), rng) if rng.random() < 0.8 else rng.choice(NASTY_BYTES)
    )
    meta_headers = b'Content-Disposition: form-data; name="metadata"'
    file_headers = b'Content-Disposition: form-data; name="file0"; filename="table.csv"'
    if rng.random() < 0.1:
        file_headers = rng.choice(
            [
                b"Content-Disposition: form-data",
                b"Content-Type: text/csv",
                b'Content-Disposition: form-data; name="file0"; filename="\xff\x00"',
                b"Content-Disposition: form-data; name=\"file0\"; filename*=utf-8''%ff%00",
                b"X" * 70_000,
            ]
        )
    body = multipart(
        [(meta_headers, meta_bytes), (file_headers, TABLE if rng.random() < 0.8 else b"")],
        boundary,
    )
    content_type = f"multipart/form-data; boundary={boundary.decode()}"
    note = "metadata " + meta_bytes[:200].decode("utf-8", "replace")
    framing = rng.randrange(10)
    if framing == 0:
        content_type = "multipart/form-data"  # no boundary
        note += "; no boundary"
    elif framing == 1:
        body = body[: body.rindex(b"--" + boundary + b"--")]  # no final boundary
        note += "; no final boundary"
    elif framing == 2:
        body = body[: rng.randrange(len(body))]
        note += "; truncated"
    elif framing == 3:
        content_type = rng.choice(
            [
                "",
                "application/json",
                "text/plain",
                "multipart/form-data; boundary=",
                'multipart/form-data; boundary="unclosed',
                "multipart/mixed; boundary=x",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=" + "b" * 5000,
            ]
        )
        note += f"; content type {content_type[:60]!r}"
    elif framing == 4:
        body = rng.choice(NASTY_BYTES) + body[rng.randrange(len(body)) :]
        note += "; garbled start"
    headers = {"Content-Type": content_type}
    if rng.random() < 0.1:
        headers["Idempotency-Key"] = rng.choice([*NASTY_TEXT, "k" * 10_000])
        note += "; idempotency key"
    return headers, body, note


def api_round(rng: random.Random, api: Client, token: str) -> Answer:
    """One fuzzed call of the submission API."""
    auth = {"Authorization": f"token {token}"}
    if rng.random() < 0.05:
        auth = rng.choice(
            [
                {},
                {"Authorization": "token"},
                {"Authorization": "token \t"},
                {"Authorization": "bearer " + "x" * 9000},
                {"Authorization": "token nope"},
            ]
        )
    kind = rng.randrange(10)
    if kind < 7:
        headers, body, note = submission(rng)
        path = "/api/v1/requests"
        if rng.random() < 0.15:
            path += f"/{secrets.token_hex(8)}/resubmit"
        return api.send("POST", path, body, {**auth, **headers}, note)
    if kind < 9:
        q = query(rng, ["project"]) or f"?project={nasty_query_value(rng)}"
        return api.send("GET", "/api/v1/requests" + q, None, auth, "list")
    # Methods and paths nobody serves.
    method = rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "GET"])
    path = rng.choice(
        [
            "/api/v1/requests/" + nasty_query_value(rng),
            "/api/v1/requests/%ff/resubmit",
            "/api/v1/%00",
            "/health" + query(rng, ["x"]),
        ]
    )
    return api.send(method, path, b"{}" if method != "GET" else None, auth, "other route")


def test_the_submission_api_never_answers_5xx(hub: Hub) -> None:
    rng = random.Random(SEED)
    token = hub.workspace_token("alice", PROJECT)
    api = Client(urlsplit(hub.submit_url)._replace(path="").geturl())
    answers = [api_round(rng, api, token) for _ in range(ROUNDS)]
    api.close()
    assert not server_errors(answers), "\n".join(server_errors(answers)[:20])
    not_json = [a.describe() for a in answers if a.status >= 400 and not _json_error(a)]
    assert not not_json, "refusals without a JSON error:\n" + "\n".join(not_json[:20])
    # The fuzz reached the domain, not only the parser: some inputs got through.
    statuses = {a.status for a in answers}
    assert {400, 401, 404}.issubset(statuses) and statuses & {200, 201}, statuses
    # And the service still takes a valid submission from another member.
    ok = submit(hub.submit_url, hub.workspace_token("bob", PROJECT), {"out/after.csv": TABLE})
    assert ok.status_code == 201, ok.text


def _json_error(answer: Answer) -> bool:
    try:
        body = json.loads(answer.body)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str) and bool(body["error"])


# -- the pages ---------------------------------------------------------------------------


def page_round(rng: random.Random, pages: Client, prefix: str, rid: str, token: str) -> Answer:
    """One fuzzed page view or form."""
    some_id = rng.choice([rid, secrets.token_hex(8), "0" * 16])
    kind = rng.randrange(10)
    if kind < 6:
        route = rng.choice(
            [
                "",
                "queue",
                "requests",
                f"requests/{some_id}",
                f"requests/{some_id}/file",
                f"requests/{some_id}/notebook",
                f"requests/{some_id}/raw",
                f"requests/{some_id}/download",
                "audit",
                "audit/export",
                "metrics",
                "requests/" + nasty_query_value(rng),
                nasty_query_value(rng),
            ]
        )
        q = query(rng, ["state", "page", "project", "author", "path", "sort", "desc", "notice"])
        takes_path = any(w in route for w in ("file", "raw", "notebook", "download"))
        if takes_path and rng.random() < 0.7:
            q += (
                ("&" if q else "?")
                + "path="
                + rng.choice(["out%2Ftable.csv", nasty_query_value(rng)])
            )
        return pages.send("GET", prefix + route + q, None, None, "page")
    action = rng.choice(["vote", "complete", "release", "withdraw", "resubmit", "comment"])
    fields = {"_xsrf": token} if rng.random() < 0.9 else {}
    for _ in range(rng.randrange(0, 5)):
        name = rng.choice(["path", "decision", "comment", "text", "file", "justification"])
        fields[name] = rng.choice([*NASTY_TEXT[:-10], "approve", "reject", "changes"])
    body = "&".join(
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in fields.items()
    ).encode()
    if rng.random() < 0.05:
        body = rng.choice([b"%ff=%fe", b"path=%zz", b"\xff\xfe", b"a=" + b"%00" * 100])
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if rng.random() < 0.1:
        headers["Origin"] = rng.choice(["null", "http://evil.example", "%ff", "http://[::1"])
    return pages.send("POST", f"{prefix}requests/{some_id}/{action}", body, headers, "form")


def test_the_pages_never_answer_5xx(hub: Hub) -> None:
    rng = random.Random(SEED + 1)
    rid = _request(hub)
    prefix = urlsplit(hub.service_url).path
    failures: list[str] = []
    for user in ("olga", "alice"):
        session = hub.browser(user)
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        # Straight to the airlock: the proxy (not ours) answers some malformed URLs
        # with its own 500 before they reach the airlock.
        pages = Client(hub.airlock_url, headers={"Cookie": cookie, "Origin": hub.url})

        # The request's page carries a form (review for olga, withdraw for alice).
        token = xsrf(session.get(f"{hub.service_url}requests/{rid}", timeout=30).text)
        answers = [page_round(rng, pages, prefix, rid, token) for _ in range(ROUNDS // 2)]
        pages.close()
        failures += server_errors(answers)
        statuses = {a.status for a in answers}
        assert {200, 400, 403, 404}.issubset(statuses), (user, statuses)
        # The pages still serve this user normally afterwards.
        assert session.get(f"{hub.service_url}requests", timeout=30).status_code == 200
    assert not failures, "\n".join(failures[:20])
    assert re.search(r"cleanroom airlock", hub.browser("oscar").get(hub.service_url).text)


def _request(hub: Hub) -> str:
    r = submit(hub.submit_url, hub.workspace_token("alice", PROJECT), {"out/table.csv": TABLE})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.parametrize(
    ("content_type", "body", "says"),
    [
        ("multipart/form-data", b"--x\r\n\r\nabc\r\n--x--\r\n", "boundary"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{}\r\n',
            "final boundary",
        ),
        ("application/json", b'{"project": "press-line"}', "multipart/form-data"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
            + b"[" * 100_000
            + b"\r\n--x--\r\n",
            "nested too deeply",
        ),
    ],
)
def test_malformed_submissions_are_named(
    hub: Hub, content_type: str, body: bytes, says: str
) -> None:
    """Each kind the fuzz found, with its 400 and the JSON message that says why."""
    r = requests.post(
        hub.submit_url,
        data=body,
        headers={
            "Authorization": f"token {hub.workspace_token('alice', PROJECT)}",
            "Content-Type": content_type,
        },
        timeout=30,
    )
    assert r.status_code == 400 and says in r.json()["error"], r.text
