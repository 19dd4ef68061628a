"""What a workspace container is, from the pure functions the spawner calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cleanroom.errors import InvalidInput
from cleanroom.isolation import seccomp
from cleanroom.isolation.networks import ProjectNetwork
from cleanroom.registry import ProjectInfo
from cleanroom.registry.store import DatasetMount
from cleanroom.workspace import quotas, spec

NETWORK = ProjectNetwork("cleanroom-test-p", "crx-p", "10.213.5.0/24", "10.213.5.1")


def _plan(tier: str = "standard") -> spec.WorkspacePlan:
    datasets = (DatasetMount("press-line", "v1", "/srv/press-line/v1", None),)
    project = ProjectInfo("p-gamma", "Gamma", "approved", tier, None, datasets=datasets)
    return spec.WorkspacePlan(
        user="erin",
        project=project,
        tier=quotas.load_tiers()[tier],
        network=NETWORK,
        image="notebook",
        instance="test",
    )


def test_memory_limit_includes_swap_and_gpus_become_device_requests() -> None:
    gpu = _plan("gpu")
    host = spec.host_config(gpu)
    assert host["memswap_limit"] == gpu.tier.memory_bytes
    assert host["device_requests"] == [{"count": 1, "capabilities": [["gpu"]]}]
    assert "device_requests" not in spec.host_config(_plan("standard"))


def test_capabilities_seccomp_and_privileges() -> None:
    host = spec.host_config(_plan())
    assert host["cap_drop"] == ["ALL"]
    assert sorted(host["cap_add"]) == sorted(spec.SERVER_CAPABILITIES)
    assert host["security_opt"][0] == "no-new-privileges:true"
    kind, profile = host["security_opt"][1].split("=", 1)
    assert kind == "seccomp"
    assert json.loads(profile) == seccomp.profile()
    assert host["pids_limit"] == _plan().tier.pids
    assert host["init"] is False
    spec.check_host_config(host)


def test_root_is_read_only_and_every_writable_path_is_sized_from_the_tier() -> None:
    plan = _plan("tiny")
    host = spec.host_config(plan)
    assert host["read_only"] is True
    mounts = host["tmpfs"]
    assert set(mounts) == {"/home/researcher", "/tmp", "/var/tmp", "/run/cleanroom"}
    assert f"size={plan.tier.home_bytes}," in mounts["/home/researcher"]
    assert "uid=1000" in mounts["/home/researcher"]
    assert mounts["/tmp"].startswith(f"size={plan.tier.tmp_bytes},")
    assert "uid=1001" in mounts["/run/cleanroom"]
    assert host["shm_size"] == plan.tier.tmp_bytes


def test_the_container_starts_as_root_only_for_the_entry_point() -> None:
    kwargs = spec.create_kwargs(_plan())
    assert kwargs["user"] == "0:0"
    assert kwargs["labels"] == {
        "cleanroom.user": "erin",
        "cleanroom.project": "p-gamma",
        "cleanroom.image": "notebook",
        "cleanroom.kind": "workspace",
        "cleanroom.instance": "test",
        "cleanroom.datasets": "press-line@v1",
    }


def _without_seccomp(host: dict[str, Any]) -> dict[str, Any]:
    return {**host, "security_opt": ["no-new-privileges:true"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_without_seccomp, "exactly one seccomp profile"),
        (
            lambda h: {**h, "security_opt": ["no-new-privileges:true", "seccomp=unconfined"]},
            "exactly one seccomp profile",
        ),
        (
            lambda h: {
                **h,
                "security_opt": [
                    "no-new-privileges:true",
                    "seccomp="
                    + json.dumps({**seccomp.profile(), "defaultAction": "SCMP_ACT_ALLOW"}),
                ],
            },
            "seccomp profile is unfit",
        ),
        (lambda h: {**h, "security_opt": [h["security_opt"][1]]}, "no-new-privileges"),
        (lambda h: {**h, "cap_drop": []}, "cap_drop ALL"),
        (lambda h: {**h, "cap_add": [*h["cap_add"], "SYS_PTRACE"]}, "SYS_PTRACE"),
        (lambda h: {**h, "pids_limit": 0}, "pid limit"),
        (lambda h: {**h, "read_only": False}, "read-only"),
        (lambda h: {**h, "tmpfs": {"/tmp": "mode=1777"}}, "tmpfs without a size: /tmp"),
        (lambda h: {**h, "shm_size": None}, "shm_size"),
    ],
)
def test_a_host_config_without_the_wall_is_refused(change: Any, message: str) -> None:
    with pytest.raises(spec.SpecError, match=message):
        spec.check_host_config(change(spec.host_config(_plan())))


def test_server_environment_has_the_hub_the_project_and_the_secret() -> None:
    env = spec.server_environment(
        _plan(),
        hub_api_port=8081,
        hub_base_url="/hub/",
        airlock_submit_port=8082,
        server_secret="s",
    )
    assert env == {
        "JUPYTERHUB_API_URL": "http://10.213.5.1:8081/hub/api",
        "JUPYTERHUB_ACTIVITY_URL": "http://10.213.5.1:8081/hub/api/users/erin/activity",
        "CLEANROOM_PROJECT": "p-gamma",
        "CLEANROOM_DATASETS": "press-line",
        "CLEANROOM_USER": "erin",
        "CLEANROOM_SERVER_SECRET": "s",
        "CLEANROOM_AIRLOCK_URL": "http://10.213.5.1:8082",
    }
    # The secret is never a label (labels are readable by whoever lists containers).
    assert "s" not in spec.labels(_plan()).values()


def test_tmpfs_sizes_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text("tiers: {a: {cpu: 1, pids: 64, memory: 256M, home: 128M, tmp: 64M}}")
    with pytest.raises(InvalidInput, match="must stay below memory"):
        quotas.load_tiers(path)
    path.write_text("tiers: {a: {cpu: 1, pids: 64, memory: 1G, tmp: 1M}}")
    with pytest.raises(InvalidInput, match=r"tiers\.a\.tmp.*too small"):
        quotas.load_tiers(path)
    path.write_text("tiers: {a: {cpu: 1, pids: 64, memory: 512M}}")
    tier = quotas.load_tiers(path)["a"]
    assert tier.home_bytes == tier.tmp_bytes == 64 * 2**20  # an eighth of the memory


def test_no_workspace_starts_on_an_engine_without_seccomp(monkeypatch: pytest.MonkeyPatch) -> None:
    from cleanroom.errors import CleanroomError
    from cleanroom.workspace import spawner as spawner_module

    class _Engine:
        def __init__(self, options: list[str]) -> None:
            self.options = options

        def info(self) -> dict[str, Any]:
            return {"SecurityOptions": self.options}

    for options, refused in (([], True), (["name=seccomp,profile=default"], False)):
        spawner_module._engine_has_seccomp.cache_clear()
        engine = _Engine(options)
        monkeypatch.setattr(spawner_module, "_engine", lambda engine=engine: engine)
        if refused:
            with pytest.raises(CleanroomError, match="does not support seccomp"):
                spawner_module._check_engine_seccomp()
        else:
            spawner_module._check_engine_seccomp()
    spawner_module._engine_has_seccomp.cache_clear()
