"""Operations against real containers: provider approval at spawn, quotas the engine and
the host enforce (storage, memory, concurrency), image digests, ingress, status, end
dates that stop running workspaces, and the idle culler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import requests

from tests.integration.deployment import DATASET
from tests.integration.harness import INSTANCE, Hub, run_in, wait_until

pytestmark = pytest.mark.docker

PROJECT = "p-gamma"  # tier tiny: 256M memory, 64M folders, one workspace at a time
YESTERDAY = (date.today() - timedelta(days=1)).isoformat()
HOG = "b = bytearray(600 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"


def _ok(hub: Hub, *argv: str) -> str:
    done = hub.cli(*argv)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


def _stop_reason(hub: Hub, user: str) -> str:
    """The reason journaled when the enforcer stopped ``user``'s p-gamma workspace."""
    entries = json.loads(_ok(hub, "--json", "journal", "list", "--subject", f"project:{PROJECT}"))
    stops = [e for e in entries if e["action"] == "workspace.stop" and e["detail"]["user"] == user]
    assert stops, f"no workspace.stop of {user} in the journal"
    return str(stops[-1]["detail"]["reason"])


@pytest.fixture(scope="module")
def gamma(hub: Hub) -> Iterator[Hub]:
    """Project p-gamma (tier tiny) with members erin and frank, the dataset attached
    but not yet approved by its provider; erin has a plain work folder from before."""
    for user in ("erin", "frank"):
        _ok(hub, "users", "add", user, "--password-env", "TEST_PASSWORD")
    _ok(hub, "projects", "create", PROJECT, "--title", "Gamma", "--tier", "tiny")
    for user in ("erin", "frank"):
        _ok(hub, "members", "add", PROJECT, user)
    hub.standing("erin", "frank")
    _ok(hub, "datasets", "attach", PROJECT, DATASET)
    legacy = hub.state / "workspaces" / PROJECT / "users" / "erin"
    legacy.mkdir(parents=True)
    (legacy / "old-notes.txt").write_text("from before quotas\n")
    os.chown(legacy, 1000, 1000)
    os.chown(legacy / "old-notes.txt", 1000, 1000)
    yield hub
    for user in ("erin", "frank"):
        for container in hub.docker.containers.list(
            filters={"label": [f"cleanroom.user={user}", f"cleanroom.instance={INSTANCE}"]}
        ):
            container.remove(force=True)


def test_dataset_needs_its_providers_approval(gamma: Hub) -> None:
    reply, _ = gamma.spawn("erin", PROJECT)
    assert reply.status_code == 403
    assert f"dataset {DATASET} version v1 until its provider approves" in reply.text
    assert not gamma.docker.containers.list(
        filters={"label": ["cleanroom.user=erin", f"cleanroom.instance={INSTANCE}"]}
    )
    done = gamma.cli_as("erin", "datasets", "approve", PROJECT, DATASET)
    assert done.returncode == 2 and "'erin' does not hold the provider role" in done.stderr
    done = gamma.cli_as("pat", "datasets", "approve", PROJECT, DATASET)
    assert done.returncode == 0, done.stderr
    reply, seconds = gamma.spawn("erin", PROJECT)
    assert reply.status_code in (201, 202), reply.text
    print(f"spawn erin/{PROJECT} (quota'd folders): {seconds:.1f} s")
    container = gamma.container("erin", PROJECT)
    code, out = run_in(container, "head", "-c", "20", f"/data/{DATASET}/press_line.csv")
    assert code == 0 and out


def test_the_image_digest_of_the_run_is_recorded(gamma: Hub) -> None:
    runs = json.loads(_ok(gamma, "--json", "runs", "--project", PROJECT))
    assert runs and runs[0]["user"] == "erin"
    container = gamma.container("erin", PROJECT)
    assert runs[0]["image_digest"] in (
        container.attrs["Image"],
        *container.image.attrs["RepoDigests"],
    )
    assert runs[0]["datasets"] == f"{DATASET}@v1"


