"""The real clean room the integration, gateway and wall tests share: one for the whole
session (its fixtures are imported by tests/conftest.py, and only there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from cleanroom.workspace.storage_quota import release_all

from tests.ci import skip_or_fail
from tests.integration.harness import INSTANCE, Hub, free_port

PROJECT = "p-alpha"
OTHER_PROJECT = "p-beta"
DATASET = "press-line"


def _require_root() -> None:
    if os.geteuid() != 0:
        skip_or_fail("the integration suite installs firewall rules and needs root")


@pytest.fixture(scope="session")
def workspace_images() -> list[str]:
    """The workspace images, built once (and skipped when their inputs are unchanged)."""
    from cleanroom.images.build import build_images

    built = build_images(("base", "notebook"), progress=lambda line: print(line, flush=True))
    return [image.tag for image in built]


def _seed(env: dict[str, str], tmp: Path) -> list[list[str]]:
    """Seed what needs no person's credential; returns the steps that do (run once the
    people are in standing, as the person named first)."""
    from cleanroom.demo.press_line import write_press_line

    data = tmp / "press-line-source"
    data.mkdir()
    write_press_line(data, rows=5_000, seed=11)
    steps = [
        ["users", "add", "alice", "--password-env", "TEST_PASSWORD"],
        ["users", "add", "bob", "--password-env", "TEST_PASSWORD"],
        ["users", "add", "carol", "--password-env", "TEST_PASSWORD"],
        ["users", "add", "dave", "--password-env", "TEST_PASSWORD"],
        ["users", "add", "olga", "--role", "officer", "--password-env", "TEST_PASSWORD"],
        ["users", "add", "otto", "--role", "officer", "--password-env", "TEST_PASSWORD"],
        ["users", "add", "opal", "--role", "operator", "--password-env", "TEST_PASSWORD"],
        ["projects", "create", PROJECT, "--title", "Alpha study"],
        ["projects", "create", OTHER_PROJECT, "--title", "Beta study"],
        ["members", "add", PROJECT, "alice"],
        ["members", "add", PROJECT, "bob"],
        ["members", "add", PROJECT, "dave"],
        ["members", "add", OTHER_PROJECT, "carol"],
        [
            "datasets",
            "register",
            str(data),
            "--name",
            DATASET,
            "--version",
            "v1",
            "--provider",
            "Acme",
        ],
        ["datasets", "attach", PROJECT, DATASET],
        ["datasets", "attach", OTHER_PROJECT, DATASET],
        ["users", "add", "pat", "--role", "provider", "--password-env", "TEST_PASSWORD"],
    ]
    for step in steps:
        done = subprocess.run(
            [sys.executable, "-m", "cleanroom.cli.main", *step],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{step}: {done.stderr}"
    # The dataset's provider approves both projects' use (refused at spawn otherwise);
    # each decision carries the deciding person's own credential.
    return [
        ["opal", "providers", "add-user", "Acme", "pat"],
        ["pat", "datasets", "approve", PROJECT, DATASET],
        ["pat", "datasets", "approve", OTHER_PROJECT, DATASET],
    ]


@pytest.fixture(scope="session")
def hub(workspace_images: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A running clean room (deployment ``test``) with two projects and a dataset."""
    _require_root()
    tmp = tmp_path_factory.mktemp("cleanroom")
    state = tmp / "state"
    state.mkdir()
    public = free_port()
    env = {
        **os.environ,
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
    env.pop("CLEANROOM_REGISTRY_URL", None)
    env.pop("CLEANROOM_TOKEN", None)
    decisions = _seed(env, tmp)
    running = Hub(
        state=state,
        env=env,
        public_url=f"http://127.0.0.1:{public}",
        hub_port=int(env["CLEANROOM_HUB_PORT"]),
        airlock_submit_port=int(env["CLEANROOM_AIRLOCK_SUBMIT_PORT"]),
    )
    # Everyone seeded is verified, trained and enrolled (the harness knows their keys).
    running.standing("opal", "alice", "bob", "carol", "dave", "olga", "otto", "pat")
    for person, *step in decisions:
        done = running.cli_as(person, *step)
        assert done.returncode == 0, f"{step}: {done.stderr}"
    running.start()
    try:
        yield running
    finally:
        _teardown(running)


def _teardown(running: Hub) -> None:
    client = docker.from_env()
    for container in client.containers.list(
        all=True, filters={"label": f"cleanroom.instance={INSTANCE}"}
    ):
        print(f"--- logs of {container.name} ---")
        print(container.logs(tail=40).decode(errors="replace"))
        container.remove(force=True)
    running.stop()
    print("--- end of the hub log ---")
    print(running.log_tail(40))
    subprocess.run(
        [sys.executable, "-m", "cleanroom.cli.main", "firewall", "remove"],
        env=running.env,
        capture_output=True,
        check=False,
    )
    for network in client.networks.list(filters={"label": f"cleanroom.instance={INSTANCE}"}):
        network.remove()
    # Quota'd folders: their volume records and loop devices go before their files.
    release_all(client, INSTANCE, running.state / "workspaces")
    release_all(client, INSTANCE, running.state / "library")  # encrypted dataset versions
    shutil.rmtree(running.state / "workspaces", ignore_errors=True)
