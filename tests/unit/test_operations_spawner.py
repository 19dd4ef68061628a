"""The spawner's operations: kernel culling, out-of-memory records, concurrency limits.

What the container is (host config, labels, environment) is tested through the pure
functions of ``cleanroom.workspace.spec`` in ``test_workspace_spec.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cleanroom.workspace import quotas
from cleanroom.workspace.oom import out_of_memory_message
from cleanroom.workspace.spawner import CleanroomSpawner


def test_kernel_culling_reaches_the_server_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANROOM_KERNEL_CULL_TIMEOUT", "900")
    args = CleanroomSpawner().get_args()
    assert "--MappingKernelManager.cull_idle_timeout=900" in args


def test_out_of_memory_message_names_the_limit() -> None:
    message = out_of_memory_message("erin", "p-gamma", 256 * 2**20)
    assert "erin/p-gamma: out of memory" in message and "256 MiB" in message


def test_oom_is_reported_once(tmp_path: Path) -> None:
    spawner = CleanroomSpawner(registry_url=f"sqlite:///{tmp_path / 'r.sqlite'}")
    container = {
        "State": {"OOMKilled": True},
        "HostConfig": {"Memory": 256 * 2**20},
        "Config": {"Labels": {"cleanroom.user": "erin", "cleanroom.project": "p-gamma"}},
    }
    from prometheus_client import REGISTRY

    def kills() -> float:
        value = REGISTRY.get_sample_value(
            "cleanroom_workspace_oom_kills_total", {"project": "p-gamma"}
        )
        return value or 0.0

    before = kills()
    spawner._note_oom(container)
    spawner._note_oom(container)
    assert kills() == before + 1
    from cleanroom.registry import Registry
    from cleanroom.registry.governance import Governance

    entries = Governance(Registry(spawner.registry_url)).journal_entries()
    assert [(e.action, e.subject) for e in entries] == [
        ("workspace.out_of_memory", "project:p-gamma")
    ]


def test_oom_kills_are_read_from_the_memory_cgroup(tmp_path: Path) -> None:
    from cleanroom.workspace.oom import oom_kills

    v1 = tmp_path / "memory" / "docker" / "abc" / "memory.oom_control"
    v1.parent.mkdir(parents=True)
    v1.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert oom_kills("abc", tmp_path) == 2
    v2 = tmp_path / "system.slice" / "docker-def.scope" / "memory.events"
    v2.parent.mkdir(parents=True)
    v2.write_text("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")
    assert oom_kills("def", tmp_path) == 1
    assert oom_kills("nope", tmp_path) is None


class _Container:
    def __init__(self, user: str, project: str) -> None:
        self.labels = {"cleanroom.user": user, "cleanroom.project": project}


class _Engine:
    def __init__(self, running: list[_Container]) -> None:
        self.containers = self
        self.running = running

    def list(self, filters: dict[str, object]) -> list[_Container]:
        return self.running


def _spawner_of(user: str) -> CleanroomSpawner:
    from jupyterhub.objects import Hub

    class _User:
        name = user
        url = f"/user/{user}/"

    return CleanroomSpawner(user=_User(), hub=Hub())


@pytest.mark.parametrize(
    ("running", "message"),
    [
        ([("bob", "p-gamma")], "project 'p-gamma' runs 1 workspaces"),
        ([("erin", "p-x"), ("erin", "p-y")], "'erin' runs 2 workspaces in other projects"),
    ],
)
def test_concurrency_limits_of_the_tier(
    monkeypatch: pytest.MonkeyPatch, running: list[tuple[str, str]], message: str
) -> None:
    from cleanroom.errors import Conflict
    from cleanroom.workspace import spawner as spawner_module

    engine = _Engine([_Container(u, p) for u, p in running])
    monkeypatch.setattr(spawner_module, "_engine", lambda: engine)
    tier = quotas.load_tiers()["tiny"]  # one workspace per project, two per person
    with pytest.raises(Conflict, match=message):
        _spawner_of("erin")._check_concurrency("p-gamma", tier)
    # A restart of one's own workspace is never counted against oneself.
    engine.running = [_Container("erin", "p-gamma"), _Container("erin", "p-x")]
    _spawner_of("erin")._check_concurrency("p-gamma", tier)


def test_status_arithmetic() -> None:
    from cleanroom.workspace.status import _cpu_percent, used_memory

    stats = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 300},
            "system_cpu_usage": 2000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        "memory_stats": {"usage": 500, "stats": {"total_inactive_file": 100}},
    }
    assert _cpu_percent(stats) == 40.0
    assert used_memory(stats) == 400
    assert _cpu_percent({}) == 0.0