def test_old_work_folder_was_migrated_not_lost(gamma: Hub) -> None:
    container = gamma.container("erin", PROJECT)
    code, out = run_in(container, "cat", "/home/researcher/work/old-notes.txt")
    assert (code, out) == (0, "from before quotas\n")
    kept = [p.name for p in (gamma.state / "workspaces" / PROJECT / "users").iterdir()]
    assert any(name.startswith("erin.migrated-") for name in kept), kept


def test_a_full_work_folder_refuses_writes(gamma: Hub) -> None:
    container = gamma.container("erin", PROJECT)
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/home/researcher/work"]["Type"] == "volume"
    code, out = run_in(
        container, "sh", "-c", "dd if=/dev/zero of=/home/researcher/work/fill bs=1M count=100"
    )
    assert code != 0 and "No space left on device" in out
    code, out = run_in(
        container, "sh", "-c", "head -c 1048576 /dev/zero > /home/researcher/work/more"
    )
    assert code != 0 and "No space left on device" in out
    code, _ = run_in(
        container, "sh", "-c", "rm /home/researcher/work/fill /home/researcher/work/more"
    )
    assert code == 0
    code, _ = run_in(container, "sh", "-c", "echo fine > /home/researcher/work/after.txt")
    assert code == 0
    code, out = run_in(container, "sh", "-c", "dd if=/dev/zero of=/project/fill bs=1M count=100")
    assert code != 0 and "No space left on device" in out
    run_in(container, "rm", "-f", "/project/fill")


def test_concurrent_workspaces_are_limited_by_the_tier(gamma: Hub) -> None:
    reply, _ = gamma.spawn("frank", PROJECT)
    assert reply.status_code == 409
    assert "the most its quota tier 'tiny' allows at once" in reply.text


