"""Hub-managed services end with their hub.

JupyterHub stops its managed services when it stops, but a hub killed outright (``kill
-9``, the out-of-memory killer) leaves them running with no parent: a gateway that keeps
its port (the next hub's gateway cannot listen), an airlock and a library that keep
serving, a culler that keeps culling for a hub that is gone. Each service asks the kernel
for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux), so its own orderly
stop runs. A service we did not write is started through this module
(``python -m cleanroom.hub.lifeline -- COMMAND...``), which asks, then becomes COMMAND
(the request survives ``execve``). A service whose loop should finish its round first
checks :class:`HubWatch` between rounds instead.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
log = logging.getLogger("cleanroom.hub")


def managed() -> bool:
    """Whether this process runs as a hub-managed service (run by hand, it has no hub)."""
    return bool(os.environ.get("JUPYTERHUB_SERVICE_NAME"))


class HubWatch:
    """Whether the hub that started this service has gone: the process has another
    parent now (init or a subreaper took it over). Never, run by hand."""

    def __init__(self) -> None:
        self._hub_pid = os.getppid() if managed() else None

    def hub_gone(self) -> bool:
        return self._hub_pid is not None and os.getppid() != self._hub_pid


def end_with_hub() -> bool:
    """SIGTERM this process when its parent (the hub) dies; True when asked.

    Only as a hub-managed service (``JUPYTERHUB_SERVICE_NAME`` set): run by hand, a
    service has no hub to end with. Call it again after changing the process's user or
    group (the kernel forgets the request then).
    """
    if not managed() or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask to end with the hub: %s", os.strerror(ctypes.get_errno()))
        return False
    if os.getppid() == 1:  # the hub died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def main(argv: list[str] | None = None) -> None:
    """``python -m cleanroom.hub.lifeline -- COMMAND...``: COMMAND, ending with the hub."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise SystemExit("usage: python -m cleanroom.hub.lifeline -- COMMAND [ARGS...]")
    end_with_hub()
    try:
        os.execvp(args[0], args)
    except OSError as exc:
        raise SystemExit(f"cleanroom lifeline: cannot run {args[0]}: {exc}") from exc


if __name__ == "__main__":
    main()
