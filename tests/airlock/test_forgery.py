"""Cross-site forgery: the decision forms check Origin (Referer when there is none) and
every cookie the airlock sets carries SameSite, through a real hub."""

from __future__ import annotations

import pytest
import requests
from cleanroom.airlock.web import origin_of
from cleanroom.hub.cookies import cookie_options

from .hub import Hub
from .test_hub_api import TABLE, xsrf
from .test_pages import new_request


def _withdraw(hub: Hub, session: requests.Session, rid: str, **headers: str) -> requests.Response:
    page = session.get(f"{hub.service_url}requests/{rid}", timeout=30)
    assert page.status_code == 200, page.text[:300]
    return session.post(
        f"{hub.service_url}requests/{rid}/withdraw",
        data={"_xsrf": xsrf(page.text)},
        headers=headers,
        timeout=30,
        allow_redirects=False,
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Origin": "http://evil.example"}, "cross-site request refused"),
        ({"Origin": "null"}, "cross-site request refused"),
        ({"Origin": "http://127.0.0.1:1"}, "cross-site request refused"),
        ({"Referer": "http://evil.example/page"}, "cross-site request refused"),
    ],
)
def test_cross_site_forms_are_refused(hub: Hub, headers: dict[str, str], message: str) -> None:
    alice = hub.browser("alice")
    del alice.headers["Origin"]  # each case sends its own
    rid = new_request(hub, {"out/forged.csv": TABLE})
    # A valid XSRF token does not help a request from another origin.
    r = _withdraw(hub, alice, rid, **headers)
    assert r.status_code == 403 and message in r.text, r.text[:500]
    page = alice.get(f"{hub.service_url}requests/{rid}", timeout=30)
    assert "withdrawn" not in page.text.lower()


def test_a_form_without_origin_or_referer_is_refused(hub: Hub) -> None:
    alice = hub.browser("alice")
    del alice.headers["Origin"]
    rid = new_request(hub, {"out/bare.csv": TABLE})
    r = _withdraw(hub, alice, rid)
    assert r.status_code == 403 and "neither Origin nor Referer" in r.text, r.text[:500]


def test_a_same_origin_referer_stands_in_for_origin(hub: Hub) -> None:
    alice = hub.browser("alice")
    del alice.headers["Origin"]
    rid = new_request(hub, {"out/referred.csv": TABLE})
    r = _withdraw(hub, alice, rid, Referer=f"{hub.service_url}requests/{rid}")
    assert r.status_code == 302, r.text[:500]
    assert "Withdrawn" in alice.get(hub.url + r.headers["Location"], timeout=30).text


def test_pages_send_the_origin_with_their_forms(hub: Hub) -> None:
    # "no-referrer" would make browsers send "Origin: null" with our own forms.
    r = hub.browser("olga").get(f"{hub.service_url}queue", timeout=30)
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_every_airlock_cookie_is_samesite(hub: Hub) -> None:
    session = hub.browser("oscar")
    airlock_cookies = [c for c in session.cookies if c.path.startswith("/services/airlock")]
    # The OAuth token cookie and the XSRF cookie at least.
    assert len(airlock_cookies) >= 2, [c.name for c in session.cookies]
    for c in airlock_cookies:
        assert c.get_nonstandard_attr("SameSite") == "Lax", (c.name, c.__dict__)
        # The test hub is plain http: Secure would keep the browser from sending it.
        assert not c.secure


def test_cookie_options_follow_the_public_url() -> None:
    assert cookie_options("http://127.0.0.1:8000") == {"samesite": "Lax"}
    assert cookie_options("https://cleanroom.example") == {"samesite": "Lax", "secure": True}


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8000/services/airlock/", "http://127.0.0.1:8000"),
        ("HTTPS://Cleanroom.Example:443/x", "https://cleanroom.example"),
        ("http://host:80", "http://host"),
        ("http://[::1", "null"),
        ("http://host:notaport/", "null"),
        ("null", "null"),
        ("javascript:alert(1)", "null"),
        ("", "null"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin
