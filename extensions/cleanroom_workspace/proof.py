"""Proof that an answer comes from the real workspace server, for the egress gateway.

The spawner gives each server start a fresh random ``CLEANROOM_SERVER_SECRET``, which the
hub side (the egress gateway) knows too. The gateway sends a random nonce with every
request (``X-Cleanroom-Nonce``); this server answers every response, error pages and
websocket upgrades included, with ``X-Cleanroom-Proof: HMAC-SHA256(secret, nonce)``. The
gateway forwards nothing that lacks a valid proof, so a replacement server started by
kernel code (which never sees the secret) serves nothing to anyone.

The secret is removed from the environment as soon as it is read, so kernels and
terminals the server starts do not inherit it. (The server itself is non-dumpable, so
same-user code cannot read it from ``/proc/<pid>/environ`` either; see ``process.py``.)

Nothing here is a wall: it is the counterpart of the gateway's check (``cleanroom.gateway``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Any

from tornado import httputil
from tornado.web import OutputTransform

SECRET_ENV = "CLEANROOM_SERVER_SECRET"
NONCE_HEADER = "X-Cleanroom-Nonce"
PROOF_HEADER = "X-Cleanroom-Proof"
_NONCE = re.compile(r"^[0-9a-f]{32,128}$")
# Domain separation: the same secret must never sign anything else by accident.
_LABEL = b"cleanroom-server-proof\x00"


def proof_of(secret: bytes, nonce: str) -> str:
    """The proof for ``nonce`` under ``secret`` (hex HMAC-SHA256)."""
    return hmac.new(secret, _LABEL + nonce.encode("ascii"), hashlib.sha256).hexdigest()


def take_secret(environ: Any = os.environ) -> bytes | None:
    """Read and remove the server secret from the environment (None when unset)."""
    value = environ.pop(SECRET_ENV, None)
    return value.encode("utf-8") if value else None


def proof_transform(secret: bytes) -> type[OutputTransform]:
    """A tornado output transform that adds the proof header to every response."""

    class ProofTransform(OutputTransform):
        def __init__(self, request: httputil.HTTPServerRequest) -> None:
            super().__init__(request)
            self.nonce = request.headers.get(NONCE_HEADER, "")

        def transform_first_chunk(
            self,
            status_code: int,
            headers: httputil.HTTPHeaders,
            chunk: bytes,
            finishing: bool,
        ) -> tuple[int, httputil.HTTPHeaders, bytes]:
            if _NONCE.match(self.nonce):
                headers[PROOF_HEADER] = proof_of(secret, self.nonce)
            return status_code, headers, chunk

    return ProofTransform


def install(web_app: Any, log: Any) -> bool:
    """Add the proof to every answer of ``web_app``; False when no secret was given."""
    secret = take_secret()
    if secret is None:
        log.warning(
            "cleanroom: no %s; answers carry no proof and the gateway will refuse them",
            SECRET_ENV,
        )
        return False
    web_app.add_transform(proof_transform(secret))
    return True
