"""A member spawns a hardened workspace; everyone else is refused, on the server."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from cleanroom.workspace import spec

from tests.integration.deployment import DATASET, OTHER_PROJECT, PROJECT
from tests.integration.harness import Hub, run_in

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def alice_workspace(hub: Hub) -> Hub:
    """Alice's running workspace on the alpha project."""
    hub.ensure_running("alice", PROJECT)
    return hub


def test_member_reaches_jupyterlab_through_the_proxy(alice_workspace: Hub) -> None:
    lab = alice_workspace.server_get("alice", PROJECT, "lab")
    assert lab.status_code == 200
    assert "JupyterLab" in lab.text or "jupyterlab" in lab.text.lower()
    status = alice_workspace.server_get("alice", PROJECT, "api/status")
    assert status.status_code == 200 and "started" in status.json()


def test_container_is_labelled_and_hardened(alice_workspace: Hub) -> None:
    container = alice_workspace.container("alice", PROJECT)
    labels = container.labels
    assert labels["cleanroom.user"] == "alice"
    assert labels["cleanroom.project"] == PROJECT
    assert labels["cleanroom.image"] == "notebook"
    host = container.attrs["HostConfig"]
    # Root only for the entry point, with the server's five capabilities (see
    # cleanroom.workspace.spec); researcher processes hold none (below).
    assert container.attrs["Config"]["User"] == "0:0"
    assert host["CapDrop"] == ["ALL"]
    assert sorted(c.removeprefix("CAP_") for c in host["CapAdd"]) == sorted(
        spec.SERVER_CAPABILITIES
    )
    assert host["ReadonlyRootfs"] is True
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["PidsLimit"] == 512
    assert host["Memory"] == 2 * 1024**3
    assert host["CpuQuota"] == 100_000 and host["CpuPeriod"] == 100_000
    assert host["AutoRemove"] is True
    assert not host.get("Privileged")
    code, out = run_in(container, "id", "-u")
    assert (code, out.strip()) == (0, "1000")
    code, out = run_in(container, "sh", "-c", "grep CapEff /proc/self/status")
    assert out.split()[-1] == "0000000000000000"
    code, out = run_in(container, "sh", "-c", "grep Seccomp: /proc/self/status")
    assert out.split()[-1] == "2"  # filtered


def test_the_workspace_sets_its_cookies_samesite(alice_workspace: Hub) -> None:
    """The hub hands its cookie options to every workspace (JUPYTERHUB_COOKIE_OPTIONS),
    whose own log-in and XSRF cookies then carry SameSite too."""
    container = alice_workspace.container("alice", PROJECT)
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert json.loads(env["JUPYTERHUB_COOKIE_OPTIONS"]) == {"samesite": "Lax"}


def test_data_is_read_only_and_work_is_writable(alice_workspace: Hub) -> None:
    container = alice_workspace.container("alice", PROJECT)
    code, out = run_in(container, "head", "-c", "64", f"/data/{DATASET}/press_line.csv")
    assert code == 0 and "," in out
    code, out = run_in(container, "sh", "-c", f"echo x > /data/{DATASET}/new.csv")
    assert code != 0 and "Read-only file system" in out
    code, out = run_in(container, "sh", "-c", f"rm -f /data/{DATASET}/press_line.csv")
    assert code != 0
    code, _ = run_in(container, "sh", "-c", "echo ok > /home/researcher/work/probe.txt")
    assert code == 0
    code, _ = run_in(container, "sh", "-c", "echo ok > /project/shared-probe.txt")
    assert code == 0


def test_work_folder_survives_stop_and_start(alice_workspace: Hub) -> None:
    hub = alice_workspace
    body = {"type": "file", "format": "text", "content": "results to keep\n"}
    put = requests.put(
        f"{hub.public_url}/user/alice/{PROJECT}/api/contents/work/keep.txt",
        json=body,
        headers={"Authorization": f"token {hub.token('alice')}"},
        timeout=60,
    )
    assert put.status_code in (200, 201), put.text
    hub.stop_server("alice", PROJECT)
    _, seconds = hub.spawn("alice", PROJECT)
    print(f"spawn alice/{PROJECT}: {seconds:.1f} s (warm)")
    got = hub.server_get("alice", PROJECT, "api/contents/work/keep.txt")
    assert got.status_code == 200
    assert got.json()["content"] == "results to keep\n"


def test_non_member_is_refused_through_the_raw_api(hub: Hub) -> None:
    reply, _ = hub.spawn("alice", OTHER_PROJECT)
    assert reply.status_code == 403
    assert f"'alice' is not a member of project '{OTHER_PROJECT}'" in reply.text
    assert not hub.docker.containers.list(
        filters={"label": f"cleanroom.project={OTHER_PROJECT}", "name": "alice"}
    )


def test_user_options_cannot_switch_project(hub: Hub) -> None:
    reply, _ = hub.spawn("dave", PROJECT, project=OTHER_PROJECT)
    assert reply.status_code == 400
    assert "user_options asks for project" in reply.text


def test_unknown_project_and_image_are_refused(hub: Hub) -> None:
    reply, _ = hub.spawn("dave", "no-such-project")
    assert reply.status_code == 404
    reply, _ = hub.spawn("dave", PROJECT, image="pytorch")
    assert reply.status_code == 403
    assert "not allowed for project" in reply.text


def test_home_page_lists_only_approved_projects(hub: Hub) -> None:
    session = hub.login("alice")
    home = session.get(f"{hub.public_url}/hub/home", timeout=30)
    assert f'id="project-{PROJECT}"' in home.text
    assert OTHER_PROJECT not in home.text


def test_non_member_is_refused_through_the_form(hub: Hub) -> None:
    session = hub.login("alice")
    page = session.get(f"{hub.public_url}/hub/spawn/alice/{OTHER_PROJECT}", timeout=60)
    assert page.status_code == 403
    assert "not a member of project" in page.text


def test_wrong_password_is_refused(hub: Hub) -> None:
    session = requests.Session()
    page = session.get(f"{hub.public_url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    data = {"username": "alice", "password": "wrong"}
    if xsrf:
        data["_xsrf"] = xsrf.group(1)
    reply = session.post(f"{hub.public_url}/hub/login", data=data, timeout=30)
    assert "Invalid username, password or code." in reply.text


def test_removing_a_member_stops_their_workspace(hub: Hub) -> None:
    reply, _ = hub.spawn("dave", PROJECT)
    assert reply.status_code in (201, 202)
    hub.container("dave", PROJECT)
    done = hub.cli("members", "remove", PROJECT, "dave")
    assert done.returncode == 0, done.stderr
    assert "workspace was stopped" in done.stdout
    deadline = time.monotonic() + 30
    while hub.docker.containers.list(filters={"label": ["cleanroom.user=dave"]}):
        assert time.monotonic() < deadline, "dave's workspace still runs"
        time.sleep(0.5)
    model = hub.api("GET", "/users/dave").json()
    assert PROJECT not in (model.get("servers") or {})
    again, _ = hub.spawn("dave", PROJECT)
    assert again.status_code == 403
