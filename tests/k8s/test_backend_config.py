"""Choosing the workspace backend by configuration (``CLEANROOM_BACKEND``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cleanroom.gateway.app import GatewayApp, drop_group
from cleanroom.hub.config import configure
from cleanroom.kubernetes.spawner import CleanroomKubeSpawner
from traitlets.config import Config


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CLEANROOM_REGISTRY_URL", raising=False)
    return tmp_path


def test_docker_is_the_default_backend(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEANROOM_BACKEND", raising=False)
    c = Config()
    configure(c, install_firewall=False)
    assert c.JupyterHub.spawner_class == "cleanroom.workspace.spawner.CleanroomSpawner"
    assert c.CleanroomSpawner.gateway_url
    [gateway] = [s for s in c.JupyterHub.services if s["name"] == "cleanroom-gateway"]
    assert "--GatewayApp.group=" not in gateway["command"]


def test_kubernetes_backend_uses_the_kube_spawner_with_the_deployments_settings(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANROOM_BACKEND", "kubernetes")
    monkeypatch.setenv("CLEANROOM_HUB_PORT", "18081")
    monkeypatch.setenv("CLEANROOM_GATEWAY_PORT", "18003")
    monkeypatch.setenv("CLEANROOM_K8S_FOLDER_STORAGE", "hostpath")
    monkeypatch.setenv("CLEANROOM_K8S_HUB_POD_LABELS", json.dumps({"app": "hub"}))
    monkeypatch.setenv(
        "CLEANROOM_K8S_DATASET_VOLUME_SOURCE",
        json.dumps({"nfs": {"server": "lib", "path": "{location}"}}),
    )
    c = Config()
    configure(c, install_firewall=False)
    assert c.JupyterHub.spawner_class == "cleanroom.kubernetes.spawner.CleanroomKubeSpawner"
    spawner = c.CleanroomKubeSpawner
    assert spawner.hub_api_port == 18081
    assert spawner.folder_storage == "hostpath"
    assert spawner.hub_pod_labels == {"app": "hub"}
    assert spawner.dataset_volume_source == {"nfs": {"server": "lib", "path": "{location}"}}
    # The egress gateway runs beside the hub; pods are reached only through it.
    [gateway] = [s for s in c.JupyterHub.services if s["name"] == "cleanroom-gateway"]
    assert spawner.gateway_url == gateway["url"] == "http://127.0.0.1:18003"
    # No host firewall matches the gateway's group on Kubernetes: it keeps the hub's.
    assert "--GatewayApp.group=" in gateway["command"]
    assert "gateway_url" not in c.CleanroomSpawner
    assert any(s["name"] == "airlock" for s in c.JupyterHub.services)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLEANROOM_BACKEND", "nomad"),
        ("CLEANROOM_K8S_HUB_POD_LABELS", "app=hub"),
        ("CLEANROOM_K8S_HUB_POD_LABELS", '["app"]'),
        ("CLEANROOM_K8S_DATASET_VOLUME_SOURCE", '{"nfs": {}, "hostPath": {}}'),
    ],
)
def test_bad_backend_settings_stop_the_hub_with_their_name(
    state: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("CLEANROOM_BACKEND", "kubernetes")
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=name):
        configure(Config(), install_firewall=False)


def test_folder_storage_is_validated() -> None:
    with pytest.raises(ValueError, match="folder_storage"):
        CleanroomKubeSpawner(folder_storage="nfs-please")


def test_the_gateways_command_on_kubernetes_keeps_the_hubs_group() -> None:
    app = GatewayApp()
    app.initialize(["--GatewayApp.group="])
    assert app.group == ""
    gid, groups = os.getgid(), os.getgroups()
    drop_group(app.group)
    assert (os.getgid(), os.getgroups()) == (gid, groups)
