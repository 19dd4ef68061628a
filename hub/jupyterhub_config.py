"""JupyterHub configuration of the clean room (see cleanroom.hub.config)."""

from cleanroom import paths
from cleanroom.hub import instance_lock
from cleanroom.hub.config import configure
from cleanroom.settings import Settings

# Only the real hub process holds the instance's lock (tests build configs in-process).
instance_lock.hold(Settings.from_env().instance, paths.state_dir())
configure(c)  # type: ignore[name-defined]  # noqa: F821  (c is injected by JupyterHub)
