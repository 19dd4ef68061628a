"""What a workspace pod is, from the pure functions the Kubernetes spawner calls."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cleanroom.kubernetes import pods
from cleanroom.registry import ProjectInfo
from cleanroom.registry.store import DatasetMount
from cleanroom.workspace import quotas


def plan(tier: str = "standard", user: str = "erin") -> pods.PodPlan:
    datasets = (
        DatasetMount("press-line", "v1", "/srv/press-line/v1", None),
        DatasetMount("weather", "2026-01", "/srv/weather/2026-01", None),
    )
    project = ProjectInfo("p-gamma", "Gamma", "approved", tier, None, datasets=datasets)
    return pods.PodPlan(
        user=user,
        project=project,
        tier=quotas.load_tiers()[tier],
        image="notebook",
        image_ref="cleanroom/notebook:latest",
        instance="test",
    )


def manifest(p: pods.PodPlan | None = None) -> dict[str, Any]:
    """A pod as KubeSpawner would make it from our settings (camelCase)."""
    p = p or plan()
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": pods.labels(p), "annotations": pods.pod_annotations(p)},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": pods.pod_security_context(),
            "volumes": pods.volumes(p),
            "containers": [
                {
                    "name": "notebook",
                    "image": p.image_ref,
                    "securityContext": pods.container_security_context(),
                    "resources": pods.resources(p.tier),
                    "volumeMounts": pods.volume_mounts(p),
                }
            ],
        },
    }


def test_a_pod_from_the_policy_passes_its_own_check() -> None:
    pods.check_pod(manifest(), allowed_images={"cleanroom/notebook:latest"})


def test_security_context_is_non_root_without_escalation_or_capabilities() -> None:
    ctx = pods.container_security_context()
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 1000
    assert ctx["allowPrivilegeEscalation"] is False and ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["readOnlyRootFilesystem"] is True
    assert pods.pod_security_context()["seccompProfile"] == {"type": "RuntimeDefault"}


def test_resources_come_from_the_tier_and_gpus_only_from_a_gpu_tier() -> None:
    tiers = quotas.load_tiers()
    small = pods.resources(tiers["small"])
    assert small["limits"] == {"cpu": "500m", "memory": str(tiers["small"].memory_bytes)}
    assert small["requests"] == small["limits"]
    assert pods.GPU_RESOURCE not in pods.resources(tiers["standard"])["limits"]
    assert pods.resources(tiers["gpu"])["limits"][pods.GPU_RESOURCE] == str(tiers["gpu"].gpus)


def test_datasets_are_read_only_claims_at_data_and_folders_are_the_tiers_size() -> None:
    p = plan("small")
    mounts = {m["mountPath"]: m for m in pods.volume_mounts(p)}
    assert mounts["/data/press-line"]["readOnly"] is True
    assert mounts["/data/weather"]["readOnly"] is True
    assert "readOnly" not in mounts["/home/researcher/work"]
    claims = {c["metadata"]["labels"][pods.LABEL_COMPONENT]: c for c in pods.claims(p, "ns", None)}
    work = claims["work"]["spec"]
    assert work["resources"]["requests"]["storage"] == str(p.tier.storage_bytes)
    assert work["accessModes"] == ["ReadWriteOnce"]
    shared = claims["project"]["spec"]
    assert shared["resources"]["requests"]["storage"] == str(p.tier.project_storage_bytes)
    assert shared["accessModes"] == ["ReadWriteMany"]
    data = [
        c
        for c in pods.claims(p, "ns", "fast")
        if c["metadata"]["labels"][pods.LABEL_COMPONENT] == "dataset"
    ]
    assert len(data) == 2
    for claim in data:
        # Bound to the library's volume, never provisioned.
        assert claim["spec"]["storageClassName"] == ""
        assert claim["spec"]["volumeName"] == claim["metadata"]["name"]
        assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    volumes = {v["name"]: v for v in pods.volumes(p)}
    assert all(
        v["persistentVolumeClaim"]["readOnly"] for n, v in volumes.items() if n.startswith("data-")
    )


def test_scratch_folders_are_size_limited_by_the_tier() -> None:
    p = plan("small")
    volumes = {v["name"]: v for v in pods.volumes(p)}
    assert volumes["home"]["emptyDir"]["sizeLimit"] == str(p.tier.home_bytes)
    assert volumes["tmp"]["emptyDir"]["sizeLimit"] == str(p.tier.tmp_bytes)
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": str(p.tier.tmp_bytes)}


def test_static_volumes_bind_by_name_and_datasets_fill_the_library_source() -> None:
    p = plan()
    claims = pods.claims(p, "ns", "fast", static=True)
    assert all(c["spec"]["storageClassName"] == "" for c in claims)
    assert all(c["spec"]["volumeName"] == c["metadata"]["name"] for c in claims)
    folders = pods.folder_volumes(p, "/srv/ws")
    assert folders[0]["spec"]["hostPath"] == {"path": "/srv/ws/p-gamma/users/erin"}
    assert folders[1]["spec"]["hostPath"] == {"path": "/srv/ws/p-gamma/shared"}
    nfs = pods.dataset_volumes(p, {"nfs": {"server": "library", "path": "{location}"}})
    assert nfs[0]["spec"]["nfs"] == {"server": "library", "path": "/srv/press-line/v1"}
    assert {v["metadata"]["name"] for v in nfs} | {v["metadata"]["name"] for v in folders} == {
        c["spec"]["volumeName"] for c in claims
    }


def test_names_and_labels_are_valid_and_never_collide() -> None:
    odd = plan(user="Erin.O'Neil@example.org")
    labels = pods.labels(odd)
    assert all(pods._LABEL_VALUE.match(v) and len(v) <= 63 for v in labels.values())
    assert pods.pod_annotations(odd)["cleanroom/user"] == "Erin.O'Neil@example.org"
    a = pods.work_claim_name("test", "p-gamma", "a-b")
    b = pods.work_claim_name("test", "p-gamma-a", "b")
    assert a != b
    long = pods.work_claim_name("test", "p" * 80, "u" * 80)
    assert len(long) <= 63 and long[0].isalnum() and long[-1].isalnum()


def _broken(change: Any) -> dict[str, Any]:
    pod = copy.deepcopy(manifest())
    change(pod)
    return pod


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    return container


BREAKS = {
    "host network": lambda p: p["spec"].update(hostNetwork=True),
    "token": lambda p: p["spec"].update(automountServiceAccountToken=True),
    "token unset": lambda p: p["spec"].pop("automountServiceAccountToken"),
    "root": lambda p: (_container(p)["securityContext"].update(runAsUser=0),),
    "non-root unset": lambda p: (
        _container(p)["securityContext"].pop("runAsNonRoot"),
        p["spec"]["securityContext"].pop("runAsNonRoot"),
    ),
    "privileged": lambda p: _container(p)["securityContext"].update(privileged=True),
    "escalation": lambda p: _container(p)["securityContext"].update(allowPrivilegeEscalation=True),
    "capability added": lambda p: _container(p)["securityContext"]["capabilities"].update(
        add=["NET_RAW"]
    ),
    "capabilities kept": lambda p: _container(p)["securityContext"].update(capabilities={}),
    "writable root": lambda p: _container(p)["securityContext"].update(
        readOnlyRootFilesystem=False
    ),
    "unconfined": lambda p: (
        _container(p)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    ),
    "no memory limit": lambda p: _container(p)["resources"]["limits"].pop("memory"),
    "unsized scratch": lambda p: p["spec"]["volumes"][0]["emptyDir"].pop("sizeLimit"),
    "node folder": lambda p: p["spec"]["volumes"].append(
        {"name": "sock", "hostPath": {"path": "/var/run"}}
    ),
    "writable data": lambda p: _container(p)["volumeMounts"][-1].pop("readOnly"),
    "other image": lambda p: _container(p).update(image="evil/miner:latest"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_check_pod_refuses_every_broken_wall(name: str) -> None:
    with pytest.raises(pods.PodSpecError):
        pods.check_pod(_broken(BREAKS[name]), allowed_images={"cleanroom/notebook:latest"})


def test_an_encrypted_versions_volume_is_the_node_folder_where_it_is_unlocked() -> None:
    p = plan()
    unlocked = {pods.dataset_key("press-line", "v1"): "/run/cleanroom/ab12/data"}
    made = pods.dataset_volumes(p, {"hostPath": {"path": "{location}"}}, unlocked)
    assert made[0]["spec"]["hostPath"] == {"path": "/run/cleanroom/ab12/data"}
    # A clear version keeps its registered folder.
    assert made[1]["spec"]["hostPath"] == {"path": "/srv/weather/2026-01"}
    assert pods.is_node_folder({"hostPath": {"path": "{location}"}})
    assert not pods.is_node_folder({"nfs": {"server": "lib", "path": "{location}"}})


def test_a_dataset_volume_made_with_another_folder_is_told_apart() -> None:
    wanted = pods.dataset_volumes(plan(), {"hostPath": {"path": "{location}"}})[0]
    # As the API returns it: defaults filled in, status added.
    existing = copy.deepcopy(wanted)
    existing["spec"]["hostPath"]["type"] = ""
    existing["spec"]["claimRef"] = {"name": "x"}
    existing["status"] = {"phase": "Bound"}
    assert pods.same_volume_source(wanted, existing)
    existing["spec"]["hostPath"]["path"] = "/srv/press-line/v0"
    assert not pods.same_volume_source(wanted, existing)
    assert not pods.same_volume_source(wanted, {"spec": {"nfs": {"path": "/srv/press-line/v1"}}})
