"""The Kubernetes backend on a real one-node cluster (scripts/k8s.sh): KubeSpawner pods.

What the pod's processes really get is read from the node itself (the pod's cgroup, its
processes' ``/proc`` entries), what the cluster holds from its API. NetworkPolicies are
read back and compared with their design; the test cluster's CNI does not enforce them,
so no test here claims network isolation.
"""

from __future__ import annotations

import asyncio
import glob
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cleanroom.kubernetes import pods, policies
from cleanroom.settings import image_repository
from cleanroom.workspace import quotas
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api, NetworkingV1Api

from tests.integration.harness import Hub
from tests.k8s.conftest import INSTANCE, NAMESPACE, NODE_IP, OTHER_PROJECT, PROJECT

pytestmark = pytest.mark.k8s
T = TypeVar("T")
CGROUP_ROOT = "cleanroom-k8s"


def k8s(kubeconfig: Path, call: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Run one call of the cluster's API with the admin kubeconfig."""

    async def run() -> T:
        cfg = Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        async with ApiClient(cfg) as api:
            return await call(api)

    return asyncio.run(run())


def workspace_pods(kubeconfig: Path, user: str, project: str) -> list[dict[str, Any]]:
    """This deployment's workspace pods of ``user`` on ``project``, as API manifests."""
    selector = ",".join(
        f"{k}={v}"
        for k, v in {
            **pods.selector_labels(INSTANCE, project),
            pods.LABEL_USER: pods.label_value(user),
        }.items()
    )

    async def call(api: ApiClient) -> list[dict[str, Any]]:
        found = await CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector=selector)
        return [api.sanitize_for_serialization(p) for p in found.items]

    return k8s(kubeconfig, call)


def running_pod(kubeconfig: Path, user: str, project: str) -> dict[str, Any]:
    found = [
        p
        for p in workspace_pods(kubeconfig, user, project)
        if p["status"].get("phase") == "Running"
    ]
    assert len(found) == 1, f"expected one running pod of {user}/{project}: {found}"
    return found[0]


def pod_cgroup(pod: dict[str, Any], controller: str) -> Path:
    """The pod's own cgroup folder of ``controller`` on the node."""
    uid = pod["metadata"]["uid"]
    found = glob.glob(
        f"/sys/fs/cgroup/{controller}/{CGROUP_ROOT}/kubepods*/**/pod{uid}", recursive=True
    )
    found += glob.glob(f"/sys/fs/cgroup/{controller}/{CGROUP_ROOT}/kubepods/pod{uid}")
    assert found, f"no {controller} cgroup of pod {uid}"
    return Path(found[0])


def server_pids(pod: dict[str, Any]) -> list[int]:
    """Processes of the pod's workspace container (not its sandbox), from its cgroup."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("//")[-1]
    procs = pod_cgroup(pod, "memory") / container_id / "cgroup.procs"
    return [int(line) for line in procs.read_text().split()]


def contents(hub: Hub, user: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
    """A call of the workspace's Jupyter contents API through the proxy."""
    import requests

    return requests.request(
        method,
        f"{hub.public_url}/user/{user}/{PROJECT}/api/contents/{path}",
        headers={"Authorization": f"token {hub.token(user)}"},
        timeout=60,
        **kwargs,
    )


@pytest.fixture(scope="module")
def alice(k8s_hub: Hub) -> Hub:
    """alice's workspace on p-alpha, running."""
    k8s_hub.ensure_running("alice", PROJECT)
    return k8s_hub


def test_a_member_spawns_a_hardened_pod_that_answers_through_the_proxy(
    alice: Hub, cluster: Path
) -> None:
    status = alice.server_get("alice", PROJECT, "api/status")
    assert status.status_code == 200, status.text
    pod = running_pod(cluster, "alice", PROJECT)
    image = f"{image_repository()}/notebook:latest"
    # The pod the cluster runs holds the wall as designed, read back from the API.
    pods.check_pod(pod, allowed_images={image})
    labels = pod["metadata"]["labels"]
    assert labels[pods.LABEL_USER] == "alice" and labels[pods.LABEL_PROJECT] == PROJECT
    assert labels[pods.LABEL_IMAGE] == "notebook" and labels[pods.LABEL_INSTANCE] == INSTANCE
    # What its processes really got: uid 1000, no capabilities, no new privileges, seccomp.
    pids = server_pids(pod)
    assert pids
    for pid in pids:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        assert fields["Uid"].split()[:2] == ["1000", "1000"]
        assert int(fields["CapEff"].strip(), 16) == 0
        assert int(fields["CapBnd"].strip(), 16) == 0
        assert fields["NoNewPrivs"].strip() == "1"
        assert fields["Seccomp"].strip() == "2"


