"""Helpers of tests that watch processes they started."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (ended, not yet reaped by its parent, init for an
    orphan) counts as ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    # The state follows the command's name, which is in brackets and may hold spaces.
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
