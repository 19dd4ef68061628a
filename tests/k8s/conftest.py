"""Fixtures of the Kubernetes tests: the one-node test cluster and a hub that spawns on it.

The cluster is ``scripts/k8s.sh`` (``make k8s-up``): used as it is when it is up, else
started here and stopped again at the end of the session. Tests marked ``k8s`` skip
without it on a developer's machine and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cleanroom.paths import repo_root

from tests.ci import skip_or_fail
from tests.integration.harness import INSTANCE as SUITE_INSTANCE
from tests.integration.harness import Hub, free_port

SCRIPT = repo_root() / "scripts" / "k8s.sh"
NODE_IP = os.environ.get("CLEANROOM_K8S_NODE_IP", "10.77.0.1")
# Its own instance: the Docker suite's hub (one per instance on a host) runs beside it.
INSTANCE = f"{SUITE_INSTANCE[:9]}k8s"  # 1-12 letters or digits
NAMESPACE = f"cleanroom-{INSTANCE}"
PROJECT = "p-alpha"
OTHER_PROJECT = "p-beta"


def _k8s(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=1500
    )


@pytest.fixture(scope="session")
def cluster() -> Iterator[Path]:
    """The test cluster's admin kubeconfig (the cluster started here if it was down)."""
    if os.geteuid() != 0:
        skip_or_fail("the Kubernetes test cluster needs root (kubelet, containerd)")
    started = False
    if _k8s("status").returncode != 0:
        if os.environ.get("CLEANROOM_K8S_AUTO_UP", "1") != "1":
            skip_or_fail("the test cluster is down (make k8s-up)")
        done = _k8s("up")
        if done.returncode != 0:
            skip_or_fail(f"the test cluster did not start:\n{done.stderr[-3000:]}")
        started = True
    kubeconfig = Path(_k8s("kubeconfig").stdout.strip())
    try:
        yield kubeconfig
    finally:
        if started:
            _k8s("down")


@pytest.fixture(scope="session")
def k8s_images() -> list[str]:
    """The workspace images, built as the integration suite builds them (unchanged
    inputs: nothing is built), then imported into the cluster."""
    from cleanroom.images.build import build_images

    built = build_images(("base", "notebook"), progress=lambda line: print(line, flush=True))
    return [image.tag for image in built]


@pytest.fixture(scope="session")
def k8s_hub(
    cluster: Path, k8s_images: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    """A clean room on the test cluster (``CLEANROOM_BACKEND=kubernetes``) with the
    integration suite's people, projects and dataset."""
    from tests.integration.deployment import _seed

    # The images the suite just built (unchanged ones are skipped) go into the cluster.
    done = _k8s("images")
    assert done.returncode == 0, done.stderr
    tmp = tmp_path_factory.mktemp("cleanroom-k8s")
    state = tmp / "state"
    state.mkdir()
    public = free_port()
    env = {
        **os.environ,
        "CLEANROOM_BACKEND": "kubernetes",
        "KUBECONFIG": str(cluster),
        "CLEANROOM_K8S_HUB_IP": NODE_IP,
        "CLEANROOM_K8S_NAMESPACE": NAMESPACE,
        "CLEANROOM_K8S_FOLDER_STORAGE": "hostpath",
        "CLEANROOM_K8S_IMAGE_PULL_POLICY": "Never",
        "CLEANROOM_STATE_DIR": str(state),
        "CLEANROOM_INSTANCE": INSTANCE,
        "CLEANROOM_PUBLIC_URL": f"http://127.0.0.1:{public}",
        "CLEANROOM_HUB_PORT": str(free_port()),
        "CLEANROOM_PROXY_API_PORT": str(free_port()),
        "CLEANROOM_AIRLOCK_PORT": str(free_port()),
        "CLEANROOM_AIRLOCK_SUBMIT_PORT": str(free_port()),
        "CLEANROOM_GATEWAY_PORT": str(free_port()),
        "CLEANROOM_GATEWAY_API_PORT": str(free_port()),
        "CLEANROOM_LIBRARY_PORT": str(free_port()),
        "TEST_PASSWORD": "integration-password",
        "CLEANROOM_TOKEN_FILE": str(tmp / "cli-token"),
    }
    for name in ("CLEANROOM_REGISTRY_URL", "CLEANROOM_TOKEN", "CLEANROOM_HUB_DB_URL"):
        env.pop(name, None)
    decisions = _seed(env, tmp)
    running = Hub(
        state=state,
        env=env,
        public_url=f"http://127.0.0.1:{public}",
        hub_port=int(env["CLEANROOM_HUB_PORT"]),
        airlock_submit_port=int(env["CLEANROOM_AIRLOCK_SUBMIT_PORT"]),
    )
    running.standing("opal", "alice", "bob", "carol", "dave", "olga", "otto", "pat")
    for person, *step in decisions:
        done = running.cli_as(person, *step)
        assert done.returncode == 0, f"{step}: {done.stderr}"
    running.start()
    try:
        yield running
    finally:
        running.stop()
        print("--- end of the k8s hub log ---")
        print(running.log_tail(60))
        # The namespace goes with its pods, claims and policies; our volumes by label.
        kubectl = ["kubectl", "--kubeconfig", str(cluster)]
        subprocess.run(
            [*kubectl, "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=90s"],
            capture_output=True,
            check=False,
        )
        subprocess.run(
            [*kubectl, "delete", "pv", "-l", f"cleanroom.instance={INSTANCE}"],
            capture_output=True,
            check=False,
        )
        # With no pod left, no dataset version may stay unlocked on the node.
        from cleanroom.library import at_rest

        at_rest.lock_unused(state / "library")