def test_a_non_member_is_refused_and_gets_no_pod(k8s_hub: Hub, cluster: Path) -> None:
    reply, _ = k8s_hub.spawn("carol", PROJECT)
    assert reply.status_code == 403, reply.text
    assert "not a member" in reply.text or "member" in reply.text
    assert workspace_pods(cluster, "carol", PROJECT) == []


def test_data_is_mounted_read_only(alice: Hub, cluster: Path) -> None:
    listing = contents(alice, "alice", "data/press-line")
    assert listing.status_code == 200, listing.text
    assert listing.json()["content"], "the dataset's files are listed"
    wrote = contents(
        alice,
        "alice",
        "data/press-line/smuggled.txt",
        "PUT",
        json={"type": "file", "format": "text", "content": "x"},
    )
    assert wrote.status_code >= 400
    # (Read back from the listing: the gateway withholds the server's 404 error body.)
    again = contents(alice, "alice", "data/press-line")
    assert again.status_code == 200, again.text
    assert "smuggled.txt" not in {item["name"] for item in again.json()["content"]}
    pod = running_pod(cluster, "alice", PROJECT)
    # The kernel's own view of the container's mounts: /data/press-line is read-only.
    mountinfo = Path(f"/proc/{server_pids(pod)[0]}/mountinfo").read_text().splitlines()
    [line] = [m for m in mountinfo if m.split()[4] == "/data/press-line"]
    assert "ro" in line.split()[5].split(",")


def test_the_tiers_quotas_are_in_the_pods_cgroup(alice: Hub, cluster: Path) -> None:
    tier = quotas.tier(alice.registry.get_project(PROJECT).quota_tier)
    pod = running_pod(cluster, "alice", PROJECT)
    memory = pod_cgroup(pod, "memory") / "memory.limit_in_bytes"
    assert int(memory.read_text()) == tier.memory_bytes
    cpu = pod_cgroup(pod, "cpu")
    quota = int((cpu / "cpu.cfs_quota_us").read_text())
    period = int((cpu / "cpu.cfs_period_us").read_text())
    assert quota == round(tier.cpu * period)


def test_the_work_folder_survives_stop_and_start(alice: Hub, cluster: Path) -> None:
    put = contents(
        alice,
        "alice",
        "work/kept.txt",
        "PUT",
        json={"type": "file", "format": "text", "content": "kept"},
    )
    assert put.status_code in (200, 201), put.text
    before = running_pod(cluster, "alice", PROJECT)["metadata"]["uid"]
    alice.stop_server("alice", PROJECT)
    deadline = time.monotonic() + 90
    while workspace_pods(cluster, "alice", PROJECT):
        assert time.monotonic() < deadline, "alice's pod was not deleted"
        time.sleep(0.5)
    alice.ensure_running("alice", PROJECT)
    assert running_pod(cluster, "alice", PROJECT)["metadata"]["uid"] != before
    got = contents(alice, "alice", "work/kept.txt")
    assert got.status_code == 200, got.text
    assert got.json()["content"] == "kept"


def test_network_policies_are_exactly_as_designed(alice: Hub, cluster: Path) -> None:
    hub = policies.Peer(cidr=f"{NODE_IP}/32")
    designed = policies.network_policies(
        policies.PolicyPlan(
            project=PROJECT,
            instance=INSTANCE,
            namespace=NAMESPACE,
            hub=hub,
            hub_port=alice.hub_port,
            gateway=hub,
            airlock=hub,
            airlock_port=alice.airlock_submit_port,
        )
    )

    async def call(api: ApiClient) -> list[dict[str, Any]]:
        found = await NetworkingV1Api(api).list_namespaced_network_policy(
            NAMESPACE, label_selector=f"{pods.LABEL_PROJECT}={PROJECT}"
        )
        return [api.sanitize_for_serialization(p) for p in found.items]

    read = {p["metadata"]["name"]: p for p in k8s(cluster, call)}
    assert sorted(read) == sorted(p["metadata"]["name"] for p in designed)
    for policy in designed:
        back = read[policy["metadata"]["name"]]
        assert back["spec"] == policy["spec"]
        assert back["metadata"]["labels"] == policy["metadata"]["labels"]


