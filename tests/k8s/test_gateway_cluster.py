"""The egress gateway and encrypted datasets on the real one-node cluster.

Through the real proxy, the real gateway and a real pod: the proxy's route of a workspace
names the gateway, the gateway's route names the pod, refused routes answer the gateway's
403, and what reaches the client is counted against that workspace. The dataset at
``/data`` is read from its encrypted filesystem (unlocked read-only on the node while a
pod uses it) and locked again once the last pod using it has stopped. NetworkPolicy
enforcement cannot be proven here (docs/kubernetes.md): nothing below claims it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from cleanroom.kubernetes import pods
from cleanroom.library import at_rest
from cleanroom.workspace import encrypted_fs
from kubernetes_asyncio.client import ApiClient, CoreV1Api

from tests.gateway.helpers import execute, metric, start_kernel, usage, wait_for
from tests.integration.deployment import DATASET
from tests.integration.harness import Hub
from tests.k8s.conftest import INSTANCE, PROJECT
from tests.k8s.test_cluster import contents, k8s, running_pod, workspace_pods

pytestmark = pytest.mark.k8s


def proxy_routes(hub: Hub) -> dict[str, Any]:
    """The proxy's routing table (configurable-http-proxy's API, with its token)."""
    token = (hub.state / "secrets" / "proxy-auth-token").read_text().strip()
    reply = requests.get(
        f"http://127.0.0.1:{hub.env['CLEANROOM_PROXY_API_PORT']}/api/routes",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return {key.rstrip("/"): value for key, value in reply.json().items()}


def gateway_route(hub: Hub, user: str) -> dict[str, Any]:
    table = json.loads((hub.state / "gateway" / "routes.json").read_text())
    return next(r for r in table if r["owner"] == user and r["server"] == PROJECT)


def data_sha256(hub: Hub, user: str, kernel: str, path: str) -> str:
    """The sha256 of a file of /data as kernel code in the pod reads it (the contents
    API refuses to send dataset files; the kernel's answer passes the gateway)."""
    code = (
        "import hashlib\n"
        f"print(hashlib.sha256(open('/data/{DATASET}/{path}', 'rb').read()).hexdigest())"
    )
    messages = execute(hub, user, PROJECT, kernel, code)
    return "".join(
        m["content"].get("text", "") for m in messages if m["header"]["msg_type"] == "stream"
    ).strip()


@pytest.fixture(scope="module")
def alice(k8s_hub: Hub) -> Hub:
    k8s_hub.ensure_running("alice", PROJECT)
    return k8s_hub


def test_jupyterlab_is_reached_through_the_proxy_and_the_gateway(alice: Hub, cluster: Path) -> None:
    pod = running_pod(cluster, "alice", PROJECT)
    # The proxy sends the workspace to the gateway; the gateway forwards to the pod.
    route = proxy_routes(alice)[f"/user/alice/{PROJECT}"]
    assert route["target"] == f"http://127.0.0.1:{alice.env['CLEANROOM_GATEWAY_PORT']}"
    assert gateway_route(alice, "alice")["target"] == f"http://{pod['status']['podIP']}:8888"
    # JupyterLab answers, with the gateway's Content-Security-Policy on its page.
    lab = alice.server_get("alice", PROJECT, "lab")
    assert lab.status_code == 200
    assert "script-src 'self'" in lab.headers["Content-Security-Policy"]
    # A route off the gateway's allowlist gets the gateway's 403, counted as refused.
    refused_before = metric(
        alice,
        "cleanroom_gateway_refusals_total",
        user="alice",
        project=PROJECT,
        reason="not_allowed",
    )
    refused = alice.server_get("alice", PROJECT, "api/spec.yaml")
    assert refused.status_code == 403
    assert refused.json()["reason"] == "Blocked by the clean room"
    assert (
        metric(
            alice,
            "cleanroom_gateway_refusals_total",
            user="alice",
            project=PROJECT,
            reason="not_allowed",
        )
        == refused_before + 1
    )
    # What reaches the client is counted against alice's budget on this project.
    put = contents(
        alice,
        "alice",
        "work/counted.txt",
        "PUT",
        json={"type": "file", "format": "text", "content": "z" * 200_000},
    )
    assert put.status_code in (200, 201), put.text
    before = usage(alice, "alice", PROJECT)
    got = contents(alice, "alice", "work/counted.txt", params={"content": "1"})
    assert got.status_code == 200
    assert got.json()["content"] == "z" * 200_000
    after = usage(alice, "alice", PROJECT)
    assert after["hour_bytes"] - before["hour_bytes"] >= len(got.content)
    counted = after["by_kind"]["contents"] - before["by_kind"].get("contents", 0)
    assert counted >= len(got.content)
    assert metric(
        alice, "cleanroom_gateway_bytes_total", user="alice", project=PROJECT, kind="contents"
    ) >= len(got.content)


def test_kernel_code_can_read_the_proof_secret_with_one_uid(alice: Hub) -> None:
    """The limit docs/kubernetes.md states ("One uid"): the pod's first process runs as
    the researcher's uid, so a kernel reads this start's proof secret from its
    environment. (On Docker the server runs as another uid and the secret stays out of
    reach.) The gateway's other rules never relied on it."""
    secret = gateway_route(alice, "alice")["secret"]
    kernel = start_kernel(alice, "alice", PROJECT)
    code = f"print(open('/proc/1/environ', 'rb').read().count(b'={secret}'))"
    messages = execute(alice, "alice", PROJECT, kernel, code)
    out = "".join(
        m["content"].get("text", "") for m in messages if m["header"]["msg_type"] == "stream"
    )
    assert out.strip() == "1", messages[-3:]


def _dataset_volume(cluster: Path) -> dict[str, Any]:
    name = pods.dataset_claim_name(INSTANCE, DATASET, "v1")

    async def call(api: ApiClient) -> dict[str, Any]:
        found = await CoreV1Api(api).read_persistent_volume(name)
        return dict(api.sanitize_for_serialization(found))

    return k8s(cluster, call)


def _loop_devices(image: Path) -> str:
    done = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True, check=True)
    return done.stdout


