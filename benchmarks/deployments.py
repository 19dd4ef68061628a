"""The two hubs compared, started side by side: cleanroom's and a plain DockerSpawner's.

Both run as real processes (hub + proxy, and for cleanroom whatever its configuration
adds, such as the airlock service) with their own throwaway state folders, free ports
and deployment names, through the integration suite's ``Hub`` harness. Users are
created in bulk and given API tokens through the hub's REST API with the command line's
service token, so a benchmark with 50 users does not start 100 command-line processes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import docker
from cleanroom.paths import repo_root
from cleanroom.registry import Registry
from docker.errors import APIError, NotFound

from tests.integration.harness import Hub, free_port
from tests.people import in_standing

HERE = Path(__file__).resolve().parent
PLAIN_CONFIG = HERE / "plain_hub_config.py"
DATASET = "press-line"
PASSWORD = "benchmark-password"
PROVIDER = "Benchmark"
# Names of the deployments on the engine: networks, firewall chain, container labels.
# CLEANROOM_BENCH_INSTANCE renames both, so two checkouts can benchmark on one engine.
CLEANROOM_INSTANCE = os.environ.get("CLEANROOM_BENCH_INSTANCE", "bench")
PLAIN_INSTANCE = f"{CLEANROOM_INSTANCE}plain"
PLAIN_LABEL = "cleanroom.bench"


class PlainHub(Hub):
    """The harness's ``Hub`` started from another configuration file."""

    config_file: ClassVar[Path] = PLAIN_CONFIG


@dataclass
class Deployment:
    """One hub under test: its kind, the harness handle and the users made so far."""

    kind: str  # "cleanroom" or "plain"
    hub: Hub
    instance: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def registry(self) -> Registry:
        """The cleanroom registry of this deployment's state folder."""
        return Registry(f"sqlite:///{self.hub.state / 'registry.sqlite'}")

    def add_users(self, names: list[str], project: str) -> None:
        """Create ``names`` (registry members of ``project`` for cleanroom) with tokens."""
        if self.kind == "cleanroom":
            from cleanroom.registry.governance import Governance

            reg = self.registry
            writer = Governance(reg)
            known = {p.name for p in reg.list_projects()}
            if project not in known:
                writer.create_project(project, f"benchmark {project}", actor="benchmark")
                _mount_dataset(reg, project)
            users = {u.name for u in reg.list_users()}
            for name in names:
                if name not in users:
                    writer.add_user(name, ["researcher"], actor="benchmark")
                    # Verified and trained: the identity checks pass as for a real person.
                    in_standing(reg, name, enrol=False)
                writer.add_member(project, name, actor="benchmark")
        for name in names:
            if name in self.tokens:
                continue
            reply = self.hub.api("POST", f"/users/{name}")
            if reply.status_code not in (201, 409):
                raise RuntimeError(f"{self.kind}: creating hub user {name}: {reply.text}")
            reply = self.hub.api("POST", f"/users/{name}/tokens", json={"note": "benchmark"})
            if reply.status_code != 201:
                raise RuntimeError(f"{self.kind}: token of {name}: {reply.text}")
            self.tokens[name] = str(reply.json()["token"])

    def process_ids(self) -> dict[str, int]:
        """The hub's own process and its children (proxy, managed services) by role."""
        import psutil

        assert self.hub.process is not None
        hub = psutil.Process(self.hub.process.pid)
        found = {"hub": hub.pid}
        for child in hub.children(recursive=True):
            try:
                cmd = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "configurable-http-proxy" in cmd:
                found["proxy"] = child.pid
            elif "cleanroom.airlock" in cmd:
                found["airlock"] = child.pid
            elif "cleanroom.gateway" in cmd:
                found["gateway"] = child.pid
        return found


def _mount_dataset(reg: Registry, project: str) -> None:
    """Attach the demo dataset to ``project``, approved by its provider where needed.

    Where the registry's provider approval is not available, the project mounts no
    dataset: a workspace then starts without the read-only ``/data`` bind mount.
    """
    from cleanroom.registry.governance import Governance

    gov = Governance(reg)
    gov.attach_dataset(project, DATASET, actor="benchmark")
    if not reg.unapproved_datasets(project):
        return
    try:
        if "benchprovider" not in {u.name for u in reg.list_users()}:
            # Decisions need people in standing (verified, trained, a second factor).
            gov.add_user("benchoperator", ["operator"], actor="benchmark")
            gov.add_user("benchprovider", ["provider"], actor="benchmark")
            in_standing(reg, "benchoperator")
            in_standing(reg, "benchprovider")
            gov.add_provider_account(PROVIDER, "benchprovider", actor="benchoperator")
        gov.approve_dataset_use(project, DATASET, actor="benchprovider")
    except Exception as exc:  # a benchmark measures workspaces, with or without data
        print(f"   (no dataset for {project}: {exc})", flush=True)
        gov.detach_dataset(project, DATASET, actor="benchmark")


