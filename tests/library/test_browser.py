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
