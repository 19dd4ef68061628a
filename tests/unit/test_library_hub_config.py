"""The product hub runs the library's pages as a managed service that every signed-in
person may open, on the port the settings name."""

from __future__ import annotations

from pathlib import Path

import pytest
from cleanroom.hub.auth import role_definitions
from cleanroom.library.hub_config import access_scope


def test_the_hub_runs_the_library_service_for_everyone(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanroom.hub.config import configure
    from cleanroom.settings import Settings
    from traitlets.config import Config

    monkeypatch.setenv("CLEANROOM_LIBRARY_PORT", "18093")
    c = Config()
    configure(c, Settings.from_env(), install_firewall=False)
    (library,) = [s for s in c.JupyterHub.services if s["name"] == "library"]
    assert library["url"] == "http://127.0.0.1:18093"
    assert library["command"][-2:] == ["-m", "cleanroom.library"]
    assert library["environment"]["CLEANROOM_REGISTRY_URL"].startswith("sqlite:///")
    assert library["oauth_client_allowed_scopes"] == []  # identity only
    (user,) = [r for r in role_definitions() if r["name"] == "user"]
    assert access_scope() in user["scopes"]