def _env(state: Path, instance: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CLEANROOM_STATE_DIR": str(state),
        "CLEANROOM_INSTANCE": instance,
        "CLEANROOM_HUB_PORT": str(free_port()),
        "CLEANROOM_PROXY_API_PORT": str(free_port()),
        "CLEANROOM_AIRLOCK_PORT": str(free_port()),
        "CLEANROOM_AIRLOCK_SUBMIT_PORT": str(free_port()),
        # The gateway's listeners too: the defaults (8003, 8004) are `make up`'s.
        "CLEANROOM_GATEWAY_PORT": str(free_port()),
        "CLEANROOM_GATEWAY_API_PORT": str(free_port()),
        "BENCH_PASSWORD": PASSWORD,
        # The hub's children (the airlock service) must import the benchmark's checkout.
        "CLEANROOM_ROOT": str(repo_root()),
    }
    env["CLEANROOM_PUBLIC_URL"] = f"http://127.0.0.1:{free_port()}"
    env.pop("CLEANROOM_REGISTRY_URL", None)
    env.pop("CLEANROOM_POLICIES_DIR", None)
    return env


def _hub(cls: type[Hub], state: Path, env: dict[str, str]) -> Hub:
    return cls(
        state=state,
        env=env,
        public_url=env["CLEANROOM_PUBLIC_URL"],
        hub_port=int(env["CLEANROOM_HUB_PORT"]),
        airlock_submit_port=int(env["CLEANROOM_AIRLOCK_SUBMIT_PORT"]),
    )


def _seed_dataset(hub: Hub, work: Path) -> None:
    """Register the demo dataset once, as an operator would (every project mounts it)."""
    from cleanroom.demo.press_line import write_press_line

    source = work / "press-line-source"
    source.mkdir(parents=True, exist_ok=True)
    write_press_line(source, rows=5_000, seed=11)
    done = hub.cli(
        "datasets", "register", str(source), "--name", DATASET, "--version", "v1",
        "--provider", PROVIDER,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"registering the dataset failed: {done.stderr}")


def start_cleanroom(root: Path) -> Deployment:
    """A cleanroom hub (deployment ``bench``) with the demo dataset registered."""
    state = root / "cleanroom-state"
    state.mkdir(parents=True)
    hub = _hub(Hub, state, _env(state, CLEANROOM_INSTANCE))
    _seed_dataset(hub, root)
    hub.start()
    return Deployment("cleanroom", hub, CLEANROOM_INSTANCE)


def start_plain(root: Path) -> Deployment:
    """The baseline hub with stock DockerSpawner."""
    state = root / "plain-state"
    state.mkdir(parents=True)
    hub = _hub(PlainHub, state, _env(state, PLAIN_INSTANCE))
    hub.start()
    return Deployment("plain", hub, PLAIN_INSTANCE)


def stop(deployment: Deployment) -> None:
    """Stop the hub, then remove every container, volume, network and rule it made."""
    deployment.hub.stop()
    client = docker.from_env()
    if deployment.kind == "cleanroom":
        label = f"cleanroom.instance={deployment.instance}"
    else:
        label = f"{PLAIN_LABEL}={deployment.instance}"
    for container in client.containers.list(all=True, filters={"label": label}):
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)
    if deployment.kind != "cleanroom":
        return
    _release_folders(client, deployment)
    deployment.hub.cli("firewall", "remove")
    for network in client.networks.list(filters={"label": label}):
        with contextlib.suppress(NotFound, APIError):
            network.remove()


def _release_folders(client: docker.DockerClient, deployment: Deployment) -> None:
    """Detach the loop devices and volumes of size-limited work folders, where made."""
    try:
        from cleanroom.workspace import storage_quota
    except ImportError:
        return  # work folders are plain folders: nothing outside the state folder
    storage_quota.release_all(client, deployment.instance, deployment.hub.state / "workspaces")
    for volume in client.volumes.list(
        filters={"label": f"cleanroom.instance={deployment.instance}"}
    ):
        with contextlib.suppress(NotFound, APIError):
            volume.remove()
