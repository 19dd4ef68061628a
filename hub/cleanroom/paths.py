"""Where cleanroom keeps its files.

Everything the deployment writes lives under one state folder (default ``<repo>/state``,
or ``$CLEANROOM_STATE_DIR``), so that ``make down`` keeps it and a fresh clone starts empty.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The source checkout: ``$CLEANROOM_ROOT`` or the folder above ``hub/``."""
    env = os.environ.get("CLEANROOM_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """The folder holding all state (registry, library, work folders, secrets)."""
    env = os.environ.get("CLEANROOM_STATE_DIR")
    return Path(env).resolve() if env else repo_root() / "state"


def policies_dir() -> Path:
    """The folder of policy files: ``$CLEANROOM_POLICIES_DIR`` or ``<repo>/policies``."""
    env = os.environ.get("CLEANROOM_POLICIES_DIR")
    return Path(env).resolve() if env else repo_root() / "policies"


def registry_url() -> str:
    """The registry database URL: ``$CLEANROOM_REGISTRY_URL`` or SQLite in the state folder."""
    env = os.environ.get("CLEANROOM_REGISTRY_URL")
    return env or f"sqlite:///{state_dir() / 'registry.sqlite'}"


def library_dir() -> Path:
    """The data library: registered dataset versions, read-only."""
    return state_dir() / "library"


def index_dir() -> Path:
    """Disclosure-check indexes of dataset versions (hashes, never data)."""
    return state_dir() / "indexes"


def workspaces_dir() -> Path:
    """Per-user work folders and per-project shared folders."""
    return state_dir() / "workspaces"


def secrets_dir() -> Path:
    """Generated secrets (cookie secret, service tokens, demo passwords); mode 0700."""
    return state_dir() / "secrets"
