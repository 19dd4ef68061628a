"""Alembic environment for the airlock database.

Run through ``cleanroom.airlock.database.upgrade`` (which passes an open connection in
``config.attributes["connection"]``) or the ``alembic`` command with ``-x url=...``.
"""

from __future__ import annotations

from alembic import context
from cleanroom.airlock.models import Base
from sqlalchemy import create_engine

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    """Migrate through the connection handed in, or one made from ``-x url=...``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database as: alembic -x url=sqlite:///path ...")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
