"""In Chromium, by keyboard: two officers approve, one releases, the author downloads.

The file comes in through the submission API exactly as the workspace extension sends it;
the JupyterLab end of the path is tested where the workspace runs (integration tests).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .hub import PROJECT, Hub
from .test_hub_api import submit

pytestmark = pytest.mark.browser
TABLE = b"line,defects\nA,120\nB,95\nC,143\n"


def press(driver, element, key: str) -> None:
    """Press ``key`` on ``element`` and wait for the page it leads to."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")

    def left(_driver) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            # Chromium sometimes reports the old page's node this way while it unloads.
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    element.send_keys(key)
    WebDriverWait(driver, 15).until(left)


def login(browsers, hub: Hub, user: str):
    """A browser logged in through the hub's form, by keyboard, then OAuth to the airlock."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browsers()
    driver.get(f"{hub.url}/hub/login")
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys("any" + Keys.ENTER)
    WebDriverWait(driver, 30).until(lambda d: "/hub/login" not in d.current_url)
    driver.get(hub.service_url)
    return driver


def approve_by_keyboard(driver, hub: Hub, rid: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{hub.service_url}requests/{rid}")
    press(driver, driver.find_element(By.LINK_TEXT, "work/out/table.csv"), Keys.ENTER)
    driver.find_element(By.CSS_SELECTOR, "input[value=approve]").send_keys(Keys.SPACE)
    press(driver, driver.find_element(By.XPATH, "//button[text()='Save decision']"), Keys.ENTER)
    press(driver, driver.find_element(By.PARTIAL_LINK_TEXT, f"request {rid}"), Keys.ENTER)
    press(driver, driver.find_element(By.XPATH, "//button[text()='Finish my review']"), Keys.ENTER)
    return str(driver.find_element(By.CSS_SELECTOR, "h1 .state").text.lower())


def test_review_release_download_by_keyboard(hub: Hub, browsers, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    token = hub.workspace_token("alice", PROJECT)
    r = submit(hub.submit_url, token, {"work/out/table.csv": TABLE}, why=f"kb {time.time()}")
    rid = r.json()["id"]

    olga = login(browsers, hub, "olga")
    assert approve_by_keyboard(olga, hub, rid) == "in_review"
    driver = login(browsers, hub, "oscar")
    assert approve_by_keyboard(driver, hub, rid) == "approved"
    release = driver.find_element(By.XPATH, "//button[starts-with(text(), 'Release')]")
    press(driver, release, Keys.ENTER)
    assert driver.find_element(By.CSS_SELECTOR, "h1 .state").text.lower() == "released"

    driver = login(browsers, hub, "alice")
    driver.get(f"{hub.service_url}requests")
    newest = driver.find_element(By.CSS_SELECTOR, "tbody tr:first-child a")
    press(driver, newest, Keys.ENTER)
    assert rid in driver.current_url
    driver.find_element(By.LINK_TEXT, "Download").send_keys(Keys.ENTER)
    target = tmp_path / "table.csv"
    deadline = time.monotonic() + 15
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert target.read_bytes() == TABLE
