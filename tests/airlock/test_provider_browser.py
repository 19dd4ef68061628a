"""In Chromium, by keyboard: a release of kiln needs Acme's vote; the officers approve, the
provider finds it on their page and approves, then an officer releases it."""

from __future__ import annotations

import time

import pytest

from .hub import CO_PROJECT, Hub
from .test_browser_flow import approve_by_keyboard, login, press
from .test_hub_api import submit

pytestmark = pytest.mark.browser
TABLE = b"batch,defects\nA,120\nB,95\nC,143\n"


def test_a_release_needs_the_providers_vote_by_keyboard(hub: Hub, browsers) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    token = hub.workspace_token("alice", CO_PROJECT)
    r = submit(
        hub.submit_url,
        token,
        {"work/out/table.csv": TABLE},
        project=CO_PROJECT,
        why=f"kiln kb {time.time()}",
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]

    assert approve_by_keyboard(login(browsers, hub, "olga"), hub, rid) == "in_review"
    oscar = login(browsers, hub, "oscar")
    assert approve_by_keyboard(oscar, hub, rid) == "provider_review"
    # No release while the provider's vote is awaited.
    assert not oscar.find_elements(By.XPATH, "//button[starts-with(text(), 'Release')]")

    # paul lands on his page, where the request waits for Acme's vote.
    paul = login(browsers, hub, "paul")
    assert paul.current_url.endswith("/services/airlock/provider")
    waiting = paul.find_element(By.XPATH, f"//table[1]//a[contains(@href, '{rid}')]")
    press(paul, waiting, Keys.ENTER)
    assert rid in paul.current_url
    form = paul.find_element(By.CSS_SELECTOR, "fieldset.provider-vote")
    assert "Your vote for Acme" in form.text
    form.find_element(By.CSS_SELECTOR, "input[value=approve]").send_keys(Keys.SPACE)
    form.find_element(By.NAME, "reason").send_keys("no recipe can be read from it")
    send = form.find_element(By.XPATH, ".//button[text()='Send my vote for Acme']")
    press(paul, send, Keys.ENTER)
    assert paul.find_element(By.CSS_SELECTOR, "h1 .state").text.lower() == "approved"
    assert "the request is approved" in paul.find_element(By.CSS_SELECTOR, ".notice").text

    oscar.get(f"{hub.service_url}requests/{rid}")
    release = oscar.find_element(By.XPATH, "//button[starts-with(text(), 'Release')]")
    press(oscar, release, Keys.ENTER)
    assert oscar.find_element(By.CSS_SELECTOR, "h1 .state").text.lower() == "released"
    assert "paul: approve: no recipe can be read from it" in oscar.page_source
