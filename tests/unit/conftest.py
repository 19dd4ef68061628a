"""Unit-test fixtures: a registry and a state folder of their own for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance

from tests.people import Authenticator, personal_token
from tests.postgres import fresh_database


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


@pytest.fixture
def writer(registry: Registry) -> Governance:
    """The registry's one writer, on the test's registry."""
    return Governance(registry)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_registry(request: pytest.FixtureRequest, state: Path) -> Iterator[Registry]:
    """An empty registry on SQLite and, marked ``postgres``, on a real PostgreSQL."""
    if request.param == "sqlite":
        yield Registry()
        return
    with fresh_database("registry_test") as url:
        registry = Registry(url)
        yield registry
        registry.db.engine.dispose()


@pytest.fixture
def cli_operator(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> str:
    """An operator in standing ("olga"), signed in: the command line's decisions are hers
    (``CLEANROOM_TOKEN``), as after ``cleanroom login``."""
    Governance(registry).add_user("olga", ["operator"], actor="seed")
    monkeypatch.setenv("CLEANROOM_TOKEN", personal_token(registry, "olga", Authenticator()))
    return "olga"
