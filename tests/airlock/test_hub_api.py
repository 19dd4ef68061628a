"""The airlock as a real JupyterHub service: submit with a workspace token, two officers
review in the pages, an officer releases, the author downloads. Refusals included."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import cleanroom_workspace.airlock as ext
import pytest
import requests
from cleanroom_workspace.errors import Refused

from .hub import PROJECT, Hub

TABLE = b"line,defects\nA,120\nB,95\nC,143\n"


def auth(token: str) -> dict[str, str]:
    """The header a workspace sends its server token in."""
    return {"Authorization": f"token {token}"}


def submit(
    url: str,
    token: str,
    files: dict[str, bytes],
    project: str = PROJECT,
    key: str | None = None,
    why: str = "defect counts by line for the paper",
) -> requests.Response:
    """POST a submission exactly as the workspace extension does."""
    meta = {
        "project": project,
        "justification": why,
        "files": [
            {"field": f"file{i}", "path": path, "description": f"about {path}"}
            for i, path in enumerate(files)
        ],
    }
    parts: list = [("metadata", (None, json.dumps(meta), "application/json"))]
    parts += [(f"file{i}", (Path(p).name, data)) for i, (p, data) in enumerate(files.items())]
    headers = {"Authorization": f"token {token}"}
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(url, files=parts, headers=headers, timeout=60)


def xsrf(page: str) -> str:
    found = re.search(r'name="_xsrf" value="([^"]+)"', page)
    assert found, page[:400]
    return found.group(1)


def officer_approves(hub: Hub, session: requests.Session, rid: str) -> requests.Response:
    base = hub.service_url
    page = session.get(f"{base}requests/{rid}", timeout=30)
    assert page.status_code == 200, page.text
    paths = re.findall(r'file\?path=([^"]+)"', page.text)
    assert paths
    for quoted in paths:
        file_page = session.get(f"{base}requests/{rid}/file?path={quoted}", timeout=30)
        assert file_page.status_code == 200
        path = unquote(quoted)
        r = session.post(
            f"{base}requests/{rid}/vote",
            data={
                "path": path,
                "decision": "approve",
                "comment": "",
                "_xsrf": xsrf(file_page.text),
            },
            timeout=30,
        )
        assert r.status_code == 200, r.text
    page = session.get(f"{base}requests/{rid}", timeout=30)
    return session.post(
        f"{base}requests/{rid}/complete", data={"_xsrf": xsrf(page.text)}, timeout=30
    )


def test_submit_review_release_download(hub: Hub) -> None:
    token = hub.workspace_token("alice", PROJECT)
    r = submit(hub.submit_url, token, {"work/out/table.csv": TABLE}, key="k-1")
    assert r.status_code == 201, r.text
    body = r.json()
    rid = body["id"]
    assert body["state"] == "submitted"
    assert body["files"][0] == {
        "path": "work/out/table.csv",
        "sha256": hashlib.sha256(TABLE).hexdigest(),
        "size": len(TABLE),
        "type": "text/csv",
        # The author's own free text does not come back before an officer read it.
        "description": "(shown after review)",
    }
    assert body["justification"] == "(shown after review)"
    assert "work/out/table.csv" in body["checks"]

    # A retry with the same key, through the public listener this time, is the same request.
    again = submit(
        hub.service_url + "api/v1/requests", token, {"work/out/table.csv": TABLE}, key="k-1"
    )
    assert again.status_code == 200 and again.json()["id"] == rid

    listed = requests.get(
        hub.submit_url,
        params={"project": PROJECT},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    ).json()["requests"]
    # Only this user's requests come back (other tests of the session may have added some).
    assert rid in [x["id"] for x in listed]

    # The author cannot see unreleased bytes, nor download them, nor (yet) their text.
    alice = hub.browser("alice")
    own_page = alice.get(f"{hub.service_url}requests/{rid}").text
    assert "(shown after review)" in own_page
    assert "defect counts by line" not in own_page and "about work/out/table.csv" not in own_page
    assert (
        alice.get(f"{hub.service_url}requests/{rid}/raw?path=work/out/table.csv").status_code == 403
    )
    assert (
        alice.get(f"{hub.service_url}requests/{rid}/download?path=work/out/table.csv").status_code
        == 403
    )

    # A member-officer may not review; two independent officers approve.
    otto = hub.browser("otto")
    assert (
        otto.get(f"{hub.service_url}requests/{rid}/file?path=work/out/table.csv").status_code == 403
    )
    olga, oscar = hub.browser("olga"), hub.browser("oscar")
    queue = olga.get(f"{hub.service_url}queue").text
    assert rid in queue and "alice" in queue
    # Officers read the free text with the text check's verdict beside it.
    officer_page = olga.get(f"{hub.service_url}requests/{rid}").text
    assert "defect counts by line for the paper" in officer_page
    assert "Checks on the free text" in officer_page
    assert "description of work/out/table.csv" in officer_page
    r = officer_approves(hub, olga, rid)
    assert "in_review" in r.text
    r = officer_approves(hub, oscar, rid)
    assert "approved" in r.text

    page = olga.get(f"{hub.service_url}requests/{rid}").text
    r = olga.post(f"{hub.service_url}requests/{rid}/release", data={"_xsrf": xsrf(page)})
    assert r.status_code == 200 and "released" in r.text

    # The author downloads the exact bytes; a non-member cannot.
    got = alice.get(f"{hub.service_url}requests/{rid}/download?path=work/out/table.csv")
    assert got.status_code == 200 and got.content == TABLE
    assert "attachment" in got.headers["Content-Disposition"]
    eve = hub.browser("eve")
    assert eve.get(
        f"{hub.service_url}requests/{rid}/download?path=work/out/table.csv"
    ).status_code in (403, 404)

    # The state reached the workspace's listing too; and the audit chain verifies.
    listed = requests.get(
        hub.submit_url,
        params={"project": PROJECT},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    ).json()["requests"]
    assert {x["id"]: x["state"] for x in listed}[rid] == "released"
    # Reviewed now: its author reads the text as the officers approved it.
    mine = next(x for x in listed if x["id"] == rid)
    assert mine["justification"] == "defect counts by line for the paper"
    assert mine["files"][0]["description"] == "about work/out/table.csv"
    verified = subprocess.run(
        [sys.executable, "-m", "cleanroom.airlock.cli", "audit", "verify"],
        env={**hub.airlock_env, "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    export = subprocess.run(
        [sys.executable, "-m", "cleanroom.airlock.cli", "export"],
        env={**hub.airlock_env, "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    actions = [json.loads(line)["action"] for line in export.stdout.splitlines()]
    assert {"submit", "open_review", "vote", "decide", "release", "download", "refusal"} <= set(
        actions
    )


@pytest.mark.parametrize(
    ("case", "status", "needle"),
    [
        ("no token", 401, "Authorization"),
        ("bad token", 401, "does not recognise"),
        ("other project", 403, "only the workspace server token"),
        ("user token", 403, "only the workspace server token"),
        ("not a member", 403, "not a member"),
        ("too many files", 413, "files_per_request"),
        ("file too big", 413, "bytes_per_file"),
        ("no metadata", 400, "metadata"),
    ],
)
def test_submission_refusals(hub: Hub, case: str, status: int, needle: str) -> None:
    token = hub.workspace_token("alice", PROJECT)
    files = {"a.csv": TABLE}
    project = PROJECT
    if case == "no token":
        r = requests.post(hub.submit_url, files={"x": ("x", b"x")}, timeout=30)
    elif case == "bad token":
        r = submit(hub.submit_url, "0" * 32, files)
    elif case == "no metadata":
        r = requests.post(
            hub.submit_url,
            files={"file0": ("a.csv", TABLE)},
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
    else:
        if case == "other project":
            token = hub.workspace_token("alice", "furnace")
        elif case == "user token":
            token = hub.token("alice", ["access:servers!user=alice", "custom:cleanroom:researcher"])
        elif case == "not a member":
            token = hub.workspace_token("eve", PROJECT)
        elif case == "too many files":
            files = {f"f{i}.csv": TABLE + bytes([65 + i]) for i in range(4)}
        elif case == "file too big":
            files = {"big.csv": b"a,b\n" + b"1,2\n" * (600 * 1024)}
        r = submit(hub.submit_url, token, files, project=project)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    if status == 413:
        assert r.json()["limit"] == needle  # the client can tell which limit refused it


def test_a_body_far_over_the_limit_gets_a_json_answer_and_changes_nothing(hub: Hub) -> None:
    """The test policy takes 4 MiB a request: 25 MiB is refused before the domain sees it."""
    token = hub.workspace_token("alice", PROJECT)
    before = requests.get(
        hub.submit_url, params={"project": PROJECT}, headers=auth(token), timeout=30
    ).json()["requests"]
    r = submit(hub.submit_url, token, {"huge.csv": b"1,2\n" * (25 * 1024**2 // 4)})
    assert r.status_code == 413, r.text
    assert r.json()["limit"] == "bytes_per_request"
    assert "the airlock takes at most" in r.json()["error"]
    after = requests.get(
        hub.submit_url, params={"project": PROJECT}, headers=auth(token), timeout=30
    ).json()["requests"]
    assert after == before
    # The listener still answers on with a normal submission.
    assert submit(hub.submit_url, token, {"small.csv": TABLE}, why="after huge").status_code == 201


def test_submission_listener_serves_only_the_api(hub: Hub) -> None:
    base = hub.submit_url.rsplit("/api/", 1)[0]
    assert requests.get(f"{base}/queue", timeout=10).status_code == 404
    assert requests.get(f"{base}/requests", timeout=10).status_code == 404


def test_refusals_at_the_edge_are_audited(hub: Hub) -> None:
    token = hub.workspace_token("alice", PROJECT)
    r = requests.post(
        hub.submit_url,
        files={"file0": ("a.csv", TABLE)},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 400
    export = subprocess.run(
        [sys.executable, "-m", "cleanroom.airlock.cli", "export"],
        env={**hub.airlock_env, "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    last = json.loads(export.stdout.splitlines()[-1])
    assert (last["action"], last["actor"]) == ("refusal", "alice")
    assert "metadata" in last["detail"]["reason"]


async def test_the_workspace_extension_client_submits(hub: Hub) -> None:
    """The extension's own HTTP client, against the real service: the shapes agree."""
    token = hub.workspace_token("bob", PROJECT)
    client = ext.HttpAirlockClient(hub.submit_url.removesuffix("/api/v1/requests"), token)
    data = b"line,mean\nA,3.5\nB,4.25\n"
    made = await client.submit(
        ext.Submission(
            project=PROJECT,
            justification="means by line, from the extension's client",
            files=(ext.ReleaseFile("work/out/means näive.csv", "means", data),),
        )
    )
    assert made["state"] == "submitted"
    assert made["files"][0]["path"] == "work/out/means näive.csv"
    assert made["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    listed = await client.list_requests(PROJECT)
    assert made["id"] in [r["id"] for r in listed["requests"]]
    refused = ext.HttpAirlockClient(hub.submit_url.removesuffix("/api/v1/requests"), "bad")
    with pytest.raises(Refused, match="does not recognise") as failed:
        await refused.list_requests(PROJECT)
    assert failed.value.status == 401


def test_a_genuine_server_token_submits_for_its_project_only(hub: Hub) -> None:
    """The token the hub gives a named server (scopes from ``server_token_scopes``)."""
    token = hub.server_token("alice", PROJECT)
    whoami = requests.get(
        f"{hub.hub_api}/user", headers={"Authorization": f"token {token}"}, timeout=30
    ).json()
    assert f"access:servers!server=alice/{PROJECT}" in whoami["scopes"]
    assert "custom:cleanroom:researcher" in whoami["scopes"]
    r = submit(hub.submit_url, token, {"work/out/server.csv": TABLE + b"D,7\n"})
    assert r.status_code == 201, r.text
    r = submit(hub.submit_url, token, {"work/out/server.csv": TABLE}, project="furnace")
    assert r.status_code == 403


def test_free_text_beyond_the_policy_is_refused_and_changes_nothing(hub: Hub) -> None:
    token = hub.workspace_token("alice", PROJECT)

    def listed() -> list[str]:
        reply = requests.get(
            hub.submit_url,
            params={"project": PROJECT},
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
        return [x["id"] for x in reply.json()["requests"]]

    before = listed()
    r = submit(hub.submit_url, token, {"work/out/long.csv": TABLE}, why="x" * 2001)
    assert r.status_code == 400
    assert "2,001 characters" in r.text and "limits.text_characters" in r.text
    assert listed() == before
