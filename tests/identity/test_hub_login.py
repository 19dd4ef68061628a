"""Signing in to the real hub over https, in Chromium: enrolment with a QR code and a
code the test computes, log-in with and without the code, recovery codes, lock-out and
its release, and workspace starts refused (with the reason on the page) for people who
are not verified, not trained, or whose training expired."""

from __future__ import annotations

import base64
import re
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from cleanroom.identity import throttle, totp
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance
from cleanroom.registry.people import People
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.identity.conftest import OPERATOR, PASSWORD
from tests.identity.hub import IdentityHub
from tests.people import Authenticator, in_standing

pytestmark = [pytest.mark.browser]


def _wait(driver: Any, css: str, timeout: float = 30) -> Any:
    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _sign_in(driver: Any, hub: IdentityHub, name: str, password: str, code: str = "") -> None:
    driver.get(f"{hub.url}/hub/login")
    _wait(driver, "#username_input").send_keys(name)
    driver.find_element(By.ID, "password_input").send_keys(password)
    # Enter in the last field submits the form, as a person would.
    driver.find_element(By.ID, "otp_input").send_keys(code + Keys.ENTER)


def _login_error(driver: Any) -> str:
    return str(_wait(driver, ".login_error").text)


def _person(reg: Registry, name: str, roles: tuple[str, ...] = ("researcher",)) -> None:
    Governance(reg).add_user(name, list(roles), PASSWORD, actor="seed")


def test_enrolment_with_a_qr_code_then_code_at_every_log_in(
    identity_hub: IdentityHub, hub_registry: Registry, hub_people: People, browser: Any
) -> None:
    _person(hub_registry, "rita")
    in_standing(hub_registry, "rita", enrol=False)
    _sign_in(browser, identity_hub, "rita", PASSWORD)
    _wait(browser, "#mfa-enrol")
    secret = browser.find_element(By.ID, "mfa-secret").text
    qr = browser.find_element(By.ID, "mfa-qr").get_attribute("src")
    # The QR code is inline (no outside URL) and encodes exactly the otpauth URI of the
    # key shown beside it: the same image is made again from that URI.
    assert qr.startswith("data:image/svg+xml;base64,")
    assert b"<svg" in base64.b64decode(qr.split(",", 1)[1])
    uri = totp.provisioning_uri(secret, "rita", "cleanroom")
    assert qr == totp.qr_svg_data_uri(uri)
    # A wrong code keeps the person on the enrolment page, with the reason.
    browser.find_element(By.ID, "mfa-code").send_keys(
        "000000" if totp.current_code(secret) != "000000" else "111111"
    )
    browser.find_element(By.ID, "mfa-code").send_keys(Keys.ENTER)
    assert "does not match" in _wait(browser, "#mfa-error").text
    assert not hub_people.mfa_enrolled("rita")
    enrolment_code = totp.current_code(secret)
    browser.find_element(By.ID, "mfa-code").send_keys(enrolment_code + Keys.ENTER)
    _wait(browser, "#recovery-codes")
    codes = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".recovery-code")]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert hub_people.mfa_enrolled("rita") and hub_people.recovery_codes_left("rita") == 10
    browser.find_element(By.ID, "mfa-continue").send_keys(Keys.ENTER)
    WebDriverWait(browser, 30).until(lambda d: "/hub/home" in d.current_url)
    _wait(browser, "#no-projects")

    # Log out; from now on the password alone is not enough.
    browser.get(f"{identity_hub.url}/hub/logout")
    _sign_in(browser, identity_hub, "rita", PASSWORD)
    assert "Enter the code from your authenticator app" in _login_error(browser)
    app = Authenticator()
    app.add("rita", secret)
    # The code used at enrolment is spent: it does not open a session a second time. (The
    # very code sent then: the code of "now" may be a later, unspent step by this time.)
    _sign_in(browser, identity_hub, "rita", PASSWORD, enrolment_code)
    assert throttle.INVALID in _login_error(browser)
    _sign_in(browser, identity_hub, "rita", PASSWORD, app.code("rita"))
    WebDriverWait(browser, 30).until(lambda d: "/hub/home" in d.current_url)

    # A recovery code signs in once; the same code a second time does not.
    browser.get(f"{identity_hub.url}/hub/logout")
    _sign_in(browser, identity_hub, "rita", PASSWORD, codes[3].upper())
    WebDriverWait(browser, 30).until(lambda d: "/hub/home" in d.current_url)
    assert hub_people.recovery_codes_left("rita") == 9
    browser.get(f"{identity_hub.url}/hub/logout")
    _sign_in(browser, identity_hub, "rita", PASSWORD, codes[3])
    assert throttle.INVALID in _login_error(browser)
    actions = [e.action for e in _journal(hub_registry, "user:rita")]
    assert "mfa.enrol" in actions and actions.count("mfa.recovery_code") == 1


def _journal(reg: Registry, subject: str) -> list[Any]:
    from cleanroom.registry.governance import Governance

    return Governance(reg).journal_entries(subject)


def _form_login(hub: IdentityHub, name: str, password: str, code: str = "") -> requests.Response:
    session = requests.Session()
    # verify on each call: a session's own setting loses to $REQUESTS_CA_BUNDLE.
    trust = str(hub.certificate)
    page = session.get(f"{hub.url}/hub/login", timeout=30, verify=trust)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf is not None
    data = {"username": name, "password": password, "otp": code, "_xsrf": xsrf.group(1)}
    return session.post(
        f"{hub.url}/hub/login", data=data, timeout=30, allow_redirects=False, verify=trust
    )


