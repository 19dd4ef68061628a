"""JupyterLab through the real proxy and gateway, in Chromium (marker ``browser``).

Logs in with the hub's form, opens a notebook through the gateway's OAuth, runs cells with
a pandas table, a matplotlib figure and outputs that try to run script, reloads. Proves
JupyterLab works under the gateway's Content-Security-Policy and that the script payloads
ran nothing (a marker stays unset) and left a notice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import chromium
from tests.integration.deployment import PROJECT
from tests.integration.harness import Hub, run_in

pytestmark = [pytest.mark.docker, pytest.mark.browser]

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "id": i,
            "source": src,
        }
        for i, src in [
            ("a", "import pandas as pd\npd.DataFrame({'force': [12.5, 13.1]})"),
            (
                "b",
                "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
                "%matplotlib inline\nplt.plot([1, 2, 3]); plt.show()",
            ),
            (
                "c",
                "from IPython.display import Javascript, HTML, display\n"
                "display(Javascript('window.crLeak = 1'))\n"
                "display(HTML('<img src=x onerror=\"window.crLeak = 2\"><b>bold</b>'))",
            ),
        ]
    ],
}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = chromium(
        download_dir=tmp_path / "downloads", window=(1400, 1000), page_load_timeout=90
    )
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition(driver)
            if value:
                return value
        except Exception as exc:  # elements come and go while JupyterLab renders
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out; last error: {last}; page: {driver.page_source[-2000:]}")


def test_jupyterlab_works_through_the_gateway_and_outputs_run_no_script(
    hub: Hub, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    hub.ensure_running("alice", PROJECT)
    container = hub.container("alice", PROJECT)
    code, out = run_in(
        container,
        "python3",
        "-c",
        f"open('/home/researcher/work/gw.ipynb','w').write({json.dumps(json.dumps(NOTEBOOK))})",
    )
    assert code == 0, out

    browser.get(f"{hub.public_url}/hub/login")
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys(hub.env["TEST_PASSWORD"])
    # alice is in standing: her second factor comes from the harness's authenticator.
    hub.standing("alice")
    browser.find_element(By.NAME, "otp").send_keys(hub.app.code("alice"))
    browser.find_element(By.CSS_SELECTOR, "form").submit()
    _wait(browser, lambda d: "/hub/" in d.current_url and "login" not in d.current_url)

    browser.get(f"{hub.public_url}/user/alice/{PROJECT}/lab/tree/work/gw.ipynb")
    try:
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"))
    except AssertionError as exc:
        refused = [
            line
            for line in hub.log_tail(400).splitlines()
            if "[gateway" in line and ("refused" in line or " 4" in line or " 5" in line)
        ]
        raise AssertionError("\n".join(refused[-30:])) from exc
    # Wait for the kernel, then run the three cells with Shift+Enter from the first.
    _wait(
        browser,
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")
            or "Idle" in d.find_element(By.CSS_SELECTOR, "#jp-main-statusbar").text
        ),
    )
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _wait(
        browser,
        lambda d: [
            e
            for e in d.find_elements(By.CSS_SELECTOR, ".jp-Cell .jp-InputArea-editor")
            if e.is_displayed()
        ],
    )

    def prompts(d: Any) -> list[str]:
        return [
            e.text
            for e in d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-InputPrompt")
            if e.is_displayed()
        ]

    def editors(d: Any) -> list[Any]:
        return [
            e
            for e in d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-InputArea-editor")
            if e.is_displayed()
        ]

    for index in range(3):
        # A key press that lands while the kernel connection is still settling does not
        # run the cell: try again (at most three times) until its prompt shows a count.
        for _attempt in range(3):
            # Focus the editor by script: a notification toast may lie over it.
            browser.execute_script(
                "arguments[0].querySelector('.cm-content').focus()", editors(browser)[index]
            )
            ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(
                Keys.SHIFT
            ).perform()
            try:
                _wait(browser, lambda d, i=index: any(c.isdigit() for c in prompts(d)[i]), 40)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"cell {index} never ran: {prompts(browser)}")

    try:
        table = _wait(
            browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea table"), 60
        )
    except AssertionError as exc:
        notebook = browser.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel").text
        status = browser.find_element(By.CSS_SELECTOR, "#jp-main-statusbar").text
        raise AssertionError(f"notebook: {notebook[:1500]}\nstatus: {status}") from exc
    assert "12.5" in table[0].text
    _wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea img[src^='data:image/png']"),
    )
    _wait(browser, lambda d: "withheld" in d.find_element(By.CSS_SELECTOR, ".jp-Notebook").text)
    assert "bold" in browser.find_element(By.CSS_SELECTOR, ".jp-Notebook").text
    assert browser.execute_script("return window.crLeak === undefined")
    assert not list((tmp_path / "downloads").glob("*"))

    # Reload: the gateway's cookie keeps the session; the lab comes back.
    browser.refresh()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"))
    assert browser.execute_script("return window.crLeak === undefined")
