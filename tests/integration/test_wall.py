"""The container wall in a workspace the real hub started (issue #20).

The attacks from kernel code are in ``tests/images/test_wall.py`` (a real kernel and
terminal in a container with the spawner's exact settings); here: the spawner really
applies those settings, the hub notices a killed server and records it, and activity
timestamps cannot carry data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cleanroom.isolation import seccomp
from cleanroom.workspace import spec

from tests.integration.deployment import PROJECT
from tests.integration.harness import Hub, run_in, wait_until

pytestmark = pytest.mark.docker


def test_the_spawner_applies_the_wall(hub: Hub) -> None:
    hub.ensure_running("alice", PROJECT)
    container = hub.container("alice", PROJECT)
    host = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == "0:0"
    assert host["ReadonlyRootfs"] is True
    added = sorted(c.removeprefix("CAP_") for c in host["CapAdd"])
    assert added == sorted(spec.SERVER_CAPABILITIES)
    assert host["CapDrop"] == ["ALL"]
    profiles = [o.split("=", 1)[1] for o in host["SecurityOpt"] if o.startswith("seccomp=")]
    assert [json.loads(p) for p in profiles] == [seccomp.profile()]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert set(host["Tmpfs"]) == {"/home/researcher", "/tmp", "/var/tmp", "/run/cleanroom"}
    # The per-start secret is in the server's environment, never in a label.
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    secret = env[spec.SERVER_SECRET_ENV]
    assert len(secret) >= 32
    assert secret not in json.dumps(container.attrs["Config"]["Labels"])
    # PID 1 stays root; the server runs as its own uid; both beyond the researcher.
    code, out = run_in(
        container,
        "sh",
        "-c",
        "stat -c %u /proc/1; for p in $(cat /proc/1/task/1/children); do stat -c %u /proc/$p; done",
    )
    assert code == 0, out
    assert out.split() == ["0", str(spec.SERVER_UID)]
    code, out = run_in(container, "sh", "-c", "kill -STOP $(cat /proc/1/task/1/children)")
    assert code != 0 and "not permitted" in out


def test_activity_timestamps_cannot_carry_data(hub: Hub) -> None:
    hub.ensure_running("alice", PROJECT)
    token = hub.token("alice")
    marked = datetime.now(UTC).replace(microsecond=654321) - timedelta(seconds=2)
    future = datetime.now(UTC) + timedelta(minutes=50)
    reply = hub.api(
        "POST",
        "/users/alice/activity",
        token,
        json={
            "last_activity": marked.isoformat().replace("+00:00", "Z"),
            "servers": {PROJECT: {"last_activity": future.isoformat().replace("+00:00", "Z")}},
        },
    )
    assert reply.status_code == 200, reply.text
    model = hub.api("GET", "/users/alice", token).json()
    read_back = [model["last_activity"], model["servers"][PROJECT]["last_activity"]]
    now = datetime.now(UTC)
    for value in read_back:
        assert "654321" not in value and "." not in value.rstrip("Z").split("T")[1], value
        assert datetime.fromisoformat(value.replace("Z", "+00:00")) <= now


@pytest.fixture(scope="module")
def walter(hub: Hub) -> str:
    """A member of this module's own (other tests remove members of the shared ones)."""
    for step in (
        ("users", "add", "walter", "--password-env", "TEST_PASSWORD"),
        ("members", "add", PROJECT, "walter"),
    ):
        done = hub.cli(*step)
        assert done.returncode == 0, f"{step}: {done.stderr}"
    hub.standing("walter")
    return "walter"


def test_a_killed_server_is_noticed_and_recorded(hub: Hub, walter: str) -> None:
    hub.ensure_running(walter, PROJECT)
    container = hub.container(walter, PROJECT)
    # An operator's root exec may kill it (the researcher may not: see above).
    container.exec_run(["sh", "-c", "kill -KILL $(cat /proc/1/task/1/children)"], user="0:0")
    wait_until(lambda: not hub.is_ready(walter, PROJECT), 60, "the hub noticing the dead server")

    def recorded() -> bool:
        done = hub.cli("--json", "journal", "list", "--subject", f"project:{PROJECT}")
        entries = json.loads(done.stdout or "[]")
        return any(
            e["action"] == "workspace.server_lost" and e["detail"]["user"] == walter
            for e in entries
        )

    wait_until(recorded, 30, "a workspace.server_lost record")