def _stop_every_workspace(hub: Hub, cluster: Path) -> None:
    for model in hub.api("GET", "/users").json():
        for server in model.get("servers") or {}:
            hub.stop_server(model["name"], server)
    deadline = time.monotonic() + 90
    for user in ("alice", "bob"):
        while workspace_pods(cluster, user, PROJECT):
            assert time.monotonic() < deadline, f"{user}'s pod was not deleted"
            time.sleep(0.5)


def test_data_is_read_from_the_encrypted_version_and_locked_after_the_last_pod(
    alice: Hub, cluster: Path
) -> None:
    hub = alice
    info = hub.registry.get_dataset(DATASET)
    image = at_rest.image_of(info.location)
    # Encrypted at rest: one ext4 file, no clear folder.
    assert encrypted_fs.is_encrypted(image) and not Path(info.location).exists()
    hub.ensure_running("bob", PROJECT)
    assert encrypted_fs.is_unlocked(image)
    # The pods' dataset volume is the node folder where the version is unlocked.
    volume = _dataset_volume(cluster)
    unlocked = encrypted_fs.mountpoint(image) / encrypted_fs.DATA_DIR
    assert volume["spec"]["hostPath"]["path"] == str(unlocked)
    path, _, sha = next(f for f in info.files if f[0].endswith(".csv"))
    kernels = {user: start_kernel(hub, user, PROJECT) for user in ("alice", "bob")}
    for user, kernel in kernels.items():
        assert data_sha256(hub, user, kernel, path) == sha, user
    # bob's pod stops; alice's still binds the version's folder (in its own mount
    # namespace, which the hub's does not see): it stays unlocked and readable for her.
    hub.stop_server("bob", PROJECT)
    deadline = time.monotonic() + 90
    while workspace_pods(cluster, "bob", PROJECT):
        assert time.monotonic() < deadline, "bob's pod was not deleted"
        time.sleep(0.5)
    assert encrypted_fs.is_unlocked(image)
    assert data_sha256(hub, "alice", kernels["alice"], path) == sha
    # The last pod using it stops: locked (no host mount, no loop device).
    _stop_every_workspace(hub, cluster)
    wait_for(lambda: not encrypted_fs.is_unlocked(image), timeout=30)
    assert _loop_devices(image) == ""
