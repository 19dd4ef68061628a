"""Suite-wide test policy: a wall that is not tested is not a wall.

Tests marked ``docker``, ``browser`` or ``postgres`` need a real engine, browser or
database server. On a developer's machine they skip, with the reason, when the part is
missing; under ``CI=true`` a missing part is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.ci import skip_or_fail

# The real clean room the integration, gateway and wall tests share: defined once, here,
# so the whole session has ONE such deployment. (A fixture imported into two conftest
# files is two fixtures: two hubs of the same instance then fought over the same
# container names and stopped each other's workspaces.)
from tests.integration.deployment import hub, workspace_images  # noqa: F401


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def _chromium_present() -> bool:
    return shutil.which("chromium") is not None and shutil.which("chromedriver") is not None


def _postgres_present() -> bool:
    return bool(os.environ.get("CLEANROOM_TEST_POSTGRES_URL"))


_REQUIREMENTS = {
    "docker": (_docker_answers, "no Docker engine answers (run `make test`, which starts one)"),
    "browser": (_chromium_present, "chromium and chromedriver are not installed"),
    "postgres": (_postgres_present, "CLEANROOM_TEST_POSTGRES_URL is not set"),
}
_seen: dict[str, bool] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker, (probe, reason) in _REQUIREMENTS.items():
        if item.get_closest_marker(marker) is None:
            continue
        if marker not in _seen:
            _seen[marker] = probe()
        if _seen[marker]:
            continue
        skip_or_fail(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that kill and restart the session's shared hub run last: the services it
    restarts (airlock, gateway) and the routes it rebuilds are then no other test's
    starting point."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_hub") is not None)
