"""The gateway's side of the server proof (see ``cleanroom_workspace.proof``).

Every request to a workspace carries a fresh random nonce; the real server answers with
``HMAC-SHA256(secret, label + nonce)``, where the secret is the one the spawner put into
that server start's environment. Kept as a few lines of our own rather than an import of
the workspace extension, so the hub side never depends on code that ships into workspaces;
``tests/gateway/test_proof.py`` proves the two agree.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

NONCE_HEADER = "X-Cleanroom-Nonce"
PROOF_HEADER = "X-Cleanroom-Proof"
SECRET_ENV = "CLEANROOM_SERVER_SECRET"
_LABEL = b"cleanroom-server-proof\x00"


def new_nonce() -> str:
    """A fresh, unpredictable nonce (128 bits, hex)."""
    return secrets.token_hex(16)


def new_secret() -> str:
    """A fresh per-start server secret (256 bits, hex)."""
    return secrets.token_hex(32)


def expected_proof(secret: str, nonce: str) -> str:
    """What the real server answers for ``nonce``."""
    return hmac.new(
        secret.encode("utf-8"), _LABEL + nonce.encode("ascii"), hashlib.sha256
    ).hexdigest()


def is_valid(secret: str, nonce: str, proof: str | None) -> bool:
    """Whether ``proof`` is the real server's answer to ``nonce`` (constant time)."""
    if not proof or not secret:
        return False
    return hmac.compare_digest(expected_proof(secret, nonce), proof)
