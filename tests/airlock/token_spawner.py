"""A spawner for the test hub that starts no JupyterLab, only records its server token.

The hub creates the named server's token exactly as for a real workspace (scopes from
``Spawner.server_token_scopes``); this spawner writes it where the test can read it and
answers the hub's health check with a tiny HTTP server, so tests submit with a genuine
server token without a container.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets import Unicode


class TokenRecordingSpawner(Spawner):
    """Writes ``$JUPYTERHUB_API_TOKEN`` to ``<token_dir>/<user>-<server>.token``."""

    token_dir = Unicode(help="Folder the server tokens are written to.").tag(config=True)

    proc: subprocess.Popen | None = None

    async def start(self) -> tuple[str, int]:
        """Record the token and serve something on a free loopback port."""
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        Path(self.token_dir, f"{self.user.name}-{self.name}.token").write_text(self.api_token)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return ("127.0.0.1", port)

    async def poll(self) -> int | None:
        """None while the stand-in server runs."""
        if self.proc is None:
            return 0
        return self.proc.poll()

    async def stop(self, now: bool = False) -> None:
        """Stop the stand-in server."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def get_state(self) -> dict[str, Any]:
        """Nothing to keep across hub restarts."""
        return {}
