"""Hub-managed services end with their hub (cleanroom.hub.lifeline).

A stand-in hub (a real process) starts a service the way JupyterHub does, with
JUPYTERHUB_SERVICE_NAME set, and is then killed outright; the service must get its
SIGTERM and end. Run by hand (no JUPYTERHUB_SERVICE_NAME), nothing is asked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cleanroom.hub import lifeline
from cleanroom.workspace.culling import culler_service, load_policy

from tests.processes import alive

HUB = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-m", "cleanroom.hub.lifeline", "--", *sys.argv[1:]])
print(child.pid, flush=True)
child.wait()
"""


def _start(tmp_path: Path, managed: bool) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if managed:
        env["JUPYTERHUB_SERVICE_NAME"] = "test-service"
    else:
        env.pop("JUPYTERHUB_SERVICE_NAME", None)
    hub = subprocess.Popen(
        [sys.executable, "-c", HUB, "sleep", "60"], stdout=subprocess.PIPE, text=True, env=env
    )
    assert hub.stdout is not None
    return hub, int(hub.stdout.readline())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_service_ends_when_its_hub_is_killed_outright(tmp_path: Path) -> None:
    hub, service = _start(tmp_path, managed=True)
    time.sleep(0.5)  # the service has become `sleep` with its request made
    assert alive(service)
    hub.send_signal(signal.SIGKILL)
    hub.wait()
    deadline = time.monotonic() + 10
    while alive(service) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(service)


def test_a_service_run_by_hand_asks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_NAME", raising=False)
    assert lifeline.end_with_hub() is False
    hub, service = _start(tmp_path, managed=False)
    try:
        hub.send_signal(signal.SIGKILL)
        hub.wait()
        time.sleep(0.5)
        assert alive(service)  # by hand, nothing ties it to the parent
    finally:
        os.kill(service, signal.SIGKILL)


def test_a_watch_run_by_hand_never_sees_its_hub_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_NAME", raising=False)
    assert lifeline.HubWatch().hub_gone() is False
    monkeypatch.setenv("JUPYTERHUB_SERVICE_NAME", "test-service")
    assert lifeline.HubWatch().hub_gone() is False  # this test's parent still runs


def test_a_missing_command_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="usage"):
        lifeline.main(["--"])
    with pytest.raises(SystemExit, match="cannot run"):
        lifeline.main(["--", "/nonexistent/command"])


def test_the_idle_culler_is_started_through_the_lifeline() -> None:
    service = culler_service(load_policy())
    assert service is not None
    command = service["command"]
    assert command[1:4] == ["-m", "cleanroom.hub.lifeline", "--"]
    assert "jupyterhub_idle_culler" in command
