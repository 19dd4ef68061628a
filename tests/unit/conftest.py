"""Unit-test fixtures: a registry and a state folder of their own for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cleanroom.registry import Registry


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh state folder, set through the environment as the deployment sets it."""
    folder = tmp_path / "state"
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(folder))
    monkeypatch.delenv("CLEANROOM_REGISTRY_URL", raising=False)
    yield folder


@pytest.fixture
def registry(state: Path) -> Registry:
    """An empty registry in the state folder."""
    return Registry()
