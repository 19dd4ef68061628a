"""The hub's configuration: cookie attributes, the airlock's origin, the roles' scopes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cleanroom.airlock.domain import OFFICER_SCOPE, OPERATOR_SCOPE, RESEARCHER_SCOPE
from cleanroom.hub.auth import role_definitions
from cleanroom.hub.config import configure
from traitlets.config import Config


@pytest.mark.parametrize(
    ("public_url", "cookies"),
    [
        ("http://127.0.0.1:8000", {"samesite": "Lax"}),
        ("https://cleanroom.example", {"samesite": "Lax", "secure": True}),
    ],
)
def test_every_hub_cookie_is_samesite_and_secure_behind_https(
    state: Path, monkeypatch: pytest.MonkeyPatch, public_url: str, cookies: dict
) -> None:
    monkeypatch.setenv("CLEANROOM_PUBLIC_URL", public_url)
    c = Config()
    configure(c, install_firewall=False)
    # JupyterHub applies these to its log-in and XSRF cookies and hands them to each
    # workspace (JUPYTERHUB_COOKIE_OPTIONS).
    assert c.JupyterHub.tornado_settings["cookie_options"] == cookies
    airlock = next(s for s in c.JupyterHub.services if s["name"] == "airlock")
    # The airlock accepts forms from this origin only and marks its cookies the same way.
    assert airlock["environment"]["CLEANROOM_PUBLIC_URL"] == public_url


def test_the_airlock_scopes_are_in_every_role() -> None:
    roles = {r["name"]: set(r["scopes"]) for r in role_definitions()}
    access = "access:services!service=airlock"
    assert {access, RESEARCHER_SCOPE} <= roles["user"]
    assert {access, OFFICER_SCOPE} <= roles["cleanroom-officer"]
    assert {access, OPERATOR_SCOPE} <= roles["cleanroom-operator"]
