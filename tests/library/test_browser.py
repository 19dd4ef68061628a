"""In Chromium, by keyboard: a provider reads the quality report of a quarantined version
and accepts it, approves a project's use; a researcher finds the card in the catalogue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cleanroom.library.catalogue import get_card

from tests.airlock.test_browser_flow import press
from tests.chromium import chromium

from .conftest import MARK, Library

pytestmark = pytest.mark.browser


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Fresh Chromium instances, one per person (no cookies shared)."""
    started: list[Any] = []

    def start() -> Any:
        started.append(chromium(download_dir=tmp_path))
        return started[-1]

    yield start
    for driver in started:
        driver.quit()


def _login(browsers: Callable[[], Any], library: Library, user: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browsers()
    driver.get(f"{library.hub.url}/hub/login")
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys("any" + Keys.ENTER)
    # The hub's default page here is the library: the OAuth round trip lands on it.
    WebDriverWait(driver, 30).until(lambda d: "cleanroom data library" in d.page_source)
    return driver


def test_a_provider_accepts_and_approves_by_keyboard(
    library: Library, browsers: Callable[[], Any]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = _login(browsers, library, "pat")
    nav = driver.find_element(By.LINK_TEXT, "Your datasets")
    press(driver, nav, Keys.ENTER)
    assert "You act for Acme" in driver.page_source
    # The quality report first: the card of the quarantined version, by keyboard.
    press(driver, driver.find_element(By.LINK_TEXT, "gauges v1"), Keys.ENTER)
    assert "unique-error" in driver.page_source and MARK not in driver.page_source
    driver.back()
    section = driver.find_element(By.ID, "ds-gauges-v1")
    reason = section.find_element(By.NAME, "reason")
    reason.send_keys("the duplicate is a known re-measurement")
    press(driver, reason, Keys.ENTER)  # Enter in the field submits its form
    assert "gauges v1 accepted" in driver.find_element(By.CLASS_NAME, "notice").text
    assert get_card(library.registry, "gauges", "v1").status == "accepted"
    section = driver.find_element(By.ID, "ds-strokes-v1")
    approve = section.find_element(By.XPATH, ".//button[normalize-space()='Approve furnace']")
    press(driver, approve, Keys.ENTER)
    assert "furnace may use strokes v1" in driver.page_source
    (approval,) = library.governance.approvals("furnace")
    assert approval.approved_by == "pat" and approval.current


def test_a_researcher_finds_a_card_by_keyboard(
    library: Library, browsers: Callable[[], Any]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = _login(browsers, library, "alice")
    search = driver.find_element(By.NAME, "q")
    search.send_keys("line 3")
    press(driver, search, Keys.ENTER)
    press(driver, driver.find_element(By.LINK_TEXT, "strokes"), Keys.ENTER)
    text = driver.find_element(By.TAG_NAME, "main").text
    assert "Press strokes of line 3" in text and "confidential" in text
    assert "Croissant (JSON-LD)" in text and MARK not in driver.page_source
    assert driver.find_element(By.ID, "quality-status").text.lower() == "verified"


def _go(driver: Any, link: str) -> None:
    """Follow the link named ``link`` by keyboard."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    press(driver, driver.find_element(By.LINK_TEXT, link), Keys.ENTER)


def _button(driver: Any, label: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//button[normalize-space()={label!r}]")


def _stage(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "stage").text).lower()  # the style capitalises it


def test_an_application_becomes_a_project_by_keyboard(
    library: Library, browsers: Callable[[], Any]
) -> None:
    """alice applies with bob, both sign, the provider approves the use, an operator
    records the assessment and approves: the project exists with both members."""
    from datetime import date, timedelta

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    alice = _login(browsers, library, "alice")
    _go(alice, "Your applications")
    _go(alice, "Apply for a project")
    alice.find_element(By.NAME, "title").send_keys("Furnace temperatures")
    alice.find_element(By.NAME, "purpose").send_keys("Which stroke forces follow the furnace")
    alice.find_element(By.NAME, "members").send_keys("alice, bob")
    ends = (date.today() + timedelta(days=200)).isoformat()
    alice.find_element(By.NAME, "ends_on").send_keys(ends)
    alice.find_element(By.NAME, "assessment_reference").send_keys("DPIA-2026-031")
    box = alice.find_element(By.CSS_SELECTOR, "input[value='strokes@v1']")
    box.send_keys(Keys.SPACE)  # a checkbox ticks with the space bar
    assert box.is_selected()
    press(alice, _button(alice, "Submit"), Keys.ENTER)
    assert "submitted" in alice.find_element(By.CLASS_NAME, "notice").text
    number = int(alice.current_url.split("/applications/")[1].split("?")[0])
    assert _stage(alice) == "waiting for signatures"
    assert "I will use the data only" in alice.find_element(By.ID, "pledge").text
    press(alice, _button(alice, "Sign the pledge"), Keys.ENTER)
    assert _stage(alice) == "waiting for signatures"  # bob has not signed yet

    bob = _login(browsers, library, "bob")
    _go(bob, "Your applications")
    _go(bob, str(number))
    press(bob, _button(bob, "Sign the pledge"), Keys.ENTER)
    assert _stage(bob) == "waiting for providers"

    pat = _login(browsers, library, "pat")
    _go(pat, "Your datasets")
    section = pat.find_element(By.ID, f"app-{number}")
    assert "Furnace temperatures" in section.text
    press(pat, _button(section, f"Approve strokes for application {number}"), Keys.ENTER)
    assert f"application {number} may use strokes" in pat.page_source

    olga = _login(browsers, library, "olga")
    _go(olga, "Applications to decide")
    _go(olga, str(number))
    assert _stage(olga) == "waiting for the operator"
    reference = olga.find_element(By.NAME, "reference")
    assert reference.get_attribute("value") == "DPIA-2026-031"  # the applicants' reference
    press(olga, _button(olga, "Record the assessment"), Keys.ENTER)
    assert "assessment DPIA-2026-031 recorded: approved" in olga.page_source
    name = olga.find_element(By.NAME, "project")
    name.send_keys("furnace-temps")
    press(olga, name, Keys.ENTER)  # Enter in the field submits the approval
    assert _stage(olga) == "approved"
    assert olga.find_element(By.ID, "project").text == "furnace-temps"

    project = library.registry.get_project("furnace-temps")
    assert project.members == ("alice", "bob") and project.title == "Furnace temperatures"
    (approval,) = library.governance.approvals("furnace-temps")
    assert (approval.dataset, approval.approved_by, approval.current) == ("strokes", "pat", True)
    alice.refresh()
    assert _stage(alice) == "approved"
