"""The pod KubeSpawner makes from the Kubernetes spawner's settings (no cluster needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cleanroom.gateway import proof
from cleanroom.kubernetes import pods
from cleanroom.kubernetes.spawner import CleanroomKubeSpawner
from jupyterhub.objects import Hub
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner
from tornado import web

from tests.k8s.test_pods import plan

IMAGE = "cleanroom/notebook:latest"
# A kubeconfig KubeSpawner can load; nothing is ever sent to its (closed) port.
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: unused}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


class User:
    name = "erin"
    id = 7
    url = "/user/erin/"
    escaped_name = "erin"
    server = None
    spawners: dict[str, Any] = {}


@pytest.fixture
async def spawner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CleanroomKubeSpawner:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    # kubernetes_asyncio reads $KUBECONFIG once, at import.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
    made = CleanroomKubeSpawner(_mock=True, user=User(), hub=Hub(), hub_ip="10.77.0.1")
    p = plan()
    made._allowed_images = {"notebook": IMAGE}
    made.image = IMAGE
    made._pod_plan = p
    made._apply(p)
    return made


async def manifest(spawner: CleanroomKubeSpawner) -> dict[str, Any]:
    made: dict[str, Any] = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    return made


async def test_kubespawners_pod_from_our_settings_holds_the_wall(
    spawner: CleanroomKubeSpawner,
) -> None:
    pod = await manifest(spawner)
    pods.check_pod(pod, allowed_images={IMAGE})
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["metadata"]["labels"][pods.LABEL_PROJECT] == "p-gamma"
    env = {e["name"]: e.get("value") for e in container["env"]}
    # Pods reach the hub at hub_ip, never at the hub's loopback connect URL.
    assert env["JUPYTERHUB_API_URL"].startswith("http://10.77.0.1:8081/")
    assert env["CLEANROOM_PROJECT"] == "p-gamma"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/data/press-line"]["readOnly"] is True


def _context(**changes: Any) -> dict[str, Any]:
    return {**pods.container_security_context(), **changes}


@pytest.mark.parametrize(
    "change",
    [
        {"container_security_context": _context(privileged=True)},
        {"container_security_context": _context(allowPrivilegeEscalation=True)},
        {"container_security_context": _context(capabilities={"add": ["NET_ADMIN"]})},
        {"container_security_context": _context(runAsUser=0, runAsNonRoot=False)},
        {"automount_service_account_token": True},
        {"extra_pod_config": {"hostNetwork": True}},
        {"image": "evil/miner:latest"},
    ],
)
async def test_a_pod_that_would_not_hold_the_wall_is_refused(
    spawner: CleanroomKubeSpawner, change: dict[str, Any]
) -> None:
    for name, value in change.items():
        setattr(spawner, name, value)
    with pytest.raises(web.HTTPError) as refused:
        await manifest(spawner)
    assert refused.value.status_code == 500


async def test_the_pod_gets_this_starts_proof_secret_and_the_state_keeps_it(
    spawner: CleanroomKubeSpawner,
) -> None:
    spawner.server_secret = proof.new_secret()
    pod = await manifest(spawner)
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env[proof.SECRET_ENV] == spawner.server_secret
    # Never in a label or an annotation (those are readable by more than the hub).
    notes = {**pod["metadata"]["labels"], **pod["metadata"]["annotations"]}
    assert spawner.server_secret not in notes.values()
    state = spawner.get_state()
    again = CleanroomKubeSpawner(_mock=True, user=User(), hub=Hub(), hub_ip="10.77.0.1")
    again.load_state(state)
    assert again.server_secret == spawner.server_secret
    again.clear_state()
    assert again.server_secret == ""


def test_with_a_gateway_kubespawner_sees_the_gateways_address_once_the_pod_started(
    spawner: CleanroomKubeSpawner,
) -> None:
    # KubeSpawner's poll() rewrites the hub's record of the server (and so the proxy's
    # route) when this address differs from it: it must stay the gateway's.
    pod = {
        "metadata": {"name": "jupyter-erin--p-gamma"},
        "spec": {"containers": [{"ports": [{"name": "notebook-port", "containerPort": 8888}]}]},
        "status": {"podIP": "10.77.0.9"},
    }
    spawner.gateway_url = "http://127.0.0.1:8003"
    assert spawner._get_pod_url(pod) == "http://127.0.0.1:8003"
    # While KubeSpawner's start runs, the pod's own address (the gateway's route to it).
    spawner._starting_pod = True
    assert spawner._get_pod_url(pod) == "http://10.77.0.9:8888"
    spawner._starting_pod = False
    spawner.gateway_url = ""
    assert spawner._get_pod_url(pod) == "http://10.77.0.9:8888"


def _reflected_pod(spawner: CleanroomKubeSpawner, secret: str, phase: str, uid: str) -> Any:
    """A pod as KubeSpawner's pod reflector holds it (the API's JSON)."""
    return {
        "metadata": {"name": spawner.pod_name, "uid": uid},
        "spec": {
            "containers": [
                {
                    "env": [{"name": proof.SECRET_ENV, "value": secret}],
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                }
            ]
        },
        "status": {"phase": phase, "podIP": "10.77.0.9", "containerStatuses": [{"ready": True}]},
    }


@pytest.fixture
def reflector(spawner: CleanroomKubeSpawner, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Stands in for KubeSpawner's shared pod reflector (its ``pods``: key -> pod)."""
    shown = SimpleNamespace(pods={})
    key = spawner._get_reflector_key("pods")
    monkeypatch.setitem(CleanroomKubeSpawner.reflectors, key, shown)
    spawner.server_secret = proof.new_secret()
    return shown


