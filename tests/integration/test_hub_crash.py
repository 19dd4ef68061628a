"""Crash safety of a spawn: the hub (with its proxy and services, as when its machine or
container dies) is killed with SIGKILL in the middle of a spawn, at two points (the
request accepted; the workspace's container created), and started again. Afterwards the
workspace is either running and reconnected (one container, JupyterLab answers) or
visibly not running (no server), in which case starting it again works; its work folder
keeps its files, and once stopped it is locked and detached."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
import requests
from cleanroom.workspace import encrypted_fs

from tests.integration.deployment import PROJECT
from tests.integration.harness import INSTANCE, Hub, run_in

# Kills the shared hub: run after every other test (tests/conftest.py).
pytestmark = [pytest.mark.docker, pytest.mark.restarts_hub]

USER = "bob"


def _containers(hub: Hub) -> list:
    # sparse: no inspection of each, which fails on a container removed in between
    return hub.docker.containers.list(
        all=True,
        sparse=True,
        filters={"label": [f"cleanroom.instance={INSTANCE}", f"cleanroom.user={USER}",
                           f"cleanroom.project={PROJECT}"]},
    )  # fmt: skip


def _wait(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _server(hub: Hub) -> dict:
    model = hub.api("GET", f"/users/{USER}", hub.token(USER)).json()
    return (model.get("servers") or {}).get(PROJECT) or {}


def _crash_and_restart(hub: Hub) -> None:
    assert hub.process is not None
    os.killpg(hub.process.pid, signal.SIGKILL)  # hub, proxy and managed services at once
    hub.process.wait()
    hub.start()


@pytest.mark.parametrize("kill_when", ["accepted", "container created"])
def test_hub_killed_mid_spawn(hub: Hub, kill_when: str) -> None:
    hub.ensure_running(USER, PROJECT)
    code, _ = run_in(hub.container(USER, PROJECT), "sh", "-c",
                     "echo survives > /home/researcher/work/crash-note.txt")  # fmt: skip
    assert code == 0
    hub.stop_server(USER, PROJECT)
    _wait(lambda: not _containers(hub), "the stopped workspace's container to go")

    reply = hub.api("POST", f"/users/{USER}/servers/{PROJECT}", hub.token(USER))
    assert reply.status_code in (201, 202), reply.text
    if kill_when == "container created":
        _wait(lambda: bool(_containers(hub)), "the workspace's container")
    _crash_and_restart(hub)

    # Settled: either running and reconnected, or visibly not running.
    def settled() -> bool:
        try:
            server = _server(hub)
        except requests.RequestException:
            return False
        return not server or bool(server.get("ready") and not server.get("pending"))

    _wait(settled, "the restarted hub to settle the interrupted spawn", 240)
    if not _server(hub):
        reply, _ = hub.spawn(USER, PROJECT)  # starting it again works
        assert reply.status_code in (201, 202), reply.text
    assert len(_containers(hub)) == 1
    assert hub.server_get(USER, PROJECT, "api/status").status_code == 200
    code, out = run_in(hub.container(USER, PROJECT), "cat", "/home/researcher/work/crash-note.txt")
    assert (code, out) == (0, "survives\n")

    hub.stop_server(USER, PROJECT)
    _wait(lambda: not _containers(hub), "the container to go")
    work = hub.state / "workspaces" / PROJECT / "users" / f"{USER}.ext4"
    _wait(lambda: not encrypted_fs.is_unlocked(work), "the work folder to lock")
    loops = subprocess.run(["losetup", "-j", str(work)], capture_output=True, text=True).stdout
    assert loops == ""
