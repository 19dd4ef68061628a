"""One running hub per deployment instance on a host.

Workspaces, networks, volumes and firewall chains carry the instance's name, and the
hub's enforcer, culler and health checks act on everything with that label. Two hubs of
one instance (say two state folders started with the same ``CLEANROOM_INSTANCE``) would
fight over container names and stop each other's workspaces, so the second refuses to
start. The lock is an ``flock`` the kernel drops when the hub dies, even by ``kill -9``:
a crashed hub never blocks its own restart.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

_held: dict[str, int] = {}


def lock_dir() -> Path:
    """Where the locks live (``CLEANROOM_LOCK_DIR``, default ``/run/cleanroom``): one
    folder for the host, whatever each deployment's state folder is."""
    return Path(os.environ.get("CLEANROOM_LOCK_DIR", "/run/cleanroom"))


def hold(instance: str, state: Path) -> None:
    """Hold instance ``instance``'s lock for the rest of this process, or exit with a
    message that names the other deployment's state folder."""
    if instance in _held:
        return
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd = os.open(folder / f"hub-{instance}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            os.close(fd)
            raise
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "(unknown)"
        os.close(fd)
        raise SystemExit(
            f"cleanroom hub: another hub of instance {instance!r} is running here "
            f"(state {holder}); stop it (make down) or give this deployment a name of "
            "its own (CLEANROOM_INSTANCE)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{state} pid {os.getpid()}\n".encode(), 0)
    _held[instance] = fd
