"""The container wall against code in the workspace, in a real container of the image.

The container runs with exactly the spawner's settings (``cleanroom.workspace.spec``);
a real kernel and a real terminal are started through the real Jupyter server, and the
kernel tries every attack of issue #20 (``wall_probe.py``).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from cleanroom.isolation.networks import ProjectNetwork
from cleanroom.registry import ProjectInfo
from cleanroom.workspace import quotas, spec

pytestmark = pytest.mark.docker

PROBE = Path(__file__).with_name("wall_probe.py")
TOKEN = "wall-test-token"
SECRET = "the-server-secret-of-this-start"
TIER = quotas.load_tiers()["tiny"]
NO_CAPS = "0000000000000000"


def _plan() -> spec.WorkspacePlan:
    return spec.WorkspacePlan(
        user="erin",
        project=ProjectInfo("p-wall", "wall", "approved", TIER.name, None),
        tier=TIER,
        network=ProjectNetwork("none", "none", "10.213.99.0/24", "10.213.99.1"),
        image="notebook",
        instance="wall-test",
    )


@pytest.fixture(scope="module")
def workspace(workspace_images: dict[str, str]) -> Iterator[Any]:
    """A container of the notebook image with the spawner's settings (no network)."""
    plan = _plan()
    host = spec.host_config(plan)
    spec.check_host_config(host)
    # A test container has no project network: its DNS settings would not apply.
    for key in ("dns", "dns_search", "dns_opt", "sysctls"):
        host.pop(key)
    engine = docker.from_env()
    container = engine.containers.run(
        workspace_images["notebook"],
        ["jupyter", "server", f"--IdentityProvider.token={TOKEN}", "--ip=127.0.0.1"],
        detach=True,
        network_mode="none",
        mem_limit=TIER.memory_bytes,
        environment={spec.SERVER_SECRET_ENV: SECRET, "JUPYTERHUB_API_TOKEN": "hub-token"},
        **spec.create_kwargs(plan),
        **host,
    )
    try:
        yield container
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def attacks(workspace: Any) -> dict[str, Any]:
    """What the kernel (and a terminal) could do, as the probe printed it."""
    done = subprocess.run(
        ["docker", "exec", "-i", "--user", "1000:1000", workspace.id, "python", "-", TOKEN],
        input=PROBE.read_text(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:] + workspace.logs().decode()[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_kernels_run_as_the_researcher_without_any_capability(attacks: dict[str, Any]) -> None:
    assert attacks["uids"] == ["1000"] * 4
    assert attacks["groups"] == []
    assert attacks["caps"] == dict.fromkeys(
        ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), NO_CAPS
    )
    assert attacks["seccomp"] == "2" and attacks["no_new_privs"] == "1"


def test_the_server_and_pid1_run_as_other_users(attacks: dict[str, Any]) -> None:
    assert attacks["server_uid"] == str(spec.SERVER_UID)
    assert attacks["pid1_uid"] == "0"


def test_ptrace_of_pid1_and_of_the_server_is_refused(attacks: dict[str, Any]) -> None:
    assert attacks["ptrace_seize_pid1"] == "EPERM"
    assert attacks["ptrace_attach_server"] == "EPERM"
    assert attacks["process_vm_readv"] == "EPERM"
    assert attacks["server_mem"] == "EACCES"


def test_seccomp_refuses_ptrace_even_of_ones_own_child(attacks: dict[str, Any]) -> None:
    # Same uid: only the profile stands in the way (Docker's default would allow it).
    assert attacks["ptrace_own_child"] == "EPERM"
    assert attacks["process_vm_readv_own_child"] == "EPERM"
    assert attacks["unshare_user"] == "EPERM"


def test_the_server_cannot_be_signalled(attacks: dict[str, Any]) -> None:
    assert attacks["kill_stop_server"] == "EPERM"
    assert attacks["kill_term_server"] == "EPERM"
    assert attacks["kill_pid1"] == "EPERM"


def test_no_replacement_server_can_take_the_port(attacks: dict[str, Any]) -> None:
    assert attacks["bind_8888"] == "EADDRINUSE"
    assert attacks["bind_8888_reuseport"] == "EADDRINUSE"


def test_secrets_do_not_reach_kernels_or_terminals(attacks: dict[str, Any]) -> None:
    assert attacks["secret_names"] == []
    assert attacks["server_environ"] == "EACCES"
    assert attacks["pid1_environ"] == "EACCES"
    assert attacks["server_runtime"] == "EACCES"
    assert attacks["terminal"] == {"uid": "1000", "caps": NO_CAPS * 2, "secret_names": []}


def test_root_is_read_only_and_every_writable_path_fills_to_its_limit(
    attacks: dict[str, Any],
) -> None:
    assert attacks["write_root"] == "EROFS" and attacks["write_etc"] == "EROFS"
    limit = TIER.tmp_bytes // 2**20
    home = TIER.home_bytes // 2**20
    fill = attacks["fill"]
    assert set(fill) == {"/tmp", "/var/tmp", "/home/researcher", "/dev/shm"}
    assert all(result["error"] == "ENOSPC" for result in fill.values()), fill
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        assert limit - 2 <= fill[path]["mib"] <= limit, fill
    assert home - 4 <= fill["/home/researcher"]["mib"] <= home, fill


def test_every_writable_mount_is_size_limited(workspace: Any) -> None:
    workspace.reload()
    writable = [m for m in workspace.attrs["Mounts"] if m.get("RW")]
    assert writable == []  # no volume or bind in this container: only the tmpfs mounts
    assert workspace.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert set(workspace.attrs["HostConfig"]["Tmpfs"]) == set(spec.tmpfs_mounts(TIER))


def test_a_killed_server_stops_the_container(workspace: Any, attacks: dict[str, Any]) -> None:
    # Root (an operator's docker exec) may: tini then exits with its only child.
    workspace.exec_run(["sh", "-c", "kill -KILL $(cat /proc/1/task/1/children)"], user="0:0")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workspace.reload()
        if workspace.status == "exited":
            break
        time.sleep(0.2)
    assert workspace.status == "exited"
