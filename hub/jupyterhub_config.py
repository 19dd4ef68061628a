"""JupyterHub configuration of the clean room (see cleanroom.hubconfig)."""

from cleanroom.hubconfig import configure

configure(c)  # type: ignore[name-defined]  # noqa: F821  (c is injected by JupyterHub)
