"""A fresh database on the test PostgreSQL server (``CLEANROOM_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards (tests marked ``postgres``)."""
    import psycopg

    base = os.environ["CLEANROOM_TEST_POSTGRES_URL"]
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
