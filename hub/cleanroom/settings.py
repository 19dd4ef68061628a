"""Deployment settings read from the environment, with the defaults of one machine."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cleanroom import paths


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class Settings:
    """Where each part listens; overridable with ``CLEANROOM_*`` variables."""

    instance: str
    public_url: str
    hub_port: int
    proxy_api_port: int
    airlock_port: int
    airlock_submit_port: int
    enforce_every: int = 60
    gateway_port: int = 8003
    gateway_api_port: int = 8004
    library_port: int = 8093

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from the environment."""
        instance = os.environ.get("CLEANROOM_INSTANCE", "main")
        if not re.match(r"^[a-z][a-z0-9]{0,11}$", instance):
            raise SystemExit(f"CLEANROOM_INSTANCE={instance!r}: use 1-12 lowercase letters/digits")
        return cls(
            instance=instance,
            public_url=os.environ.get("CLEANROOM_PUBLIC_URL", "https://127.0.0.1:8000"),
            hub_port=_int("CLEANROOM_HUB_PORT", 8081),
            proxy_api_port=_int("CLEANROOM_PROXY_API_PORT", 8001),
            airlock_port=_int("CLEANROOM_AIRLOCK_PORT", 8090),
            airlock_submit_port=_int("CLEANROOM_AIRLOCK_SUBMIT_PORT", 8082),
            enforce_every=_int("CLEANROOM_ENFORCE_EVERY", 60),
            gateway_port=_int("CLEANROOM_GATEWAY_PORT", 8003),
            gateway_api_port=_int("CLEANROOM_GATEWAY_API_PORT", 8004),
            library_port=_int("CLEANROOM_LIBRARY_PORT", 8093),
        )

    def public_url_is_https(self) -> bool:
        """True when people reach the clean room over TLS: cookies are then ``Secure``
        and pages send HSTS (the hub, the airlock, the gateway)."""
        return self.public_url.lower().startswith("https://")

    @property
    def firewall_ports(self) -> list[int]:
        """Ports that workspaces may open connections to on their gateway."""
        return [self.hub_port, self.airlock_submit_port]


def image_repository() -> str:
    """Repository of the workspace images: ``$CLEANROOM_IMAGE_REPOSITORY`` or ``cleanroom``.

    A second checkout on the same engine (a developer's branch) names its own, so that its
    builds never move the ``:latest`` tags the first one runs.
    """
    name = os.environ.get("CLEANROOM_IMAGE_REPOSITORY", "cleanroom")
    if not re.match(r"^[a-z0-9][a-z0-9._-]{0,62}$", name):
        raise SystemExit(
            f"CLEANROOM_IMAGE_REPOSITORY={name!r}: use lowercase letters, digits, . _ -"
        )
    return name


def secret_file(name: str, nbytes: int = 32) -> Path:
    """A generated secret in the state folder, created once with mode 0600."""
    folder = paths.secrets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(nbytes))
    return path


def secret(name: str, nbytes: int = 32) -> str:
    """The value of a generated secret."""
    return secret_file(name, nbytes).read_text().strip()
