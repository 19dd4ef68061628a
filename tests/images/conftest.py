"""Build (or reuse) the workspace images once per test session.

Other test folders get the same images with :func:`cleanroom.images.ensure_images`,
which returns ``{name: "cleanroom/<name>:<hash12>"}`` and only builds what changed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest
from cleanroom.images import build as images

# How tests run a workspace container: the hardened settings the spawner uses.
HARDENED = (
    "--user",
    "1000:1000",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "none",
    "--pids-limit",
    "256",
)


def run_in(image: str, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a hardened, throwaway container of ``image``."""
    return subprocess.run(
        ["docker", "run", "--rm", *HARDENED, image, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ensure(names: Sequence[str]) -> dict[str, str]:
    # Progress goes to the captured output, shown with -s or when a test fails.
    return images.ensure_images(names, progress=lambda line: print(line, flush=True))


@pytest.fixture(scope="session")
def workspace_images() -> dict[str, str]:
    """Tags of the base and notebook images, built once per session if needed."""
    return _ensure(("base", "notebook"))


@pytest.fixture(scope="session")
def pytorch_image(workspace_images: dict[str, str]) -> str:
    """Tag of the pytorch image, built once per session if needed."""
    return _ensure(("pytorch",))["pytorch"]
