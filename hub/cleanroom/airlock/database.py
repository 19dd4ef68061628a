"""Opening the airlock database: engine, migrations to the newest revision, storage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from .storage import SqlStorage, make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic configuration pointing at the package's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is current)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_storage(url: str, clock: Callable[[], datetime] | None = None) -> SqlStorage:
    """Storage on ``url``, migrated to the newest schema."""
    engine = make_engine(url)
    upgrade(engine)
    return SqlStorage(engine, clock=clock)