def test_removing_a_member_stops_their_pod(k8s_hub: Hub, cluster: Path) -> None:
    reply, _ = k8s_hub.spawn("dave", PROJECT)
    assert reply.status_code in (201, 202), reply.text
    running_pod(cluster, "dave", PROJECT)
    done = k8s_hub.cli("members", "remove", PROJECT, "dave")
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 90
    while workspace_pods(cluster, "dave", PROJECT):
        assert time.monotonic() < deadline, "dave's pod still runs"
        time.sleep(0.5)
    # The hub's own stop finishes once the pod is gone: wait for it, then try again.
    while PROJECT in (k8s_hub.api("GET", "/users/dave").json().get("servers") or {}):
        assert time.monotonic() < deadline, "the hub still lists dave's server"
        time.sleep(0.5)
    again, _ = k8s_hub.spawn("dave", PROJECT)
    assert again.status_code == 403, again.text


def claim_states(kubeconfig: Path, names: list[str]) -> dict[str, tuple[str, str]]:
    """(phase, uid) of each named claim in the deployment's namespace that exists."""

    async def call(api: ApiClient) -> dict[str, tuple[str, str]]:
        found = await CoreV1Api(api).list_namespaced_persistent_volume_claim(NAMESPACE)
        return {
            c.metadata.name: (c.status.phase if c.status else "", c.metadata.uid)
            for c in found.items
            if c.metadata.name in names
        }

    return k8s(kubeconfig, call)


def test_a_members_folder_claims_are_bound_before_their_first_start(
    alice: Hub, cluster: Path
) -> None:
    """The hub's kube-ahead service (cleanroom.kubernetes.ahead) makes a member's work claim
    and the project's claim without any start; the first start then uses those very
    claims (same uid), so it does not wait for the volume controller's bind."""
    assert not workspace_pods(cluster, "carol", OTHER_PROJECT)  # never started here
    names = [
        pods.work_claim_name(INSTANCE, OTHER_PROJECT, "carol"),
        pods.project_claim_name(INSTANCE, OTHER_PROJECT),
    ]
    deadline = time.monotonic() + 60
    while True:
        states = claim_states(cluster, names)
        if len(states) == 2 and all(phase == "Bound" for phase, _ in states.values()):
            break
        assert time.monotonic() < deadline, f"claims not made and bound ahead: {states}"
        time.sleep(0.5)
    reply, _ = alice.spawn("carol", OTHER_PROJECT)
    assert reply.status_code in (201, 202), reply.text
    try:
        pod = running_pod(cluster, "carol", OTHER_PROJECT)
        mounted = {
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["spec"]["volumes"]
            if v.get("persistentVolumeClaim")
        }
        assert set(names) <= mounted
        assert claim_states(cluster, names) == states  # the same claims, still bound
    finally:
        alice.stop_server("carol", OTHER_PROJECT)


TABLE = "line,defects\nA,120\nB,95\nC,143\n"


def test_the_airlock_release_path_works_end_to_end(alice: Hub) -> None:
    """From a file in the pod's ~/work, through the extension and the airlock's submission
    listener at the hub's address, two officers' review, to the author's download."""
    from tests.integration.test_release_path import _approve, _xsrf

    hub = alice
    put = contents(
        hub,
        "alice",
        "work/counts.csv",
        "PUT",
        json={"type": "file", "format": "text", "content": TABLE},
    )
    assert put.status_code in (200, 201), put.text
    import requests

    server = f"{hub.public_url}/user/alice/{PROJECT}/cleanroom/api/releases"
    submitted = requests.post(
        server,
        json={
            "paths": ["work/counts.csv"],
            "justification": "defect counts for the report",
            "descriptions": {"work/counts.csv": "defects per line, all cells >= 95"},
        },
        headers={"Authorization": f"token {hub.token('alice')}"},
        timeout=120,
    )
    assert submitted.status_code == 201, submitted.text
    rid = submitted.json()["id"]
    author = hub.airlock_session("alice")
    early = author.get(f"{hub.airlock_url}requests/{rid}/download?path=work/counts.csv", timeout=30)
    assert early.status_code in (403, 404)
    _approve(hub, "olga", rid, "work/counts.csv")
    _approve(hub, "otto", rid, "work/counts.csv")
    olga = hub.airlock_session("olga")
    page = olga.get(f"{hub.airlock_url}requests/{rid}", timeout=30)
    released = olga.post(
        f"{hub.airlock_url}requests/{rid}/release", data={"_xsrf": _xsrf(page.text)}, timeout=30
    )
    assert released.status_code == 200, released.text[:300]
    got = author.get(f"{hub.airlock_url}requests/{rid}/download?path=work/counts.csv", timeout=30)
    assert got.status_code == 200
    assert got.content == TABLE.encode()
