"""The second wall and the one way out, through a real workspace container.

Through the hub's proxy: the workspace refuses the ordinary routes out (downloads, raw
views, exports, data reads); a file in ~/work goes out only as a release request,
submitted by the extension with the server's own token to the airlock's submission
listener (across the firewall), reviewed by two officers, released, and downloaded by
the author from the airlock's pages, outside the workspace.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import requests

from tests.integration.deployment import DATASET, PROJECT
from tests.integration.harness import Hub

pytestmark = pytest.mark.docker

TABLE = "line,defects\nA,120\nB,95\nC,143\n"


@pytest.fixture(scope="module")
def workspace(hub: Hub) -> Hub:
    """Alice's running workspace, holding one table in ~/work."""
    hub.ensure_running("alice", PROJECT)
    put = requests.put(
        f"{hub.public_url}/user/alice/{PROJECT}/api/contents/work/counts.csv",
        json={"type": "file", "format": "text", "content": TABLE},
        headers={"Authorization": f"token {hub.token('alice')}"},
        timeout=60,
    )
    assert put.status_code in (200, 201), put.text
    return hub


@pytest.mark.parametrize(
    "path",
    [
        "files/work/counts.csv",
        "files/work/counts.csv?download=1",
        "view/work/counts.csv",
        "nbconvert/html/work/counts.csv",
        f"api/contents/data/{DATASET}/press_line.csv",
        f"files/data/{DATASET}/press_line.csv",
    ],
)
def test_routes_out_are_refused(workspace: Hub, path: str) -> None:
    reply = workspace.server_get("alice", PROJECT, path)
    assert reply.status_code == 403, (path, reply.status_code, reply.text[:300])
    assert "release" in reply.text.lower()
    assert "A,120" not in reply.text


def test_editing_work_files_still_works(workspace: Hub) -> None:
    reply = workspace.server_get("alice", PROJECT, "api/contents/work/counts.csv")
    assert reply.status_code == 200
    assert reply.json()["content"] == TABLE


def test_no_port_proxy_in_the_workspace(workspace: Hub) -> None:
    reply = workspace.server_get("alice", PROJECT, "proxy/8888/")
    assert reply.status_code in (403, 404)


def _xsrf(page: str) -> str:
    found = re.search(r'name="_xsrf" value="([^"]+)"', page)
    assert found, page[:400]
    return found.group(1)


def _approve(hub: Hub, officer: str, rid: str, path: str) -> None:
    session = hub.airlock_session(officer)
    base = hub.airlock_url
    # Opening the request is what moves it into review.
    assert session.get(f"{base}requests/{rid}", timeout=30).status_code == 200
    page = session.get(f"{base}requests/{rid}/file?path={quote(path)}", timeout=30)
    assert page.status_code == 200, page.text[:300]
    vote = session.post(
        f"{base}requests/{rid}/vote",
        timeout=30,
        data={"path": path, "decision": "approve", "comment": "", "_xsrf": _xsrf(page.text)},
    )
    assert vote.status_code == 200, vote.text[:300]
    page = session.get(f"{base}requests/{rid}", timeout=30)
    done = session.post(
        f"{base}requests/{rid}/complete", data={"_xsrf": _xsrf(page.text)}, timeout=30
    )
    assert done.status_code == 200, done.text[:300]


def test_release_from_workspace_to_download(workspace: Hub) -> None:
    hub = workspace
    server = f"{hub.public_url}/user/alice/{PROJECT}/cleanroom/api/releases"
    headers = {"Authorization": f"token {hub.token('alice')}"}
    body = {
        "paths": ["work/counts.csv"],
        "justification": "defect counts for the report",
        "descriptions": {"work/counts.csv": "defects per line, all cells >= 95"},
    }
    submitted = requests.post(server, json=body, headers=headers, timeout=120)
    assert submitted.status_code == 201, submitted.text
    rid = submitted.json()["id"]
    listed = requests.get(server, headers=headers, timeout=60).json()
    assert rid in {r["id"] for r in listed["requests"]}

    # Nothing is downloadable before the officers decide.
    alice = hub.airlock_session("alice")
    early = alice.get(f"{hub.airlock_url}requests/{rid}/download?path=work/counts.csv", timeout=30)
    assert early.status_code in (403, 404)

    _approve(hub, "olga", rid, "work/counts.csv")
    _approve(hub, "otto", rid, "work/counts.csv")
    olga = hub.airlock_session("olga")
    page = olga.get(f"{hub.airlock_url}requests/{rid}", timeout=30)
    released = olga.post(
        f"{hub.airlock_url}requests/{rid}/release", data={"_xsrf": _xsrf(page.text)}, timeout=30
    )
    assert released.status_code == 200, released.text[:300]

    got = alice.get(f"{hub.airlock_url}requests/{rid}/download?path=work/counts.csv", timeout=30)
    assert got.status_code == 200
    assert got.content == TABLE.encode()
    carol = hub.airlock_session("carol")  # not a member of the project
    refused = carol.get(
        f"{hub.airlock_url}requests/{rid}/download?path=work/counts.csv", timeout=30
    )
    assert refused.status_code in (403, 404)


_TRACE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def is_server(pid):
    # tini (PID 1) carries the server's command line too; the server is its child.
    comm = open(f"/proc/{pid}/comm").read().strip()
    cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    return comm != "tini" and b"cleanroom-workspace-server" in cmd
server = next(int(p) for p in os.listdir("/proc")
              if p.isdigit() and int(p) not in (1, os.getpid()) and is_server(p))
attached = libc.ptrace(16, server, 0, 0)  # PTRACE_ATTACH
errno = ctypes.get_errno()
try:
    open(f"/proc/{server}/mem", "rb").close()
    mem = "open"
except OSError as exc:
    mem = type(exc).__name__
print(attached, errno, mem)
"""


def test_kernel_code_cannot_trace_the_server(workspace: Hub) -> None:
    container = workspace.container("alice", PROJECT)
    result = container.exec_run(["python3", "-c", _TRACE], user="1000")
    assert result.exit_code == 0, result.output
    attached, errno, mem = result.output.decode().split()
    assert attached == "-1" and errno == "1"  # EPERM
    assert mem == "PermissionError"