def _until_allowed(hub: IdentityHub, name: str, password: str, code: str = "") -> requests.Response:
    """Post the form until the answer is not the back-off one (a few tenths of a second
    in the test policy); every answer is returned to be checked."""
    for _ in range(50):
        reply = _form_login(hub, name, password, code)
        if "Try again in" not in reply.text:
            return reply
    raise AssertionError("the back-off never ended")


def test_lock_out_after_failures_and_release_by_an_operator(
    identity_hub: IdentityHub,
    hub_registry: Registry,
    hub_people: People,
    app: Authenticator,
    browser: Any,
    operator_token: str,
) -> None:
    _person(hub_registry, "lou")
    app.add("lou", in_standing(hub_registry, "lou") or "")
    # Unknown name and wrong password: the same answer, the same status.
    unknown = _until_allowed(identity_hub, "nobody-here", "wrong-password", "123456")
    wrong = _until_allowed(identity_hub, "lou", "wrong-password", "123456")
    assert unknown.status_code == wrong.status_code == 403
    assert throttle.INVALID in unknown.text and throttle.INVALID in wrong.text
    # (The back-off between attempts is checked figure by figure in test_people.py.)
    _until_allowed(identity_hub, "lou", "wrong-password")
    _until_allowed(identity_hub, "lou", "wrong-password")  # the third: locked
    assert hub_people.is_locked("lou")
    # Locked: the right password and a right code are refused, in the browser too.
    _sign_in(browser, identity_hub, "lou", PASSWORD, app.code("lou"))
    assert throttle.LOCKED in _login_error(browser)
    done = identity_hub.cli("people", "unlock", "lou", token=operator_token)
    assert done.returncode == 0, done.stderr
    _sign_in(browser, identity_hub, "lou", PASSWORD, app.code("lou"))
    WebDriverWait(browser, 30).until(lambda d: "/hub/home" in d.current_url)
    entries = _journal(hub_registry, "user:lou")
    assert [(e.actor, e.action) for e in entries if e.action.startswith("login.")] == [
        ("system", "login.locked"),
        (OPERATOR, "login.unlock"),
    ]


@pytest.mark.parametrize(
    ("name", "state", "reason"),
    [
        ("una", "unverified", "identity has not been verified yet"),
        ("tom", "untrained", "has not passed the training 'safe-researcher'"),
        ("eva", "expired", "training 'safe-researcher' expired on"),
    ],
)
def test_workspace_start_refused_with_the_reason_on_the_page(
    identity_hub: IdentityHub,
    hub_registry: Registry,
    hub_people: People,
    app: Authenticator,
    browser: Any,
    operator_token: str,
    name: str,
    state: str,
    reason: str,
) -> None:
    _person(hub_registry, name)
    secret = totp.new_secret()
    hub_people.enrol(name, secret, totp.current_code(secret))
    app.add(name, secret)
    if state != "unverified":
        hub_people.record_verification(name, "document-check", actor=OPERATOR)
    if state == "expired":
        hub_people.record_training(
            name,
            "safe-researcher",
            passed_on=date.today() - timedelta(days=400),
            expires_on=date.today() - timedelta(days=35),
            actor=OPERATOR,
        )
    _sign_in(browser, identity_hub, name, PASSWORD, app.code(name))
    WebDriverWait(browser, 30).until(lambda d: "/hub/home" in d.current_url)
    browser.get(f"{identity_hub.url}/hub/spawn/{name}/press-quality")
    WebDriverWait(browser, 60).until(lambda d: "Workspace start refused" in d.page_source)
    assert reason in browser.page_source


def test_disabled_and_expired_accounts_cannot_sign_in(
    identity_hub: IdentityHub,
    hub_registry: Registry,
    hub_people: People,
    app: Authenticator,
    operator_token: str,
) -> None:
    for name in ("dora", "exa"):
        _person(hub_registry, name)
        app.add(name, in_standing(hub_registry, name) or "")
    hub_people.set_disabled("dora", True, actor=OPERATOR, reason="left the institute")
    hub_people.set_expiry("exa", date.today() - timedelta(days=1), actor=OPERATOR)
    reply = _form_login(identity_hub, "dora", PASSWORD, app.code("dora"))
    assert reply.status_code == 403 and "disabled: left the institute" in reply.text
    reply = _form_login(identity_hub, "exa", PASSWORD, app.code("exa"))
    assert reply.status_code == 403 and "expired on" in reply.text


def test_https_with_hsts_and_secure_cookies(
    identity_hub: IdentityHub, hub_registry: Registry, app: Authenticator, operator_token: str
) -> None:
    trust = str(identity_hub.certificate)
    reply = requests.get(f"{identity_hub.url}/hub/login", timeout=30, verify=trust)
    assert reply.headers["Strict-Transport-Security"].startswith("max-age=")
    _person(hub_registry, "cora")
    app.add("cora", in_standing(hub_registry, "cora") or "")
    signed_in = _form_login(identity_hub, "cora", PASSWORD, app.code("cora"))
    assert signed_in.status_code == 302
    cookies = signed_in.raw.headers.getlist("Set-Cookie")
    login = [c for c in cookies if c.startswith("jupyterhub-hub-login=")]
    assert login and "HttpOnly" in login[0]
    for cookie in cookies:
        assert "Secure" in cookie and "SameSite=Lax" in cookie, cookie
    # Plain http to the same port is not served.
    with pytest.raises(requests.ConnectionError):
        requests.get(identity_hub.url.replace("https://", "http://") + "/hub/login", timeout=10)
