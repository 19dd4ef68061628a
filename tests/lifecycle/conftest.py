"""Fixtures of the lifecycle tests: a keyring in a temporary state folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from cleanroom.lifecycle.keys import Keyring, KeySource


@pytest.fixture
def key_source(tmp_path: Path) -> KeySource:
    """A key file of its own (created on first use)."""
    return KeySource(command=None, file=tmp_path / "secrets" / "master.key")


@pytest.fixture
def keyring(tmp_path: Path, key_source: KeySource) -> Keyring:
    return Keyring(tmp_path / "keys", key_source)


@pytest.fixture(scope="session")
def base_image() -> str:
    """The base workspace image (built once; skipped when its inputs are unchanged)."""
    from cleanroom.images.build import build_images

    (built,) = build_images(("base",), progress=lambda line: print(line, flush=True))
    return built.tag
