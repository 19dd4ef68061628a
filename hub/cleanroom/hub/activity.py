"""Activity timestamps that cannot carry data or lie about time.

A workspace's token may post activity (``users:activity!user``: the idle culler needs
it), and JupyterHub keeps what it is sent to the microsecond and up to 59 minutes in
the future. Measured before this: data written into the microseconds of
``last_activity`` read back exactly from ``GET /hub/api/users/<name>``, also from
another project's workspace of the same person, and a future date kept the culler
away.

Here every write of a ``last_activity`` column (the user's, each server's and each
token's), whatever path it takes through the hub, is clamped at the database layer:
never later than the hub's clock, rounded down to the second. What reads back is then
a second-resolution time no later than now: a timing channel of about a bit a second
at most, the same as the server's real activity, instead of 20 bits per write.
(Kernel code has no hub token at all: the launcher strips it; see the images.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jupyterhub import orm
from sqlalchemy import event

_COLUMNS = (orm.User.last_activity, orm.Spawner.last_activity, orm.APIToken.last_activity)


def clamp(value: datetime | None, now: datetime | None = None) -> datetime | None:
    """``value`` no later than ``now`` (default: the clock), rounded down to the second.

    Naive datetimes are UTC, as everywhere in JupyterHub's database.
    """
    if value is None:
        return None
    if now is None:
        now = datetime.now(UTC)
    if value.tzinfo is None:
        now = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return min(value, now).replace(microsecond=0)


def _on_set(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
    return clamp(value) if isinstance(value, datetime) else value


def install() -> None:
    """Clamp every later write of the activity columns in this process (idempotent)."""
    for column in _COLUMNS:
        if not event.contains(column, "set", _on_set):
            event.listen(column, "set", _on_set, retval=True)
