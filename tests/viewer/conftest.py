"""The restricted mode's tests share the integration suite's real clean room, with one
restricted project of their own (``p-view``, member vera) and the viewer image."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.harness import Hub

RESTRICTED_PROJECT = "p-view"
RESEARCHER = "vera"


@pytest.fixture(scope="session")
def viewer_image() -> str:
    """The viewer image, built once (skipped when its inputs are unchanged)."""
    from cleanroom.images.build import build_images

    built = build_images(("viewer",), progress=lambda line: print(line, flush=True))
    return built[-1].tag


@pytest.fixture(scope="module")
def restricted(hub: Hub, viewer_image: str) -> Iterator[Hub]:
    """vera's running workspace of the restricted project ``p-view``."""
    if all(p.name != RESTRICTED_PROJECT for p in hub.registry.list_projects()):
        for step in (
            ["users", "add", RESEARCHER, "--password-env", "TEST_PASSWORD"],
            ["projects", "create", RESTRICTED_PROJECT, "--title", "Restricted study"],
            ["members", "add", RESTRICTED_PROJECT, RESEARCHER],
        ):
            done = hub.cli(*step)
            assert done.returncode == 0, f"{step}: {done.stderr}"
        hub.standing(RESEARCHER)
        done = hub.cli_as("opal", "projects", "mode", RESTRICTED_PROJECT, "restricted")
        assert done.returncode == 0, done.stderr
    hub.ensure_running(RESEARCHER, RESTRICTED_PROJECT)
    yield hub
