"""Time-based one-time passwords (RFC 6238, ``pyotp``), their QR code, and recovery codes.

Pure functions: the registry keeps the secrets and the last used time step
(``cleanroom.registry.people``); the log-in handler calls these.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import time

import pyotp
import qrcode
import qrcode.image.svg

DIGITS = 6
PERIOD = 30
# One step either side absorbs a phone clock a few seconds off, as RFC 6238 §5.2 advises.
DRIFT_STEPS = 1
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_secret() -> str:
    """A fresh base32 TOTP secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, user: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=user, issuer_name=issuer
    )


def qr_svg_data_uri(text: str) -> str:
    """``text`` as a QR code in an inline ``data:image/svg+xml`` URI (no outside URL)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def current_code(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows now (tests and the demo use this)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).at(
        at if at is not None else time.time()
    )


def matching_step(
    secret: str, code: str, *, after_step: int = -1, at: float | None = None
) -> int | None:
    """The time step whose code is ``code`` (within the drift window), or None.

    Steps at or before ``after_step`` never match: a code once used is spent, so a code
    seen over someone's shoulder cannot be replayed within its 30 seconds.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now_step = int((at if at is not None else time.time()) // PERIOD)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        # Compare every candidate (no early exit), in constant time.
        if hmac.compare_digest(totp.generate_otp(step), code) and step > after_step:
            found = step
    return found


def looks_like_totp(code: str) -> bool:
    """True for six digits (a TOTP code); anything else is read as a recovery code."""
    code = code.strip().replace(" ", "")
    return len(code) == DIGITS and code.isdigit()


def new_recovery_codes(count: int) -> list[str]:
    """``count`` one-use recovery codes, such as ``k7m2p-9qrst-x4vab-c3def`` (~99 bits)."""
    return [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5)) for _ in range(4))
        for _ in range(count)
    ]


def normalise_recovery_code(code: str) -> str:
    """A recovery code as typed (any case, spaces or dashes) in its canonical form."""
    letters = "".join(ch for ch in code.lower() if ch.isalnum())
    return "-".join(letters[i : i + 5] for i in range(0, len(letters), 5))


def hash_recovery_code(code: str) -> str:
    """SHA-256 of the canonical code.

    A recovery code carries ~99 random bits, so a fast hash is as safe as a slow one
    against guessing the stored value; a slow one would only slow every log-in.
    """
    return hashlib.sha256(normalise_recovery_code(code).encode()).hexdigest()
