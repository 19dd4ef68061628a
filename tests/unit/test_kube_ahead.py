"""Folder claims made ahead (cleanroom.kubernetes.ahead): which members get them, that a
round asks nothing of the cluster for what it made before, and its settings. The real
cluster's side (claims bound before the first start) is tests/k8s/test_cluster.py."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cleanroom.errors import CleanroomError
from cleanroom.hub.services import AHEAD_SERVICE, configure_operations
from cleanroom.kubernetes import ahead, pods
from cleanroom.kubernetes.folders import FolderStorage
from cleanroom.registry import Registry
from cleanroom.registry.access import RESTRICTED
from cleanroom.registry.governance import Governance
from cleanroom.settings import Settings
from kubernetes_asyncio.client.rest import ApiException
from traitlets.config import Config

from tests.people import in_standing


class FakeCore:
    """The calls ``Ahead`` makes of the cluster's core API, recorded; an object made
    twice answers 409 as the API server does."""

    def __init__(self, namespace_exists: bool = True) -> None:
        self.namespace_exists = namespace_exists
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls = 0

    async def read_namespace(self, name: str) -> None:
        self.calls += 1
        if not self.namespace_exists:
            raise ApiException(status=404)

    async def _make(self, body: dict[str, Any]) -> None:
        self.calls += 1
        key = f"{body['kind']}/{body['metadata']['name']}"
        if key in self.objects:
            raise ApiException(status=409)
        self.objects[key] = body

    async def create_persistent_volume(self, body: dict[str, Any]) -> None:
        await self._make(body)

    async def create_namespaced_persistent_volume_claim(
        self, namespace: str, body: dict[str, Any]
    ) -> None:
        assert namespace == "cleanroom-test"
        await self._make(body)


@pytest.fixture
def gov(registry: Registry) -> Governance:
    g = Governance(registry)
    g.add_user("op", ["operator"], actor="seed")
    in_standing(registry, "op")  # access modes are an operator's decision
    for name in ("alice", "bob", "carol"):
        g.add_user(name, ["researcher"], actor="op")
    g.create_project("defects", "Defect drivers", actor="op")
    g.create_project("closed", "Closed project", actor="op")
    g.create_project("pixels", "Pixels only", actor="op")
    g.add_member("defects", "alice", actor="op")
    g.add_member("defects", "bob", actor="op", ends_on=date.today() - timedelta(days=1))
    g.add_member("closed", "alice", actor="op")
    g.set_project_status("closed", "closed", actor="op")
    g.add_member("pixels", "carol", actor="op")
    g.set_access_mode("pixels", RESTRICTED, actor="op")
    return g


def _ahead(registry: Registry, tmp_path: Path, kind: str = "hostpath") -> ahead.Ahead:
    storage = FolderStorage(
        namespace="cleanroom-test",
        folder_storage=kind,
        storage_class=None,
        workspaces_root=str(tmp_path / "workspaces"),
    )
    return ahead.Ahead(registry, "test", storage)


def test_only_open_runnable_projects_and_their_members_are_wanted(
    gov: Governance, registry: Registry
) -> None:
    pairs = {(info.name, user) for info, user in ahead.wanted(registry)}
    # bob's membership ended but is still listed: the round checks it (next test).
    assert pairs == {("defects", "alice"), ("defects", "bob")}


def test_a_round_makes_each_current_members_folders_once(
    gov: Governance, registry: Registry, tmp_path: Path
) -> None:
    maker, api = _ahead(registry, tmp_path), FakeCore()
    made = asyncio.run(maker.round(api))  # type: ignore[arg-type]
    assert made == 2  # alice's work claim and the project's claim; not bob's (ended)
    claims = {k for k in api.objects if k.startswith("PersistentVolumeClaim/")}
    assert claims == {
        f"PersistentVolumeClaim/{pods.work_claim_name('test', 'defects', 'alice')}",
        f"PersistentVolumeClaim/{pods.project_claim_name('test', 'defects')}",
    }
    for claim in (o for k, o in api.objects.items() if k in claims):
        assert claim["spec"]["volumeName"]  # hostpath: bound to the node folder's volume
    assert (tmp_path / "workspaces/defects/users/alice").is_dir()
    assert not (tmp_path / "workspaces/defects/users/bob").exists()
    assert ("defects", "bob", "standard") in maker.ended  # not asked again every round
    calls = api.calls
    assert asyncio.run(maker.round(api)) == 0  # type: ignore[arg-type]
    assert api.calls == calls  # nothing asked of the cluster for what is done

    gov.add_member("defects", "carol", actor="op")
    assert asyncio.run(maker.round(api)) == 1  # type: ignore[arg-type]
    # Checked again against the cluster: everything exists, nothing is made twice.
    maker.forget()
    assert asyncio.run(maker.round(api)) == 0  # type: ignore[arg-type]


def test_dynamic_storage_makes_claims_of_the_class_and_no_volumes(
    gov: Governance, registry: Registry, tmp_path: Path
) -> None:
    maker, api = _ahead(registry, tmp_path, "dynamic"), FakeCore()
    assert asyncio.run(maker.round(api)) == 2  # type: ignore[arg-type]
    assert not [k for k in api.objects if k.startswith("PersistentVolume/")]
    assert all("volumeName" not in o["spec"] for o in api.objects.values())
    assert not (tmp_path / "workspaces").exists()


def test_nothing_is_made_until_the_spawner_has_made_the_namespace(
    gov: Governance, registry: Registry, tmp_path: Path
) -> None:
    maker, api = _ahead(registry, tmp_path), FakeCore(namespace_exists=False)
    assert asyncio.run(maker.round(api)) == 0  # type: ignore[arg-type]
    assert not api.objects
    api.namespace_exists = True
    assert asyncio.run(maker.round(api)) == 2  # type: ignore[arg-type]


def test_settings_come_from_the_spawners_variables(
    monkeypatch: pytest.MonkeyPatch, state: Path
) -> None:
    monkeypatch.delenv("CLEANROOM_K8S_NAMESPACE", raising=False)
    monkeypatch.setenv("CLEANROOM_K8S_FOLDER_STORAGE", "hostpath")
    monkeypatch.setenv("CLEANROOM_K8S_STORAGE_CLASS", "fast")
    storage = ahead.storage_from_env("blue")
    assert storage.namespace == "cleanroom-blue"
    assert storage.static and storage.storage_class == "fast"
    assert storage.workspaces_root == str(state / "workspaces")
    monkeypatch.setenv("CLEANROOM_K8S_FOLDER_STORAGE", "nfs")
    with pytest.raises(CleanroomError, match="hostpath"):
        ahead.storage_from_env("blue")


@pytest.mark.parametrize(("value", "runs"), [("", True), ("on", True), ("off", False)])
def test_the_hub_runs_the_service_on_kubernetes_unless_turned_off(
    monkeypatch: pytest.MonkeyPatch, state: Path, value: str, runs: bool
) -> None:
    monkeypatch.setenv(ahead.AHEAD_ENV, value)
    for backend, expected in (("docker", False), ("kubernetes", runs)):
        monkeypatch.setenv("CLEANROOM_BACKEND", backend)
        c = Config()
        c.JupyterHub.services = []
        c.JupyterHub.load_roles = []
        configure_operations(c, Settings.from_env())
        names = [s["name"] for s in c.JupyterHub.services]
        assert (AHEAD_SERVICE in names) is expected
    monkeypatch.setenv(ahead.AHEAD_ENV, "sometimes")
    with pytest.raises(CleanroomError, match="on or off"):
        ahead.enabled()
