"""Log-in through an institution's OpenID provider (a real OP, ``pyop``, started by the
test on loopback), held to the registry: a second factor confirmed by the provider, roles
both sides grant, and nobody the registry does not know."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cleanroom.identity import tls
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance
from cleanroom.registry.people import People
from cleanroom.settings import secret
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.identity import oidc_provider as op
from tests.identity.conftest import spki_hash
from tests.identity.hub import REPO, IdentityHub, free_port, start_identity_hub, stop_identity_hub
from tests.people import in_standing

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def oidc_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityHub]:
    """The OP, and a hub that signs people in through it."""
    import os
    import shutil

    if shutil.which("configurable-http-proxy") is None:
        pytest.skip("configurable-http-proxy is not installed")
    root = tmp_path_factory.mktemp("oidc-hub")
    op_port, hub_port = free_port(), free_port()
    callback = f"https://127.0.0.1:{hub_port}/hub/oauth_callback"
    # The OP serves the same demo certificate the hub will (made first, kept by the hub):
    # the browser trusts one key, and the hub trusts the OP through CLEANROOM_OIDC_CA_CERT.
    state = root / "state"
    cert, key = tls.demo_certificate("127.0.0.1", state / "secrets")
    provider = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.identity.oidc_provider",
            str(op_port),
            callback,
            str(cert),
            str(key),
        ],
        cwd=REPO,
        stdout=(root / "op.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    issuer = f"https://127.0.0.1:{op_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if provider.poll() is not None:
            raise RuntimeError("the OP exited:\n" + (root / "op.log").read_text())
        try:
            discovery = f"{issuer}/.well-known/openid-configuration"
            if requests.get(discovery, timeout=2, verify=str(cert)).ok:
                break
        except (requests.ConnectionError, requests.Timeout):  # still starting (a busy host)
            time.sleep(0.2)
    instance = os.environ.get("CLEANROOM_TEST_INSTANCE", "ident")[:8] + "oi"
    env = {
        "CLEANROOM_AUTHENTICATOR": "oidc",
        "CLEANROOM_OIDC_ISSUER": issuer,
        "CLEANROOM_OIDC_CLIENT_ID": op.CLIENT_ID,
        "CLEANROOM_OIDC_CLIENT_SECRET": op.CLIENT_SECRET,
        "CLEANROOM_OIDC_CA_CERT": str(cert),
    }
    # The registry knows ada (an officer) and ben before the hub starts.
    reg = Registry(f"sqlite:///{state / 'registry.sqlite'}")
    Governance(reg).add_user("ada", ["officer", "researcher"], actor="seed")
    Governance(reg).add_user("ben", ["researcher"], actor="seed")
    for name in ("ada", "ben"):
        in_standing(reg, name, enrol=False)
    try:
        hub = start_identity_hub(root, instance, env, public_port=hub_port, state=state)
    except Exception:
        provider.terminate()
        raise
    try:
        yield hub
    finally:
        stop_identity_hub(hub)
        provider.terminate()
        provider.wait(timeout=30)


@pytest.fixture
def browser(oidc_hub: IdentityHub, tmp_path: Path) -> Iterator[Any]:
    from tests.chromium import chromium

    driver = chromium(
        profile_dir=tmp_path / "profile",
        window=(1280, 1024),
        extra_args=(f"--ignore-certificate-errors-spki-list={spki_hash(oidc_hub.certificate)}",),
    )
    try:
        yield driver
    finally:
        driver.quit()


def _institution_sign_in(driver: Any, hub: IdentityHub, user: str) -> None:
    driver.get(f"{hub.url}/hub/oauth_login")
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "op-user")))
    driver.find_element(By.ID, "op-user").send_keys(user)
    driver.find_element(By.ID, "op-password").send_keys(op.PASSWORD + Keys.ENTER)


def _hub_user(hub: IdentityHub, name: str) -> dict[str, Any]:
    import os

    os.environ["CLEANROOM_STATE_DIR"] = str(hub.state)
    try:
        token = secret("cli-service-token")
    finally:
        del os.environ["CLEANROOM_STATE_DIR"]
    reply = requests.get(
        f"{hub.url}/hub/api/users/{name}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        verify=str(hub.certificate),
    )
    reply.raise_for_status()
    return dict(reply.json())


def test_oidc_log_in_with_a_confirmed_second_factor_gets_the_agreed_roles(
    oidc_hub: IdentityHub, browser: Any
) -> None:
    _institution_sign_in(browser, oidc_hub, "ada")
    WebDriverWait(browser, 30).until(lambda d: "/hub/home" in d.current_url)
    assert "cleanroom-officer" in _hub_user(oidc_hub, "ada")["roles"]
    people = People(Registry(f"sqlite:///{oidc_hub.state / 'registry.sqlite'}"))
    assert people.mfa_enrolled("ada")
    people.check_may_act("ada", "officer")


def test_oidc_log_in_without_a_second_factor_is_refused(
    oidc_hub: IdentityHub, browser: Any
) -> None:
    _institution_sign_in(browser, oidc_hub, "ben")
    WebDriverWait(browser, 30).until(lambda d: "did not confirm a second factor" in d.page_source)
    assert "/hub/home" not in browser.current_url


def test_oidc_log_in_of_someone_the_registry_does_not_know_is_refused(
    oidc_hub: IdentityHub, browser: Any
) -> None:
    _institution_sign_in(browser, oidc_hub, "cyd")
    WebDriverWait(browser, 30).until(
        lambda d: "is not a person of this clean room" in d.page_source
    )
