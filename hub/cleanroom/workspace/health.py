"""Noticing a workspace whose server died or stopped answering, on the record.

The container stops when its server exits (tini is PID 1 and the server its only
child), and the hub's poll sees the container gone. A server that no longer answers
(stopped, wedged) is treated the same way after :class:`HealthCheck`'s bound: the poll
reports it dead and the hub stops the workspace. Both are logged, counted
(``cleanroom_workspace_server_lost_total{reason}``) and journalled
(``workspace.server_lost``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prometheus_client import Counter
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from cleanroom.registry import Registry
from cleanroom.registry.events import WorkspaceServerLost
from cleanroom.registry.governance import Governance

SERVER_LOST = Counter(
    "cleanroom_workspace_server_lost",
    "Workspaces whose server exited or stopped answering while the hub thought it ran",
    ["reason"],
)
# The exit status the poll reports for a server that stopped answering (as a shell
# reports a process killed by SIGKILL): any non-None value makes the hub stop it.
UNRESPONSIVE_STATUS = 137


@dataclass
class HealthCheck:
    """Consecutive failed health requests of one running workspace.

    ``timeout`` bounds each request; after ``failures_allowed`` consecutive failures
    the server counts as dead.
    """

    timeout: float
    failures_allowed: int
    failures: int = field(default=0)

    async def answers(self, url: str, headers: dict[str, str] | None = None) -> bool:
        """Whether the server at ``url`` answers (any status below 500) in time."""
        try:
            reply = await AsyncHTTPClient().fetch(
                url,
                headers=headers,
                raise_error=False,
                follow_redirects=False,
                connect_timeout=self.timeout,
                request_timeout=self.timeout,
            )
        except (OSError, HTTPClientError):
            return False
        return reply.code < 500

    def record(self, answered: bool) -> bool:
        """Count one check's outcome; True once ``failures_allowed`` failed in a row."""
        if answered:
            self.failures = 0
            return False
        self.failures += 1
        return self.failures >= self.failures_allowed


def record_lost(
    registry: Registry,
    log: logging.Logger,
    *,
    user: str,
    project: str,
    reason: str,
    status: object,
) -> None:
    """Log, count and journal a workspace whose server is gone (``reason``: exited or
    unresponsive)."""
    log.warning(
        "Workspace %s/%s: server %s (status %s); the hub stops the workspace",
        user,
        project,
        reason,
        status,
    )
    SERVER_LOST.labels(reason).inc()
    try:
        Governance(registry).record(
            WorkspaceServerLost(
                actor="hub", project=project, user=user, reason=reason, status=str(status)
            ),
            actor="hub",
        )
    except Exception:  # the warning above is what matters; the journal may be busy
        log.exception("Could not journal the lost server of %s/%s", user, project)