def test_ingress_appears_read_only_after_approval(
    gamma: Hub, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = tmp_path_factory.mktemp("ingress") / "codes.csv"
    source.write_text("code,meaning\n7,scratch\n")
    asked = gamma.cli_as(
        "erin", "--json", "ingress", "request", PROJECT, str(source), "--reason", "defect code list"
    )
    assert asked.returncode == 0, asked.stderr
    request = json.loads(asked.stdout)
    container = gamma.container("erin", PROJECT)
    code, _ = run_in(container, "test", "-e", "/project/incoming/codes.csv")
    assert code != 0
    done = gamma.cli_as("pat", "ingress", "approve", str(request["id"]))
    assert done.returncode == 0, done.stderr
    code, out = run_in(container, "cat", "/project/incoming/codes.csv")
    assert (code, out) == (0, "code,meaning\n7,scratch\n")
    code, out = run_in(container, "sh", "-c", "echo x > /project/incoming/codes.csv")
    assert code != 0 and "Read-only file system" in out


def test_memory_hog_is_killed_and_the_hub_says_why(gamma: Hub) -> None:
    container = gamma.container("erin", PROJECT)
    code, _ = run_in(container, "python3", "-c", HOG)
    assert code == 137, "the hog should have been killed by the kernel (SIGKILL)"
    container.reload()
    assert container.status == "running", "the workspace itself keeps running"
    log = gamma.state / "hub.log"
    wait_until(
        lambda: "workspace erin/p-gamma: out of memory" in log.read_text(errors="replace"),
        45,
        "the hub's out-of-memory message",
    )
    assert "memory limit of 256 MiB" in log.read_text(errors="replace")
    rows = json.loads(_ok(gamma, "--json", "status"))
    (row,) = [r for r in rows if r["user"] == "erin"]
    assert row["out_of_memory"] is True and row["memory_limit"] == 256 * 2**20
    assert row["project"] == PROJECT and row["image"] == "notebook"
    entries = json.loads(_ok(gamma, "--json", "journal", "list", "--subject", f"project:{PROJECT}"))
    assert "workspace.out_of_memory" in [e["action"] for e in entries]


def test_hub_metrics_count_refusals_for_prometheus(gamma: Hub) -> None:
    token = (gamma.state / "secrets" / "metrics-token").read_text().strip()
    reply = requests.get(
        f"{gamma.public_url}/hub/metrics",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert reply.status_code == 200
    assert 'cleanroom_spawn_refusals_total{reason="forbidden"}' in reply.text
    assert 'cleanroom_spawn_refusals_total{reason="quota"}' in reply.text
    assert "jupyterhub_running_servers" in reply.text
    anonymous = requests.get(f"{gamma.public_url}/hub/metrics", timeout=30)
    assert anonymous.status_code in (401, 403)


def test_provider_sees_where_their_data_went(gamma: Hub) -> None:
    usage = json.loads(_ok(gamma, "--json", "providers", "usage", "Acme"))
    assert {"p-alpha", "p-beta", PROJECT} <= set(usage["projects"])
    # Other tests of this deployment may register more of Acme's versions.
    (dataset,) = [d for d in usage["datasets"] if (d["name"], d["version"]) == (DATASET, "v1")]
    assert any(run["project"] == PROJECT for run in dataset["runs"])
    # Release requests are read from the airlock's own database, read-only.
    assert isinstance(usage["releases"], list)
    assert all(r["project"] in usage["projects"] for r in usage["releases"])


def test_membership_end_stops_the_running_workspace(gamma: Hub) -> None:
    assert (
        gamma.cli_as("opal", "members", "end", PROJECT, "erin", "--on", YESTERDAY).returncode == 0
    )
    _ok(gamma, "enforce")  # the hub's enforcer service may have been quicker: either stops it
    assert "not a member" in _stop_reason(gamma, "erin")
    wait_until(
        lambda: (
            not gamma.docker.containers.list(
                filters={"label": ["cleanroom.user=erin", f"cleanroom.instance={INSTANCE}"]}
            )
        ),
        30,
        "erin's workspace stopping",
    )
    model = gamma.api("GET", "/users/erin").json()
    assert PROJECT not in (model.get("servers") or {})


def test_project_end_stops_the_running_workspace(gamma: Hub) -> None:
    reply, _ = gamma.spawn("frank", PROJECT)
    assert reply.status_code in (201, 202), reply.text
    assert gamma.cli_as("opal", "projects", "end", PROJECT, "--on", YESTERDAY).returncode == 0
    _ok(gamma, "enforce")
    assert "ended on" in _stop_reason(gamma, "frank")
    wait_until(
        lambda: (
            not gamma.docker.containers.list(
                filters={"label": ["cleanroom.user=frank", f"cleanroom.instance={INSTANCE}"]}
            )
        ),
        30,
        "frank's workspace stopping",
    )
    again, _ = gamma.spawn("frank", PROJECT)
    assert again.status_code == 403 and "ended on" in again.text


def test_hub_runs_the_enforcer_and_the_culler(hub: Hub) -> None:
    log = (hub.state / "hub.log").read_text(errors="replace")
    assert "Starting service 'cleanroom-enforcer'" in log
    assert "Starting service 'idle-culler'" in log
    # The culler's scopes are enough to list users and their servers' activity.
    assert "200 GET /hub/api/users?state=[secret] (idle-culler@" in log


def test_idle_culler_stops_an_idle_workspace(hub: Hub) -> None:
    """The culler the hub runs, with a five-second timeout, run beside the hub for the
    test (the hub's own has the policy's hours)."""
    _ok(hub, "users", "add", "gina", "--password-env", "TEST_PASSWORD")
    _ok(hub, "projects", "create", "p-delta", "--title", "Delta")
    _ok(hub, "members", "add", "p-delta", "gina")
    hub.standing("gina")
    reply, _ = hub.spawn("gina", "p-delta")
    assert reply.status_code in (201, 202), reply.text
    culler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--url=http://127.0.0.1:{hub.hub_port}/hub/api",
            "--timeout=5",
            "--cull-every=2",
            "--cull-users=false",
        ],
        env={**hub.env, "JUPYTERHUB_API_TOKEN": hub.service_token},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: "p-delta" not in (hub.api("GET", "/users/gina").json().get("servers") or {}),
            90,
            "the culler stopping gina's idle workspace",
        )
    finally:
        culler.terminate()
        output = culler.communicate(timeout=30)[0].decode(errors="replace")
    assert "gina/p-delta" in output or "Culling server gina" in output, output
    # Only this deployment's containers: another checkout's tests may have a gina too.
    mine = {"label": ["cleanroom.user=gina", f"cleanroom.instance={INSTANCE}"]}
    assert not hub.docker.containers.list(filters=mine)
