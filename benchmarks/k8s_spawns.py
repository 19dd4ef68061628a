"""Spawn latency on the one-node Kubernetes test cluster (the part ``k8s-spawn``).

Two hubs run side by side on the cluster of ``scripts/k8s.sh`` (``make k8s-up``):
cleanroom's with the Kubernetes backend (``CleanroomKubeSpawner``: registry, at-rest
unlock of the dataset, claims and volumes, NetworkPolicies, a hardened pod with the
tier's resources, the egress gateway's route), and a plain ``kubespawner.KubeSpawner``
hub with the same image (``benchmarks/plain_kube_hub_config.py``). Spawns are timed as on
Docker (``benchmarks/spawns.py``: the REST request until the server's own JSON answers
through the proxy) and alternate between the hubs, cold (a new user) and warm (again).

Then ``concurrent`` members of cleanroom's backend start at once (projects of at most 10
members, one member of each started first, untimed), in a quota tier of the benchmark's
own that the 2-CPU node can schedule 20 times (CPU and memory requests equal limits).

Where the time goes comes from the hubs' logs: for both, *prepare* (until KubeSpawner
asks for the pod), *boot* (until the server reports to the hub), *detect* (until the hub
declares it ready); for cleanroom also the spawner's own steps (its ``start steps`` log
line: registry, concurrency count, datasets, storage, policies, pod, gateway).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

import yaml
from cleanroom.paths import policies_dir, repo_root

from benchmarks import phases, spawns
from benchmarks.deployments import Deployment, _env, _hub, _mount_dataset, _seed_dataset
from benchmarks.stats import ratio, summary
from tests.integration.harness import Hub, free_port

HERE = Path(__file__).resolve().parent
PLAIN_CONFIG = HERE / "plain_kube_hub_config.py"
SCRIPT = repo_root() / "scripts" / "k8s.sh"
NODE_IP = os.environ.get("CLEANROOM_K8S_NODE_IP", "10.77.0.1")
CLEANROOM_INSTANCE = "benchk8s"
PLAIN_INSTANCE = "benchkplain"  # an instance name is 1-12 letters or digits
PROJECT_SIZE = 10
# A tier the one-node cluster can run 20 times at once: its 2 CPUs are the pods' CPU
# requests (limits = requests), so 0.1 CPU each; JupyterLab idles at about 85 MiB.
BURST_TIER = "benchburst"
BURST_TIER_SPEC = {
    "cpu": 0.1,
    "memory": "512M",
    "pids": 256,
    "storage": "1G",
    "project_storage": "1G",
    "home": "64M",
    "tmp": "64M",
    "workspaces": PROJECT_SIZE,
    "workspaces_per_user": 1,
}
# KubeSpawner asks the API for the pod (retried with backoff: the first one counts).
_CREATE_POD = re.compile(r"Attempting to create pod (\S+),")
_STEPS = re.compile(r"Workspace (\S+)/(\S+) start steps: (\{.*\})$")


class PlainKubeHub(Hub):
    """The harness's ``Hub`` started from the stock KubeSpawner configuration."""

    config_file: ClassVar[Path] = PLAIN_CONFIG


def _k8s(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=900
    )


def cluster_up() -> bool:
    """Whether the test cluster runs (``scripts/k8s.sh status``)."""
    try:
        return _k8s("status").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _kubectl(kubeconfig: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _namespace(instance: str) -> str:
    return f"cleanroom-{instance}"


def _policies(root: Path) -> Path:
    """The deployment's policies with the benchmark's burst tier added."""
    folder = root / "policies"
    shutil.copytree(policies_dir(), folder)
    quotas = folder / "quotas.yaml"
    data = yaml.safe_load(quotas.read_text())
    data["tiers"][BURST_TIER] = BURST_TIER_SPEC
    quotas.write_text(yaml.safe_dump(data, sort_keys=False))
    # The data's classification asks for at least `tiny`: the burst tier ranks with it.
    classes = folder / "classification.yaml"
    data = yaml.safe_load(classes.read_text())
    order = data["tier_order"]
    order.insert(order.index("tiny") + 1, BURST_TIER)
    classes.write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def _k8s_env(state: Path, instance: str, kubeconfig: Path) -> dict[str, str]:
    env = _env(state, instance)
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "CLEANROOM_K8S_HUB_IP": NODE_IP,
            "CLEANROOM_K8S_NAMESPACE": _namespace(instance),
            "CLEANROOM_LIBRARY_PORT": str(free_port()),
        }
    )
    return env


