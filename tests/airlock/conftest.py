"""Fixtures for the airlock tests: real storage (SQLite, or PostgreSQL when marked)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cleanroom.airlock.blobs import BlobStore
from cleanroom.airlock.database import open_storage
from cleanroom.airlock.membership import StaticMembership
from cleanroom.airlock.policy import Policy
from cleanroom.airlock.service import Airlock
from cleanroom.airlock.storage import SqlStorage

from .factories import MEMBERS, data_owners
from .hub import DATA_OWNERS, OFFICERS, OPERATORS, USERS, Hub, start_hub, stop_hub
from .hub import MEMBERS as HUB_MEMBERS


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        # Each reading moves a microsecond so that ordering by time stays strict.
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **kwargs: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**kwargs)


def fake_checks(data: bytes, filename: str, project: str) -> dict:
    """A stand-in for the disclosure checks (their own issue tests the real ones)."""
    return {"verdict": "pass", "findings": [], "filename": filename}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'airlock.sqlite'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server, dropped afterwards."""
    import psycopg

    base = os.environ["CLEANROOM_TEST_POSTGRES_URL"]
    name = f"airlock_test_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on SQLite and, marked ``postgres``, on a real PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def storage(sqlite_url: str, clock: Clock) -> SqlStorage:
    return open_storage(sqlite_url, clock=clock)


@pytest.fixture
def policy() -> Policy:
    return Policy()


@pytest.fixture
def make_airlock(tmp_path: Path, clock: Clock):
    """Build an airlock on a given database URL with the test membership and clock."""

    def make(url: str, policy: Policy | None = None, checks=fake_checks) -> Airlock:
        return Airlock(
            storage=open_storage(url, clock=clock),
            blobs=BlobStore(tmp_path / "blobs"),
            membership=StaticMembership(MEMBERS),
            policy=policy or Policy(),
            checks=checks,
            clock=clock,
            data_owners=data_owners(),
        )

    return make


@pytest.fixture
def airlock(make_airlock, sqlite_url: str) -> Airlock:
    return make_airlock(sqlite_url)


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator:
    """A factory of fresh Chromium instances (one per person: no cookies shared)."""
    from tests.chromium import chromium

    started: list = []

    def start():
        started.append(chromium(download_dir=tmp_path))
        return started[-1]

    yield start
    for d in started:
        d.quit()


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One real JupyterHub with the airlock service for the whole session."""
    running = start_hub(
        tmp_path_factory.mktemp("hub"), HUB_MEMBERS, OFFICERS, OPERATORS, data_owners=DATA_OWNERS
    )
    try:
        for user in USERS:
            running.add_user(user)
        yield running
    finally:
        stop_hub(running)
        # Shown by pytest only when a test failed: the hub's and the airlock's side.
        print(running.log_tail())
