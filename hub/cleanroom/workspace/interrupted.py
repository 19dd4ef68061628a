"""A start the hub's death cut short, as the restarted hub finds it.

JupyterHub records a server before it calls the spawner's ``start`` and commits the
spawner's state only once ``start`` has returned. A hub killed in between comes back
with a server record, no state, and maybe a container (or pod) of that name, made by
the dead hub's half of the start: folders attached, a gateway route or none, no viewer.
JupyterHub's own check would find the container by its name, call it running and wait
``http_timeout`` for it at an address never recorded (two minutes of "pending" for the
researcher), or worse adopt a server the gateway has no route for.

Both spawners therefore tell such a record apart by its state (every finished start of
ours saves its server secret) and undo the start at the hub's first look: the
container goes, with its route, viewer and unlocked folders, and the hub shows the
workspace stopped. The work folder keeps its files; the researcher starts again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

# What ``poll`` reports for such a record (any value but None makes the hub stop it).
STATUS = "start interrupted: the hub stopped before this workspace's start finished"


def unfinished(state: dict[str, Any]) -> bool:
    """Whether a spawner's saved ``state`` is that of no finished start."""
    return not state.get("server_secret")


async def undo(spawner: Any, undo_start: Callable[[], Awaitable[Any]]) -> str:
    """Undo ``spawner``'s cut-short start with ``undo_start``, saying so in the hub's log;
    what its ``poll`` reports then. A failed undo leaves the workspace not running all
    the same: the next start replaces what is left of that name."""
    spawner.log.warning(
        "Workspace %s/%s: its start was cut short when the hub stopped; undoing it "
        "(the work folder keeps its files, the next start makes a new workspace)",
        spawner.user.name,
        spawner.name,
    )
    try:
        await undo_start()
    except Exception:
        spawner.log.exception("Could not undo the start of %s/%s", spawner.user.name, spawner.name)
    return STATUS
