"""A hub-managed enforcer ends with its hub: an orphan would stop the next hub's work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import alive


def test_an_orphaned_enforcer_stops(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CLEANROOM_STATE_DIR": str(tmp_path / "state"),
        "JUPYTERHUB_SERVICE_NAME": "cleanroom-enforcer",
    }
    env.pop("CLEANROOM_REGISTRY_URL", None)
    # The shell stands in for the hub: it starts the enforcer and dies a little later.
    started = subprocess.run(
        [
            "sh",
            "-c",
            f"{sys.executable} -m cleanroom.cli.main enforce --every 0.2 >/dev/null 2>&1 "
            "& echo $!; sleep 5",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(started.stdout.strip())
    deadline = time.monotonic() + 60
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert not alive(pid), "the orphaned enforcer kept running"
    finally:
        if alive(pid):
            os.kill(pid, 9)
