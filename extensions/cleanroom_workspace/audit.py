"""Records of what crossed the browser boundary (uploads, release requests).

Records go to a dedicated logger as one JSON object per line. The server's log is the
container's log, which the host collects: code in the workspace can write to its own
files, but not rewrite what has already left through the container's stdout.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

AUDIT_LOGGER = "cleanroom_workspace.audit"


class AuditLog:
    """Writes one JSON line per event, tagged with the workspace's user and project."""

    def __init__(self, user: str, project: str, logger: logging.Logger | None = None) -> None:
        self.user = user
        self.project = project
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Log an event and return the record written."""
        entry = {
            "event": f"cleanroom.workspace.{event}",
            "time": time.time(),
            "user": self.user,
            "project": self.project,
            **fields,
        }
        self.logger.info("%s", json.dumps(entry, sort_keys=True, default=str))
        return entry
