"""Notebooks are never trusted in the clean room: the server neither checks nor makes
their signatures.

Jupyter "trusts" a notebook whose signature (an HMAC of all its contents, kept in a
per-user database) matches, and JupyterLab then shows its HTML and JavaScript outputs as
they are. In a workspace every notebook can be written by kernel code, so no notebook is
trusted: the egress gateway marks every cell untrusted on the way out anyway
(``cleanroom.gateway.content``). Checking the signature at each read and signing at each
save was work for nothing: 3-4 ms of Python per read of a 1 MB notebook, and the
gateway then had to re-serialise the answer to untrust its cells. This manager marks
cells untrusted at read, signs nothing at save, and refuses the explicit "trust" call.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web


class UntrustedLargeFileManager(AsyncLargeFileManager):
    """Jupyter's default contents manager, with every notebook untrusted."""

    def mark_trusted_cells(self, nb: Any, path: str = "") -> None:
        self.notary.mark_cells(nb, False)

    def check_and_sign(self, nb: Any, path: str = "", *, _retrying: bool = False) -> None:
        return  # nothing is signed, so nothing read later is trusted

    async def trust_notebook(self, path: str) -> None:
        raise web.HTTPError(403, "notebooks are never trusted in the clean room")
