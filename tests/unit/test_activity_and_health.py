"""Activity timestamps are clamped; a server that stops answering counts as dead."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cleanroom.hub import activity
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance
from cleanroom.workspace import health
from jupyterhub import orm

NOW = datetime(2026, 12, 1, 22, 0, 0, 0)


def test_clamp_rounds_down_and_never_passes_now() -> None:
    assert activity.clamp(datetime(2026, 12, 1, 21, 0, 5, 999_999), NOW) == datetime(
        2026, 12, 1, 21, 0, 5
    )
    assert activity.clamp(NOW + timedelta(minutes=50), NOW) == NOW
    aware = datetime(2026, 12, 1, 21, 0, 5, 17, tzinfo=UTC)
    assert activity.clamp(aware, NOW) == aware.replace(microsecond=0)
    assert activity.clamp(None) is None


def test_every_write_of_an_activity_column_is_clamped() -> None:
    activity.install()
    activity.install()  # idempotent: one listener per column
    user = orm.User(name="erin")
    user.last_activity = datetime(2026, 1, 2, 3, 4, 5, 654_321)
    assert user.last_activity == datetime(2026, 1, 2, 3, 4, 5)
    spawner = orm.Spawner(name="p-gamma")
    future = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=59)
    spawner.last_activity = future
    assert spawner.last_activity is not None
    assert spawner.last_activity <= datetime.now(UTC).replace(tzinfo=None)
    assert spawner.last_activity.microsecond == 0


def test_a_server_that_accepts_but_never_answers_is_dead_after_the_bound() -> None:
    # A listening socket nobody reads from: a stopped (SIGSTOP) or wedged server.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        check = health.HealthCheck(timeout=0.3, failures_allowed=2)
        assert check.record(asyncio.run(check.answers(url))) is False
        assert check.failures == 1
        assert check.record(asyncio.run(check.answers(url))) is True


def test_a_lost_server_is_journalled_and_counted(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    registry = Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")

    def lost() -> float:
        value = REGISTRY.get_sample_value(
            "cleanroom_workspace_server_lost_total", {"reason": "unresponsive"}
        )
        return value or 0.0

    before = lost()
    import logging

    health.record_lost(
        registry,
        logging.getLogger("test"),
        user="erin",
        project="p-gamma",
        reason="unresponsive",
        status=137,
    )
    assert lost() == before + 1
    entries = Governance(registry).journal_entries()
    assert [(e.action, e.subject) for e in entries] == [
        ("workspace.server_lost", "project:p-gamma")
    ]