def _wait_for_service_account(kubeconfig: Path, namespace: str) -> None:
    """Pods are refused until the controller has made the namespace's default account."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _kubectl(kubeconfig, "-n", namespace, "get", "sa", "default", check=False)
        if found.strip():
            return
        time.sleep(0.2)
    raise RuntimeError(f"namespace {namespace}: no default service account after 60 s")


def start_hubs(root: Path, kubeconfig: Path) -> list[Deployment]:
    """Cleanroom's hub on the cluster (its namespace made by the spawner) and the plain
    KubeSpawner hub (its namespace made here)."""
    state = root / "k8s-cleanroom-state"
    state.mkdir(parents=True)
    env = _k8s_env(state, CLEANROOM_INSTANCE, kubeconfig)
    env["CLEANROOM_BACKEND"] = "kubernetes"
    env["CLEANROOM_K8S_FOLDER_STORAGE"] = "hostpath"
    env["CLEANROOM_K8S_IMAGE_PULL_POLICY"] = "Never"
    env["CLEANROOM_POLICIES_DIR"] = str(_policies(root))
    hub = _hub(Hub, state, env)
    _seed_dataset(hub, root)
    deps: list[Deployment] = []
    try:
        hub.start()
        deps.append(Deployment("cleanroom", hub, CLEANROOM_INSTANCE))
        state = root / "k8s-plain-state"
        state.mkdir(parents=True)
        env = _k8s_env(state, PLAIN_INSTANCE, kubeconfig)
        namespace = env["CLEANROOM_K8S_NAMESPACE"]
        _kubectl(kubeconfig, "create", "namespace", namespace)
        _wait_for_service_account(kubeconfig, namespace)
        plain = _hub(PlainKubeHub, state, env)
        plain.start()
        deps.append(Deployment("plain", plain, PLAIN_INSTANCE))
    except Exception:
        stop_hubs(deps or [Deployment("cleanroom", hub, CLEANROOM_INSTANCE)], kubeconfig)
        raise
    return deps


def stop_hubs(deps: list[Deployment], kubeconfig: Path) -> None:
    """Stop the hubs and remove what they made on the cluster: their namespaces (pods,
    claims, policies), cleanroom's volumes; then lock the dataset versions again."""
    for dep in deps:
        dep.hub.stop()
    for instance in (CLEANROOM_INSTANCE, PLAIN_INSTANCE):
        _kubectl(
            kubeconfig, "delete", "namespace", _namespace(instance), "--ignore-not-found",
            "--wait=true", "--timeout=180s", check=False,
        )  # fmt: skip
    _kubectl(
        kubeconfig, "delete", "pv", "-l", f"cleanroom.instance={CLEANROOM_INSTANCE}", check=False
    )
    from cleanroom.library import at_rest

    for dep in deps:
        if dep.kind == "cleanroom":
            at_rest.lock_unused(dep.hub.state / "library")


def step_times(text: str) -> list[dict[str, float]]:
    """The cleanroom spawner's ``start steps`` of every start logged in ``text``."""
    found = []
    for line in text.splitlines():
        if m := _STEPS.search(line):
            found.append({k: float(v) for k, v in json.loads(m.group(3)).items()})
    return found


def _log_since(log: Path, since: int) -> str:
    with log.open("rb") as f:
        f.seek(since)
        return f.read().decode(errors="replace")


def _where(dep: Deployment, since: int) -> dict[str, Any]:
    """Phases (both hubs) and the spawner's steps (cleanroom) logged after ``since``."""
    text = _log_since(dep.hub.state / "hub.log", since)
    found = phases.spawn_phases(text, start=_CREATE_POD)
    out: dict[str, Any] = {p: summary([f[p] for f in found]) for p in phases.PHASES}
    steps = step_times(text)
    if steps:
        out["steps"] = {k: summary([s[k] for s in steps if k in s]) for k in steps[0]}
    return out