async def test_a_start_takes_its_own_pod_once_it_runs_never_an_older_one(
    spawner: CleanroomKubeSpawner, reflector: SimpleNamespace
) -> None:
    key = f"{spawner.namespace}/{spawner.pod_name}"
    reflector.pods[key] = _reflected_pod(spawner, "an older start's", "Running", "old")
    waiting = asyncio.ensure_future(spawner._running_pod())
    await asyncio.sleep(0.3)
    assert not waiting.done(), "a running pod of another start is not this start's"
    reflector.pods[key] = _reflected_pod(spawner, spawner.server_secret, "Pending", "new")
    await asyncio.sleep(0.3)
    assert not waiting.done(), "this start's pod does not run yet"
    reflector.pods[key] = _reflected_pod(spawner, spawner.server_secret, "Running", "new")
    found = await asyncio.wait_for(waiting, 10)
    assert found["metadata"]["uid"] == "new"


async def test_the_pod_start_ends_when_the_pod_runs_and_stops_kubespawners_wait(
    spawner: CleanroomKubeSpawner, reflector: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"{spawner.namespace}/{spawner.pod_name}"
    kube_wait = asyncio.Event()

    async def kubespawner_start(self: Any) -> str:
        # Its pod is made; its own wait for it, with backoff, has not ended yet.
        reflector.pods[key] = _reflected_pod(spawner, spawner.server_secret, "Running", "u1")
        await kube_wait.wait()
        return "never returned"

    monkeypatch.setattr(KubeSpawner, "start", kubespawner_start)
    spawner._starting_pod = True
    url = await asyncio.wait_for(spawner._start_pod(), 10)
    assert url == "http://10.77.0.9:8888"
    assert spawner.pod_id == "u1"


async def test_kubespawners_start_error_stands(
    spawner: CleanroomKubeSpawner, reflector: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def kubespawner_start(self: Any) -> str:
        raise TimeoutError("pod did not start in 300 seconds!")

    monkeypatch.setattr(KubeSpawner, "start", kubespawner_start)
    with pytest.raises(TimeoutError, match="did not start"):
        await asyncio.wait_for(spawner._start_pod(), 10)


async def test_the_start_waits_until_the_server_listens_and_sends_it_nothing(
    spawner: CleanroomKubeSpawner, reflector: SimpleNamespace
) -> None:
    key = f"{spawner.namespace}/{spawner.pod_name}"
    reflector.pods[key] = _reflected_pod(spawner, spawner.server_secret, "Running", "u1")
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read())  # until the spawner closes its end
        writer.close()

    probe = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    # Not listening yet (refused): the spawner waits.
    waiting = asyncio.ensure_future(spawner._await_listening("127.0.0.1", port))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        await asyncio.wait_for(waiting, 10)
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        assert received == [b""], "a bare connect: no byte reaches the pod past the gateway"
    finally:
        server.close()
        await server.wait_closed()
    # A pod that is gone is not waited for.
    del reflector.pods[key]
    await asyncio.wait_for(spawner._await_listening("127.0.0.1", port), 10)


async def test_a_start_the_hubs_death_cut_short_is_undone_at_the_first_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The hub commits a spawner's state only once its start returned: a record with a
    # server but no state is a start cut short. Its pod (found by name) is deleted, and
    # the poll says not running, at once, instead of KubeSpawner's "running".
    stops: list[bool] = []

    async def stop(self: Any, now: bool = False) -> None:
        stops.append(now)

    async def kubespawner_poll(self: Any) -> None:
        return None  # a pod of that name runs

    monkeypatch.setattr(CleanroomKubeSpawner, "stop", stop)
    monkeypatch.setattr(KubeSpawner, "poll", kubespawner_poll)
    for state, undone in (({}, True), ({"server_secret": proof.new_secret()}, False)):
        restarted = CleanroomKubeSpawner(_mock=True, user=User(), hub=Hub(), hub_ip="10.77.0.1")
        restarted.load_state(state)
        restarted.server = SimpleNamespace(base_url="/user/erin/")  # the hub's record
        stops.clear()
        status = await restarted.poll()
        assert (status is not None, stops) == ((True, [True]) if undone else (False, []))
        assert await restarted.poll() is None, "undone once; then KubeSpawner's poll"
