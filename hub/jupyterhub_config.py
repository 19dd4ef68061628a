"""JupyterHub configuration of the clean room (see cleanroom.hub.config)."""

from cleanroom.hub.config import configure

configure(c)  # type: ignore[name-defined]  # noqa: F821  (c is injected by JupyterHub)