def run_sequential(deps: list[Deployment], n: int) -> dict[str, Any]:
    """Cold and warm spawns, alternating between the hubs, with where the time goes."""
    cold = {d.kind: [(f"kc{i}", f"bench-kc{i}") for i in range(n)] for d in deps}
    warm = {d.kind: [("kw0", "bench-kwarm")] * n for d in deps}
    for dep in deps:
        for user, server in cold[dep.kind]:
            dep.add_users([user], server)
        dep.add_users(["kw0"], "bench-kwarm")
    out: dict[str, Any] = {"phases": {}}
    for phase, pairs, prime in (("cold", cold, False), ("warm", warm, True)):
        mark = {d.kind: phases.log_size(d.hub.state / "hub.log") for d in deps}
        runs = asyncio.run(spawns.sequential(deps, pairs, prime=prime))
        out["phases"][phase] = {d.kind: _where(d, mark[d.kind]) for d in deps}
        out[phase] = {kind: spawns.report(found) for kind, found in runs.items()}
        cr, pl = out[phase]["cleanroom"], out[phase]["plain"]
        out[phase]["ratio_p50"] = ratio(cr["p50"], pl["p50"])
        out[phase]["ratio_p95"] = ratio(cr["p95"], pl["p95"])
        print(
            f"   k8s {phase}: cleanroom p50 {cr['p50']:.2f} s, plain p50 {pl['p50']:.2f} s, "
            f"ratio {out[phase]['ratio_p50']:.2f}",
            flush=True,
        )
    return out


def _burst_project(dep: Deployment, name: str) -> None:
    """A project of the burst tier, with the demo dataset, made through the domain."""
    from cleanroom.registry.governance import Governance

    reg = dep.registry
    if name in {p.name for p in reg.list_projects()}:
        return
    # The domain checks the tier against the deployment's policies (the hub's folder).
    before = os.environ.get("CLEANROOM_POLICIES_DIR")
    os.environ["CLEANROOM_POLICIES_DIR"] = dep.hub.env["CLEANROOM_POLICIES_DIR"]
    try:
        Governance(reg).create_project(
            name, f"benchmark {name}", quota_tier=BURST_TIER, actor="benchmark"
        )
    finally:
        if before is None:
            del os.environ["CLEANROOM_POLICIES_DIR"]
        else:
            os.environ["CLEANROOM_POLICIES_DIR"] = before
    _mount_dataset(reg, name)


def run_concurrent(dep: Deployment, level: int) -> dict[str, Any]:
    """``level`` members of cleanroom's backend starting at once."""
    users = [f"kb{i}" for i in range(level)]
    servers = {u: f"bench-kb{i // PROJECT_SIZE}" for i, u in enumerate(users)}
    for user, server in servers.items():
        _burst_project(dep, server)
        dep.add_users([user], server)
    firsts = {s: u for u, s in reversed(servers.items())}
    asyncio.run(spawns.prime(dep, [(u, s) for s, u in firsts.items()]))
    log = dep.hub.state / "hub.log"
    mark = phases.log_size(log)
    all_ready, found, stopped = asyncio.run(spawns.concurrent(dep, servers))
    entry = spawns.report(found)
    entry["where"] = _where(dep, mark)
    entry["all_ready_seconds"] = all_ready
    entry["stop_all_seconds"] = stopped
    entry["tier"] = {"name": BURST_TIER, **BURST_TIER_SPEC}
    print(
        f"   k8s x{level}: all ready in {all_ready:.1f} s, {entry['failures']} failed",
        flush=True,
    )
    return entry


def describe_cluster(kubeconfig: Path) -> dict[str, Any]:
    """The node's Kubernetes version, capacity and runtime, and KubeSpawner's version."""
    from importlib.metadata import version

    node = json.loads(_kubectl(kubeconfig, "get", "nodes", "-o", "json"))["items"][0]
    info = node["status"]["nodeInfo"]
    return {
        "kubernetes": info.get("kubeletVersion"),
        "container runtime": info.get("containerRuntimeVersion"),
        "node cpu": node["status"]["capacity"].get("cpu"),
        "node memory": node["status"]["capacity"].get("memory"),
        "kubespawner": version("jupyterhub-kubespawner"),
    }


def run(root: Path, n: int, concurrent: int) -> dict[str, Any]:
    """The whole part: both hubs on the running cluster, sequential then concurrent."""
    if not cluster_up():
        raise RuntimeError("the Kubernetes test cluster is down: make k8s-up")
    kubeconfig = Path(_k8s("kubeconfig").stdout.strip())
    # The workspace image as built now, into the cluster (unchanged: nothing is copied).
    done = _k8s("images")
    if done.returncode != 0:
        raise RuntimeError(f"importing the images into the cluster: {done.stderr[-2000:]}")
    out: dict[str, Any] = {"cluster": describe_cluster(kubeconfig)}
    deps = start_hubs(root, kubeconfig)
    try:
        out["sequential"] = run_sequential(deps, n)
        if concurrent > 0:
            try:
                out["concurrent"] = run_concurrent(deps[0], concurrent)
            except Exception as exc:  # the sequential figures stand on their own
                out["concurrent"] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    finally:
        stop_hubs(deps, kubeconfig)
    return out
