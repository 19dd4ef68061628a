"""Crash safety of a spawn: the hub (with its proxy and services, as when its machine or
container dies) is killed with SIGKILL in the middle of a spawn, at two points (the
request accepted; the workspace's container created), and started again. Afterwards the
workspace is either running and reconnected (one container, JupyterLab answers) or
visibly not running (no server), in which case starting it again works; its work folder
keeps its files, and once stopped it is locked and detached. A third kill, after the
start finished, checks that a running workspace is reconnected."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
import requests
from cleanroom.workspace import encrypted_fs

from tests.integration.deployment import PROJECT
from tests.integration.harness import INSTANCE, Hub, run_in, wait_until

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


def _server(hub: Hub) -> dict:
    model = hub.api("GET", f"/users/{USER}", hub.token(USER)).json()
    return (model.get("servers") or {}).get(PROJECT) or {}


def _crash_and_restart(hub: Hub) -> None:
    assert hub.process is not None
    os.killpg(hub.process.pid, signal.SIGKILL)  # hub, proxy and managed services at once
    hub.process.wait()
    hub.start()


def _pending(hub: Hub) -> bool:
    try:
        return bool(_server(hub).get("pending"))
    except requests.RequestException:
        return False


def _answers(hub: Hub) -> bool:
    """Whether JupyterLab answers through the proxy and gateway (after a restart the
    proxy's route may take a moment: the hub adds it once its checks are done)."""
    try:
        return hub.server_get(USER, PROJECT, "api/status").status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("kill_when", ["accepted", "container created", "started"])
def test_hub_killed_mid_spawn(hub: Hub, kill_when: str) -> None:
    hub.ensure_running(USER, PROJECT)
    code, _ = run_in(hub.container(USER, PROJECT), "sh", "-c",
                     "echo survives > /home/researcher/work/crash-note.txt")  # fmt: skip
    assert code == 0
    hub.stop_server(USER, PROJECT)
    wait_until(lambda: not _containers(hub), 120, "the stopped workspace's container to go")

    # The request in a thread: a spawn that answers within a second would otherwise be
    # over before the kill, and nothing here would be interrupted.
    replies: list[int] = []
    token = hub.token(USER)

    def ask() -> None:
        try:
            replies.append(hub.api("POST", f"/users/{USER}/servers/{PROJECT}", token).status_code)
        except requests.RequestException:
            replies.append(0)  # the proxy died while it was answering

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    if kill_when == "accepted":
        wait_until(lambda: _pending(hub) or bool(replies), 30, "the hub to accept the spawn", 0.05)
    elif kill_when == "container created":
        # Soon after the container exists, the server answers and the start is over.
        wait_until(lambda: bool(_containers(hub) or replies), 60, "the workspace's container", 0.05)
    else:
        wait_until(lambda: bool(replies), 240, "the hub to answer the spawn")
        assert replies[0] in (201, 202), replies  # 202: slower than slow_spawn_timeout
        wait_until(lambda: hub.is_ready(USER, PROJECT), 240, "the spawn to finish")
    _crash_and_restart(hub)
    asking.join(60)
    if kill_when != "started":
        # Mid-spawn, really: the start had not finished when the hub died (no reply,
        # the proxy's 503 for a hub gone, or the hub's 202 for a spawn still pending).
        assert replies and replies[0] in (0, 202, 503), f"not killed mid-spawn: {replies}"

    # Settled: either running and reconnected, or visibly not running. A start cut
    # short is undone at the restarted hub's first look, not after waiting out the
    # spawn's http_timeout (120 s) for a server at an address never recorded.
    def settled() -> bool:
        try:
            server = _server(hub)
        except requests.RequestException:
            return False
        return not server or bool(server.get("ready") and not server.get("pending"))

    wait_until(settled, 90, "the restarted hub to settle the interrupted spawn")
    if kill_when == "started":
        assert _server(hub).get("ready"), "a finished start is reconnected, not undone"
    if not _server(hub):
        # Undone: nothing of the cut-short start is left running.
        wait_until(lambda: not _containers(hub), 60, "the cut-short start's container to go")
        reply, _ = hub.spawn(USER, PROJECT)  # starting it again works
        assert reply.status_code in (201, 202), reply.text
    assert len(_containers(hub)) == 1
    try:
        wait_until(lambda: _answers(hub), 60, "JupyterLab to answer through the proxy")
    except AssertionError:
        reply = hub.server_get(USER, PROJECT, "api/status")
        raise AssertionError(
            f"api/status: {reply.status_code} {reply.text[:400]}\n{hub.log_tail(120)}"
        ) from None
    if kill_when == "started":
        # Reconnected for good: the hub's health polls (every 15 s, two failures in a
        # row stop it) find the server well through the gateway. Before, the restarted
        # hub knew no token of the server's and its polls stopped the workspace.
        time.sleep(20)
        assert hub.is_ready(USER, PROJECT) and _answers(hub), hub.log_tail(60)
    code, out = run_in(hub.container(USER, PROJECT), "cat", "/home/researcher/work/crash-note.txt")
    assert (code, out) == (0, "survives\n")

    hub.stop_server(USER, PROJECT)
    wait_until(lambda: not _containers(hub), 120, "the container to go")
    work = hub.state / "workspaces" / PROJECT / "users" / f"{USER}.ext4"
    wait_until(lambda: not encrypted_fs.is_unlocked(work), 120, "the work folder to lock")
    loops = subprocess.run(["losetup", "-j", str(work)], capture_output=True, text=True).stdout
    assert loops == ""
